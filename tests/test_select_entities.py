"""``app.db.select_entities`` reads a kept ``select(Model)`` as rows and makes the session's
instances from them: it must return what ``session.scalars`` returns for the same statement —
the same values (encrypted columns decrypted), in the same order, persistent, an instance the
session holds kept —, and leave statements it cannot read as rows to the ORM.  Runs on both
databases (on PostgreSQL the rows come through the driver path)."""
from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import selectinload

from app import db as app_db
from app.cases.models import Case, Party, TimelineEntry
from app.db import SERVER_PREPARE, prepared, select_entities
from tests.helpers import count_queries
from tests.intake_helpers import make_case


def _columns(obj) -> dict:
    return {attr.key: getattr(obj, attr.key) for attr in sa_inspect(type(obj)).column_attrs}


def _parties_stmt():
    return prepared("test.select_entities.parties", lambda: select(Party).where(
        Party.case_id == bindparam("case_id")).order_by(Party.position.desc()), server_prepare=True)


def _case_id() -> int:
    case = make_case()
    app_db.session.flush()
    case_id = case.id
    app_db.session.expunge_all()  # as a new request finds the session
    return case_id


def test_equals_what_the_orm_returns_in_order_and_persistent(app, db):
    case_id = _case_id()
    with count_queries(app) as seen:
        found = select_entities(_parties_stmt(), {"case_id": case_id})
    assert len(seen) == 1 and len(found) == 2
    assert all(sa_inspect(p).persistent and not sa_inspect(p).modified for p in found)
    assert not app_db.session.new and not app_db.session.dirty
    with count_queries(app) as seen:
        assert found[0].case.id == case_id  # a relationship loads as on a queried party
    assert len(seen) == 1
    rows = [_columns(p) for p in found]
    app_db.session.expunge_all()
    queried = list(app_db.session.scalars(_parties_stmt(), {"case_id": case_id}))
    assert rows == [_columns(p) for p in queried]
    assert [r["position"] for r in rows] == sorted((r["position"] for r in rows), reverse=True)
    assert "13800001111" in {r["phone"] for r in rows}  # decrypted as the ORM gives it


def test_an_instance_the_session_holds_is_kept_and_its_expired_columns_filled(app, db):
    case_id = _case_id()
    held = app_db.session.scalars(select(Party).where(Party.case_id == case_id)).all()
    app_db.session.expire(held[0])
    with count_queries(app) as seen:
        found = select_entities(_parties_stmt(), {"case_id": case_id})
    assert len(seen) == 1  # no refresh of the expired instance
    assert {id(p) for p in found} == {id(p) for p in held}
    assert not sa_inspect(held[0]).unloaded & set(_columns(held[0]))
    with count_queries(app) as seen:
        assert held[0].name
    assert seen == []


def test_a_change_to_a_returned_instance_is_flushed(app, db):
    case_id = _case_id()
    party = select_entities(_parties_stmt(), {"case_id": case_id})[0]
    party.address = "南湖镇朱湖社区"
    with count_queries(app) as seen:
        app_db.session.flush()
    assert any(sql.lstrip().upper().startswith("UPDATE PARTY") for sql in seen)
    app_db.session.expunge_all()
    assert app_db.session.get(Party, party.id).address == "南湖镇朱湖社区"


def test_the_column_statement_keeps_the_server_side_preparation(app, db):
    stmt = _parties_stmt()
    select_entities(stmt, {"case_id": _case_id()})
    _model, _keys, columns = app_db._ENTITY_READS[id(stmt)]
    assert columns.get_execution_options().get(SERVER_PREPARE) is True


def test_loader_options_and_unkept_statements_go_through_the_orm(app, db):
    case_id = _case_id()
    with_options = prepared("test.select_entities.with_options", lambda: select(Case).where(
        Case.id == bindparam("case_id")).options(selectinload(Case.parties)))
    with count_queries(app) as seen:
        (case,) = select_entities(with_options, {"case_id": case_id})
    assert len(seen) == 2 and "parties" in sa_inspect(case).dict  # the option was applied
    assert app_db._ENTITY_READS[id(with_options)] is None
    unkept = select(TimelineEntry).where(TimelineEntry.case_id == case_id)
    assert [e.id for e in select_entities(unkept)] == \
        [e.id for e in app_db.session.scalars(select(TimelineEntry).where(TimelineEntry.case_id == case_id))]
    assert id(unkept) not in app_db._ENTITY_READS
