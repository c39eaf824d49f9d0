"""Report pages (PRODUCT.md §6): the monthly report, any period, the drill-down behind every
figure, the 12-month trend (JSON for the charts), the official Excel 月报表 and the leaders'
dashboard.  Figures come from ``app.reports.queries``; every drill-down list goes through
``scope_cases`` with the same predicate as its figure."""
from __future__ import annotations

import re
from datetime import date
from io import BytesIO
from typing import NamedTuple
from urllib.parse import quote, urlencode

from flask import Blueprint, abort, jsonify, render_template, request, send_file, url_for
from markupsafe import Markup
from flask_babel import get_locale, gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from app.cases import vocab
from app.cases.models import Case
from app.cases.queries import org_in_jurisdiction, scope_cases
from app.db import session
from app.errors import PermissionDenied, ValidationFailed
from app.orgs.models import OrgUnit
from app.orgs.services import find_by_code
from app.reception.models import ReceptionEntry
from app.reports import services
from app.reports.params import ReportParamError, parse_month, parse_period_dates
from app.reports.queries import (FIGURE_LABELS, Period, drilldown_clause, figures, figures_and_counts, backlog_part,
                                 month_period, org_clause, rate)
from app.templating import today_local

bp = Blueprint("reports", __name__, url_prefix="/reports")

PAGE_SIZE = 50
RECEPTION_FIGURES = {"visitors": "接待人次", "direct_answers": "直接答复数"}


@bp.context_processor
def _helpers():
    # One url_for for the drill-down path, then each figure's query string by hand: a report
    # page links some 220 figures, and url_for costs ~30 µs each.  The same encoding as
    # Werkzeug's (quote with its safe characters), so the links are the ones url_for builds.
    base = url_for("reports.cases")

    def fig_url(org: OrgUnit, p: Period, figure: str, extra: dict | None = None) -> str:
        args = {"org": org.code, "figure": figure, "from": p.start.isoformat(), "to": p.end.isoformat(),
                **(extra or {})}
        return base + "?" + urlencode(args, quote_via=quote, safe=_URL_SAFE)
    return {"fig_url": fig_url}


_URL_SAFE = "!$'()*,/:;?@"


def _require(capability: str) -> None:
    if not current_user.is_authenticated or not current_user.can(capability):
        abort(403)


def _org() -> OrgUnit:
    """The ``org`` query parameter (default: the user's own unit), within the jurisdiction."""
    _require("reports.view")
    code = (request.args.get("org") or "").strip()
    if not code:
        org = services.default_org(current_user)
        if org is None:
            abort(403)
        return org
    org = find_by_code(code)
    if org is None or org.level not in ("county", "township", "village"):
        raise ValidationFailed(errors={"org": _("单位代码 \"%(code)s\" 不存在，或不是县、乡镇、村", code=code)})
    if not org_in_jurisdiction(current_user, org):
        raise PermissionDenied(_("该单位不在您的管辖范围内，不能查看其报表。"))
    return org


def _bad(exc: ReportParamError):
    raise ValidationFailed(errors={exc.field or "period": str(exc)})


def _month() -> tuple[int, int]:
    value = request.args.get("month")
    if not value:
        return services.last_month(today_local())
    try:
        return parse_month(value)
    except ReportParamError as exc:
        _bad(exc)


def _period_from_args() -> tuple[Period, str]:
    """A period from ``quarter=YYYY-Qn``, ``year=YYYY`` or ``from``/``to`` (default: this quarter)."""
    today = today_local()
    quarter, year = request.args.get("quarter"), request.args.get("year")
    if request.args.get("from") or request.args.get("to"):
        try:
            start, end = parse_period_dates(request.args.get("from"), request.args.get("to"))
        except ReportParamError as exc:
            _bad(exc)
        return Period(start, end), f"{start.isoformat()} 至 {end.isoformat()}"
    if year:
        if not re.fullmatch(r"\d{4}", year.strip()):
            raise ValidationFailed(errors={"year": _("年份格式应为 YYYY")})
        y = int(year)
        return Period(date(y, 1, 1), date(y, 12, 31)), _("%(y)s年", y=y)
    if not quarter:
        quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    m = re.fullmatch(r"(\d{4})-?Q([1-4])", quarter.strip().upper())
    if not m:
        raise ValidationFailed(errors={"quarter": _("季度格式应为 YYYY-Qn")})
    y, q = int(m.group(1)), int(m.group(2))
    return Period(date(y, 3 * q - 2, 1), month_period(y, 3 * q).end), _("%(y)s年第%(q)s季度", y=y, q=q)


class PickerUnit(NamedTuple):
    id: int
    code: str
    name: str


def _orgs_for_picker() -> list[PickerUnit]:
    """The county, townships and villages the user may see reports of, by code (from the report
    cache: they depend on the user's unit and role and on the org tree, whose writes bump it)."""
    mine = services.default_org(current_user)
    if mine is None:
        return []
    from app.reports.cache import cached
    return cached("picker", mine, (current_user.role, current_user.org_id),
                  lambda: [PickerUnit(u.id, u.code, u.name) for u in _picker_units(mine)])


def _picker_units(mine: OrgUnit) -> list[OrgUnit]:
    stmt = select(OrgUnit).where(OrgUnit.active, OrgUnit.level.in_(("county", "township", "village")))
    stmt = stmt.where(org_clause(mine, OrgUnit) if mine.level != "village" else OrgUnit.id == mine.id)
    if mine.level == "county":
        stmt = stmt.where(OrgUnit.level.in_(("county", "township")))  # villages via a township's page
    units = list(session.scalars(stmt.order_by(OrgUnit.code)))
    return [u for u in units if org_in_jurisdiction(current_user, u)]


def _context(org: OrgUnit, p: Period, ytd_p: Period | None, compare: list) -> dict:
    report, counts = figures_and_counts(org, p)
    ytd = None
    if ytd_p:  # same end date as the period: its backlog and 民转刑 counts are the period's
        ytd = figures_and_counts(org, ytd_p, breakdowns=False,
                                 backlog=backlog_part(counts) if ytd_p.end == p.end else None)[0]
    return {"org": org, "period": p, "report": report, "ytd": ytd, "ytd_period": ytd_p, "compare": compare,
            "townships": services.ranked_townships(org, p, report["by_township"]) if org.level == "county" else [],
            "labels": FIGURE_LABELS, "vocab": vocab,
            "by_type_sorted": _sorted(report["by_type"]), "by_source_sorted": _sorted(report["by_source"]),
            "rate_of": lambda v: rate(v["accepted_resolved"], v["accepted"]),
            "level_counts": counts}


def _figures_html(kind: str, org: OrgUnit, p: Period, month: str, ytd_p: Period | None, compare) -> Markup:
    """The figures part of a report page (``reports/_figures.html``), from the report cache while
    no write could have changed it.  Its key holds all it depends on besides the figures: the
    page kind, the period, the locale and whether the user may open the screening page (the
    coverage figure's link).  ``compare``: a callable returning the comparison columns."""
    may_screen = current_user.can("screening.view") or current_user.can("screening.file")

    def render() -> Markup:
        ctx = _context(org, p, ytd_p, compare())
        html = render_template("reports/_figures.html", kind=kind, month=month, **ctx)
        return Markup(html)  # nosec B704 # an autoescaped template's output, not user text
    from app.reports.cache import cached
    return cached("page", org, (kind, p.start, p.end, ytd_p, str(get_locale()), may_screen), render)


def _sorted(data: dict) -> list:
    return sorted(data.items(), key=lambda kv: (-kv[1]["accepted"], kv[0]))


@bp.get("/")
@bp.get("/monthly")
def monthly():
    org = _org()
    year, month = _month()
    p = month_period(year, month)

    def compare() -> list:
        prev = month_period(*services.shift_month(year, month, -1))
        last_year = month_period(year - 1, month)
        return [(_("上月"), prev, figures(org, prev, breakdowns=False)),
                (_("上年同月"), last_year, figures(org, last_year, breakdowns=False))]
    ym = f"{year:04d}-{month:02d}"
    html = _figures_html("monthly", org, p, ym, Period(date(year, 1, 1), p.end), compare)
    return render_template("reports/report.html", kind="monthly", title=_("%(y)s年%(m)s月 月报", y=year, m=month),
                           month=ym, year=year, month_num=month, org=org, period=p, orgs=_orgs_for_picker(),
                           figures_html=html)


@bp.get("/period")
def period():
    org = _org()
    p, label = _period_from_args()
    today = today_local()
    q = (today.month - 1) // 3 + 1
    quick = [(_("本季度"), {"quarter": f"{today.year}-Q{q}"}), (_("本年"), {"year": str(today.year)}),
             (_("上年"), {"year": str(today.year - 1)})]
    ym = f"{p.end.year:04d}-{p.end.month:02d}"
    html = _figures_html("period", org, p, ym, None, list)
    return render_template("reports/report.html", kind="period", title=label, quick=quick,
                           month=ym, year=p.end.year, month_num=p.end.month, org=org, period=p,
                           orgs=_orgs_for_picker(), figures_html=html)


@bp.get("/trend.json")
def trend_json():
    org = _org()
    year, month = _month()
    data = services.trend(org, year, month)
    report = figures(org, month_period(year, month))
    data["by_type"] = [{"name": k, "value": v["accepted"]} for k, v in
                       sorted(report["by_type"].items(), key=lambda kv: -kv[1]["accepted"])]
    data["level_shares"] = report["level_shares"]
    return jsonify(data)


def _drill_period() -> Period:
    try:
        start, end = parse_period_dates(request.args.get("from"), request.args.get("to"))
    except ReportParamError as exc:
        _bad(exc)
    return Period(start, end)


@bp.get("/cases")
def cases():
    """The cases (or reception entries) counted by one figure, keyset-paginated by id."""
    org = _org()
    p = _drill_period()
    figure = request.args.get("figure") or ""
    after = request.args.get("after", type=int)
    args = {k: request.args.get(k) for k in ("org", "from", "to", "figure", "type", "source", "township")
            if request.args.get(k)}
    args["org"] = org.code
    if figure in RECEPTION_FIGURES:
        stmt = select(ReceptionEntry).where(org_clause(org, ReceptionEntry),
                                            ReceptionEntry.received_on.between(p.start, p.end))
        if figure == "direct_answers":
            stmt = stmt.where(ReceptionEntry.handling == "direct_answer")
        sub = stmt.subquery()
        total, headcount = session.execute(select(func.count(), func.coalesce(func.sum(sub.c.headcount), 0))
                                           .select_from(sub)).one()
        if after:
            stmt = stmt.where(ReceptionEntry.id > after)
        rows = list(session.scalars(stmt.order_by(ReceptionEntry.id).limit(PAGE_SIZE + 1)))
        label = RECEPTION_FIGURES[figure]
        kind = "reception"
    else:
        clause = drilldown_clause(figure, p)
        if clause is None:
            raise ValidationFailed(errors={"figure": _("未知的统计项：%(f)s", f=figure)})
        stmt = scope_cases(current_user, select(Case)).where(org_clause(org), clause)
        if args.get("type"):
            stmt = stmt.where(Case.type_category == args["type"])
        if args.get("source"):
            stmt = stmt.where(Case.source == args["source"])
        if args.get("township"):
            t = find_by_code(args["township"])
            stmt = stmt.where(Case.township_id == (t.id if t else -1))
        total = session.scalar(select(func.count()).select_from(stmt.subquery()))
        headcount = None
        if after:
            stmt = stmt.where(Case.id > after)
        rows = list(session.scalars(stmt.order_by(Case.id).limit(PAGE_SIZE + 1)))
        label = FIGURE_LABELS[figure]
        kind = "cases"
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_url = url_for("reports.cases", **args, after=rows[-1].id) if more else None
    return render_template("reports/cases.html", org=org, period=p, figure=figure, label=label, rows=rows,
                           total=total, headcount=headcount, kind=kind, next_url=next_url, args=args,
                           first_page=not after, orgs_by_id={})


@bp.get("/monthly.xlsx")
def export_xlsx():
    from app.reports.excel import monthly_workbook
    org = _org()
    year, month = _month()
    p = month_period(year, month)
    report = figures(org, p)
    ytd = figures(org, Period(date(year, 1, 1), p.end), breakdowns=False)
    townships = services.ranked_townships(org, p) if org.level == "county" else []
    wb = monthly_workbook(org, year, month, report, ytd, townships, current_user.display_name,
                          today_local())
    buf = BytesIO()
    wb.save(buf)
    buf.seek(0)
    from app.audit.services import audit
    audit("report.export", "org_unit", org.code, {"report": "monthly", "month": f"{year:04d}-{month:02d}"})
    session.commit()
    return send_file(buf, as_attachment=True, download_name=f"月报表-{org.code}-{year:04d}{month:02d}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.get("/dashboard")
def dashboard():
    _require("dashboard")
    org = services.default_org(current_user)
    today = today_local()
    data = services.dashboard(current_user, org, today)
    return render_template("reports/dashboard.html", org=org, d=data, today=today,
                           month=f"{today.year:04d}-{today.month:02d}")
