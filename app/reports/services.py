"""Report page helpers: default org/month, the 12-month trend (one grouped query per series),
the comparisons beside the month, and the leaders' dashboard."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Optional

from sqlalchemy import and_, func, select
from sqlalchemy import case as sa_case

from app.accounts.models import User
from app.accounts.roles import COUNTY_ROLES, TOWNSHIP_ROLES
from app.cases.models import Case, SupervisionOrder
from app.cases.queries import scope_cases
from app.cases.vocab import OPEN_STATUSES, RESOLVED_OUTCOMES
from app.db import session
from app.orgs.models import OrgUnit
from app.reports.queries import Period, by_township, figures, month_period, org_clause, rate


def default_org(user: User) -> Optional[OrgUnit]:
    """The unit whose report a user sees first (None: the role has no reports)."""
    org = user.org
    if user.role in COUNTY_ROLES:
        return session.get(OrgUnit, org.county_id or org.id)
    if user.role in TOWNSHIP_ROLES:
        return session.get(OrgUnit, org.township_id or org.id)
    if user.role == "village_mediator":
        return org
    return None


def last_month(today: date) -> tuple[int, int]:
    first = today.replace(day=1) - timedelta(days=1)
    return first.year, first.month


def shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    n = year * 12 + (month - 1) + delta
    return n // 12, n % 12 + 1


def _month_key(column):
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m", column)
    return func.to_char(column, "YYYY-MM")


def trend(org: OrgUnit, year: int, month: int) -> dict[str, Any]:
    """Accepted, resolved and 化解率 for the 12 months ending with ``year-month``: one grouped
    query for accepted / accepted_resolved (by registration month; the cohort rule "closed as
    resolved by the end of P" means closed in the registration month) and one for resolved
    (closed in the month with a resolved outcome)."""
    months = [shift_month(year, month, d) for d in range(-11, 1)]
    start = month_period(*months[0]).start
    end = month_period(year, month).end
    keys = [f"{y:04d}-{m:02d}" for y, m in months]
    reg_key = _month_key(Case.registered_on)
    close_key = _month_key(Case.closed_on)
    acc_rows = session.execute(
        select(reg_key, func.count(), func.sum(sa_case((and_(Case.outcome.in_(RESOLVED_OUTCOMES),
                                                               close_key == reg_key), 1), else_=0)))
        .where(org_clause(org), Case.registered_on.between(start, end), Case.status != "declined")
        .group_by(reg_key)).all()
    res_rows = session.execute(
        select(close_key, func.count())
        .where(org_clause(org), Case.closed_on.between(start, end), Case.outcome.in_(RESOLVED_OUTCOMES))
        .group_by(close_key)).all()
    accepted = {k: (int(a), int(r or 0)) for k, a, r in acc_rows}
    resolved = {k: int(n) for k, n in res_rows}
    return {
        "months": keys,
        "accepted": [accepted.get(k, (0, 0))[0] for k in keys],
        "resolved": [resolved.get(k, 0) for k in keys],
        "resolution_rate": [rate(accepted.get(k, (0, 0))[1], accepted.get(k, (0, 0))[0]) for k in keys],
    }


def ranked_townships(org: OrgUnit, p: Period) -> list[dict[str, Any]]:
    """Townships by 化解率 descending ("—" rates last), then accepted descending, then code."""
    rows = by_township(org, p)
    return sorted(rows, key=lambda r: (r["resolution_rate"] is None, -(r["resolution_rate"] or 0),
                                       -r["accepted"], r["code"]))


def dashboard(user: User, org: OrgUnit, today: date) -> dict[str, Any]:
    """Key figures this month and this year, the high-risk summary, overdue open cases, open
    supervision orders and the ranked townships, for a county leader or supervisor."""
    this_month = month_period(today.year, today.month)
    month = Period(this_month.start, today)
    year = Period(date(today.year, 1, 1), today)
    open_cases = scope_cases(user, select(func.count()).select_from(Case)).where(
        org_clause(org), Case.status.in_(OPEN_STATUSES))
    high = session.execute(
        scope_cases(user, select(func.count(), func.count(Case.signed_off_at)).select_from(Case))
        .where(org_clause(org), Case.status.in_(OPEN_STATUSES), Case.risk_level == "high")).one()
    overdue = session.scalar(open_cases.where(Case.deadline_on < today))
    orders = session.scalar(
        scope_cases(user, select(func.count(SupervisionOrder.id)).select_from(SupervisionOrder)
                    .join(Case, Case.id == SupervisionOrder.case_id))
        .where(org_clause(org), SupervisionOrder.answered_at.is_(None)))
    overdue_orders = session.scalar(
        scope_cases(user, select(func.count(SupervisionOrder.id)).select_from(SupervisionOrder)
                    .join(Case, Case.id == SupervisionOrder.case_id))
        .where(org_clause(org), SupervisionOrder.answered_at.is_(None), SupervisionOrder.due_on < today))
    return {
        "month": figures(org, month, breakdowns=False), "month_period": month,
        "year": figures(org, year, breakdowns=False), "year_period": year,
        "open": session.scalar(open_cases) or 0,
        "high_open": int(high[0]), "high_signed": int(high[1]), "high_unsigned": int(high[0]) - int(high[1]),
        "overdue": overdue or 0, "orders_open": orders or 0, "orders_overdue": overdue_orders or 0,
        "townships": ranked_townships(org, year),
    }
