"""``flask ledger import`` and ``flask ledger export`` (PRODUCT.md §10)."""
from __future__ import annotations

from datetime import date

import click
from flask.cli import AppGroup

from app.db import session

ledger_cli = AppGroup("ledger", help="台账导入导出（§7 格式）")


@ledger_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="只校验，不写入")
def import_cmd(path, dry_run):
    """Import a ledger workbook; nothing is written if any cell is wrong."""
    import os
    from app.ledger.importer import import_ledger
    with open(path, "rb") as fh:
        report = import_ledger(fh, os.path.basename(path), dry_run=dry_run)
    if report.problems:
        session.rollback()
        for problem in report.problems:
            click.echo(problem, err=True)
        click.echo(report.summary(), err=True)
        raise SystemExit(1)
    if dry_run:
        session.rollback()
    else:
        session.commit()
    click.echo(report.summary())


@ledger_cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--org", "org_code", required=True)
@click.option("--from", "date_from", default=None, help="YYYY-MM-DD")
@click.option("--to", "date_to", default=None, help="YYYY-MM-DD")
@click.option("--unmasked", is_flag=True, help="不遮蔽电话号码（记入审计日志）")
def export_cmd(path, org_code, date_from, date_to, unmasked):
    """Export the ledger of an org unit for a period."""
    from app.ledger.exporter import export_ledger
    from app.orgs.services import find_by_code
    org = find_by_code(org_code)
    if org is None or org.level not in ("county", "township", "village"):
        raise click.ClickException(f"单位代码 {org_code} 不存在，或不是县、乡镇、村")
    try:
        d_from = date.fromisoformat(date_from) if date_from else None
        d_to = date.fromisoformat(date_to) if date_to else None
    except ValueError:
        raise click.ClickException("日期格式应为 YYYY-MM-DD")
    with open(path, "wb") as fh:
        count = export_ledger(fh, org, d_from, d_to, unmasked=unmasked)
    if unmasked:
        from app.audit.services import audit
        audit("ledger.export_unmasked", "org_unit", org.id,
              detail={"file": path, "from": date_from, "to": date_to, "cases": count})
        session.commit()
    click.echo(f"已导出 {count} 件纠纷到 {path}")


def register(app) -> None:
    app.cli.add_command(ledger_cli)
