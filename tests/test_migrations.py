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
