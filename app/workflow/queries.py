"""Read-side queries of the workflow pages; every read of cases goes through ``scope_cases``."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import and_, func, select

from app.accounts.models import User
from app.cases import workflow
from app.cases.models import Case, DepartmentTask, SignOff, SupervisionOrder
from app.cases.queries import scope_cases
from app.db import session
from app.settings.models import CalendarDay
from app.templating import today_local
from app.workflow.deadlines import deadline_state, sign_off_hours

ORDER_STATES = {"open": "办理中", "overdue": "已逾期", "answered": "已答复"}


def department_queue(user: User) -> dict[str, Any]:
    """A liaison's open tasks (transfers and invitations) and the last answered ones."""
    base = scope_cases(user, select(Case, DepartmentTask).join(
        DepartmentTask, and_(DepartmentTask.case_id == Case.id, DepartmentTask.department_id == user.org_id)))
    open_rows = session.execute(base.where(DepartmentTask.answered_at.is_(None))
                                .order_by(DepartmentTask.due_on, DepartmentTask.id)).all()
    answered = session.execute(base.where(DepartmentTask.answered_at.is_not(None))
                               .order_by(DepartmentTask.answered_at.desc()).limit(20)).all()
    today = today_local()
    return {"open_rows": [(c, t, deadline_state(t.due_on, today)) for c, t in open_rows],
            "answered_rows": answered, "today": today}


def sign_off_queue(user: User) -> list[Case]:
    """Open 高 cases at the levels the user signs off at, not yet signed off first."""
    levels = workflow.ACTIONS["sign_off"].roles.get(user.role, frozenset())
    stmt = scope_cases(user).where(Case.risk_level == "high", Case.status.in_(workflow.OPEN),
                                   Case.handling_level.in_(levels))
    return list(session.scalars(stmt.order_by(Case.signed_off_at.is_not(None), Case.high_risk_at)))


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def high_risk_board(user: User) -> list[dict[str, Any]]:
    """Every open 高 case in the user's jurisdiction with its sign-off status, age (days since
    first graded 高) and last activity; the unsigned first, then the oldest.  ``late``: not signed
    off within ``deadline.sign_off_hours`` of being graded 高."""
    cases = list(session.scalars(scope_cases(user).where(Case.risk_level == "high",
                                                         Case.status.in_(workflow.OPEN))))
    last_sign = dict(session.execute(select(SignOff.case_id, func.max(SignOff.signed_at))
                                     .where(SignOff.case_id.in_([c.id for c in cases]))
                                     .group_by(SignOff.case_id)).all()) if cases else {}
    now = datetime.now(timezone.utc)
    limit = sign_off_hours() * 3600
    rows = []
    for c in cases:
        since = _aware(c.high_risk_at) or _aware(c.registered_at)
        signed = _aware(c.signed_off_at)
        rows.append({"case": c, "age_days": (now - since).days if since else None,
                     "signed": signed is not None,
                     "late": signed is None and since is not None and (now - since).total_seconds() > limit,
                     "last_activity": _aware(c.last_activity_at) or _aware(c.updated_at),
                     "last_sign_off": last_sign.get(c.id)})
    rows.sort(key=lambda r: (r["signed"], -(r["age_days"] or 0)))
    return rows


def _order_filter(state: str, today: date):
    if state == "answered":
        return SupervisionOrder.answered_at.is_not(None)
    if state == "overdue":
        return and_(SupervisionOrder.answered_at.is_(None), SupervisionOrder.due_on < today)
    return and_(SupervisionOrder.answered_at.is_(None), SupervisionOrder.due_on >= today)


def supervision_orders(user: User, state: str) -> list[tuple[Case, SupervisionOrder]]:
    """督办 orders on cases the user may see, by state (open / overdue / answered)."""
    stmt = scope_cases(user, select(Case, SupervisionOrder).join(SupervisionOrder, SupervisionOrder.case_id == Case.id))
    stmt = stmt.where(_order_filter(state, today_local())).order_by(SupervisionOrder.due_on, SupervisionOrder.id)
    return list(session.execute(stmt.limit(500)).all())


def supervision_counts(user: User) -> dict[str, int]:
    today = today_local()
    out = {}
    for state in ORDER_STATES:
        stmt = scope_cases(user, select(func.count(SupervisionOrder.id)).select_from(Case)
                           .join(SupervisionOrder, SupervisionOrder.case_id == Case.id))
        out[state] = session.scalar(stmt.where(_order_filter(state, today))) or 0
    return out


def calendar_days(year: int) -> list[CalendarDay]:
    return list(session.scalars(select(CalendarDay).where(CalendarDay.day >= date(year, 1, 1),
                                                          CalendarDay.day <= date(year, 12, 31))
                                .order_by(CalendarDay.day)))


def org_names(ids) -> dict[int, str]:
    from app.orgs.models import OrgUnit
    ids = list({i for i in ids if i})
    if not ids:
        return {}
    return dict(session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(ids))).all())
