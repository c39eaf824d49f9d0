"""``app.bulk.bulk_insert`` stores exactly what a Core ``insert(table)`` of the same rows stores:
Python-side defaults (the lookup hashes of the encrypted columns among them), encryption, JSON
(``None`` in a JSON column is JSON ``null``, as SQLAlchemy writes it), dates and booleans."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from sqlalchemy import insert, select

from app.bulk import bulk_insert
from app.cases.models import Case, Party, SignOff, TimelineEntry
from app.crypto import lookup_hash
from tests.workflow_factories import VILLAGE, org

AT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def _case_row(number: str, village) -> dict:
    return dict(number=number, source="群众来访", dispute_type="邻里", type_category="邻里",
                county_id=village.county_id, township_id=village.township_id, village_id=village.id,
                summary="两户因排水沟堵塞发生争执", claims=None, people_involved=3, amount=2000,
                registered_on=date(2026, 3, 1), registered_at=AT, updated_at=AT, risk_level="high",
                deadline_extended=True, closed_on=None, risk_factors=["群体性"], co_mediator_ids=None)


def _stored(db, table, where, skip=("id",)) -> dict:
    """Every column as read back, plus whether it is SQL NULL (JSON null is not)."""
    cols = [c for c in table.columns if c.name not in skip]
    row = db.execute(select(*cols, *[c.is_(None).label(f"{c.name}__null") for c in cols]).where(where)).one()
    return dict(row._mapping)


def test_bulk_rows_read_back_as_core_insert_rows(db):
    village = org(VILLAGE)
    case_table = Case.__table__
    db.execute(insert(case_table), [_case_row("BULK-CORE", village)])
    bulk_insert(case_table, [_case_row("BULK-COPY", village)])
    core = _stored(db, case_table, case_table.c.number == "BULK-CORE", skip=("id", "number"))
    bulk = _stored(db, case_table, case_table.c.number == "BULK-COPY", skip=("id", "number"))
    assert bulk == core
    assert bulk["version"] == 1 and bulk["status"] == "pending_triage"  # scalar defaults filled
    assert bulk["deadline_extended"] is True and bulk["risk_factors"] == ["群体性"]
    assert bulk["co_mediator_ids__null"] is False  # JSON null, as SQLAlchemy writes None

    ids = dict(db.execute(select(case_table.c.number, case_table.c.id)
                          .where(case_table.c.number.in_(["BULK-CORE", "BULK-COPY"]))).all())
    party = Party.__table__
    for number, write in (("BULK-CORE", lambda rows: db.execute(insert(party), rows)),
                          ("BULK-COPY", lambda rows: bulk_insert(party, rows))):
        write([dict(case_id=ids[number], village_id=village.id, position=p, name="张三", role="applicant", gender="male",
                    id_type="resident_id", id_number="42022219800101123x" if p else None,
                    phone=" 138 0013 8000", address=None, agent=None) for p in range(2)])
    for position in range(2):
        core = _stored(db, party, (party.c.case_id == ids["BULK-CORE"]) & (party.c.position == position),
                       skip=("id", "case_id"))
        bulk = _stored(db, party, (party.c.case_id == ids["BULK-COPY"]) & (party.c.position == position),
                       skip=("id", "case_id"))
        assert bulk == core
        assert bulk["phone"] == " 138 0013 8000" and bulk["phone_hash"] == lookup_hash("phone", "13800138000")
        assert bulk["kind"] == "person"
    raw = db.execute(select(party.c.id_number_hash).where(party.c.case_id == ids["BULK-COPY"])
                     .order_by(party.c.position)).all()
    assert raw[0].id_number_hash is None and raw[1].id_number_hash == lookup_hash("id", "42022219800101123X")

    sign_off, timeline = SignOff.__table__, TimelineEntry.__table__
    for number, write in (("BULK-CORE", lambda t, rows: db.execute(insert(t), rows)),
                          ("BULK-COPY", bulk_insert)):
        write(sign_off, [dict(case_id=ids[number], signed_at=AT, plan="包案化解", task_force=None)])
        write(timeline, [dict(case_id=ids[number], at=AT, action="register", from_status=None,
                              to_status="pending_triage", note="生成")])
    for table in (sign_off, timeline):
        core = _stored(db, table, table.c.case_id == ids["BULK-CORE"], skip=("id", "case_id"))
        bulk = _stored(db, table, table.c.case_id == ids["BULK-COPY"], skip=("id", "case_id"))
        assert bulk == core


def test_bulk_insert_refuses_ragged_or_unknown_rows(db):
    timeline = TimelineEntry.__table__
    with pytest.raises(ValueError, match="same keys"):
        bulk_insert(timeline, [dict(case_id=1, action="note"), dict(case_id=1, action="note", note="x")])
    with pytest.raises(ValueError, match="no column"):
        bulk_insert(timeline, [dict(case_id=1, colour="red")])
    assert bulk_insert(timeline, []) == 0
