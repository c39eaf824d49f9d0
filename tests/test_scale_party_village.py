"""``party.village_id``: each party row carries its case's village (the case page's 同村同名
repeats read it in one index range), and the database keeps the copy equal: filled when a party
is added by any path, moved with its case, refused when it names another village."""
from __future__ import annotations

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError

from app.cases.models import Case, Party
from app.ledger.importer import import_ledger
from app.screening import queries
from tests.ledger_helpers import FOLLOW_UP_HEADERS, good_row, workbook
from tests.screening_factories import VILLAGE, VILLAGE_2, make_case, org, user


def _party_villages(db, case_id: int) -> list[int]:
    return db.scalars(select(Party.village_id).where(Party.case_id == case_id).order_by(Party.position)).all()


def test_a_party_added_by_any_path_gets_its_cases_village(db):
    case = make_case(parties=({"name": "甲某"},))                      # through case.parties
    db.add(Party(case_id=case.id, position=1, name="乙某", role="respondent"))  # by case_id alone
    db.flush()
    db.execute(insert(Party.__table__), [dict(case_id=case.id, village_id=case.village_id, position=2,
                                              name="丙某", role="third_party")])  # Core, as the importer
    assert _party_villages(db, case.id) == [org(VILLAGE).id] * 3


def test_a_party_naming_another_village_is_refused(db):
    case = make_case(parties=({"name": "甲某"},))
    with pytest.raises(IntegrityError):
        with db.begin_nested():
            db.execute(insert(Party.__table__), [dict(case_id=case.id, village_id=org(VILLAGE_2).id, position=1,
                                                      name="乙某", role="respondent")])
    with pytest.raises(IntegrityError):
        with db.begin_nested():
            db.execute(update(Party.__table__).where(Party.case_id == case.id).values(village_id=org(VILLAGE_2).id))
    assert _party_villages(db, case.id) == [org(VILLAGE).id]


def test_a_case_moved_to_another_village_moves_its_parties_and_its_repeats(db):
    """A Core UPDATE of the case's village (what the ledger re-import runs) carries its parties
    along; 同村同名 then finds the namesakes of the new village, not of the old one."""
    moved = make_case(parties=({"name": "周同名"},))
    old_namesake = make_case(parties=({"name": "周同名"},))
    new_namesake = make_case(village=VILLAGE_2, parties=({"name": "周同名"},))
    supervisor = user("county_supervisor")
    assert [o.id for o, _ in queries.repeats_for_case(supervisor, moved)] == [old_namesake.id]
    db.execute(update(Case.__table__).where(Case.id == moved.id).values(village_id=org(VILLAGE_2).id))
    db.expire_all()
    assert _party_villages(db, moved.id) == [org(VILLAGE_2).id]
    moved = db.get(Case, moved.id)
    assert [o.id for o, _ in queries.repeats_for_case(supervisor, moved)] == [new_namesake.id]


def test_ledger_reimport_moving_a_case_and_adding_a_party(db):
    """The re-import updates the case's village first, then inserts the new party with it."""
    first = import_ledger(workbook([good_row(编号="PV-1")], headers=FOLLOW_UP_HEADERS), "a.xlsx")
    assert first.ok, first.problems
    moved = good_row(编号="PV-1", **{"村(社区)": "张湾村"}, 当事人="张三(申请人)；李四(被申请人)；王五(第三人)",
                     联系电话="13800000001；13800000002；")
    report = import_ledger(workbook([moved], headers=FOLLOW_UP_HEADERS), "b.xlsx")
    assert report.ok and report.updated == 1, report.problems
    db.expire_all()
    case = db.scalar(select(Case).where(Case.external_number == "PV-1"))
    assert case.village_id == org(VILLAGE_2).id
    assert _party_villages(db, case.id) == [case.village_id] * 3
    # nothing in the database disagrees anywhere
    assert db.execute(text("SELECT count(*) FROM party JOIN dispute_case ON dispute_case.id = party.case_id "
                           "WHERE party.village_id <> dispute_case.village_id")).scalar() == 0
