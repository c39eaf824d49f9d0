"""Deadlines of PRODUCT.md §4: lengths from settings (``deadline.<kind>`` = {"days", "unit"}),
counted in calendar days or in working days of the county's official calendar
(``CalendarDay``: public holidays, and weekend days made working days 调休).

``add_days`` and ``deadline_state`` are the two functions other modules use.  The pure
``add_working_days`` takes the calendar exceptions as a dict so it can be tested without a
database.  A paused case (中止) has no running clock; on resume its deadline moves by the
days the pause used up, counted in the unit of the case's deadline rule (the mediation rule,
or the extension rule once extended): calendar days, or working days of the admin calendar.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Mapping, Optional

from sqlalchemy import select

from app.db import session
from app.i18n import N_
from app.settings.models import CalendarDay
from app.settings.services import get_setting

# Fallbacks for kinds the settings module has no default for.
FALLBACK_RULES = {"extension": None, "supervision": {"days": 7, "unit": "calendar"}}


def rule_for(kind: str) -> dict:
    """The {"days", "unit"} rule of deadline kind ``kind`` (the extension defaults to the mediation rule)."""
    rule = get_setting(f"deadline.{kind}")
    if rule is None:
        rule = FALLBACK_RULES.get(kind) or get_setting("deadline.mediation")
    if isinstance(rule, (int, float)):
        rule = {"days": int(rule), "unit": "calendar"}
    return {"days": int(rule.get("days", 0)), "unit": rule.get("unit", "calendar")}


def is_working_day(day: date, exceptions: Mapping[date, bool]) -> bool:
    """Monday–Friday, unless the calendar says otherwise (holiday → False, 调休 → True)."""
    if day in exceptions:
        return exceptions[day]
    return day.weekday() < 5


def add_working_days(start: date, days: int, exceptions: Mapping[date, bool]) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself not counted)."""
    day = start
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day, exceptions):
            counted += 1
    return day


def calendar_exceptions(start: date, end: date) -> dict[date, bool]:
    """The admin calendar's exceptions between ``start`` and ``end``."""
    rows = session.execute(select(CalendarDay.day, CalendarDay.is_working_day)
                           .where(CalendarDay.day >= start, CalendarDay.day <= end)).all()
    return {d: w for d, w in rows}


def add_n(start: date, days: int, unit: str) -> date:
    """``start`` plus ``days`` calendar or working days."""
    if unit != "working":
        return start + timedelta(days=days)
    # Working days never need more than ~2.5× the span, plus the long holidays.
    exceptions = calendar_exceptions(start, start + timedelta(days=days * 3 + 30))
    return add_working_days(start, days, exceptions)


def add_days(start: date, kind: str) -> date:
    """The deadline of kind ``kind`` (mediation, escalation, department, follow_up,
    judicial_confirmation, extension, supervision) counted from ``start``."""
    rule = rule_for(kind)
    return add_n(start, rule["days"], rule["unit"])


def sign_off_hours() -> int:
    """Hours a 高 case may wait for its sign-off (签批) after it was graded 高 (``deadline.sign_off_hours``)."""
    return int(get_setting("deadline.sign_off_hours") or 24)


def warn_days() -> int:
    return int(get_setting("deadline.warn_days") or 0)


def deadline_state(due: Optional[date], today: date, warn: Optional[int] = None) -> str:
    """"ok", "near" (黄牌: within ``deadline.warn_days``) or "overdue" (红牌: past the due day)."""
    if due is None:
        return "ok"
    if today > due:
        return "overdue"
    if (due - today).days <= (warn_days() if warn is None else warn):
        return "near"
    return "ok"


RUNNING_STATUSES = ("in_mediation", "pending_triage")  # the mediation clock runs in these states


def case_deadline_state(case, today: date, warn: Optional[int] = None) -> str:
    """The state of a case's mediation clock: "ok" when the clock is not running (escalated,
    transferred, closed ...), "paused" while 中止, else as ``deadline_state``.  Pure on the
    case's own columns (lists call it per row; pass ``warn`` to read the setting once)."""
    if case.status not in RUNNING_STATUSES:
        return "ok"
    if case.paused_since is not None:
        return "paused"
    return deadline_state(case.deadline_on, today, warn)


def extend(case, today: date) -> date:
    """The new deadline after the one extension: the extension rule counted from the current deadline."""
    base = case.deadline_on or today
    return add_days(base, "extension")


def working_days_between(start: date, end: date, exceptions: Mapping[date, bool]) -> int:
    """The working days after ``start`` up to and including ``end`` (0 when ``end`` <= ``start``)."""
    count = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day, exceptions):
            count += 1
    return count


def case_clock_unit(case) -> str:
    """The unit ("calendar" or "working") the case's mediation deadline is counted in."""
    return rule_for("extension" if case.deadline_extended else "mediation")["unit"]


def paused_span(paused_since: date, today: date, unit: str = "calendar",
                exceptions: Optional[Mapping[date, bool]] = None) -> int:
    """The days a pause from ``paused_since`` to ``today`` used up: calendar days, or the working
    days after ``paused_since`` up to and including ``today`` (the admin calendar's when
    ``exceptions`` is not given)."""
    if unit != "working":
        return max((today - paused_since).days, 0)
    if exceptions is None:
        exceptions = calendar_exceptions(paused_since, today)
    return working_days_between(paused_since, today, exceptions)


def resume_deadline(due: Optional[date], paused_since: date, today: date, unit: str = "calendar",
                    exceptions: Optional[Mapping[date, bool]] = None) -> Optional[date]:
    """The deadline after a pause from ``paused_since`` to ``today``: moved by the days the pause
    used up — calendar days, or (``unit="working"``) as many working days as the pause took,
    counted on from ``due`` along the calendar (holidays skipped, 调休 weekend days counted)."""
    if due is None:
        return None
    if unit != "working":
        return due + timedelta(days=paused_span(paused_since, today))
    if exceptions is None:
        low, high = min(paused_since, due), max(today, due)
        span = (today - paused_since).days
        exceptions = calendar_exceptions(low, high + timedelta(days=span * 3 + 30))
    return add_working_days(due, paused_span(paused_since, today, "working", exceptions), exceptions)


CARD_LABELS = {"near": N_("黄牌"), "overdue": N_("红牌"), "paused": N_("已中止"), "ok": ""}  # shown with _()
CARD_BADGES = {"near": "warning", "overdue": "danger", "paused": "secondary", "ok": ""}
