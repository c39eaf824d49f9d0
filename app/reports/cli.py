"""``flask report monthly`` and ``flask report period`` (PRODUCT.md §10)."""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from app.orgs.services import find_by_code
from app.reports.params import ReportParamError, parse_month, parse_period_dates
from app.reports.queries import Period, monthly_report, period_report

report_cli = AppGroup("report", help="统计报表（§6 口径）")


def _org(code: str):
    org = find_by_code(code)
    if org is None or org.level not in ("county", "township", "village"):
        raise click.ClickException(f"单位代码 {code} 不存在，或不是县、乡镇、村")
    return org


def _emit(report: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=1))
        return
    from app.reports.text import render_text
    click.echo(render_text(report))


@report_cli.command("monthly")
@click.option("--org", "org_code", required=True)
@click.option("--month", required=True, help="YYYY-MM")
@click.option("--json", "as_json", is_flag=True)
def monthly(org_code, month, as_json):
    """The monthly report (本月 and 本年累计) of an org unit."""
    try:
        year, mon = parse_month(month)
    except ReportParamError as exc:
        raise click.ClickException(str(exc))
    _emit(monthly_report(_org(org_code), year, mon), as_json)


@report_cli.command("period")
@click.option("--org", "org_code", required=True)
@click.option("--from", "date_from", required=True, help="YYYY-MM-DD")
@click.option("--to", "date_to", required=True, help="YYYY-MM-DD")
@click.option("--json", "as_json", is_flag=True)
def period(org_code, date_from, date_to, as_json):
    """The report of an org unit for any inclusive period."""
    try:
        start, end = parse_period_dates(date_from, date_to)
    except ReportParamError as exc:
        raise click.ClickException(str(exc))
    _emit(period_report(_org(org_code), Period(start, end)), as_json)


@report_cli.command("rebuild-summary")
@click.option("--if-needed", is_flag=True,
              help="只在需要时重建：从未建立（如迁移后）则全部重算，否则只重算被标记的月份，什么都没标记就什么都不做")
def rebuild_summary_command(if_needed):
    """Recompute the figure summary from every case (after raw-SQL writes or a restore).

    ``--if-needed`` (run after ``flask db upgrade`` by ``make run`` and the deploy's migrate
    step): a migration that changes the summary's columns empties it, and the first request
    would otherwise rebuild it (seconds at 1,000,000 cases) while readers wait; with nothing to
    do it costs two one-row reads."""
    import time

    from app.db import session
    from app.reports.summary import rebuild_summary, refresh_summary
    t0 = time.perf_counter()
    if if_needed:
        keys = refresh_summary()
        session.commit()
        click.echo(f"统计汇总表已更新（{keys:,} 处待重算），用时 {time.perf_counter() - t0:.1f} 秒" if keys
                   else "统计汇总表无需更新")
        return
    n = rebuild_summary()
    session.commit()
    click.echo(f"统计汇总表已重建：{n:,} 行，用时 {time.perf_counter() - t0:.1f} 秒")


def register(app) -> None:
    app.cli.add_command(report_cli)
