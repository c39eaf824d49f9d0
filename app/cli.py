"""Top-level CLI commands: ``flask db …`` (plain Alembic) and ``flask seed-demo``."""
from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from app.db import session

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

db_cli = AppGroup("db", help="数据库迁移（Alembic）")


def alembic_config(url: str | None = None) -> AlembicConfig:
    """An Alembic config for ``migrations/`` pointed at ``url`` (default: the app's database)."""
    cfg = AlembicConfig(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", (url or current_app.config["DATABASE_URL"]).replace("%", "%%"))
    return cfg


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade(revision):
    """Migrate the configured database to REVISION (default: the newest)."""
    command.upgrade(alembic_config(), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade(revision):
    command.downgrade(alembic_config(), revision)


@db_cli.command("current")
def current():
    command.current(alembic_config(), verbose=True)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate/--empty", default=True)
def revision(message, autogenerate):
    """Write a new migration (read and edit it before committing)."""
    command.revision(alembic_config(), message=message, autogenerate=autogenerate)


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="只在数据库没有任何单位时加载")
@click.option("--no-cases", is_flag=True, help="不导入示范台账")
@with_appcontext
def seed_demo_command(if_empty, no_cases):
    """Load the demo county (idempotent)."""
    from app.demo.seed import DEMO_PASSWORD, DEMO_USERS, seed_demo
    from app.orgs.models import OrgUnit
    if if_empty and session.scalar(select(func.count(OrgUnit.id))):
        click.echo("数据库已有数据，跳过示范数据。")
        return
    seed_demo(with_cases=not no_cases, echo=click.echo)
    session.commit()
    click.echo("示范账号（密码均为 %s）：" % DEMO_PASSWORD)
    for username, display_name, role, _ in DEMO_USERS:
        click.echo(f"  {username:20s} {display_name}")


def register(app) -> None:
    from app import backup, benchgen
    app.cli.add_command(db_cli)
    app.cli.add_command(seed_demo_command)
    backup.register(app)
    benchgen.register(app)
    from app import crypto_cli
    crypto_cli.register(app)
