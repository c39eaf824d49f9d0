"""``flask orgs import FILE.csv`` (PRODUCT.md §10)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from app.db import session
from app.orgs.services import OrgImportError, import_orgs_csv

orgs_cli = AppGroup("orgs", help="组织机构")


@orgs_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_command(path):
    """Import the org tree from a UTF-8 CSV (代码,名称,层级,上级代码); all or nothing."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise click.ClickException("文件不是 UTF-8 编码")
    try:
        result = import_orgs_csv(text)
    except OrgImportError as exc:
        session.rollback()
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.ClickException(f"共 {len(exc.problems)} 处错误，未写入任何数据")
    session.commit()
    click.echo(f"导入完成：新增 {result.created} 个，更新 {result.updated} 个")


def register(app) -> None:
    app.cli.add_command(orgs_cli)
