"""Migrations: ``upgrade head`` works on an empty SQLite and an empty PostgreSQL database, and
the models agree with the migrations (autogenerate finds no difference).

The PostgreSQL half uses ``TEST_DATABASE_URL`` (or 127.0.0.1:5432) and creates a fresh database
like tests/conftest.py; it is skipped only when no server answers and ``REQUIRE_POSTGRES`` is unset.
"""
from __future__ import annotations

import os

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

import app.models  # noqa: F401  (every model on the metadata)
from app.cli import alembic_config
from app.db import Base, autogenerate_include_name, make_engine
from tests.conftest import _create_pg_database, _drop_pg_database

PG_BASE_URL = os.environ.get("TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _pg_reachable(url: str) -> bool:
    import psycopg
    from sqlalchemy.engine import make_url
    u = make_url(url)
    try:
        psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                        dbname=u.database, connect_timeout=3).close()
    except Exception:
        return False
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """The URL of an empty database of each kind, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    if not _pg_reachable(PG_BASE_URL):
        if os.environ.get("REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL required (REQUIRE_POSTGRES) but {PG_BASE_URL} does not answer")
        pytest.skip("no PostgreSQL reachable")
    url = _create_pg_database(PG_BASE_URL)
    yield url
    _drop_pg_database(url, PG_BASE_URL)


def _upgrade(url: str) -> None:
    cfg = alembic_config(url)
    cfg.attributes["configure_logging"] = False
    command.upgrade(cfg, "head")


def test_upgrade_empty_database_to_head(empty_database):
    _upgrade(empty_database)
    engine = make_engine(empty_database)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            tables = set(inspect(conn).get_table_names())
        head = ScriptDirectory.from_config(alembic_config(empty_database)).get_current_head()
        assert current == head
        assert {"org_unit", "user_account", "audit_log", "setting"} <= tables
    finally:
        engine.dispose()


def test_models_and_migrations_agree(empty_database):
    """Autogenerate against a database at head finds nothing to do.  When this fails after a
    model change, write the migration: ``flask db revision -m "..."`` (then read and edit it)."""
    _upgrade(empty_database)
    engine = make_engine(empty_database)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                       "include_name": autogenerate_include_name})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], "models and migrations differ:\n" + "\n".join(map(str, diff))


def test_upgrade_encrypts_personal_data_stored_in_plain_text(tmp_path):
    """A database that held parties before encryption existed comes out of ``upgrade head`` with
    every ID number and phone encrypted and its lookup hash filled, and the search index rebuilt."""
    from sqlalchemy import text

    from app.cases.search import SQLITE_TRIGGERS
    from app.crypto import decrypt, is_token, lookup_hash

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = alembic_config(url)
    cfg.attributes["configure_logging"] = False
    command.upgrade(cfg, "beb4f87ebb0f")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO org_unit (id, code, name, level, active, created_at) VALUES "
                              "(1, '9001', '甲县', 'county', 1, '2026-01-01'), "
                              "(2, '9002', '乙镇', 'township', 1, '2026-01-01'), "
                              "(3, '9003', '丙村', 'village', 1, '2026-01-01')"))
            conn.execute(text(
                "INSERT INTO dispute_case (id, number, source, dispute_type, type_category, county_id, "
                "township_id, village_id, handling_level, status, summary, registered_on, registered_at, "
                "deadline_extended, recurrence_count, paused_days, version, updated_at) VALUES "
                "(7, 'QH-2026-000007', '群众来访', '邻里纠纷', '邻里纠纷', 1, 2, 3, 'village', 'pending_triage', "
                "'排水沟堵塞', '2026-01-05', '2026-01-05 09:00:00', 0, 0, 0, 1, '2026-01-05 09:00:00')"))
            conn.execute(text("INSERT INTO party (id, case_id, position, kind, name, role, id_number, phone) "
                              "VALUES (1, 7, 0, 'person', '王某', 'applicant', '11010519491231002X', '13800138000')"))
            conn.execute(text("INSERT INTO party (id, case_id, position, kind, name, role) "
                              "VALUES (2, 7, 1, 'person', '李某', 'respondent')"))
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, id_number, phone, id_number_hash, phone_hash FROM party "
                                     "ORDER BY id")).all()
            found = conn.execute(text("SELECT rowid FROM case_search WHERE case_search MATCH '排水沟'")).all()
            villages = conn.execute(text("SELECT DISTINCT village_id FROM party")).scalars().all()
            triggers = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())
    finally:
        engine.dispose()
    (_, idn, phone, idn_hash, phone_hash), (_, none_id, none_phone, none_hash, _) = rows
    assert is_token(idn) and is_token(phone)
    assert decrypt(idn) == "11010519491231002X" and decrypt(phone) == "13800138000"
    assert idn_hash == lookup_hash("id", "11010519491231002X")
    assert phone_hash == lookup_hash("phone", "13800138000")
    assert none_id is None and none_phone is None and none_hash is None
    assert found == [(7,)]
    # the parties carry their case's village (e5c1a7b3d9f2), and rebuilding ``party`` for it
    # kept the search triggers
    assert villages == [3]
    assert triggers == set(SQLITE_TRIGGERS)
