"""Report page helpers: default org/month, the 12-month trend (from the figure summary),
the comparisons beside the month, and the leaders' dashboard."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Optional

from sqlalchemy import and_, case, func, select

from app.accounts.models import User
from app.accounts.roles import COUNTY_ROLES, TOWNSHIP_ROLES
from app.cases.models import Case, SupervisionOrder
from app.cases.queries import scope_cases
from app.cases.vocab import OPEN_STATUSES
from app.db import session
from app.orgs.models import OrgUnit
from app.reports.queries import (Period, backlog_part, by_township, figures_and_counts, month_period, org_clause,
                                 rate)


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


def trend(org: OrgUnit, year: int, month: int, months: int = 12) -> dict[str, Any]:
    """Accepted, resolved and 化解率 for the ``months`` months ending with ``year-month`` (12 on
    the report page; any number for cross-year trends), read from the figure summary
    (``app.reports.summary``), whose figures are the §6 figures of each month: accepted and
    accepted_resolved by registration month (resolved by the end of that month), resolved by
    closing month."""
    from app.reports.cache import cached
    return cached("trend", org, (year, month, months), lambda: _compute_trend(org, year, month, months))


def _compute_trend(org: OrgUnit, year: int, month: int, months: int) -> dict[str, Any]:
    from app.reports.summary import monthly_counts
    span = [shift_month(year, month, d) for d in range(-(months - 1), 1)]
    yms = [y * 100 + m for y, m in span]
    counts = monthly_counts(org, yms[0], yms[-1])
    zero = {"accepted": 0, "accepted_resolved": 0, "resolved": 0}
    rows = [counts.get(ym, zero) for ym in yms]
    return {
        "months": [f"{y:04d}-{m:02d}" for y, m in span],
        "accepted": [r["accepted"] for r in rows],
        "resolved": [r["resolved"] for r in rows],
        "resolution_rate": [rate(r["accepted_resolved"], r["accepted"]) for r in rows],
    }


def ranked_townships(org: OrgUnit, p: Period, rows: Optional[list[dict[str, Any]]] = None) -> list[dict[str, Any]]:
    """Townships by 化解率 descending ("—" rates last), then accepted descending, then code.
    ``rows``: the report's own ``by_township`` when the caller has it (not queried twice)."""
    rows = by_township(org, p) if rows is None else rows
    return sorted(rows, key=lambda r: (r["resolution_rate"] is None, -(r["resolution_rate"] or 0),
                                       -r["accepted"], r["code"]))


def dashboard(user: User, org: OrgUnit, today: date) -> dict[str, Any]:
    """Key figures this month and this year, the high-risk summary, overdue open cases, open
    supervision orders and the ranked townships, for a county leader or supervisor."""
    this_month = month_period(today.year, today.month)
    month = Period(this_month.start, today)
    year = Period(date(today.year, 1, 1), today)
    # open, overdue and high-risk (signed or not) in one index-only pass over the county's
    # open statuses (ix_case_county_status)
    high = Case.risk_level == "high"
    counts = session.execute(
        scope_cases(user, select(func.count(),
                                 func.coalesce(func.sum(case((Case.deadline_on < today, 1), else_=0)), 0),
                                 func.coalesce(func.sum(case((high, 1), else_=0)), 0),
                                 func.coalesce(func.sum(case((and_(high, Case.signed_off_at.is_not(None)), 1),
                                                             else_=0)), 0))
                    .select_from(Case))
        .where(org_clause(org), Case.status.in_(OPEN_STATUSES))).one()
    open_count, overdue, high_open, high_signed = (int(v or 0) for v in counts)
    orders = session.scalar(
        scope_cases(user, select(func.count(SupervisionOrder.id)).select_from(SupervisionOrder)
                    .join(Case, Case.id == SupervisionOrder.case_id))
        .where(org_clause(org), SupervisionOrder.answered_at.is_(None)))
    overdue_orders = session.scalar(
        scope_cases(user, select(func.count(SupervisionOrder.id)).select_from(SupervisionOrder)
                    .join(Case, Case.id == SupervisionOrder.case_id))
        .where(org_clause(org), SupervisionOrder.answered_at.is_(None), SupervisionOrder.due_on < today))
    month_figures, month_counts = figures_and_counts(org, month, breakdowns=False)
    return {
        "month": month_figures, "month_period": month,
        # the same end date: the year's backlog is the month's (counted once)
        "year": figures_and_counts(org, year, breakdowns=False, backlog=backlog_part(month_counts))[0],
        "year_period": year,
        "open": open_count,
        "high_open": high_open, "high_signed": high_signed, "high_unsigned": high_open - high_signed,
        "overdue": overdue, "orders_open": orders or 0, "orders_overdue": overdue_orders or 0,
        "townships": ranked_townships(org, year),
    }
