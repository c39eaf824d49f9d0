"""我的待办: the workflow's sections of each person's 工作台, registered in
``app.home.services.TODO_PROVIDERS`` when this module is imported (by ``app.workflow.routes``).

Each provider returns the items the user must act on, each linking to the page where the
action is taken; every query of cases goes through ``scope_cases``.
"""
from __future__ import annotations

from typing import Optional

from flask import current_app, url_for
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import joinedload

from app.accounts.models import User
from app.cases import workflow
from app.cases.models import Case, DepartmentTask, SupervisionOrder
from app.cases.queries import scope_cases
from app.cases.services import user_unit_id
from app.db import rare, session
from app.home.services import TODO_PROVIDERS, TodoItem, TodoSection
from app.templating import today_local
from app.workflow.deadlines import CARD_BADGES, deadline_state, warn_days

LIMIT = 10


def case_url(number: str, action: Optional[str] = None) -> str:
    """The case page (the cases blueprint's when this build has it, else the workflow's own),
    with ``#wf-<action>`` so the panel opens that action's form."""
    anchor = f"wf-{action}" if action else None
    if "cases.detail" in current_app.view_functions:
        return url_for("cases.detail", number=number, _anchor=anchor)
    return url_for("workflow.case_page", number=number, _anchor=anchor)


def _levels_for(user: User, action: str) -> set[str]:
    return set(workflow.ACTIONS[action].roles.get(user.role, ()))


def _section(title: str, cases: list[Case], detail, badge=lambda c: "", more_url: Optional[str] = None,
             action: Optional[str] = None):
    if not cases:
        return None
    items = [TodoItem(title=f"{c.number} {c.dispute_type}", url=case_url(c.number, action), detail=detail(c),
                      badge=badge(c)) for c in cases[:LIMIT]]
    return TodoSection(title=title, items=items, more_url=more_url)


def _cases(user: User, *where, order=None) -> list[Case]:
    """The first ``LIMIT + 1`` visible cases matching ``where``, oldest registration first unless
    ``order`` (columns) says otherwise: then the order of a partial index whose terms ``where``
    repeats, which a county user's query reads directly (``county_indexed=False``)."""
    stmt = (scope_cases(user, county_indexed=order is None).where(*where)
            .options(joinedload(Case.village))  # the items name the village
            .order_by(*(order or (Case.registered_on,)), Case.id).limit(LIMIT + 1))
    return list(session.scalars(stmt))


def triage_todo(user: User) -> Optional[TodoSection]:
    """Cases waiting for 研判分流 at the user's level."""
    levels = _levels_for(user, "accept")
    if not levels:
        return None
    cases = _cases(user, rare(Case.status == "pending_triage"), Case.handling_level.in_(levels))
    return _section(_("待研判分流"), cases,
                    lambda c: _("登记于 %(date)s · %(village)s", date=c.registered_on, village=c.village.name),
                    action="accept")


def escalation_todo(user: User) -> Optional[TodoSection]:
    """Escalations from the level below, to accept or return within the escalation deadline."""
    levels = _levels_for(user, "accept_escalation")
    if not levels:
        return None
    today = today_local()
    cases = _cases(user, rare(Case.status == "escalated"), Case.handling_level.in_(levels))
    return _section(_("待接收的上报"), cases,
                    lambda c: _("%(village)s · 期限 %(due)s", village=c.village.name, due=c.escalation_due_on or "—"),
                    lambda c: CARD_BADGES[deadline_state(c.escalation_due_on, today)], action="accept_escalation")


def sign_off_todo(user: User) -> Optional[TodoSection]:
    """High-risk cases not yet signed off (within ``deadline.sign_off_hours``)."""
    levels = _levels_for(user, "sign_off")
    if not levels:
        return None
    cases = _cases(user, rare(Case.risk_level == "high"), Case.signed_off_at.is_(None),
                   rare(Case.status.in_(workflow.OPEN)), Case.handling_level.in_(levels))
    more = url_for("workflow.sign_off_queue")
    return _section(_("待签批的高风险纠纷"), cases, lambda c: f"{c.village.name} · {c.summary[:30]}",
                    lambda c: "danger", more_url=more, action="sign_off")


def department_todo(user: User) -> Optional[TodoSection]:
    """Transfers and invitations the liaison's department has not answered."""
    if user.role != "dept_liaison":
        return None
    today = today_local()
    rows = session.execute(scope_cases(user, select(Case, DepartmentTask).join(
        DepartmentTask, and_(DepartmentTask.case_id == Case.id, DepartmentTask.department_id == user.org_id)))
        .where(DepartmentTask.answered_at.is_(None)).order_by(DepartmentTask.due_on, DepartmentTask.id)
        .limit(LIMIT)).all()
    if not rows:
        return None
    items = [TodoItem(title=f"{c.number} {c.dispute_type}", url=case_url(c.number, "department_feedback"),
                      detail=_("%(kind)s · 期限 %(due)s", kind=_("转办") if t.kind == "transfer" else _("邀请联调"),
                               due=t.due_on),
                      badge=CARD_BADGES[deadline_state(t.due_on, today)]) for c, t in rows]
    return TodoSection(_("待反馈的转办/联调"), items, more_url=url_for("workflow.department_queue"))


def _supervising_levels(user: User, action: str) -> set[str]:
    """The handling levels whose items ``user`` follows: their centre's own (``action``'s levels),
    and for the supervising level the levels below (the county supervisor every level, the
    township director the villages of the township; ``scope_cases`` keeps it to their area)."""
    levels = _levels_for(user, action)
    if user.role == "county_supervisor":
        levels = set(workflow.LEVEL_ORDER)
    elif user.role == "township_director":
        levels = levels | {"village"}
    return levels


def overdue_transfer_todo(user: User) -> Optional[TodoSection]:
    """Department transfers past their due day with no answer: for the centre that transferred
    (the case's handling level) and for the supervising level (PRODUCT.md §4 "overdue items
    appear in the to-do lists of the people responsible and of the supervising level")."""
    levels = _supervising_levels(user, "transfer")
    if not levels:
        return None
    today = today_local()
    rows = session.execute(scope_cases(user, select(Case, DepartmentTask).join(
        DepartmentTask, DepartmentTask.case_id == Case.id))
        .where(DepartmentTask.kind == "transfer", DepartmentTask.answered_at.is_(None),
               DepartmentTask.due_on < today, Case.handling_level.in_(levels))
        .options(joinedload(DepartmentTask.department))
        .order_by(DepartmentTask.due_on, DepartmentTask.id).limit(LIMIT)).all()
    if not rows:
        return None
    items = [TodoItem(title=f"{c.number} {c.dispute_type}", url=case_url(c.number),
                      detail=_("%(department)s · 期限 %(due)s · 逾期 %(days)s 天", department=t.department.name,
                               due=t.due_on, days=(today - t.due_on).days),
                      badge=CARD_BADGES["overdue"]) for c, t in rows]
    return TodoSection(_("转办逾期未反馈"), items)


def supervision_todo(user: User) -> Optional[TodoSection]:
    """督办 orders addressed to the user's unit and not yet answered."""
    if not _levels_for(user, "answer_supervision"):
        return None
    today = today_local()
    rows = session.execute(scope_cases(user, select(Case, SupervisionOrder).join(
        SupervisionOrder, SupervisionOrder.case_id == Case.id))
        .where(SupervisionOrder.answered_at.is_(None), SupervisionOrder.responsible_org_id == user_unit_id(user))
        .order_by(SupervisionOrder.due_on).limit(LIMIT)).all()
    if not rows:
        return None
    items = [TodoItem(title=f"{c.number} {c.dispute_type}", url=case_url(c.number, "answer_supervision"),
                      detail=_("督办期限 %(due)s · %(requirement)s", due=o.due_on, requirement=o.requirement[:30]),
                      badge=CARD_BADGES[deadline_state(o.due_on, today)]) for c, o in rows]
    return TodoSection(_("待答复的督办"), items, more_url=url_for("workflow.supervision_index"))


def deadline_todo(user: User) -> Optional[TodoSection]:
    """Cases in mediation near (黄牌) or past (红牌) their deadline: the handling level's, and for
    the supervising level (county supervisor, township director) those below it too."""
    levels = _levels_for(user, "agree")
    if user.role == "county_supervisor":
        levels = set(workflow.LEVEL_ORDER)
    elif user.role == "township_director":
        levels = levels | {"village"}
    if not levels:
        return None
    today = today_local()
    from datetime import timedelta
    horizon = today + timedelta(days=warn_days())
    # most overdue first, read in deadline order from the open cases' partial index
    # (ix_case_open_deadline: its WHERE terms repeated here), never sorting a county's backlog
    cases = _cases(user, Case.deadline_on.is_not(None), Case.closed_on.is_(None), Case.deadline_on <= horizon,
                   Case.status == "in_mediation", Case.handling_level.in_(levels), Case.paused_since.is_(None),
                   order=(Case.deadline_on,))
    return _section(_("临近或超过办理期限"), cases,
                    lambda c: _("期限 %(due)s · %(village)s", due=c.deadline_on, village=c.village.name),
                    lambda c: CARD_BADGES[deadline_state(c.deadline_on, today)])


def follow_up_todo(user: User) -> Optional[TodoSection]:
    """Agreements whose follow-up (回访) is due within the warning window or overdue."""
    levels = _levels_for(user, "follow_up")
    if not levels:
        return None
    today = today_local()
    from datetime import timedelta
    horizon = today + timedelta(days=warn_days())
    # the longest overdue first, from the partial index of agreements still waiting for their
    # follow-up (ix_case_follow_up_due: its WHERE terms repeated here)
    cases = _cases(user, Case.follow_up_due_on.is_not(None),
                   or_(Case.followed_up_on.is_(None), Case.followed_up_on < Case.closed_on),
                   Case.follow_up_due_on <= horizon, Case.status == "closed", Case.handling_level.in_(levels),
                   order=(Case.follow_up_due_on,))
    return _section(_("待回访"), cases, lambda c: _("回访期限 %(due)s", due=c.follow_up_due_on),
                    lambda c: CARD_BADGES[deadline_state(c.follow_up_due_on, today)], action="follow_up")


PROVIDERS = [triage_todo, escalation_todo, sign_off_todo, department_todo, overdue_transfer_todo,
             supervision_todo, deadline_todo, follow_up_todo]
for _provider in PROVIDERS:
    if _provider not in TODO_PROVIDERS:
        TODO_PROVIDERS.append(_provider)
