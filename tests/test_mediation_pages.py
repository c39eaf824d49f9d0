"""Mediation pages and to-dos: the 司法确认 reminder, the roster form, the liaison's answer on
the case, refusals for roles that may not act, and the archived case's read-only pages."""
from __future__ import annotations

from datetime import timedelta

from app.cases.services import apply_action
from app.home.services import TODO_PROVIDERS
from app.mediation import services
from app.mediation.models import RosterMember
from app.mediation.todos import judicial_confirmation_todo
from app.templating import today_local
from tests.helpers import csrf_token
from tests.intake_helpers import login
from tests.mediation_factories import mediation_case, org, user, written_agreement_data
from tests.workflow_factories import LIAISON_DEPT, VILLAGE


def test_judicial_confirmation_reminder_before_30_days_run_out(db, app):
    case = mediation_case()
    # agreed 27 days ago (3 days left: the window runs from the agreement's date), recorded today
    services.agree(user("township_mediator"), case,
                   written_agreement_data(case, agreed_on=(today_local() - timedelta(days=27)).isoformat()))
    with app.test_request_context():
        section = judicial_confirmation_todo(user("township_mediator"))
        assert section is not None and any(case.number in i.title for i in section.items)
        assert judicial_confirmation_todo in TODO_PROVIDERS
        services.confirm_judicially(user("township_mediator"), case,
                                    {"applied_on": today_local().isoformat(), "court": "南湖人民法庭"})
        section = judicial_confirmation_todo(user("township_mediator"))
        assert section is None or all(case.number not in i.title for i in section.items)


def test_roster_add_validates_and_lists(db, client, auth):
    login(auth, "township_mediator")
    token = csrf_token(client, "/mediation/roster")
    r = client.post("/mediation/roster", data={"csrf_token": token, "kind": "wulao", "name": "", "phone": "abc",
                                               "org_id": str(org(VILLAGE).id)})
    assert r.status_code == 422 and "请填写姓名或名称" in r.get_data(as_text=True)
    r = client.post("/mediation/roster", data={"csrf_token": token, "kind": "studio", "name": "老杨调解工作室",
                                               "specialty": "婚姻家庭", "org_id": str(org(VILLAGE).id)})
    assert r.status_code == 302
    assert db.query(RosterMember).filter_by(name="老杨调解工作室").one().kind == "studio"
    assert "老杨调解工作室" in client.get("/mediation/roster").get_data(as_text=True)


def test_liaison_answer_shows_on_case_and_liaison_cannot_record_sessions(db, client, auth):
    case = mediation_case()
    services.invite_department(user("township_mediator"), case, {"department": LIAISON_DEPT, "request": "请派员联调"})
    apply_action(user("dept_liaison"), case, "department_feedback", {"answer": "司法所已派员参加"})
    login(auth, "dept_liaison")
    page = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert "司法所已派员参加" in page and "已反馈" in page
    token = csrf_token(client, f"/cases/{case.number}")
    r = client.post(f"/mediation/cases/{case.number}/session", data={"csrf_token": token, "place": "x"})
    assert r.status_code == 403


def test_archived_case_pages_are_read_only(db, client, auth):
    case = mediation_case("archived", outcome="withdrawn")
    login(auth, "township_mediator")
    page = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert "本案已归档，只能查阅" in page and 'data-testid="new-session"' not in page
    token = csrf_token(client, f"/cases/{case.number}")
    r = client.post(f"/mediation/cases/{case.number}/follow-up", data={"csrf_token": token, "satisfaction": "satisfied"})
    assert r.status_code == 409 and "已归档" in r.get_data(as_text=True)
    assert client.get(f"/mediation/cases/{case.number}/documents/cover").status_code == 200


def test_case_page_warns_when_lead_mediator_is_a_party(db, client, auth):
    case = mediation_case()
    case.parties[1].name = user("township_mediator").display_name
    db.flush()
    login(auth, "township_mediator")
    page = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert 'data-testid="recusal-warning"' in page and "应当回避" in page


def test_case_page_follow_up_lines_leave_out_what_was_not_recorded(db, client, auth):
    """A ledger-imported follow-up often has no satisfaction and no visitor: the page names what
    there is, without empty ``·`` separators."""
    import re

    from app.db import session
    from app.cases.models import FollowUp
    case = mediation_case("closed", outcome="success")
    visited = today_local() - timedelta(days=3)
    case.followed_up_on, case.performance, case.satisfaction = visited, "performed", None
    session.add(FollowUp(case_id=case.id, visited_on=visited, performance="performed", notes="从台账导入"))
    session.flush()
    login(auth, "township_mediator")
    page = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert f"<dd class=\"col-8 col-md-10\">{visited} · 已履行</dd>" in page
    follow_ups = re.search(r'data-testid="follow-ups">(.*?)</ul>', page, re.S).group(1)
    assert f"<li>{visited} · 已履行 · — · 从台账导入</li>" in follow_ups


def test_timeline_entry_without_an_actor_starts_with_its_status(db, client, auth):
    """An imported entry names no actor: its line reads 「已办结」, not 「 · 已办结」."""
    import re

    from app.cases.models import TimelineEntry
    from app.db import session
    case = mediation_case("closed", outcome="success")
    session.add(TimelineEntry(case_id=case.id, action="import", from_status=None, to_status="closed", note="从台账导入"))
    session.flush()
    login(auth, "township_mediator")
    page = client.get(f"/cases/{case.number}").get_data(as_text=True)
    timeline = re.search(r'data-testid="timeline">(.*?)</ul>', page, re.S).group(1)
    assert '<div class="text-muted">已办结</div>' in timeline and '<div class="text-muted"> · ' not in timeline
