"""``flask backup PATH`` and ``flask restore PATH``.

SQLite: the online backup API copies a consistent snapshot while the app keeps serving;
restore copies the snapshot back page by page inside SQLite's own locking.
PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --clean --if-exists``.
"""
from __future__ import annotations

import shutil
import sqlite3
import subprocess  # nosec B404 # runs pg_dump/pg_restore with an argument list (no shell)
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import make_url

from app.db import get_engine, session


def _pg_args(url: str) -> list[str]:
    u = make_url(url)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432)]
    if u.username:
        args += ["-U", u.username]
    return args + ["-d", u.database]


def backup_database(path: Path) -> None:
    """Write a consistent copy of the configured database to ``path``."""
    url = current_app.config["DATABASE_URL"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        raw = get_engine(current_app).raw_connection()
        try:
            dest = sqlite3.connect(str(path))
            with dest:
                raw.driver_connection.backup(dest)
            dest.close()
        finally:
            raw.close()
        return
    if not shutil.which("pg_dump"):
        raise click.ClickException("找不到 pg_dump，请安装 PostgreSQL 客户端")
    env = _pg_env(url)
    # an argument list without a shell; pg_dump is found on PATH (checked above)
    subprocess.run(["pg_dump", "--format=custom", "--no-owner", "-f", str(path), *_pg_args(url)],  # nosec B603 B607
                   check=True, env=env)


def restore_database(path: Path) -> None:
    """Replace the configured database's contents with the backup at ``path``."""
    url = current_app.config["DATABASE_URL"]
    session.remove()
    engine = get_engine(current_app)
    if url.startswith("sqlite"):
        src = sqlite3.connect(str(path))
        try:
            src.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise click.ClickException(f"备份文件无法读取：{exc}")
        engine.dispose()
        raw = engine.raw_connection()
        try:
            with src:
                src.backup(raw.driver_connection)
        finally:
            raw.close()
            src.close()
        engine.dispose()
        return
    engine.dispose()
    # an argument list without a shell; pg_restore from the PostgreSQL client on PATH
    subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                    *_pg_args(url), str(path)], check=True, env=_pg_env(url))  # nosec B603 B607


def _pg_env(url: str) -> dict:
    import os
    env = dict(os.environ)
    password = make_url(url).password
    if password:
        env["PGPASSWORD"] = password
    return env


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(path):
    """Back up the database to PATH (SQLite online backup, or pg_dump)."""
    backup_database(Path(path))
    click.echo(f"已备份到 {path}")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="不再确认")
@with_appcontext
def restore_command(path, yes):
    """Restore the database from PATH, replacing what is there."""
    if not yes:
        click.confirm("恢复将覆盖当前数据库的全部数据，确定继续？", abort=True)
    restore_database(Path(path))
    click.echo(f"已从 {path} 恢复")


def register(app) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
