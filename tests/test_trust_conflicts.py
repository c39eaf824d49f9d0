"""No lost updates (issue 9): two people load the same record, both save; the second gets the
409 conflict page (or the API's 409 JSON) showing both versions, the first's change is kept,
and the second's input is kept on the page (one click re-applies it onto the newest version).

Each test fails if the version check were removed: the second save would then succeed (a
silent overwrite or a double action)."""
from __future__ import annotations

import html as htmllib
import re

import pytest
from sqlalchemy import func, select

from app.accounts.services import issue_token
from app.cases.models import Case, TimelineEntry
from app.mediation.models import MediationSession
from tests.conftest import DEMO_PASSWORD
from tests.helpers import csrf_token
from tests.mediation_factories import mediation_case
from tests.workflow_factories import make_case, user


def login(app, username: str):
    """A second browser: its own test client (cookies), logged in as ``username``."""
    c = app.test_client()
    token = csrf_token(c, "/login")
    resp = c.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"], "login failed"
    return c


def admin_login(app):
    """The admin logs in with the second factor (enrolling a TOTP secret on first login)."""
    import pyotp
    c = app.test_client()
    token = csrf_token(c, "/login")
    resp = c.post("/login", data={"username": "admin", "password": DEMO_PASSWORD, "csrf_token": token})
    assert resp.status_code == 302
    if "totp-setup" in resp.headers["Location"]:
        page = c.get("/login/totp-setup").get_data(as_text=True)
        secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        resp = c.post("/login/totp-setup", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert resp.status_code == 302 and "/login" not in resp.headers["Location"], "admin login failed"
    return c


def form_fields(page: str, testid: str) -> dict[str, str]:
    """The hidden inputs (csrf_token, version) of the form marked ``data-testid=testid``."""
    m = re.search(r'<form[^>]*data-testid="%s"[^>]*>(.*?)</form>' % re.escape(testid), page, re.S)
    assert m, f"no form {testid}"
    out = {}
    for tag in re.findall(r"<input[^>]*>", m.group(1)):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            out[name.group(1)] = htmllib.unescape(value.group(1)) if value else ""
    return out


def hidden_of(page: str) -> dict[str, str]:
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    version = re.search(r'name="version"[^>]*value="([^"]*)"', page).group(1)
    return {"csrf_token": token, "version": version}


def reapply_form(page: str) -> dict[str, list[str]]:
    """The conflict page's one-click re-apply form, as posted fields."""
    m = re.search(r'<form[^>]*data-testid="conflict-reapply"[^>]*>(.*?)</form>', page, re.S)
    assert m, "no re-apply form on the conflict page"
    out: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', m.group(1)):
        out.setdefault(name, []).append(htmllib.unescape(value))
    return out


def assert_conflict_page(resp, mine: str, theirs: str, old_version: int, new_version: int) -> str:
    assert resp.status_code == 409
    page = resp.get_data(as_text=True)
    assert 'data-testid="conflict-page"' in page and "记录已被他人修改" in page
    submitted = re.search(r'data-testid="conflict-submitted".*?</dl>', page, re.S).group(0)
    current = re.search(r'data-testid="conflict-current".*?</dl>', page, re.S).group(0)
    assert mine in submitted, "the user's input is shown"
    assert theirs in current, "the stored (newer) values are shown"
    assert f"第 {old_version} 版" in page and f"第 {new_version} 版" in page
    assert mine in re.search(r'data-testid="conflict-copy"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    return page


# ---------------------------------------------------------------------------------------------
# The case edit form


def test_case_edit_second_save_gets_conflict_page_and_first_change_kept(app, client, db):
    case = make_case("in_mediation", "village", summary="原来的简要情况", people_involved=2)
    db.commit()
    number = case.number
    a, b = login(app, "village_mediator"), login(app, "township_mediator")
    form_a = hidden_of(a.get(f"/cases/{number}/edit").get_data(as_text=True))
    form_b = hidden_of(b.get(f"/cases/{number}/edit").get_data(as_text=True))
    assert form_a["version"] == form_b["version"] == str(case.version)
    base = {"source": "群众来访", "type": "邻里", "occurred_on": "", "amount": "", "claims": ""}

    r1 = a.post(f"/cases/{number}/edit", data={**base, **form_a, "summary": "甲修改后的情况", "people_involved": "3"})
    assert r1.status_code == 302
    r2 = b.post(f"/cases/{number}/edit", data={**base, **form_b, "summary": "乙同时写的情况", "people_involved": "9"})
    page = assert_conflict_page(r2, "乙同时写的情况", "甲修改后的情况", int(form_b["version"]), int(form_b["version"]) + 1)

    stored = db.scalar(select(Case).where(Case.number == number).execution_options(populate_existing=True))
    assert (stored.summary, stored.people_involved) == ("甲修改后的情况", 3), "the first save is kept"
    assert stored.version == int(form_b["version"]) + 1

    # One click re-applies the second user's input onto the newest version (their decision).
    again = reapply_form(page)
    assert again["version"] == [str(stored.version)] and again["summary"] == ["乙同时写的情况"]
    r3 = b.post(f"/cases/{number}/edit", data=again)
    assert r3.status_code == 302
    db.refresh(stored)
    assert (stored.summary, stored.people_involved) == ("乙同时写的情况", 9)
    edits = db.scalars(select(TimelineEntry).where(TimelineEntry.case_id == stored.id,
                                                   TimelineEntry.action == "edit")).all()
    assert len(edits) == 2


def test_case_edit_without_version_is_refused(app, client, db):
    case = make_case("in_mediation", "village")
    db.commit()
    a = login(app, "village_mediator")
    token = hidden_of(a.get(f"/cases/{case.number}/edit").get_data(as_text=True))["csrf_token"]
    resp = a.post(f"/cases/{case.number}/edit", data={"csrf_token": token, "source": "群众来访", "type": "邻里",
                                                      "summary": "没有版本号的修改"})
    assert resp.status_code == 422
    db.refresh(case)
    assert case.summary != "没有版本号的修改"


# ---------------------------------------------------------------------------------------------
# A workflow action on the case page


def test_workflow_action_twice_at_once_second_gets_409_not_a_double_action(app, client, db):
    """Two mediators open the same case and both pause its clock (中止) from the panel: the
    second gets the conflict page with both reasons, and the clock is paused once."""
    case = make_case("in_mediation", "village")
    db.commit()
    number = case.number
    a, b = login(app, "village_mediator"), login(app, "village_mediator")
    fields_a = form_fields(a.get(f"/cases/{number}").get_data(as_text=True), "form-pause")
    fields_b = form_fields(b.get(f"/cases/{number}").get_data(as_text=True), "form-pause")
    assert fields_a["version"] == str(case.version)
    url = f"/workflow/cases/{number}/actions/pause"
    r1 = a.post(url, data={**fields_a, "reason": "甲：等待伤情鉴定"})
    assert r1.status_code == 302
    r2 = b.post(url, data={**fields_b, "reason": "乙：等待法院判决"})
    page = assert_conflict_page(r2, "乙：等待法院判决", "甲：等待伤情鉴定",
                                int(fields_b["version"]), int(fields_b["version"]) + 1)
    assert "reapply" in page
    n = db.scalar(select(func.count()).select_from(TimelineEntry).where(
        TimelineEntry.case_id == case.id, TimelineEntry.action == "pause"))
    assert n == 1, "no double action"


# ---------------------------------------------------------------------------------------------
# The API: PATCH with a stale version / If-Match, and an action with a stale version


def test_api_stale_version_is_409_with_current_version(client, db):
    case = make_case("in_mediation", "village", summary="API 原来的情况")
    db.commit()
    headers = {"Authorization": f"Bearer {issue_token(user('village_mediator'))}"}
    got = client.get(f"/api/v1/cases/{case.number}", headers=headers)
    v = got.get_json()["version"]
    assert got.headers["ETag"] == f'"{v}"'

    first = client.patch(f"/api/v1/cases/{case.number}", json={"version": v, "summary": "API 甲的修改"},
                         headers=headers)
    assert first.status_code == 200 and first.get_json()["version"] == v + 1
    second = client.patch(f"/api/v1/cases/{case.number}", json={"summary": "API 乙的修改"},
                          headers={**headers, "If-Match": f'"{v}"'})
    assert second.status_code == 409
    body = second.get_json()
    assert body["error"] == "操作冲突" and "已被他人修改" in body["message"]
    assert body["current_version"] == v + 1 and body["your_version"] == v
    assert body["current"]["纠纷简要情况"] == "API 甲的修改" and body["submitted"]["纠纷简要情况"] == "API 乙的修改"
    assert second.headers["ETag"] == f'"{v + 1}"'

    action = client.post(f"/api/v1/cases/{case.number}/actions", headers=headers,
                         json={"action": "pause", "reason": "过期的理由", "version": v})
    assert action.status_code == 409 and action.get_json()["current_version"] == v + 1
    db.refresh(case)
    assert case.summary == "API 甲的修改" and case.version == v + 1
    assert not any(t.action == "pause" for t in case.timeline)
    # With the current version both go through.
    ok = client.post(f"/api/v1/cases/{case.number}/actions", headers={**headers, "If-Match": f'"{v + 1}"'},
                     json={"action": "pause", "reason": "当前版本：等待鉴定"})
    assert ok.status_code == 200 and ok.get_json()["version"] == v + 2


# ---------------------------------------------------------------------------------------------
# Other edited objects: a mediation record (调解记录) and a setting


def test_mediation_record_second_save_gets_conflict_page(app, client, db):
    case = mediation_case("in_mediation", "township")
    db.commit()
    number = case.number
    parties = [str(p.id) for p in case.parties]
    mediator = str(user("township_mediator").id)
    a, b = login(app, "township_mediator"), login(app, "township_director")
    form_a = hidden_of(a.get(f"/mediation/cases/{number}/session").get_data(as_text=True))
    form_b = hidden_of(b.get(f"/mediation/cases/{number}/session").get_data(as_text=True))
    base = {"held_on": "2026-01-06", "place": "村委会调解室", "party_ids": parties, "user_ids": [mediator]}
    r1 = a.post(f"/mediation/cases/{number}/session", data={**base, **form_a, "record": "甲登记的调解情况"})
    assert r1.status_code == 302
    r2 = b.post(f"/mediation/cases/{number}/session", data={**base, **form_b, "record": "乙登记的调解情况"})
    page = assert_conflict_page(r2, "乙登记的调解情况", "甲登记的调解情况",
                                int(form_b["version"]), int(form_b["version"]) + 1)
    records = db.scalars(select(MediationSession.record).where(MediationSession.case_id == case.id)).all()
    assert records == ["甲登记的调解情况"]
    again = reapply_form(page)
    assert again["party_ids"] == parties, "multi-valued input is kept for the re-apply"


def test_deadline_setting_saved_over_newer_version_gets_conflict_page(app, client, db):
    from app.admin.services import deadlines_version, update_deadlines
    from app.settings.services import get_setting

    a = admin_login(app)
    page = a.get("/admin/settings").get_data(as_text=True)
    fields = form_fields(page, "deadlines-form")
    assert fields["version"] == str(deadlines_version())
    values = {k: v for k, v in re.findall(r'name="(deadline\.[a-z_.]+)" value="([^"]*)"', page)}
    values.update({f"{k}.unit": "calendar" for k in ("deadline.mediation", "deadline.escalation",
                                                     "deadline.department", "deadline.follow_up",
                                                     "deadline.judicial_confirmation")})
    # Another admin saves first (the same service the page uses, with the version it loaded).
    update_deadlines({**values, "version": fields["version"], "deadline.mediation.days": "45"})
    db.commit()
    resp = a.post("/admin/settings/deadlines", data={**values, **fields, "deadline.mediation.days": "20"})
    assert resp.status_code == 409
    html = resp.get_data(as_text=True)
    submitted = re.search(r'data-testid="conflict-submitted".*?</dl>', html, re.S).group(0)
    current = re.search(r'data-testid="conflict-current".*?</dl>', html, re.S).group(0)
    assert "20 自然日" in submitted and "45 自然日" in current
    assert get_setting("deadline.mediation") == {"days": 45, "unit": "calendar"}, "the first save is kept"


@pytest.mark.parametrize("stale", [True, False])
def test_stale_data_error_maps_to_the_conflict_handling(app, client, db, stale):
    """A versioned UPDATE that matches no row (the race a form check cannot see) is a 409 too."""
    from sqlalchemy.orm.exc import StaleDataError
    from app.errors import StaleRecord
    exc = StaleDataError("UPDATE statement on table 'dispute_case' expected to update 1 row(s); 0 were matched.") \
        if stale else StaleRecord(current_version=3, submitted_version=2)
    with app.test_request_context("/api/v1/cases/X", method="PATCH"):
        resp = app.make_response(app.handle_user_exception(exc))
    assert resp.status_code == 409 and "已被他人修改" in resp.get_json()["message"]


def test_user_edit_over_changed_user_gets_conflict_page(app, client, db):
    """Records without a version column (users, org units) carry a fingerprint of their fields."""
    from app.accounts import services as accounts
    target = user("grid_worker")
    a = admin_login(app)
    page = a.get(f"/admin/users/{target.id}").get_data(as_text=True)
    fields = form_fields(page, "user-form")
    assert fields["version"]
    # Another admin renames the user first.
    accounts.update_user(target, "网格员（改名）", target.role, target.org, target.phone, target.active)
    db.commit()
    resp = a.post(f"/admin/users/{target.id}", data={**fields, "display_name": "管理员甲的改名", "role": target.role,
                                                      "org_code": target.org.code, "phone": target.phone or ""})
    assert resp.status_code == 409
    html = resp.get_data(as_text=True)
    assert "管理员甲的改名" in re.search(r'data-testid="conflict-submitted".*?</dl>', html, re.S).group(0)
    assert "网格员（改名）" in re.search(r'data-testid="conflict-current".*?</dl>', html, re.S).group(0)
    db.refresh(target)
    assert target.display_name == "网格员（改名）"
    # The re-apply form carries the new fingerprint: it goes through.
    again = reapply_form(html)
    assert a.post(f"/admin/users/{target.id}", data=again).status_code == 302
    db.refresh(target)
    assert target.display_name == "管理员甲的改名"
