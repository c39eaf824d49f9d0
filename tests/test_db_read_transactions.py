"""A request's transaction that wrote nothing ends with COMMIT on PostgreSQL
(``app.db.end_read_only_transaction``), so psycopg keeps its prepared statements across
requests; one that wrote, or has changes pending, is left to the rollback."""
from __future__ import annotations

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from app import db as app_db
from app.db import end_read_only_transaction
from app.settings.models import Setting

PROBE = "SELECT CAST(:n AS integer) AS qy_prepared_probe"
KEY = "qy.test.read_transaction_probe"


def _requests(engine, end, times: int = 7) -> int:
    """Run the probe statement once per "request" (a session each, ended by ``end``) ``times``
    times; the number of the probe's statements PostgreSQL holds prepared afterwards."""
    for n in range(times):
        with Session(engine) as s:
            assert s.execute(text(PROBE), {"n": n}).scalar() == n
            end(s)
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT count(*) FROM pg_prepared_statements WHERE strpos(statement, 'qy_prepared_probe') > 0").scalar()


def test_a_read_only_transaction_ends_with_commit_and_keeps_prepared_statements(app):
    engine = app_db.get_engine(app)
    with Session(engine) as s:
        s.execute(select(1))
        committed = end_read_only_transaction(s)
        assert committed == (engine.dialect.name == "postgresql")
        assert not s.in_transaction() if committed else True
    if engine.dialect.name != "postgresql":
        return  # SQLite: nothing to do
    engine.dispose()  # one fresh connection, reused by every "request" below
    # ended with ROLLBACK (closing the session), psycopg forgets the statement every time;
    # ended with COMMIT, it reaches psycopg's prepare_threshold (5) and stays prepared
    assert _requests(engine, lambda s: s.rollback()) == 0
    assert _requests(engine, end_read_only_transaction) == 1


def test_a_transaction_that_wrote_or_has_pending_changes_is_not_committed(app):
    engine = app_db.get_engine(app)
    try:
        with Session(engine) as s:
            s.execute(insert(Setting.__table__).values(key=KEY, value={"probe": 1}))  # flushed to the database
            assert end_read_only_transaction(s) is False and s.in_transaction()
            s.rollback()
        with Session(engine) as s:
            s.execute(select(1))
            s.add(Setting(key=KEY, value={"probe": 2}))  # pending, never flushed
            assert end_read_only_transaction(s) is False
            assert s.new  # neither flushed nor committed
            s.rollback()
        with Session(engine) as s:
            assert s.scalar(select(Setting).where(Setting.key == KEY)) is None
    finally:
        with engine.begin() as conn:  # should the code under test have committed, leave no trace
            conn.execute(delete(Setting.__table__).where(Setting.__table__.c.key == KEY))
