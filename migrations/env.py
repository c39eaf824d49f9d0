"""Alembic environment: imports the metadata with no Flask app (sourcehut style)."""
from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

import app.models  # noqa: F401  (every model on the metadata)
from app.db import Base, autogenerate_include_name, make_engine

config = context.config
if config.config_file_name and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    return (config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
            or "sqlite:///instance/qingyuan.db")


def _no_empty_migrations(context_, revision, directives):
    """Autogenerate writes no file when nothing changed."""
    if getattr(config.cmd_opts, "autogenerate", False) or config.attributes.get("autogenerate"):
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True, include_name=autogenerate_include_name,
                      process_revision_directives=_no_empty_migrations)
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
