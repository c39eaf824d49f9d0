"""Workflow pages: the action forms of the case panel, the department queue, the sign-off
queue, the county's high-risk board, the 督办 list, and the admin's holiday calendar and
routing table.  Routes stay thin: load + authorize, call one service, commit once."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import delete

from app.cases import workflow
from app.cases.queries import get_visible_case
from app.cases.services import apply_action
from app.db import session
from app.errors import InvalidTransition, PermissionDenied, ValidationFailed
from app.settings.models import CalendarDay
from app.settings.services import active_types
from app.workflow import deadlines, queries
from app.workflow import routing as routing_rules
from app.workflow import todos  # noqa: F401  (registers the 我的待办 providers)
from app.workflow.forms import CalendarDayForm
from app.workflow.panel import panel_context

bp = Blueprint("workflow", __name__, url_prefix="/workflow")

MULTI_FIELDS = ("co_mediators", "factors", "members", "departments")


@bp.app_context_processor
def _panel_helpers():
    return {"workflow_panel_context": panel_context,
            "workflow_action_labels": {n: a.label for n, a in workflow.ACTIONS.items()},
            # the case list's 黄牌/红牌/已中止 badges (the case page's rule, no query per row)
            "case_deadline_state": deadlines.case_deadline_state, "deadline_warn_days": deadlines.warn_days,
            "deadline_card_labels": deadlines.CARD_LABELS, "deadline_card_badges": deadlines.CARD_BADGES}


def _require(capability: str) -> None:
    if not current_user.can(capability):
        raise PermissionDenied()


def _safe_next(default: str) -> str:
    target = request.form.get("next") or ""
    return target if target.startswith("/") and not target.startswith("//") else default


def form_data() -> dict:
    """The posted fields as the service expects them (lists for the multi-valued ones)."""
    data = {k: v for k, v in request.form.items() if k not in ("csrf_token", "next", "version")}
    for name in MULTI_FIELDS:
        if name in request.form:
            data[name] = [v for v in request.form.getlist(name) if v]
    return data


@bp.get("/cases/<number>")
def case_page(number):
    case = get_visible_case(current_user, number)
    return render_template("workflow/case.html", case=case)


@bp.post("/cases/<number>/actions/<action>")
def act(number, action):
    case = get_visible_case(current_user, number)
    back = _safe_next(todos.case_url(number))
    from app.mediation.services import FULL_FORM_ACTIONS
    if action in FULL_FORM_ACTIONS:
        # Sessions, close-outs, follow-ups and 司法确认 keep their records (and required fields) in
        # the mediation forms: never a bare action from here; nothing is changed.
        flash(_("「%(label)s」须通过完整表单办理（必填项将逐项检查），请在下面的表单中填写。",
                label=_(workflow.ACTIONS[action].label)), "warning")
        return redirect(url_for(FULL_FORM_ACTIONS[action], number=number))
    try:
        # The panel's forms carry the case version: a second person acting on the same case at
        # once gets the 409 conflict page (StaleRecord propagates), never a double action.
        apply_action(current_user, case, action, form_data(), expected_version=request.form.get("version"))
    except (ValidationFailed, InvalidTransition) as exc:
        session.rollback()
        for message in (exc.errors.values() if exc.errors else [exc.message]):
            flash(message, "danger")
        return redirect(back)
    session.commit()
    flash(_("已完成：%(label)s", label=_(workflow.ACTIONS[action].label)), "success")
    return redirect(back)


@bp.get("/department")
def department_queue():
    _require("dept_queue")
    return render_template("workflow/department_queue.html", **queries.department_queue(current_user))


@bp.get("/sign-offs")
def sign_off_queue():
    if not (current_user.can("sign_off") or current_user.role == "county_leader"):
        raise PermissionDenied()
    return render_template("workflow/sign_off_queue.html", rows=queries.sign_off_queue(current_user))


@bp.get("/high-risk")
def high_risk_board():
    _require("high_risk_board")
    return render_template("workflow/high_risk_board.html", rows=queries.high_risk_board(current_user),
                           sign_off_hours=deadlines.sign_off_hours())


@bp.get("/supervision")
def supervision_index():
    _require("supervise")
    state = request.args.get("state", "open")
    if state not in queries.ORDER_STATES:
        state = "open"
    rows = queries.supervision_orders(current_user, state)
    return render_template("workflow/supervision_index.html", state=state, rows=rows,
                           states=queries.ORDER_STATES, counts=queries.supervision_counts(current_user),
                           org_names=queries.org_names(o.responsible_org_id for _, o in rows))


CALENDAR_YEARS = range(1900, 3000)  # a year outside is a typo (and date() fails past 9999)


def _calendar_page(form, year: int, status: int = 200):
    return render_template("workflow/calendar.html", form=form, year=year,
                           days=queries.calendar_days(year)), status


@bp.route("/calendar", methods=["GET", "POST"])
def calendar():
    _require("admin")
    from app.audit.services import audit
    form = CalendarDayForm()
    this_year = date.today().year
    raw_year = request.args.get("year")
    year = this_year
    if raw_year:
        try:
            year = int(raw_year)
        except ValueError:
            year = None
        if year not in CALENDAR_YEARS:
            flash(_("年份无效，请填写 1900 至 2999 之间的年份。"), "danger")
            return _calendar_page(form, this_year, 400)
    if request.method == "POST" and request.form.get("delete"):
        try:
            day = date.fromisoformat(request.form["delete"].strip())
        except ValueError:
            flash(_("要删除的日期无效。"), "danger")
            return _calendar_page(form, year, 400)
        row = session.get(CalendarDay, day)
        if row is None:
            flash(_("日历中没有该日期。"), "warning")
            return redirect(url_for("workflow.calendar", year=day.year))
        audit("calendar.delete", "calendar_day", day.isoformat(),
              {"working_day": row.is_working_day, "name": row.name})
        session.execute(delete(CalendarDay).where(CalendarDay.day == day))
        session.commit()
        flash(_("已删除。"), "success")
        return redirect(url_for("workflow.calendar", year=day.year))
    if form.validate_on_submit():
        if form.day.data.year not in CALENDAR_YEARS:
            form.day.errors = list(form.day.errors) + [_("年份无效，请填写 1900 至 2999 之间的年份。")]
            return _calendar_page(form, year, 422)
        row = session.get(CalendarDay, form.day.data)
        before = None if row is None else {"working_day": row.is_working_day, "name": row.name}
        row = row or CalendarDay(day=form.day.data)
        row.is_working_day = form.kind.data == "working"
        row.name = form.name.data or None
        session.add(row)
        audit("calendar.save", "calendar_day", form.day.data.isoformat(),
              {"before": before, "working_day": row.is_working_day, "name": row.name})
        session.commit()
        flash(_("已保存。"), "success")
        return redirect(url_for("workflow.calendar", year=form.day.data.year))
    if request.method == "POST":
        return _calendar_page(form, year, 422)
    return _calendar_page(form, year)


@bp.route("/routing", methods=["GET", "POST"])
def routing():
    _require("admin")
    types = active_types()
    if request.method == "POST":
        from app.audit.services import audit
        before = routing_rules.routing_table()
        submitted = {t.name: request.form.get(f"type_{t.id}", "").strip() for t in types}
        routing_rules.save_routing(submitted, request.form.get("version"))
        changed = {k: {"from": before.get(k) or None, "to": v or None} for k, v in submitted.items()
                   if (before.get(k) or "") != v}
        audit("settings.routing", "setting", "routing", {"changes": changed})
        session.commit()
        flash(_("分流建议已保存。"), "success")
        return redirect(url_for("workflow.routing"))
    return render_template("workflow/routing.html", types=types, table=routing_rules.routing_table(),
                           version=routing_rules.routing_version(),
                           kinds=routing_rules.department_kinds())
