"""Screening and prevention pages (联排清底、联防清源): coverage and sweeps, filing a sweep
from a phone, repeat parties and clusters, hot spots, the early-warning board and the
民转刑 flags."""
from __future__ import annotations

from datetime import date
from functools import lru_cache
from urllib.parse import quote_plus

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.cases.queries import get_visible_case
from app.db import session
from app.errors import NotFound, ValidationFailed
from app.orgs.models import OrgUnit
from app.reports.queries import rate
from app.screening import queries
from app.screening import todos  # noqa: F401  (registers the to-do provider)
from app.screening.forms import CriminalFlagForm, SweepForm, finding_rows
from app.screening.models import Sweep
from app.screening.services import (coverage, file_sweep, flag_criminal, home_org, org_visible, period_of,
                                    previous_periods, sweep_village)
from app.settings.services import active_types
from app.templating import fixed_url, today_local

bp = Blueprint("screening", __name__, url_prefix="/screening")


def _label_timeline_action() -> None:
    """The case page's timeline names actions from ``cases.routes.TIMELINE_LABELS``: add ours."""
    try:
        from app.cases.routes import TIMELINE_LABELS
    except ImportError:  # pragma: no cover
        return
    TIMELINE_LABELS.setdefault("criminal_flag", "民转刑标记")


_label_timeline_action()


def _require(*capabilities: str) -> None:
    if not current_user.is_authenticated or not any(current_user.can(c) for c in capabilities):
        abort(403)


def _org_from_args() -> OrgUnit:
    """The org picked with ``?org=CODE`` when visible to the user, else their home org."""
    home = home_org(current_user)
    if home is None:
        abort(403)
    code = request.args.get("org")
    if code:
        org = session.scalar(select(OrgUnit).where(OrgUnit.code == code))
        if org is None or org.level not in ("county", "township", "village") or not org_visible(current_user, org):
            raise NotFound()
        return org
    return home


def _period_from_args() -> tuple[date, date]:
    """``?period=DAY``: the screening period containing DAY (default: today's); ``?period=FROM/TO``:
    any inclusive date range, as the report page's 排查覆盖率 links here with its own period."""
    value = (request.args.get("period") or "").strip()
    if "/" in value:
        first, _sep, last = value.partition("/")
        try:
            start, end = date.fromisoformat(first.strip()), date.fromisoformat(last.strip())
        except ValueError:
            message = _("统计区间格式应为 年-月-日/年-月-日。")
            raise ValidationFailed(message, errors={"period": message})
        if start > end:
            message = _("统计区间的开始日期不能晚于结束日期。")
            raise ValidationFailed(message, errors={"period": message})
        return start, end
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = today_local()
    return period_of(day)


@bp.get("/")
def index():
    _require("screening.view", "screening.file")
    org = _org_from_args()
    start, end = _period_from_args()
    table = queries.coverage_table(org, start, end)
    covered, total = coverage(org, start, end)  # the report's 排查覆盖率 counts the same (§6)
    townships = list(session.scalars(select(OrgUnit).where(OrgUnit.level == "township", OrgUnit.county_id == org.id)
                                     .order_by(OrgUnit.code))) if org.level == "county" else []
    return render_template("screening/index.html", org=org, home=home_org(current_user), start=start, end=end,
                           table=table, covered=covered, total=total, townships=townships, rate_of=rate,
                           periods=previous_periods(today_local(), 12), sweeps=queries.recent_sweeps(org, 30))


def _sweep_page(form: SweepForm, rows: list[dict], errors: dict, status: int = 200):
    village = sweep_village(current_user)
    start, end = period_of(form.swept_on.data or today_local())
    existing = session.scalar(select(Sweep).where(Sweep.village_id == village.id, Sweep.period_start == start))
    return render_template("screening/new.html", form=form, rows=rows or [{}], errors=errors, village=village,
                           start=start, end=end, existing=existing,
                           types=[t.name for t in active_types()]), status


@bp.get("/new")
def new():
    _require("screening.file")
    form = SweepForm()
    form.swept_on.data = today_local()
    return _sweep_page(form, [{}], {})


@bp.post("/new")
def create():
    _require("screening.file")
    form = SweepForm()
    rows = finding_rows(request.form)
    if not form.validate_on_submit():
        return _sweep_page(form, rows, {"csrf": _("表单已过期或日期有误，请重新提交。")}, 400)
    data = {"swept_on": form.swept_on.data, "participants": form.participants.data,
            "participants_other": form.participants_other.data, "households_visited": form.households_visited.data,
            "nil_report": form.nil_report.data, "notes": form.notes.data, "findings": rows}
    try:
        sweep, cases = file_sweep(current_user, data)
    except ValidationFailed as exc:
        session.rollback()
        rest = form.apply_errors(exc.errors)
        return _sweep_page(form, rows, rest, 422)
    session.commit()
    if cases:
        flash(_("排查已上报，登记纠纷 %(n)d 件：%(numbers)s", n=len(cases),
                numbers="、".join(c.number for c in cases)), "success")
    else:
        flash(_("零报告已上报。"), "success")
    return redirect(url_for("screening.sweep", sweep_id=sweep.id))


@bp.get("/sweeps/<int:sweep_id>")
def sweep(sweep_id: int):
    _require("screening.view", "screening.file")
    row = session.get(Sweep, sweep_id)
    if row is None or not org_visible(current_user, session.get(OrgUnit, row.village_id)):
        raise NotFound()
    return render_template("screening/sweep.html", sweep=row, village=session.get(OrgUnit, row.village_id),
                           cases=queries.sweep_cases(current_user, row))


@bp.get("/repeats")
def repeats():
    _require("screening.view")
    window, threshold = queries.cluster_settings()
    return render_template("screening/repeats.html", groups=queries.repeat_groups(current_user),
                           clusters=queries.clusters(current_user), window=window, threshold=threshold)


# The periods the hot-spot page offers: the N months ending with the chosen month.
HOT_SPOT_MONTHS = (3, 6, 12, 24, 36)


def _hot_spot_window() -> tuple[int, date]:
    """``?months=N`` (one of ``HOT_SPOT_MONTHS``, default 12) and ``?end=YYYY-MM`` (default this
    month); bad values are a clear 422, not a silent default."""
    months = (request.args.get("months") or "12").strip()
    if not months.isdigit() or int(months) not in HOT_SPOT_MONTHS:
        message = _("统计月数应为 %(choices)s 之一。", choices="、".join(str(n) for n in HOT_SPOT_MONTHS))
        raise ValidationFailed(message, errors={"months": message})
    end = today_local()
    value = (request.args.get("end") or "").strip()
    if value:
        try:
            end = date.fromisoformat(value + "-01")
        except ValueError:
            message = _("截止月份格式应为 年-月（如 2026-06）。")
            raise ValidationFailed(message, errors={"end": message})
    return int(months), end


def _hot_spot_args():
    org = _org_from_args()
    if org.level == "village":
        org = session.get(OrgUnit, org.township_id)
    months, end = _hot_spot_window()
    return org, queries.hot_spots(current_user, org, end=end, months=months), months, end


@bp.get("/hotspots")
def hotspots():
    _require("screening.view")
    org, data, months, end = _hot_spot_args()
    townships = list(session.scalars(select(OrgUnit).where(
        OrgUnit.level == "township", OrgUnit.county_id == (org.county_id or org.id)).order_by(OrgUnit.code))) \
        if home_org(current_user).level == "county" else []
    return render_template("screening/hotspots.html", org=org, data=data, townships=townships, months=months,
                           month_choices=HOT_SPOT_MONTHS, end_month=f"{end.year:04d}-{end.month:02d}")


@bp.get("/hotspots.json")
def hotspots_json():
    _require("screening.view")
    org, data, _months, _end = _hot_spot_args()
    return jsonify({"org": {"code": org.code, "name": org.name}, "months": data.months,
                    "series": [{"name": t, "data": counts} for t, counts in data.by_type_month.items()]})


@bp.get("/warnings")
def warnings():
    _require("screening.view")
    board = queries.warning_board(current_user)
    return render_template("screening/warnings.html", rows=board.rows, clusters=board.clusters, cut=board.cut,
                           inactive_days=queries.inactive_days(), today=today_local())


@bp.post("/cases/<number>/criminal")
def criminal(number: str):
    case = get_visible_case(current_user, number)
    form = CriminalFlagForm()
    if not form.validate_on_submit():
        flash(_("表单已过期或日期有误，请重新提交。"), "danger")
        return redirect(url_for("cases.detail", number=number))
    from app.cases.services import check_version, lock_case
    lock_case(case)
    check_version(case, request.form.get("version"))  # a stale flag is the 409 conflict page
    try:
        flag_criminal(current_user, case, form.kind.data, form.on.data, form.ref.data, form.note.data)
    except ValidationFailed as exc:
        session.rollback()
        flash("；".join(exc.errors.values()), "danger")
        return redirect(url_for("cases.detail", number=number) + "#criminal-flags")
    session.commit()
    flash(_("民转刑标记已保存。"), "success")
    return redirect(url_for("cases.detail", number=number) + "#criminal-flags")


# ``urlencode``'s quoting of one value, kept for the few values the case pages repeat (village
# codes, dispute types, days): quoting the Chinese type byte by byte was ~1 % of a case page
_query_value = lru_cache(maxsize=1024)(quote_plus)


def _case_extras(case):
    """What the case page shows from prevention: repeat parties, the cluster, the 民转刑 flags."""
    from app.screening.services import can_flag_criminal
    repeats, cluster = queries.prevention_for_case(current_user, case)
    # the whole window in the ledger (this case among them), when the page names only the newest;
    # the ledger's fixed address and a query string, no trip through the URL map
    cluster_url = fixed_url("cases.index") + "?" + "&".join(
        f"{name}={_query_value(value)}" for name, value in (
            ("village", case.village.code), ("type", case.dispute_type), ("from", cluster.first_day.isoformat()),
            ("to", cluster.last_day.isoformat()))) if cluster.total > len(cluster.cases) else None
    return {"repeats": repeats, "cluster": cluster, "cluster_url": cluster_url,
            "can_flag": can_flag_criminal(current_user)}


@bp.app_context_processor
def _inject_case_extras():
    return {"screening_case_extras": _case_extras}
