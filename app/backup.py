"""``flask backup PATH`` and ``flask restore PATH``.

SQLite: the online backup API copies a consistent snapshot while the app keeps serving;
restore copies the snapshot back page by page inside SQLite's own locking.
PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --clean --if-exists``.

Attachments live in files under ``UPLOAD_DIR``, not in the database.  ``flask backup PATH
--with-uploads`` also writes ``PATH.uploads.tar.gz`` (every file of ``UPLOAD_DIR``);
``flask restore PATH`` puts those files back when that archive sits beside the backup.  It is
opt-in so the nightly job's retention (``find … -name 'qingyuan-*.dump'``) stays as it is;
back up ``UPLOAD_DIR`` with it or by your own file backup.  The keys (``QY_DATA_KEYS``,
``QY_HASH_KEY``) are in neither: keep them apart from the backups.
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


def uploads_archive(path: Path) -> Path:
    """The uploads archive that goes with the database backup at ``path``."""
    return path.with_name(path.name + ".uploads.tar.gz")


def backup_uploads(path: Path) -> int:
    """Write every file of ``UPLOAD_DIR`` to ``uploads_archive(path)``; returns the file count."""
    import tarfile
    root = Path(current_app.config["UPLOAD_DIR"])
    count = 0
    with tarfile.open(uploads_archive(path), "w:gz") as tar:
        if root.is_dir():
            for file in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
                tar.add(file, arcname=str(file.relative_to(root)), recursive=False)
                count += 1
    return count


def restore_uploads(path: Path) -> int:
    """Put back the files of ``uploads_archive(path)`` (if there is one) into ``UPLOAD_DIR``;
    returns the file count.  Only plain files inside ``UPLOAD_DIR`` are extracted."""
    import tarfile
    archive = uploads_archive(path)
    if not archive.is_file():
        return 0
    root = Path(current_app.config["UPLOAD_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        tar.extractall(root, members=members, filter="data")  # the "data" filter refuses unsafe paths
    return len(members)


def _pg_env(url: str) -> dict:
    import os
    env = dict(os.environ)
    password = make_url(url).password
    if password:
        env["PGPASSWORD"] = password
    return env


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--with-uploads", is_flag=True, help="同时把附件目录打包为 PATH.uploads.tar.gz")
@with_appcontext
def backup_command(path, with_uploads):
    """Back up the database to PATH (SQLite online backup, or pg_dump)."""
    backup_database(Path(path))
    click.echo(f"已备份到 {path}")
    if with_uploads:
        n = backup_uploads(Path(path))
        click.echo(f"附件 {n} 个已备份到 {uploads_archive(Path(path))}")


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
    if uploads_archive(Path(path)).is_file():
        n = restore_uploads(Path(path))
        click.echo(f"附件 {n} 个已从 {uploads_archive(Path(path))} 恢复")


def register(app) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
