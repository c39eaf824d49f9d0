"""Kept column reads run straight on the driver (``app.db.select_rows`` with a statement from
``app.db.prepared``: ``_DriverRead`` on PostgreSQL, ``_SQLiteRead`` on SQLite).  They must
return what SQLAlchemy Core returns — the same values, types and column names —, be seen by
the engine's statement listeners, and fail as Core fails: SQLAlchemy's exception, the
transaction left to the rollback, a lost connection invalidated (the last two PostgreSQL's)."""
from __future__ import annotations

import pytest
from sqlalchemy import bindparam, exc, func, select, text

from app import db as app_db
from app.cases.models import Case, Party, TimelineEntry
from app.db import _DRIVER_READS, _DriverRead, end_read_only_transaction, is_sqlite, prepared, select_rows
from app.settings.models import Setting
from tests.helpers import count_queries
from tests.intake_helpers import make_case


@pytest.fixture()
def driver(app, db):
    with app.test_request_context("/"):
        yield


@pytest.fixture()
def pg(driver, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's transactions and connections")
    yield


def _read(stmt):
    """The driver read ``select_rows`` compiled for ``stmt`` on this database."""
    return _DRIVER_READS[(id(stmt), app_db.session.get_bind().dialect.name)]


def _both_ways(stmt, params):
    """(the driver's rows, Core's rows) of a kept statement."""
    driver = select_rows(stmt, params)
    core = app_db.session.connection().execute(stmt, params).all()
    return driver, core


def _a_case_with_parties_and_timeline() -> Case:
    """Two cases registered in the same village (parties with encrypted ID numbers and phones,
    a timeline entry each); the first one."""
    first = make_case()
    make_case(summary="两户因宅基地边界发生争执")
    app_db.session.flush()
    assert first.parties and first.timeline
    return first


STATEMENTS = {
    # dates, timestamps, a count over the rows, a label, literal constants the compiler takes out
    "cases": lambda: select(Case.id, Case.number, Case.registered_on, Case.amount, Case.risk_factors,
                            func.count().over().label("total"))
    .where(Case.village_id == bindparam("village"), Case.status != "archived", Case.id > bindparam("after"))
    .order_by(Case.id).limit(bindparam("n")),
    "timeline": lambda: select(TimelineEntry.id, TimelineEntry.at, TimelineEntry.action, TimelineEntry.note)
    .where(TimelineEntry.case_id == bindparam("case_id")).order_by(TimelineEntry.id),
    # encrypted columns: the type's result processor decrypts them
    "parties": lambda: select(Party.id, Party.name, Party.phone, Party.id_number)
    .where(Party.case_id == bindparam("case_id")).order_by(Party.id),
    # a JSON column
    "settings": lambda: select(Setting.key, Setting.value).order_by(Setting.key),
}


def test_kept_reads_return_what_core_returns(driver):
    case = _a_case_with_parties_and_timeline()
    app_db.session.add(Setting(key="test.driver_reads", value={"days": [30, 60], "note": "二级"}))
    app_db.session.flush()
    params = {"cases": {"village": case.village_id, "after": 0, "n": 50}, "timeline": {"case_id": case.id},
              "parties": {"case_id": case.id}, "settings": {}}
    for name, build in STATEMENTS.items():
        stmt = prepared(("test.driver_reads", name), build, server_prepare=name != "settings")
        driver, core = _both_ways(stmt, params[name])
        assert _read(stmt).usable, name  # the driver path was taken
        assert driver, name
        assert [tuple(r) for r in driver] == [tuple(r) for r in core], name
        assert [tuple(map(type, r)) for r in driver] == [tuple(map(type, r)) for r in core], name
        assert driver[0]._fields == core[0]._fields, name
    parties = select_rows(prepared(("test.driver_reads", "parties"), STATEMENTS["parties"]), {"case_id": case.id})
    assert any(p.phone for p in parties)  # decrypted, not the stored token
    assert all(not (p.phone or "").startswith("gAAAA") for p in parties)
    settings = dict(select_rows(prepared(("test.driver_reads", "settings"), STATEMENTS["settings"])))
    assert settings == {s.key: s.value for s in app_db.session.scalars(select(Setting))}


def test_reads_the_driver_cannot_take_go_through_core(driver):
    case = _a_case_with_parties_and_timeline()
    lists = prepared(("test.driver_reads", "expanding"), lambda: select(Case.id, Case.number)
                     .where(Case.id.in_(bindparam("ids", expanding=True))).order_by(Case.id))
    rows = select_rows(lists, {"ids": [case.id]})
    assert [tuple(r) for r in rows] == [(case.id, case.number)]
    assert not _read(lists).usable
    # a statement not kept by ``prepared`` is never compiled for the driver
    once = select(Case.id).where(Case.id == case.id)
    assert [tuple(r) for r in select_rows(once)] == [(case.id,)]
    assert all(key[0] != id(once) for key in _DRIVER_READS)


def test_driver_reads_are_seen_by_statement_listeners(app, driver):
    case = _a_case_with_parties_and_timeline()
    stmt = prepared(("test.driver_reads", "timeline"), STATEMENTS["timeline"], server_prepare=True)
    select_rows(stmt, {"case_id": case.id})
    with count_queries(app) as seen:
        select_rows(stmt, {"case_id": case.id})
        select_rows(stmt, {"case_id": case.id})
    assert len([sql for sql in seen if "FROM timeline_entry" in sql]) == 2


def test_a_failed_driver_read_is_sqlalchemys_error_and_is_not_committed(pg):
    stmt = prepared(("test.driver_reads", "by_id"), lambda: select(Case.id).where(Case.id == bindparam("id")),
                    server_prepare=True)
    app_db.session.rollback()
    select_rows(stmt, {"id": 1})
    with pytest.raises(exc.DBAPIError):
        select_rows(stmt, {"id": "not a number"})
    assert _read(stmt).usable
    # a failed statement (even a SELECT) leaves the transaction to the rollback
    assert end_read_only_transaction() is False
    app_db.session.rollback()
    assert [tuple(r) for r in select_rows(stmt, {"id": -1})] == []


def test_a_lost_connection_is_invalidated(pg, database_url):
    """On a connection of its own (the test's session shares one connection with the fixture)."""
    stmt = prepared(("test.driver_reads", "by_id"), lambda: select(Case.id).where(Case.id == bindparam("id")),
                    server_prepare=True)
    engine = app_db.make_engine(database_url)
    read = _DriverRead.compile(stmt, engine.dialect)
    assert read.usable
    try:
        with engine.connect() as conn:
            assert read.run(conn, {"id": -1}) == []
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as admin:
                assert admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(exc.DBAPIError) as raised:
                read.run(conn, {"id": 1})
            assert raised.value.connection_invalidated
            conn.rollback()
            assert read.run(conn, {"id": -1}) == []  # reconnected
    finally:
        engine.dispose()


def test_a_failed_sqlite_read_is_sqlalchemys_error(driver):
    if not is_sqlite():
        return  # PostgreSQL: the two tests above
    from sqlalchemy import String, cast
    stmt = prepared(("test.driver_reads", "json"), lambda: select(
        func.json_extract(cast(bindparam("doc"), String), "$.a").label("a")))
    assert [tuple(r) for r in select_rows(stmt, {"doc": '{"a": 1}'})] == [(1,)]
    assert _read(stmt).usable
    with pytest.raises(exc.DBAPIError, match="malformed JSON"):
        select_rows(stmt, {"doc": "not json"})
    assert [tuple(r) for r in select_rows(stmt, {"doc": '{"a": "二"}'})] == [("二",)]


def test_a_date_parameter_and_dates_back(driver):
    """A date given as a parameter is bound as the database stores it (SQLite: ISO text, by the
    type's bind processor) and dates come back as dates."""
    case = _a_case_with_parties_and_timeline()
    stmt = prepared(("test.driver_reads", "since"), lambda: select(Case.id, Case.registered_on)
                    .where(Case.registered_on >= bindparam("since", type_=Case.registered_on.type),
                           Case.id == bindparam("id")))
    driver_rows, core = _both_ways(stmt, {"since": case.registered_on, "id": case.id})
    assert [tuple(r) for r in driver_rows] == [tuple(r) for r in core] == [(case.id, case.registered_on)]
    assert _read(stmt).usable
    assert select_rows(stmt, {"since": case.registered_on.replace(year=case.registered_on.year + 1), "id": case.id}) == []
