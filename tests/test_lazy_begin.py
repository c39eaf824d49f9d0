"""PostgreSQL transactions are opened only when a statement needs one (``app.db``'s lazy
BEGIN): a request that only reads sends neither BEGIN nor COMMIT, and everything else keeps
its transaction — writes stay invisible to others until the commit and are undone by a
rollback, row locks and transaction-scoped advisory locks are held to the end, savepoints
work, a COPY on the driver connection is part of the transaction, a connection asked for
autocommit explicitly (VACUUM) gets no BEGIN, and a server-side cursor gets its transaction."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from app import db as app_db
from app.db import needs_transaction
from app.settings.models import Setting

KEY = "qy.test.lazy_begin"
IDLE, INTRANS = 0, 2  # psycopg.pq.TransactionStatus


@pytest.mark.parametrize("statement", [
    "SELECT 1", "  select id from case_search where case_id = 1", "SELECT x.for_update FROM t AS x",
    "SELECT dispute_case.id FROM dispute_case WHERE dispute_case.number = %(number)s::VARCHAR",
])
def test_plain_reads_need_no_transaction(statement):
    assert needs_transaction(statement) is False


@pytest.mark.parametrize("statement", [
    "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t", "SAVEPOINT sa_savepoint_1",
    "SET LOCAL statement_timeout = 100", "WITH gone AS (DELETE FROM t RETURNING 1) SELECT count(*) FROM gone",
    "CREATE TEMPORARY TABLE x (n int)", "COPY t FROM STDIN",
    "SELECT dispute_case.version FROM dispute_case WHERE dispute_case.id = %(id)s FOR UPDATE",
    "SELECT id FROM t FOR NO KEY UPDATE", "SELECT id FROM t FOR SHARE", "select id from t for key share",
    "SELECT pg_advisory_xact_lock(%(k)s)", "SELECT set_config('a.b', 'c', true)",
    "SELECT nextval(pg_get_serial_sequence('party', 'id')) FROM generate_series(1, 3)",
])
def test_everything_else_needs_a_transaction(statement):
    assert needs_transaction(statement) is True


@pytest.fixture
def pg_engine(app):
    engine = app_db.get_engine(app)
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's transactions only (SQLite's BEGIN is its own, see app.db)")
    engine.dispose()
    yield engine
    with engine.begin() as conn:  # should a test have committed by mistake, leave no trace
        conn.execute(delete(Setting.__table__).where(Setting.__table__.c.key.like(KEY + "%")))
    engine.dispose()


def _driver(s: Session):
    return s.connection().connection.driver_connection


def _visible_elsewhere(engine, key: str) -> bool:
    with engine.connect() as other:
        return other.scalar(select(Setting.key).where(Setting.key == key)) is not None


def test_a_read_only_session_opens_no_transaction(pg_engine):
    with Session(pg_engine) as s:
        assert s.scalar(select(text("1"))) == 1
        driver = _driver(s)
        assert driver.autocommit and driver.pgconn.transaction_status == IDLE
        assert app_db.end_read_only_transaction(s) is True  # nothing sent: no transaction to end


def test_writes_run_in_a_transaction_a_rollback_undoes(pg_engine):
    with Session(pg_engine) as s:
        s.execute(select(Setting.key).limit(1))  # a read first, outside any transaction
        s.execute(insert(Setting.__table__).values(key=KEY + ".a", value={"n": 1}))
        assert _driver(s).pgconn.transaction_status == INTRANS
        assert not _visible_elsewhere(pg_engine, KEY + ".a")  # not committed by itself
        assert s.scalar(select(Setting.key).where(Setting.key == KEY + ".a")) == KEY + ".a"  # seen inside
        s.rollback()
    assert not _visible_elsewhere(pg_engine, KEY + ".a")
    with Session(pg_engine) as s:
        s.add(Setting(key=KEY + ".b", value={"n": 2}))
        s.commit()
    assert _visible_elsewhere(pg_engine, KEY + ".b")


def test_a_failed_write_takes_the_earlier_ones_with_it(pg_engine):
    from sqlalchemy.exc import IntegrityError
    with Session(pg_engine) as s:
        s.execute(insert(Setting.__table__).values(key=KEY + ".c", value={"n": 1}))
        with pytest.raises(IntegrityError):
            s.execute(insert(Setting.__table__).values(key=KEY + ".c", value={"n": 2}))
        s.rollback()
    assert not _visible_elsewhere(pg_engine, KEY + ".c")


def test_a_savepoint_rolled_back_inside_a_committed_transaction(pg_engine):
    with Session(pg_engine) as s:
        s.add(Setting(key=KEY + ".d", value={"n": 1}))
        s.flush()
        with s.begin_nested() as nested:
            s.add(Setting(key=KEY + ".e", value={"n": 2}))
            s.flush()
            nested.rollback()
        s.commit()
    assert _visible_elsewhere(pg_engine, KEY + ".d") and not _visible_elsewhere(pg_engine, KEY + ".e")


def test_a_row_lock_is_held_to_the_end_of_the_transaction(pg_engine):
    from sqlalchemy.exc import OperationalError
    with Session(pg_engine) as s:
        s.add(Setting(key=KEY + ".f", value={"n": 1}))
        s.commit()
    with Session(pg_engine) as s:
        assert s.scalar(select(Setting.key).where(Setting.key == KEY + ".f").with_for_update()) == KEY + ".f"
        assert _driver(s).pgconn.transaction_status == INTRANS
        with pg_engine.connect() as other:
            with pytest.raises(OperationalError, match="lock"):
                other.execute(select(Setting.key).where(Setting.key == KEY + ".f").with_for_update(nowait=True))
            other.rollback()
        s.rollback()
    with pg_engine.connect() as other:  # released with the transaction
        assert other.scalar(select(Setting.key).where(Setting.key == KEY + ".f").with_for_update(nowait=True))
        other.rollback()


def test_a_transaction_scoped_advisory_lock_is_held_to_its_end(pg_engine):
    with Session(pg_engine) as s:
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x51594E_4C42})
        with pg_engine.connect() as other:
            assert other.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": 0x51594E_4C42}) is False
            other.rollback()
        s.commit()
    with pg_engine.connect() as other:
        assert other.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": 0x51594E_4C42}) is True
        other.rollback()


def test_an_explicit_autocommit_connection_gets_no_begin_and_the_next_checkout_is_lazy_again(pg_engine):
    with pg_engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM setting")  # refused inside a transaction block
    for _ in range(2):  # the same pooled connection, its isolation level reset by SQLAlchemy
        with Session(pg_engine) as s:
            s.execute(select(Setting.key).limit(1))
            assert _driver(s).autocommit and _driver(s).pgconn.transaction_status == IDLE


def test_a_server_side_cursor_gets_its_transaction(pg_engine):
    with pg_engine.connect() as conn:
        result = conn.execution_options(stream_results=True, max_row_buffer=2).execute(
            text("SELECT n FROM generate_series(1, 5) AS n"))
        assert [n for (n,) in result] == [1, 2, 3, 4, 5]
        conn.rollback()


def test_a_copy_on_the_driver_connection_is_part_of_the_transaction(pg_engine):
    from app.bulk import bulk_insert
    with Session(pg_engine) as s:
        app_db.session.registry.set(s)  # bulk_insert writes on the scoped session's connection
        try:
            s.execute(select(Setting.key).limit(1))  # no transaction yet
            bulk_insert(Setting.__table__, [{"key": KEY + ".g", "value": {"n": 1}}])
            assert _driver(s).pgconn.transaction_status == INTRANS
            assert not _visible_elsewhere(pg_engine, KEY + ".g")
            s.rollback()
        finally:
            app_db.session.registry.clear()
    assert not _visible_elsewhere(pg_engine, KEY + ".g")
