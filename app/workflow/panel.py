"""What the case page's workflow panel shows (``templates/cases/_workflow_panel.html``):
the actions the current user may take now with the pickers their forms need, the deadline
cards (黄牌/红牌), risk history, sign-offs, department tasks and 督办 orders.  Exposed to
templates as ``workflow_panel_context(case)`` so any case page can include the panel."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from flask_login import current_user
from sqlalchemy import bindparam, select

from app.accounts.models import User
from app.cases.models import Case, RiskGrading, SignOff, SupervisionOrder
from app.cases import services
from app.cases.queries import department_tasks_of, has_related
from app.cases.services import actions_for, active_risk_factors, departments_for, users_for_picker
from app.db import prepared, select_entities, select_rows
from app.orgs.models import OrgUnit
from app.reports import cache as report_cache
from app.settings.services import get_setting
from app.templating import SHANGHAI, today_local
from app.workflow import deadlines, routing

MEDIATOR_ROLES = tuple(sorted(services.MEDIATOR_ROLES))
LEADER_ROLES = tuple(sorted(services.LEADER_ROLES))


def _names(ids) -> dict[int, str]:
    ids = [i for i in set(ids) if i]
    if not ids:
        return {}
    stmt = prepared("panel.names", lambda: select(User.id, User.display_name)
                    .where(User.id.in_(bindparam("ids", expanding=True))), server_prepare=True)
    return dict(select_rows(stmt, {"ids": sorted(ids)}))


def panel_context(case: Case) -> dict[str, Any]:
    today = today_local()
    # only the tables that hold rows of this case are read (one EXISTS statement tells which),
    # each with a statement built once per process
    params = {"case_id": case.id}

    def rows(table: str, build) -> list:
        return select_entities(prepared(("panel", table), build, server_prepare=True), params) if has_related(case, table) else []
    gradings = rows("risk_grading", lambda: select(RiskGrading).where(RiskGrading.case_id == bindparam("case_id"))
                    .order_by(RiskGrading.graded_at.desc(), RiskGrading.id.desc()))
    sign_offs = rows("sign_off", lambda: select(SignOff).where(SignOff.case_id == bindparam("case_id"))
                     .order_by(SignOff.id.desc()))
    tasks = department_tasks_of(case)[::-1]  # newest first; each with its department (the cards name it)
    orders = rows("supervision_order", lambda: select(SupervisionOrder)
                  .where(SupervisionOrder.case_id == bindparam("case_id")).order_by(SupervisionOrder.id.desc()))
    user_ids = [g.graded_by_id for g in gradings] + [s.signed_by_id for s in sign_offs] + \
        [s.leader_id for s in sign_offs] + [case.lead_mediator_id, case.leader_id] + \
        [u for s in sign_offs for u in (s.task_force or {}).get("users", [])] + (case.co_mediator_ids or [])
    dept_ids = [d for s in sign_offs for d in (s.task_force or {}).get("departments", [])]
    org_ids = dept_ids + [o.responsible_org_id for o in orders] + [o.issuing_org_id for o in orders]
    org_names = dict(select_rows(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(org_ids)))) \
        if org_ids else {}
    actions = actions_for(current_user, case)
    names = {a.name for a in actions}
    ctx: dict[str, Any] = {
        "actions": actions, "today": today, "names": _names(user_ids), "org_names": org_names,
        "gradings": gradings, "sign_offs": sign_offs, "tasks": tasks, "orders": orders,
        "cards": _cards(case, tasks, orders, today),
        "card_labels": deadlines.CARD_LABELS, "card_badges": deadlines.CARD_BADGES,
    }
    if names & {"accept", "accept_escalation", "sign_off", "grade_risk"}:
        # one statement for the three pickers: the mediators and the leaders are the all-users
        # picker's rows of those roles, in the same (role, name) order
        everyone = users_for_picker(case, MEDIATOR_ROLES + LEADER_ROLES + ("grid_worker", "dept_liaison"))
        ctx["mediators"] = [u for u in everyone if u.role in MEDIATOR_ROLES]
        ctx["leaders"] = [u for u in everyone if u.role in LEADER_ROLES]
        ctx["all_users"] = everyone
    if names & {"transfer", "invite_department", "sign_off"}:
        kind = routing.suggested_kind(case.dispute_type, case.type_category)
        ctx["departments"] = department_choices(case)
        ctx["suggested_kind"] = kind
    if "grade_risk" in names:
        ctx["factors"] = factor_choices()
    return ctx


@dataclass(frozen=True)
class DepartmentChoice:
    """A department the panel's transfer, invitation and sign-off forms offer."""
    id: int
    name: str
    department_kind: Optional[str]
    parent_id: Optional[int]


@dataclass(frozen=True)
class FactorChoice:
    """A risk factor of the panel's 定级 checklist."""
    id: int
    name: str
    suggests: str


def department_choices(case: Case) -> tuple[DepartmentChoice, ...]:
    """``departments_for(case)`` as the panel lists them, kept in the report cache under the
    county's write counter (department units are ``org_unit`` rows: adding, renaming or closing
    one changes it): a township mediator's page on an open case no longer reads them each time."""
    return report_cache.cached(
        "panel.departments", case.township, (case.township_id, case.county_id),
        lambda: tuple(DepartmentChoice(d.id, d.name, d.department_kind, d.parent_id) for d in departments_for(case)),
        frozen=True)


def factor_choices() -> tuple[FactorChoice, ...]:
    """The active risk factors in checklist order, kept under the global write counter (a change
    to ``risk_factor`` bumps it: it is one of ``REPORT_TABLES``)."""
    return report_cache.cached_global(
        "panel.risk_factors", lambda: tuple(FactorChoice(f.id, f.name, f.suggests) for f in active_risk_factors()))


def _cards(case: Case, tasks, orders, today) -> list[dict[str, Any]]:
    """Deadline cards: the mediation clock, escalation, follow-up, department tasks, 督办 orders."""
    cards = []

    def add(label, due, state=None, note=""):
        state = state or deadlines.deadline_state(due, today)
        cards.append({"label": label, "due": due, "state": state, "note": note,
                      "days_left": (due - today).days if due else None})
    if case.status in ("pending_triage", "in_mediation") and (case.deadline_on or case.paused_since):
        note = "已延期一次：" + (case.extension_reason or "") if case.deadline_extended else ""
        if case.paused_since:
            note = f"自 {case.paused_since} 起中止：{case.pause_reason or ''}"
        add("办理期限", case.deadline_on, deadlines.case_deadline_state(case, today), note)
    if case.risk_level == "high" and case.signed_off_at is None and case.high_risk_at and case.is_open:
        hours = int(get_setting("deadline.sign_off_hours") or 24)
        at = case.high_risk_at if case.high_risk_at.tzinfo else case.high_risk_at.replace(tzinfo=timezone.utc)
        due_at = at + timedelta(hours=hours)
        late = datetime.now(timezone.utc) > due_at
        cards.append({"label": f"签批时限（{hours}小时）", "due": due_at.astimezone(SHANGHAI).date(),
                      "state": "overdue" if late else "near", "days_left": None,
                      "note": "截止 " + due_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M")})
    if case.status == "escalated" and case.escalation_due_on:
        add("上报接收期限", case.escalation_due_on)
    if case.status == "closed" and case.follow_up_due_on:
        add("回访期限", case.follow_up_due_on)
    for t in tasks:
        if t.answered_at is None and t.due_on:
            add(("转办" if t.kind == "transfer" else "联调") + "反馈期限 · " + t.department.name, t.due_on)
    for o in orders:
        if o.answered_at is None:
            add("督办期限", o.due_on)
    return cards
