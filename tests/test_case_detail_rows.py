"""The case page's case is read as one row (the case, its township, village and grid, the
related-table flags) and its parties as rows, and made the session's instances from them
(``app.cases.queries.case_detail`` with ``app.db.persistent_from_row``).  It must be the case a
query would give — same values, same places and parties in the same order —, persistent (a
change is flushed with the version check), only within the user's area, and the flags must
say what ``related_tables`` says."""
from __future__ import annotations

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from app import db as app_db
from app.accounts.models import User
from app.cases.models import Case, Party
from app.cases.queries import RELATED_MEMO, RELATED_TABLES, case_detail, related_tables
from app.errors import NotFound
from tests.helpers import count_queries
from tests.intake_helpers import make_case
from tests.workflow_factories import OTHER_TOWNSHIP_VILLAGE


def _user(username: str) -> User:
    return app_db.session.scalar(select(User).where(User.username == username))


def _columns(obj) -> dict:
    return {attr.key: getattr(obj, attr.key) for attr in sa_inspect(type(obj)).column_attrs}


def _registered(**overrides) -> tuple[int, str]:
    """A case registered and committed to the test's transaction, the session emptied (as a new
    request finds it): (user id of the county supervisor, case number)."""
    case = make_case(**overrides)
    app_db.session.flush()
    number = case.number
    supervisor_id = _user("county_supervisor").id
    app_db.session.expunge_all()
    return supervisor_id, number


def test_the_case_equals_a_queried_one_with_its_places_and_parties(app, db):
    supervisor_id, number = _registered()
    with app.test_request_context("/"):
        user = app_db.session.get(User, supervisor_id)
        with count_queries(app) as seen:
            case = case_detail(user, number)
            places = {name: _columns(getattr(case, name)) if getattr(case, name) else None
                      for name in ("township", "village", "grid")}
            parties = [_columns(p) for p in case.parties]
        selects = [sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]
        # the case with its places and flags; the parties (on PostgreSQL inside the case's row)
        assert len(selects) == (2 if app_db.is_sqlite() else 1)
        assert sa_inspect(case).persistent and not sa_inspect(case).modified
        assert all(sa_inspect(p).persistent for p in case.parties)
        assert not app_db.session.dirty and not app_db.session.new
        loaded = _columns(case)
        # relationships the rows did not carry load when read; a party's case is this case
        assert case.county.level == "county"
        with count_queries(app) as seen:
            assert all(p.case is case for p in case.parties)
        assert seen == []
    app_db.session.expunge_all()
    queried = app_db.session.scalar(select(Case).where(Case.number == number))
    assert loaded == _columns(queried)
    assert places == {name: _columns(getattr(queried, name)) if getattr(queried, name) else None
                      for name in ("township", "village", "grid")}
    assert parties == [_columns(p) for p in queried.parties]
    assert len(parties) == 2 and parties[0]["phone"] == "13800001111"  # decrypted


def test_a_change_to_the_case_is_flushed_with_the_version_check(app, db):
    supervisor_id, number = _registered()
    with app.test_request_context("/"):
        case = case_detail(app_db.session.get(User, supervisor_id), number)
        version = case.version
        case.claims = "疏通排水沟并赔偿损失"
        case.parties[0].address = "南湖镇朱湖社区"
        app_db.session.flush()
        assert case.version == version + 1
    app_db.session.expunge_all()
    stored = app_db.session.scalar(select(Case).where(Case.number == number))
    assert stored.claims == "疏通排水沟并赔偿损失" and stored.version == version + 1
    assert stored.parties[0].address == "南湖镇朱湖社区"


def test_a_case_outside_the_users_area_is_not_found(app, db):
    _, number = _registered(village=OTHER_TOWNSHIP_VILLAGE)
    with app.test_request_context("/"):
        with pytest.raises(NotFound):
            case_detail(_user("village_mediator"), number)
        with pytest.raises(NotFound):
            case_detail(_user("county_supervisor"), number + "0")
        assert case_detail(_user("county_supervisor"), number).number == number


def test_the_instances_are_the_sessions_own_as_a_query_would_leave_them(app, db):
    """Made from rows, the case, its places and parties sit in the session's identity map: a
    later query or ``get`` returns the same objects (no SQL for ``get``), nothing is pending,
    and they can be expunged, refreshed and deleted as queried ones."""
    supervisor_id, number = _registered()
    with app.test_request_context("/"):
        case = case_detail(app_db.session.get(User, supervisor_id), number)
        assert case in app_db.session and all(p in app_db.session for p in case.parties)
        assert case.village in app_db.session
        assert not app_db.session.new and not app_db.session.dirty
        with count_queries(app) as seen:
            assert app_db.session.get(Case, case.id) is case
            assert app_db.session.get(Party, case.parties[0].id) is case.parties[0]
        assert seen == []
        assert app_db.session.scalar(select(Case).where(Case.number == number)) is case
        app_db.session.refresh(case)
        assert case.number == number
        party = case.parties[1]
        app_db.session.delete(party)
        app_db.session.flush()
        assert app_db.session.get(Party, party.id) is None
        app_db.session.expunge(case)
        assert case not in app_db.session


def test_a_case_the_session_holds_is_kept(app, db):
    supervisor_id, number = _registered()
    with app.test_request_context("/"):
        held = app_db.session.scalar(select(Case).where(Case.number == number))
        case = case_detail(app_db.session.get(User, supervisor_id), number)
        assert case is held
        assert [p.name for p in case.parties] == ["张三", "某某建筑公司"]


def test_the_flags_say_what_related_tables_says(app, db):
    supervisor_id, number = _registered()
    with app.test_request_context("/"):
        case = case_detail(app_db.session.get(User, supervisor_id), number)
        flags = app_db.transaction_memo(RELATED_MEMO)[case.id]
        app_db.session.info.pop(RELATED_MEMO, None)  # read them again, by their own statement
        assert flags == related_tables(case)
        assert flags <= set(RELATED_TABLES)


def test_a_party_row_order_is_the_relationships(app, db):
    supervisor_id, number = _registered()
    with app.test_request_context("/"):
        case = case_detail(app_db.session.get(User, supervisor_id), number)
        assert [p.position for p in case.parties] == sorted(p.position for p in case.parties)
        assert all(isinstance(p, Party) for p in case.parties)
