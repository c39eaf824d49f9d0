"""Deadline arithmetic: calendar and working days across month ends, public holidays and 调休
working weekends; 黄牌/红牌; the one extension; pause (中止) and resume."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.cases.services import apply_action
from app.errors import InvalidTransition
from app.settings.models import CalendarDay
from app.settings.services import set_setting
from app.workflow import deadlines
from app.workflow.deadlines import add_working_days, deadline_state, resume_deadline
from tests.workflow_factories import make_case, user

# 2026 National Day: 1–7 October off; Sunday 27 September and Saturday 10 October worked (调休).
NATIONAL_DAY = {**{date(2026, 10, d): False for d in range(1, 8)},
                date(2026, 9, 27): True, date(2026, 10, 10): True}


@pytest.mark.parametrize("start,days,expected", [
    (date(2026, 1, 30), 1, date(2026, 2, 2)),     # Friday → Monday, across a month end
    (date(2026, 2, 26), 3, date(2026, 3, 3)),     # Thu → Tue across February's end
    (date(2026, 12, 30), 3, date(2027, 1, 4)),    # across the year end
    (date(2026, 9, 25), 1, date(2026, 9, 27)),    # Friday → the 调休 Sunday
    (date(2026, 9, 30), 1, date(2026, 10, 8)),    # the whole holiday skipped
    (date(2026, 9, 30), 3, date(2026, 10, 10)),   # 8th, 9th, then the 调休 Saturday
    (date(2026, 9, 28), 7, date(2026, 10, 13)),   # 29, 30, 8, 9, 10(调休), 12, 13
])
def test_add_working_days(start, days, expected):
    assert add_working_days(start, days, NATIONAL_DAY) == expected


def test_add_working_days_without_calendar_is_weekdays():
    assert add_working_days(date(2026, 10, 2), 5, {}) == date(2026, 10, 9)


@pytest.mark.parametrize("due,today,warn,state", [
    (date(2026, 3, 10), date(2026, 3, 1), 3, "ok"),
    (date(2026, 3, 10), date(2026, 3, 7), 3, "near"),
    (date(2026, 3, 10), date(2026, 3, 10), 3, "near"),
    (date(2026, 3, 10), date(2026, 3, 11), 3, "overdue"),
    (None, date(2026, 3, 11), 3, "ok"),
])
def test_deadline_state(due, today, warn, state):
    assert deadline_state(due, today, warn) == state


def test_resume_moves_the_deadline_by_the_days_paused():
    assert resume_deadline(date(2026, 1, 31), date(2026, 1, 20), date(2026, 2, 3)) == date(2026, 2, 14)
    assert resume_deadline(None, date(2026, 1, 20), date(2026, 2, 3)) is None


def test_add_days_calendar_default_across_month_end(db):
    assert deadlines.add_days(date(2026, 1, 31), "mediation") == date(2026, 3, 2)
    assert deadlines.add_days(date(2026, 2, 27), "escalation") == date(2026, 3, 2)


def test_add_days_in_working_days_follows_the_admin_calendar(db):
    set_setting("deadline.department", {"days": 7, "unit": "working"})
    for day, working in NATIONAL_DAY.items():
        db.add(CalendarDay(day=day, is_working_day=working, name="国庆"))
    db.flush()
    assert deadlines.add_days(date(2026, 9, 28), "department") == date(2026, 10, 13)
    set_setting("deadline.warn_days", 5)
    assert deadline_state(date(2026, 10, 13), date(2026, 10, 8)) == "near"


def test_extension_once_with_a_reason(db, monkeypatch):
    monkeypatch.setattr("app.cases.services.today_local", lambda: date(2026, 1, 20))
    case = make_case("in_mediation", "village", deadline_on=date(2026, 1, 31))
    apply_action(user("village_mediator"), case, "extend_deadline", {"reason": "双方同意继续调解"})
    assert case.deadline_on == date(2026, 3, 2) and case.deadline_extended
    assert case.extension_reason == "双方同意继续调解"
    with pytest.raises(InvalidTransition) as exc:
        apply_action(user("village_mediator"), case, "extend_deadline", {"reason": "再延"})
    assert "只能延长一次" in exc.value.message


def test_pause_stops_the_clock_and_resume_moves_the_deadline(db, monkeypatch):
    today = {"d": date(2026, 1, 25)}
    monkeypatch.setattr("app.cases.services.today_local", lambda: today["d"])
    case = make_case("in_mediation", "village", deadline_on=date(2026, 1, 31))
    apply_action(user("village_mediator"), case, "pause", {"reason": "等待伤情鉴定"})
    assert case.paused_since == date(2026, 1, 25)
    assert deadlines.case_deadline_state(case, date(2026, 2, 20)) == "paused"  # no 红牌 while paused
    with pytest.raises(InvalidTransition):
        apply_action(user("village_mediator"), case, "extend_deadline", {"reason": "x"})
    today["d"] = date(2026, 2, 4)  # ten days later, across the month end
    apply_action(user("village_mediator"), case, "resume", {})
    assert case.deadline_on == date(2026, 2, 10) and case.paused_days == 10 and case.paused_since is None
    assert deadlines.case_deadline_state(case, date(2026, 2, 8)) == "near"
    assert deadlines.case_deadline_state(case, date(2026, 2, 11)) == "overdue"
    with pytest.raises(InvalidTransition):
        apply_action(user("village_mediator"), case, "resume", {})


def test_accept_uses_working_days_when_the_setting_says_so(db, monkeypatch):
    monkeypatch.setattr("app.cases.services.today_local", lambda: date(2026, 9, 30))
    set_setting("deadline.mediation", {"days": 3, "unit": "working"})
    for day, working in NATIONAL_DAY.items():
        db.add(CalendarDay(day=day, is_working_day=working))
    db.flush()
    case = make_case("pending_triage", "village")
    apply_action(user("village_mediator"), case, "accept", {"lead_mediator": "village_mediator"})
    assert case.deadline_on == date(2026, 10, 10)
    assert case.deadline_on - date(2026, 9, 30) == timedelta(days=10)


def _national_day_calendar(db):
    for day, working in NATIONAL_DAY.items():
        db.add(CalendarDay(day=day, is_working_day=working, name="国庆"))
    db.flush()


def test_resume_in_working_days_is_pure_with_exceptions():
    # Paused Tue 29 Sep, resumed Fri 9 Oct: the pause used 30 Sep, 8 Oct, 9 Oct (the holiday is free).
    assert deadlines.paused_span(date(2026, 9, 29), date(2026, 10, 9), "working", NATIONAL_DAY) == 3
    assert resume_deadline(date(2026, 10, 13), date(2026, 9, 29), date(2026, 10, 9), "working",
                           NATIONAL_DAY) == date(2026, 10, 16)
    # Calendar rule: moved by the ten calendar days.
    assert resume_deadline(date(2026, 10, 13), date(2026, 9, 29), date(2026, 10, 9)) == date(2026, 10, 23)


def test_resume_across_national_day_moves_by_working_days(db, monkeypatch):
    set_setting("deadline.mediation", {"days": 10, "unit": "working"})
    _national_day_calendar(db)
    today = {"d": date(2026, 9, 29)}
    monkeypatch.setattr("app.cases.services.today_local", lambda: today["d"])
    case = make_case("in_mediation", "village", deadline_on=date(2026, 10, 13))
    apply_action(user("village_mediator"), case, "pause", {"reason": "等待伤情鉴定"})
    today["d"] = date(2026, 10, 9)
    entry = apply_action(user("village_mediator"), case, "resume", {})
    # 30 Sep, 8 and 9 Oct were working days paused → three working days after 13 Oct.
    assert case.deadline_on == date(2026, 10, 16)
    assert case.paused_days == 3 and entry.data["unit"] == "working"


def test_resume_across_a_tiaoxiu_weekend_counts_the_worked_saturday(db, monkeypatch):
    set_setting("deadline.mediation", {"days": 10, "unit": "working"})
    _national_day_calendar(db)
    today = {"d": date(2026, 10, 9)}  # Friday
    monkeypatch.setattr("app.cases.services.today_local", lambda: today["d"])
    case = make_case("in_mediation", "village", deadline_on=date(2026, 10, 20))
    apply_action(user("village_mediator"), case, "pause", {"reason": "等待法院裁定"})
    today["d"] = date(2026, 10, 12)  # Monday; Saturday 10 Oct was a 调休 working day
    apply_action(user("village_mediator"), case, "resume", {})
    assert case.paused_days == 2  # Sat 10 (调休) and Mon 12; Sunday 11 is not counted
    assert case.deadline_on == date(2026, 10, 22)


def test_resume_after_extension_uses_the_extension_rule_unit(db, monkeypatch):
    set_setting("deadline.mediation", {"days": 30, "unit": "calendar"})
    set_setting("deadline.extension", {"days": 5, "unit": "working"})
    _national_day_calendar(db)
    today = {"d": date(2026, 9, 24)}
    monkeypatch.setattr("app.cases.services.today_local", lambda: today["d"])
    case = make_case("in_mediation", "village", deadline_on=date(2026, 9, 28))
    # Extension in working days from 28 Sep: 29, 30, 8, 9, 10 (调休 Saturday).
    apply_action(user("village_mediator"), case, "extend_deadline", {"reason": "双方同意继续调解"})
    assert case.deadline_on == date(2026, 10, 10)
    apply_action(user("village_mediator"), case, "pause", {"reason": "等待鉴定"})
    today["d"] = date(2026, 9, 28)  # Fri 25, Sun 27 (调休), Mon 28 → 3 working days paused
    apply_action(user("village_mediator"), case, "resume", {})
    assert case.paused_days == 3
    assert case.deadline_on == date(2026, 10, 14)  # 12, 13, 14 after the 调休 Saturday
