"""The case API (§10): intake, list with cursor, one case, OpenAPI, errors."""
import pytest
from sqlalchemy import func, select

from app.cases.models import Case
from app.db import session
from tests.intake_helpers import DEMO_VILLAGE, OTHER_TOWNSHIP_VILLAGE, api_token, intake_body, make_case, valid_id


def _headers(username="township_mediator"):
    token = api_token(username)
    session.commit()  # releases the test's savepoint only: a 422's rollback must not take the token away
    return {"Authorization": f"Bearer {token}"}


def _count():
    return session.scalar(select(func.count(Case.id)))


def test_post_case_201(client, db):
    body = intake_body()
    body["amount"] = 0
    resp = client.post("/api/v1/cases", json=body, headers=_headers())
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()
    assert data["status"] == "pending_triage" and data["number"].startswith("QH-")
    case = session.scalar(select(Case).where(Case.number == data["number"]))
    assert case.village.code == DEMO_VILLAGE and [p.name for p in case.parties] == ["张三", "某某建筑公司"]
    assert resp.headers["Location"].endswith(data["number"])


def test_post_minimal_body(client, db):
    body = {"source": "网格上报", "type": "邻里纠纷", "village": DEMO_VILLAGE, "summary": "噪音扰民",
            "parties": [{"name": "张三", "role": "申请人"}]}
    assert client.post("/api/v1/cases", json=body, headers=_headers()).status_code == 201


@pytest.mark.parametrize("body,field", [
    ({"source": "网格上报"}, "type"),
    (intake_body(parties=[]), "parties"),
    (intake_body(people_involved="很多"), "people_involved"),
    (intake_body(amount=-3), "amount"),
    (intake_body(occurred_on="昨天"), "occurred_on"),
    (intake_body(occurred_on="2999-01-01"), "occurred_on"),
    (intake_body(type="邻居"), "type"),
    (intake_body(village=OTHER_TOWNSHIP_VILLAGE), "village"),
    (intake_body(parties=[{"name": "张三"}]), "parties.0.role"),
    (intake_body(parties=[{"name": "张三", "role": "原告"}]), "parties.0.role"),
    (intake_body(parties=[{"name": "张三", "role": "申请人", "phone": "110"}]), "parties.0.phone"),
    (intake_body(parties=[{"name": "张三", "role": "申请人", "id_number": "110105491231002"}]), "parties.0.id_number"),
    (intake_body(parties=[{"name": "张三", "role": "申请人", "id_number": valid_id()[:-1] + ("1" if valid_id()[-1] != "1" else "2")}]),
     "parties.0.id_number"),
])
def test_bad_input_422_chinese_per_field_creates_nothing(client, db, body, field):
    before = _count()
    resp = client.post("/api/v1/cases", json=body, headers=_headers())
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert field in errors, errors
    assert any("\u4e00" <= ch <= "\u9fff" for ch in errors[field])
    assert _count() == before


def test_not_json_422(client, db):
    resp = client.post("/api/v1/cases", data="x", headers=_headers())
    assert resp.status_code == 422 and "_body" in resp.get_json()["errors"]


def test_no_token_401(client, db):
    assert client.get("/api/v1/cases").status_code == 401
    assert client.post("/api/v1/cases", json=intake_body(), headers={"Authorization": "Bearer nope"}).status_code == 401


def test_role_without_register_403(client, db):
    assert client.post("/api/v1/cases", json=intake_body(), headers=_headers("county_leader")).status_code == 403


def test_list_cursor_walks_all(client, db):
    made = {make_case(summary=f"接口{i}").number for i in range(7)}
    headers = _headers("county_supervisor")
    seen, url = [], "/api/v1/cases?q=接口&limit=3"
    while url:
        data = client.get(url, headers=headers).get_json()
        seen += [c["number"] for c in data["items"]]
        url = f"/api/v1/cases?q=接口&limit=3&cursor={data['next_cursor']}" if data["next_cursor"] else None
    assert sorted(seen) == sorted(made) and len(seen) == 7


def test_list_filters_and_bad_query(client, db):
    make_case(type="合同", summary="合同纠纷A")
    headers = _headers("county_supervisor")
    items = client.get("/api/v1/cases?type=合同", headers=headers).get_json()["items"]
    assert items and all(c["type"] == "合同" for c in items)
    resp = client.get("/api/v1/cases?limit=0&from=昨天", headers=headers)
    assert resp.status_code == 422 and {"limit", "from"} <= set(resp.get_json()["errors"])
    assert client.get("/api/v1/cases?cursor=garbage", headers=headers).status_code == 422


def test_get_case_masked_with_timeline(client, db):
    case = make_case(parties=[{"name": "张三", "role": "申请人", "id_number": valid_id(), "phone": "13812345678"}])
    data = client.get(f"/api/v1/cases/{case.number}", headers=_headers()).get_json()
    party = data["parties"][0]
    assert party["phone"] == "138****5678" and party["id_number"] == valid_id()[:6] + "********" + valid_id()[-4:]
    assert party["role"] == "申请人"
    assert [t["action"] for t in data["timeline"]] == ["register"]
    assert data["village"]["code"] == DEMO_VILLAGE


def test_openapi_document_without_token(client, db):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.")
    assert {"post", "get"} <= set(doc["paths"]["/cases"])
    case_in = doc["components"]["schemas"]["CaseIn"]
    assert set(case_in["required"]) >= {"source", "type", "village", "summary", "parties"}
    assert doc["components"]["schemas"]["PartyIn"]["properties"]["role"]
    assert any(p["name"] == "cursor" for p in doc["paths"]["/cases"]["get"]["parameters"])


def test_a_read_records_the_tokens_use_at_most_once_a_minute(client, db):
    """GET requests keep the token's 最近使用 (committed before the view runs), but write it at
    most once a minute: every read used to UPDATE the token row (one request of a token at a
    time, on its row lock) and then roll the time back."""
    from datetime import timedelta

    from app.accounts.models import ApiToken
    from app.accounts.services import TOKEN_USE_RESOLUTION
    headers = _headers()
    row = session.scalar(select(ApiToken).order_by(ApiToken.id.desc()))
    assert row.last_used_at is None
    writes: list[str] = []

    def count_token_writes(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("UPDATE API_TOKEN"):
            writes.append(statement)

    from sqlalchemy import event
    engine = session.get_bind().engine
    event.listen(engine, "before_cursor_execute", count_token_writes)
    try:
        assert client.get("/api/v1/cases", headers=headers).status_code == 200
        session.expire_all()
        first = session.get(ApiToken, row.id).last_used_at
        assert first is not None and len(writes) == 1
        assert client.get("/api/v1/cases", headers=headers).status_code == 200
        assert len(writes) == 1  # within the minute: nothing written
        session.get(ApiToken, row.id).last_used_at = first - TOKEN_USE_RESOLUTION - timedelta(seconds=1)
        session.commit()
        writes.clear()
        assert client.get("/api/v1/cases", headers=headers).status_code == 200
        session.expire_all()
        assert len(writes) == 1 and session.get(ApiToken, row.id).last_used_at > first - timedelta(seconds=1)
    finally:
        event.remove(engine, "before_cursor_execute", count_token_writes)
