"""PostgreSQL: a request's transaction that ran only SELECTs ends with COMMIT
(``app.db.end_read_only_transaction``), so psycopg keeps the statements marked
``server_prepare`` prepared across requests; unmarked statements are never prepared (their
plans may depend on the values: PostgreSQL's generic plan for the short name search was 20×
slower); a transaction that wrote, or has changes pending, is left to the rollback."""
from __future__ import annotations

import pytest
from sqlalchemy import bindparam, delete, insert, select, text
from sqlalchemy.orm import Session

from app import db as app_db
from app.db import SERVER_PREPARE, end_read_only_transaction, prepared
from app.settings.models import Setting

KEY = "qy.test.read_transaction_probe"


def _probe(marker: str, server_prepare: bool):
    stmt = text(f"SELECT CAST(:n AS integer) AS {marker}")
    return stmt.execution_options(**{SERVER_PREPARE: True}) if server_prepare else stmt


def _requests(engine, stmt, end, times: int = 7) -> None:
    """Run ``stmt`` once per "request" (a session each, ended by ``end``) ``times`` times."""
    for n in range(times):
        with Session(engine) as s:
            assert s.execute(stmt, {"n": n}).scalar() == n
            end(s)


def _prepared_count(engine, marker: str) -> int:
    """How many statements mentioning ``marker`` the pool's one connection holds prepared."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            f"SELECT count(*) FROM pg_prepared_statements WHERE strpos(statement, '{marker}') > 0").scalar()


@pytest.fixture
def pg_engine(app):
    """The PostgreSQL engine with one fresh connection; on SQLite (whose statements stay cached
    per connection anyway) the function commits nothing, and the tests end there."""
    engine = app_db.get_engine(app)
    if engine.dialect.name != "postgresql":
        with Session(engine) as s:
            s.execute(select(1))
            assert end_read_only_transaction(s) is False and s.in_transaction()
        yield None
        return
    engine.dispose()  # one fresh connection, reused by every "request" below
    yield engine
    engine.dispose()


def test_a_marked_statement_stays_prepared_when_read_only_requests_end_with_commit(pg_engine):
    if pg_engine is None:
        return
    marked = _probe("qy_probe_marked", server_prepare=True)
    _requests(pg_engine, marked, end_read_only_transaction)
    assert _prepared_count(pg_engine, "qy_probe_marked") == 1
    # a read-only request opened no transaction (``app.db``'s lazy BEGIN): its rollback sends
    # nothing, and the statement stays prepared
    _requests(pg_engine, marked, lambda s: s.rollback(), times=1)
    assert _prepared_count(pg_engine, "qy_probe_marked") == 1
    # a transaction that wrote and ended with ROLLBACK: psycopg deallocates everything it prepared

    def write_then_roll_back(s):
        s.execute(text("CREATE TEMPORARY TABLE qy_probe_scratch (n integer) ON COMMIT DROP"))
        s.rollback()
    _requests(pg_engine, marked, write_then_roll_back, times=1)
    assert _prepared_count(pg_engine, "qy_probe_marked") == 0


def test_an_unmarked_statement_is_never_prepared(pg_engine):
    if pg_engine is None:
        return
    _requests(pg_engine, _probe("qy_probe_plain", server_prepare=False), end_read_only_transaction, times=12)
    assert _prepared_count(pg_engine, "qy_probe_plain") == 0


def test_prepared_marks_the_statement_only_when_asked(pg_engine):
    plain = prepared(("test", "plain"), lambda: select(Setting).where(Setting.key == bindparam("k")))
    marked = prepared(("test", "marked"), lambda: select(Setting).where(Setting.key == bindparam("k")),
                      server_prepare=True)
    assert not plain.get_execution_options().get(SERVER_PREPARE)
    assert marked.get_execution_options()[SERVER_PREPARE] is True
    if pg_engine is None:
        return
    with Session(pg_engine) as s:
        assert s.scalars(marked, {"k": "nothing"}).all() == []
        assert end_read_only_transaction(s) is True


def test_a_transaction_that_wrote_or_has_pending_changes_is_not_committed(pg_engine):
    if pg_engine is None:
        return
    try:
        with Session(pg_engine) as s:
            s.execute(insert(Setting.__table__).values(key=KEY, value={"probe": 1}))  # flushed to the database
            assert end_read_only_transaction(s) is False and s.in_transaction()
            s.rollback()
        with Session(pg_engine) as s:
            s.execute(select(1))
            s.add(Setting(key=KEY, value={"probe": 2}))  # pending, never flushed
            assert end_read_only_transaction(s) is False
            assert s.new  # neither flushed nor committed
            s.rollback()
        with Session(pg_engine) as s:
            # a data-modifying WITH is not a plain SELECT
            s.execute(text("WITH gone AS (DELETE FROM setting WHERE key = :k RETURNING key) SELECT count(*) FROM gone"),
                      {"k": KEY})
            assert end_read_only_transaction(s) is False
            s.rollback()
        with Session(pg_engine) as s:
            assert s.scalar(select(Setting).where(Setting.key == KEY)) is None
    finally:
        with pg_engine.begin() as conn:  # should the code under test have committed, leave no trace
            conn.execute(delete(Setting.__table__).where(Setting.__table__.c.key == KEY))


def test_a_read_request_ends_its_transaction_with_commit(app, pg_engine, monkeypatch):
    """The request's teardown commits a transaction of SELECTs (with a client whose requests
    each get their own session, as in production, unlike the suite's shared-session client)."""
    if pg_engine is None:
        return
    import re

    from flask.testing import FlaskClient

    from tests.conftest import DEMO_PASSWORD
    ended: list[bool] = []
    real = app_db.end_read_only_transaction
    monkeypatch.setattr(app_db, "end_read_only_transaction", lambda sess=None: ended.append(real(sess)) or ended[-1])
    client = FlaskClient(app, app.response_class, use_cookies=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": "county_supervisor", "password": DEMO_PASSWORD,
                                       "csrf_token": token}).status_code == 302
    ended.clear()
    assert client.get("/cases/").status_code == 200
    assert ended == [True]


def test_a_transaction_with_a_failed_statement_is_not_committed(pg_engine):
    if pg_engine is None:
        return
    from sqlalchemy.exc import DBAPIError
    with Session(pg_engine) as s:
        with pytest.raises(DBAPIError):
            s.execute(text("SELECT 1 / 0"))
        assert end_read_only_transaction(s) is False
        s.rollback()
