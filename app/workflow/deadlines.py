"""Deadlines of PRODUCT.md §4: lengths from settings (``deadline.<kind>`` = {"days", "unit"}),
counted in calendar days or in working days of the county's official calendar
(``CalendarDay``: public holidays, and weekend days made working days 调休).

``add_days`` and ``deadline_state`` are the two functions other modules use.  The pure
``add_working_days`` takes the calendar exceptions as a dict so it can be tested without a
database.  A paused case (中止) has no running clock; on resume its deadline moves by the
calendar days it was paused.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Mapping, Optional

from sqlalchemy import select

from app.db import session
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


def case_deadline_state(case, today: date) -> str:
    """The state of a case's mediation clock: "paused" while 中止, else as ``deadline_state``."""
    if case.paused_since is not None:
        return "paused"
    if case.status not in ("in_mediation", "pending_triage"):
        return "ok"
    return deadline_state(case.deadline_on, today)


def extend(case, today: date) -> date:
    """The new deadline after the one extension: the extension rule counted from the current deadline."""
    base = case.deadline_on or today
    return add_days(base, "extension")


def resume_deadline(due: Optional[date], paused_since: date, today: date) -> Optional[date]:
    """The deadline after a pause from ``paused_since`` to ``today``: moved by the days paused."""
    if due is None:
        return None
    return due + timedelta(days=max((today - paused_since).days, 0))


CARD_LABELS = {"near": "黄牌", "overdue": "红牌", "paused": "已中止", "ok": ""}
CARD_BADGES = {"near": "warning", "overdue": "danger", "paused": "secondary", "ok": ""}
