"""Pooled PostgreSQL connections are checked at checkout without a round trip when they can be
(``app.db._check_connections_at_checkout``): a connection returned a moment ago with a quiet
socket is handed out as it is; one whose server has gone away is replaced before any
statement meets it; one idle longer than ``DB_PING_AFTER`` is pinged (PostgreSQL only)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from app import db as app_db


@pytest.fixture()
def make_pg_engine(database_url, monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool of the PostgreSQL engine")
    engines = []

    def make(ping_after: str):
        monkeypatch.setenv("DB_POOL_SIZE", "1")
        monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
        monkeypatch.setenv("DB_PING_AFTER", ping_after)
        engine = app_db.make_engine(database_url)
        pings = []
        real_ping = engine.dialect.do_ping
        engine.dialect.do_ping = lambda conn: (pings.append(1), real_ping(conn))[1]
        engines.append(engine)
        return engine, pings

    yield make
    for engine in engines:
        engine.dispose()


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT pg_backend_pid()"))


def _terminate(database_url: str, pid: int) -> None:
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def test_a_connection_just_returned_is_reused_without_a_ping(make_pg_engine):
    engine, pings = make_pg_engine("30")
    pids = {_backend_pid(engine) for _ in range(5)}
    assert len(pids) == 1  # the same pooled connection every time
    assert pings == []


def test_a_connection_idle_longer_than_the_limit_is_pinged(make_pg_engine):
    engine, pings = make_pg_engine("0")
    first = _backend_pid(engine)
    assert pings == []  # opened for that checkout: nothing to check
    assert _backend_pid(engine) == first
    assert _backend_pid(engine) == first
    assert len(pings) == 2  # each reuse, the limit being 0 s


def test_a_terminated_backend_is_replaced_before_a_statement_meets_it(make_pg_engine, database_url):
    engine, pings = make_pg_engine("30")
    first = _backend_pid(engine)
    _terminate(database_url, first)
    deadline = time.monotonic() + 5
    # the server's goodbye reaches the pooled connection's socket
    raw = engine.pool._pool.queue[0].dbapi_connection  # the one idle pooled connection
    while not app_db._socket_readable(raw) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app_db._socket_readable(raw)
    second = _backend_pid(engine)  # no error: the dead connection was replaced at checkout
    assert second != first
    assert len(pings) == 1  # the readable socket made it ping, and the ping failed


def test_without_the_check_the_terminated_backend_fails_the_statement(database_url):
    """What the check prevents (so the test above can fail): a plain pool hands out the dead
    connection."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        _terminate(database_url, first)
        time.sleep(0.2)
        with pytest.raises(Exception, match="terminat|closed|connection"):
            _backend_pid(engine)
    finally:
        engine.dispose()
