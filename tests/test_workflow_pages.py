"""The workflow pages: the case panel and its action forms, the queues, the board, the 督办
list, and the admin's calendar and routing pages."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask import g
from sqlalchemy import select

from app.settings.models import CalendarDay
from app.settings.services import get_setting
from app.templating import today_local
from tests.helpers import csrf_token
from tests.workflow_factories import add_order, add_task, make_case, org, user


def forget_user():
    """The db fixture's app context outlives requests, and Flask-Login caches the user in ``g``."""
    g.pop("_login_user", None)
    g.pop("csrf_token", None)  # Flask-WTF caches the session's token in ``g`` too


def token_for(client, path):
    forget_user()
    return csrf_token(client, path)


def fresh_login(app, username):
    """A new client logged in as ``username`` (a second user in the same test)."""
    from tests.conftest import AuthActions
    forget_user()
    other = app.test_client()
    AuthActions(other).login(username)
    forget_user()
    return other


def page(client, path):
    forget_user()
    resp = client.get(path)
    assert resp.status_code == 200, resp.status_code
    return resp.get_data(as_text=True)


def test_panel_offers_the_actions_of_the_role(client, auth, db):
    case = make_case("pending_triage", "township", dispute_type="劳动争议", type_category="劳动争议")
    db.commit()
    auth.login("township_director")
    html = page(client, f"/workflow/cases/{case.number}")
    for name in ("accept", "answer_directly", "decline", "transfer", "escalate", "grade_risk"):
        assert f'data-testid="form-{name}"' in html
    assert 'data-testid="form-agree"' not in html and 'data-testid="form-sign_off"' not in html
    assert "分流建议：此类纠纷通常由「人社」负责" in html
    html = page(fresh_login(client.application, "township_secretary"), f"/workflow/cases/{case.number}")
    assert 'data-testid="no-actions"' in html


def test_posting_an_action_form_moves_the_case(client, auth, db):
    case = make_case("pending_triage", "township")
    db.commit()
    auth.login("township_director")
    path = f"/workflow/cases/{case.number}"
    token = token_for(client, path)
    resp = client.post(f"{path}/actions/accept", data={
        "csrf_token": token, "lead_mediator": user("township_mediator").id,
        "co_mediators": [user("township_director").id], "handling_level": "township", "next": path})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(path)
    db.expire_all()
    assert case.status == "in_mediation" and case.co_mediator_ids == [user("township_director").id]
    html = page(client, path)
    assert "已完成：受理" in html and "办理期限" in html


def test_bad_form_input_is_flashed_and_changes_nothing(client, auth, db):
    case = make_case("pending_triage", "township")
    db.commit()
    auth.login("township_director")
    path = f"/workflow/cases/{case.number}"
    resp = client.post(f"{path}/actions/decline", data={"csrf_token": token_for(client, path), "reason": "x"},
                       follow_redirects=True)
    assert "请填写引导途径" in resp.get_data(as_text=True)
    db.expire_all()
    assert case.status == "pending_triage"


def test_form_post_without_csrf_is_refused(client, auth, db):
    case = make_case("pending_triage", "township")
    db.commit()
    auth.login("township_director")
    resp = client.post(f"/workflow/cases/{case.number}/actions/withdraw", data={"reason": "x"})
    assert resp.status_code == 400


def test_panel_shows_deadline_cards_risk_history_tasks_and_orders(client, auth, db):
    today = today_local()
    case = make_case("in_mediation", "township", deadline_on=today - timedelta(days=1))
    add_task(case, "invite")
    add_order(case, org("429960002"))
    db.commit()
    auth.login("township_director")
    from app.cases.services import apply_action
    apply_action(user("township_director"), case, "grade_risk", {"level": "high", "factors": ["越级上访倾向"]})
    db.commit()
    html = page(client, f"/workflow/cases/{case.number}")
    assert "红牌" in html and "逾期 1 天" in html
    assert 'data-testid="risk-history"' in html and "越级上访倾向" in html and "待签批" in html
    assert "南湖镇司法所" in html and "邀请联调" in html
    assert "限期化解并报告" in html


def test_department_queue(client, auth, db):
    case = make_case("transferred", "township")
    add_task(case, due_on=today_local() - timedelta(days=1))
    db.commit()
    auth.login("dept_liaison")
    html = page(client, "/workflow/department")
    assert case.number in html and "红牌" in html
    assert fresh_login(client.application, "township_director").get("/workflow/department").status_code == 403


def test_high_risk_board_lists_open_high_cases_of_the_county(client, auth, db):
    unsigned = make_case("in_mediation", "township", risk_level="high")
    signed = make_case("in_mediation", "village", risk_level="high")
    closed = make_case("closed", "township", risk_level="high")
    low = make_case("in_mediation", "township", risk_level="low")
    db.commit()
    from app.cases.services import apply_action
    apply_action(user("township_secretary"), signed, "sign_off",
                 {"plan": "包案化解", "leader": "township_secretary", "invited": ["五老张某"]})
    db.commit()
    auth.login("county_supervisor")
    html = page(client, "/workflow/high-risk")
    assert unsigned.number in html and signed.number in html
    assert closed.number not in html and low.number not in html
    assert "已签批" in html and "待签批" in html
    assert fresh_login(client.application, "village_mediator").get("/workflow/high-risk").status_code == 403


def test_sign_off_queue(client, auth, db):
    case = make_case("in_mediation", "village", risk_level="high")
    db.commit()
    auth.login("township_secretary")
    assert case.number in page(client, "/workflow/sign-offs")


def test_supervision_index_by_state(client, auth, db):
    case = make_case("in_mediation", "township")
    overdue = add_order(case, org("429960002"), due_on=today_local() - timedelta(days=1))
    overdue.requirement = "逾期的督办"
    open_order = add_order(case, org("429960002"))
    open_order.requirement = "在办的督办"
    db.commit()
    auth.login("county_supervisor")
    assert "在办的督办" in page(client, "/workflow/supervision")
    html = page(client, "/workflow/supervision?state=overdue")
    assert "逾期的督办" in html and "在办的督办" not in html


def test_admin_calendar_and_routing(client, auth, db):
    auth.login("admin")
    token = token_for(client, "/workflow/calendar")
    resp = client.post("/workflow/calendar", data={"csrf_token": token, "day": "2026-10-10", "kind": "working",
                                                   "name": "国庆调休"})
    assert resp.status_code == 302
    day = db.get(CalendarDay, date(2026, 10, 10))
    assert day.is_working_day and day.name == "国庆调休"
    assert "国庆调休" in page(client, "/workflow/calendar?year=2026")
    client.post("/workflow/calendar", data={"csrf_token": token, "delete": "2026-10-10"})
    db.expire_all()
    assert db.get(CalendarDay, date(2026, 10, 10)) is None

    html = page(client, "/workflow/routing")
    assert "劳动争议" in html
    from app.settings.models import DisputeType
    labour = db.scalar(select(DisputeType).where(DisputeType.name == "劳动争议"))
    resp = client.post("/workflow/routing", data={"csrf_token": token, f"type_{labour.id}": "司法所"})
    assert resp.status_code == 302
    assert get_setting("routing.type_department")["劳动争议"] == "司法所"


@pytest.mark.parametrize("path", ["/workflow/calendar", "/workflow/routing"])
def test_admin_pages_refuse_others(client, auth, db, path):
    auth.login("county_supervisor")
    assert client.get(path).status_code == 403


def test_case_list_shows_the_case_pages_deadline_cards(client, auth, db):
    today = today_local()
    near = make_case("in_mediation", "township", deadline_on=today + timedelta(days=1))
    late = make_case("in_mediation", "township", deadline_on=today - timedelta(days=2))
    paused = make_case("in_mediation", "township", deadline_on=today - timedelta(days=2),
                       paused_since=today - timedelta(days=5), pause_reason="等待鉴定")
    fine = make_case("in_mediation", "township", deadline_on=today + timedelta(days=20))
    escalated = make_case("escalated", "township", deadline_on=today - timedelta(days=2))
    transferred = make_case("transferred", "township", deadline_on=today - timedelta(days=2),
                            paused_since=today - timedelta(days=5))
    closed = make_case("closed", "township", deadline_on=today - timedelta(days=2))
    db.commit()
    auth.login("township_director")
    html = page(client, "/cases/")

    def state(case):
        row = html[html.index(f">{case.number}</a>"):]
        row = row[:row.index("</tr>")]
        return row[row.index('data-deadline-state="') + 21:].split('"')[0], row
    expected = {near: ("near", "黄牌"), late: ("overdue", "红牌"), paused: ("paused", "已中止"),
                fine: ("ok", None), escalated: ("ok", None), transferred: ("ok", None), closed: ("ok", None)}
    for case, (want, label) in expected.items():
        got, row = state(case)
        assert got == want, (case.status, got)
        if label:
            assert f'data-testid="deadline-badge">{label}</span>' in row
        else:
            assert 'data-testid="deadline-badge"' not in row


def test_high_risk_board_late_flag_follows_the_sign_off_hours_setting(client, auth, db):
    from datetime import datetime, timezone

    from app.settings.services import set_setting
    from app.workflow.queries import high_risk_board
    now = datetime.now(timezone.utc)
    within = make_case("in_mediation", "township", risk_level="high", high_risk_at=now - timedelta(hours=30))
    late = make_case("in_mediation", "township", risk_level="high", high_risk_at=now - timedelta(hours=50))
    set_setting("deadline.sign_off_hours", 48)
    db.commit()
    flags = {r["case"].number: r["late"] for r in high_risk_board(user("county_supervisor"))}
    assert flags[within.number] is False and flags[late.number] is True
    auth.login("county_supervisor")
    html = page(client, "/workflow/high-risk")
    assert html.count("超48小时未签批") == 1 and "超24小时" not in html
