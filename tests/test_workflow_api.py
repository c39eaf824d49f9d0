"""POST /api/v1/cases/<number>/actions: 200, 409, 403, 422, 404 and 401."""
from __future__ import annotations

from app.accounts.services import issue_token
from tests.workflow_factories import OTHER_TOWNSHIP_VILLAGE, make_case, user


def post(client, username, number, body, token=None):
    token = token or issue_token(user(username))
    return client.post(f"/api/v1/cases/{number}/actions", json=body,
                       headers={"Authorization": f"Bearer {token}"})


def test_action_applied_returns_status_and_timeline_entry(client, db):
    case = make_case("pending_triage", "village")
    db.commit()  # error responses roll the session back; keep the fixture data
    resp = post(client, "village_mediator", case.number, {"action": "decline", "reason": "不属于调解范围",
                                                          "guidance": "引导诉讼"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["number"] == case.number and body["status"] == "declined"
    entry = body["timeline_entry"]
    assert (entry["action"], entry["from"], entry["to"], entry["note"]) == \
        ("decline", "pending_triage", "declined", "不属于调解范围")
    assert entry["actor"] == user("village_mediator").display_name


def test_refused_transition_is_409_and_changes_nothing(client, db):
    case = make_case("closed", "village")
    db.commit()  # error responses roll the session back; keep the fixture data
    resp = post(client, "village_mediator", case.number, {"action": "accept", "lead_mediator": "village_mediator"})
    assert resp.status_code == 409
    assert "不能进行「受理」" in resp.get_json()["message"]
    db.refresh(case)
    assert case.status == "closed" and case.timeline == []


def test_role_not_allowed_is_403(client, db):
    case = make_case("in_mediation", "township", risk_level="high")
    db.commit()  # error responses roll the session back; keep the fixture data
    resp = post(client, "township_mediator", case.number, {"action": "sign_off", "plan": "x"})
    assert resp.status_code == 403


def test_bad_input_is_422_with_per_field_messages(client, db):
    case = make_case("pending_triage", "village")
    db.commit()  # error responses roll the session back; keep the fixture data
    resp = post(client, "village_mediator", case.number, {"action": "decline"})
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"reason": "请填写不予受理理由",
                                         "guidance": "请填写引导途径（行政、仲裁、诉讼等）"}
    assert post(client, "village_mediator", case.number, {"reason": "x"}).status_code == 422
    assert post(client, "village_mediator", case.number, {"action": "fly"}).status_code == 422


def test_case_outside_jurisdiction_is_404(client, db):
    case = make_case("pending_triage", "township", village=OTHER_TOWNSHIP_VILLAGE)
    db.commit()  # error responses roll the session back; keep the fixture data
    assert post(client, "township_director", case.number, {"action": "accept"}).status_code == 404
    assert post(client, "township_director", "QH-0000-404404", {"action": "accept"}).status_code == 404


def test_stale_version_is_409(client, db):
    case = make_case("pending_triage", "village")
    db.commit()  # error responses roll the session back; keep the fixture data
    resp = post(client, "village_mediator", case.number,
                {"action": "withdraw", "reason": "x", "version": case.version + 5})
    assert resp.status_code == 409


def test_missing_token_is_401(client, db):
    case = make_case("pending_triage", "village")
    db.commit()  # error responses roll the session back; keep the fixture data
    assert client.post(f"/api/v1/cases/{case.number}/actions", json={"action": "withdraw"}).status_code == 401


def test_openapi_documents_the_actions_endpoint(client, db):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/cases/{number}/actions"]["post"]
    assert set(op["responses"]) >= {"200", "403", "404", "409", "422"}
    action_schema = doc["components"]["schemas"]["ActionIn"]["properties"]["action"]
    assert "accept_escalation" in action_schema["enum"] and "register" not in action_schema["enum"]
