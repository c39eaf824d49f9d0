"""Registration (登记纠纷): the service, the page, duplicate hints and the reception desk."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.cases.intake import register_case
from app.cases.models import Case
from app.db import session
from app.errors import PermissionDenied, ValidationFailed
from app.reception.models import ReceptionEntry
from app.templating import today_local
from tests.helpers import csrf_token
from tests.intake_helpers import (DEMO_VILLAGE, OTHER_TOWNSHIP_VILLAGE, intake_body, login, make_case, user,
                                  valid_id)


def test_register_case_sets_number_status_level_deadline_timeline(db):
    case = register_case(user("township_mediator"), intake_body(type="拖欠农民工工资"))
    today = today_local()
    assert case.number.startswith(f"QH-{today.year}-")
    assert case.status == "pending_triage"
    assert case.handling_level == "township"
    assert case.type_category == "劳动争议"
    assert case.deadline_on == today + timedelta(days=30)
    assert [t.action for t in case.timeline] == ["register"]
    assert [p.role for p in case.parties] == ["applicant", "respondent"]
    assert case.parties[1].kind == "organisation"
    assert db.scalar(select(AuditLog).where(AuditLog.action == "case.register", AuditLog.object_id == case.number))


@pytest.mark.parametrize("username,level", [("village_mediator", "village"), ("grid_worker", "village"),
                                            ("county_supervisor", "county")])
def test_handling_level_follows_registrar(db, username, level):
    case = register_case(user(username), intake_body())
    assert case.handling_level == level
    if username == "grid_worker":
        assert case.grid is not None and case.grid.code == DEMO_VILLAGE + "01"


def test_numbers_are_sequential_and_unique(db):
    a, b = make_case(), make_case()
    assert int(b.number.rsplit("-", 1)[1]) == int(a.number.rsplit("-", 1)[1]) + 1


@pytest.mark.parametrize("overrides,field", [
    ({"source": ""}, "source"), ({"source": "路边捡到"}, "source"), ({"type": "邻居"}, "type"),
    ({"village": ""}, "village"), ({"summary": "  "}, "summary"), ({"amount": "-5"}, "amount"),
    ({"people_involved": "0"}, "people_involved"), ({"occurred_on": "2999-01-01"}, "occurred_on"),
    ({"parties": []}, "parties"),
    ({"parties": [{"name": "张三", "role": "申请人", "id_number": "420222198001011230"}]}, "parties.0.id_number"),
    ({"parties": [{"name": "张三", "role": "申请人", "phone": "12345"}]}, "parties.0.phone"),
    ({"parties": [{"name": "张三", "role": "原告"}]}, "parties.0.role"),
    ({"parties": [{"name": "", "role": "申请人", "phone": "13800001111"}]}, "parties.0.name"),
])
def test_bad_input_is_refused_per_field(db, overrides, field):
    if field == "parties.0.id_number" and valid_id().endswith("0"):
        overrides = {"parties": [{"name": "张三", "role": "申请人", "id_number": valid_id()[:-1] + "1"}]}
    before = db.scalar(select(Case.id).order_by(Case.id.desc()).limit(1))
    with pytest.raises(ValidationFailed) as exc:
        register_case(user("township_mediator"), intake_body(**overrides))
    assert field in exc.value.errors
    assert any("\u4e00" <= ch <= "\u9fff" for ch in exc.value.errors[field])
    assert db.scalar(select(Case.id).order_by(Case.id.desc()).limit(1)) == before


def test_village_outside_jurisdiction_refused(db):
    with pytest.raises(ValidationFailed) as exc:
        register_case(user("township_mediator"), intake_body(village=OTHER_TOWNSHIP_VILLAGE))
    assert "管辖" in exc.value.errors["village"]


@pytest.mark.parametrize("username", ["county_leader", "dept_liaison", "township_secretary", "admin"])
def test_roles_without_register_capability(db, username):
    with pytest.raises(PermissionDenied):
        register_case(user(username), intake_body())


def _form_data(client, **overrides):
    data = {"csrf_token": csrf_token(client, "/cases/new"), "source": "群众来访", "type": "邻里",
            "village": DEMO_VILLAGE, "grid": "", "occurred_on": "2026-11-01", "people_involved": "2",
            "amount": "", "summary": "排水沟堵塞引发争执", "claims": "",
            "parties-0-kind": "person", "parties-0-role": "applicant", "parties-0-name": "王五",
            "parties-0-gender": "male", "parties-0-id_type": "resident_id", "parties-0-id_number": valid_id(),
            "parties-0-phone": "13800002222", "parties-0-address": "", "parties-0-agent": "",
            "parties-1-kind": "person", "parties-1-role": "respondent", "parties-1-name": "赵六",
            "parties-1-gender": "", "parties-1-id_type": "resident_id", "parties-1-id_number": "",
            "parties-1-phone": "", "parties-1-address": "", "parties-1-agent": ""}
    data.update(overrides)
    return data


def test_page_registers_and_redirects_to_case(client, auth):
    login(auth, "township_mediator")
    page = client.get("/cases/new")
    assert page.status_code == 200 and "登记纠纷" in page.get_data(as_text=True)
    resp = client.post("/cases/new", data=_form_data(client))
    assert resp.status_code == 302
    number = resp.headers["Location"].rsplit("/", 1)[1]
    case = session.scalar(select(Case).where(Case.number == number))
    assert [p.name for p in case.parties] == ["王五", "赵六"]


def test_page_third_party_row_added_by_js_is_saved(client, auth):
    login(auth, "township_mediator")
    data = _form_data(client, **{"parties-5-kind": "organisation", "parties-5-role": "third_party",
                                 "parties-5-name": "某物业公司"})
    resp = client.post("/cases/new", data=data)
    assert resp.status_code == 302
    case = session.scalar(select(Case).where(Case.number == resp.headers["Location"].rsplit("/", 1)[1]))
    assert [p.name for p in case.parties] == ["王五", "赵六", "某物业公司"]


@pytest.mark.parametrize("overrides,message", [
    ({"parties-0-id_number": "110105491231002"}, "15位旧身份证号已停用"),
    ({"parties-1-phone": "123"}, "电话号码格式不正确"),
    ({"occurred_on": "2999-01-01"}, "不能晚于今天"),
    ({"amount": "-1"}, "不能为负数"),
    ({"summary": ""}, "请填写纠纷简要情况"),
])
def test_page_keeps_everything_typed_on_errors(client, auth, overrides, message):
    login(auth, "township_mediator")
    before = session.scalar(select(Case.id).order_by(Case.id.desc()).limit(1))
    resp = client.post("/cases/new", data=_form_data(client, claims="退还押金", **overrides))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert message in html
    assert 'value="王五"' in html and 'value="赵六"' in html and "退还押金" in html
    assert 'value="13800002222"' in html
    assert session.scalar(select(Case.id).order_by(Case.id.desc()).limit(1)) == before


def test_duplicate_hint_then_confirm(client, auth, db):
    existing = make_case(parties=[{"name": "王五", "role": "申请人", "phone": "13800002222"}])
    login(auth, "township_mediator")
    resp = client.post("/cases/new", data=_form_data(client, type="合同"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "可能重复" in html and existing.number in html
    assert session.scalar(select(Case).where(Case.summary == "排水沟堵塞引发争执")) is None
    resp = client.post("/cases/new", data=_form_data(client, type="合同", confirm_duplicates="1"))
    assert resp.status_code == 302


def test_duplicate_hint_same_village_and_type_within_90_days(db):
    from app.cases.intake import possible_duplicates, prepare_intake
    old = make_case(parties=[{"name": "甲", "role": "申请人"}])
    other_type = make_case(type="合同", parties=[{"name": "乙", "role": "申请人"}])
    intake = prepare_intake(user("township_mediator"), intake_body(parties=[{"name": "丙", "role": "申请人"}]))
    numbers = [c.number for c in possible_duplicates(user("township_mediator"), intake)]
    assert old.number in numbers and other_type.number not in numbers
    old.registered_on = today_local() - timedelta(days=91)
    db.flush()
    numbers = [c.number for c in possible_duplicates(user("township_mediator"), intake)]
    assert old.number not in numbers


def test_duplicate_by_id_number_only_within_jurisdiction(db):
    elsewhere = make_case(village=OTHER_TOWNSHIP_VILLAGE, type="合同",
                          parties=[{"name": "丁", "role": "申请人", "id_number": valid_id()}])
    from app.cases.intake import possible_duplicates, prepare_intake
    body = intake_body(type="物业", parties=[{"name": "丁", "role": "申请人", "id_number": valid_id()}])
    assert elsewhere.number in [c.number for c in possible_duplicates(
        user("county_supervisor"), prepare_intake(user("county_supervisor"), body))]
    assert elsewhere.number not in [c.number for c in possible_duplicates(
        user("township_mediator"), prepare_intake(user("township_mediator"), body))]


def test_reception_direct_answer_counts(client, auth):
    login(auth, "township_mediator")
    token = csrf_token(client, "/reception/")
    resp = client.post("/reception/", data={"csrf_token": token, "received_at": "", "visitor_names": "甲、乙、丙",
                                            "headcount": "3", "phone": "", "matter": "咨询低保政策",
                                            "handling": "direct_answer", "department": "", "notes": ""})
    assert resp.status_code == 302
    html = client.get("/reception/").get_data(as_text=True)
    assert 'data-testid="day-visitors">3<' in html and 'data-testid="day-direct">1<' in html
    assert "咨询低保政策" in html


def test_reception_bad_input(client, auth):
    login(auth, "township_mediator")
    token = csrf_token(client, "/reception/")
    resp = client.post("/reception/", data={"csrf_token": token, "visitor_names": "", "headcount": "0",
                                            "phone": "12", "matter": "", "handling": "transferred", "department": ""})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    for msg in ("请填写来访人姓名", "来访人数应为不小于1的整数", "电话号码格式不正确", "请填写来访事由", "转办时请选择承办部门"):
        assert msg in html


def test_reception_transfer_lists_the_department(client, auth):
    """A transferred visit names its department in the list (the select's choices map ids to names)."""
    login(auth, "township_mediator")
    html = client.get("/reception/").get_data(as_text=True)
    value, name = re.search(r'<option value="(\d+)">([^<]+)</option>', html.split('name="department"', 1)[1]).groups()
    token = csrf_token(client, "/reception/")
    resp = client.post("/reception/", data={"csrf_token": token, "received_at": "", "visitor_names": "转办甲",
                                            "headcount": "1", "phone": "", "matter": "排水沟堵塞",
                                            "handling": "transferred", "department": value, "notes": ""})
    assert resp.status_code == 302
    row = client.get("/reception/").get_data(as_text=True).split("转办甲", 1)[1].split("</tr>", 1)[0]
    assert name in row


def test_reception_register_opens_prefilled_form_and_links_case(client, auth):
    login(auth, "township_mediator")
    token = csrf_token(client, "/reception/")
    resp = client.post("/reception/", data={"csrf_token": token, "visitor_names": "孙七，周八", "headcount": "2",
                                            "phone": "13900003333", "matter": "宅基地边界争议", "handling": "registered"})
    assert resp.status_code == 302 and "/cases/new?reception=" in resp.headers["Location"]
    entry_id = int(resp.headers["Location"].rsplit("=", 1)[1])
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "宅基地边界争议" in html and 'value="孙七"' in html and 'value="周八"' in html
    data = _form_data(client, reception=str(entry_id), summary="宅基地边界争议", type="房屋宅基地",
                      **{"parties-0-name": "孙七", "parties-1-name": "周八", "parties-0-phone": "13900003333"})
    resp = client.post("/cases/new", data=data)
    assert resp.status_code == 302
    entry = session.get(ReceptionEntry, entry_id)
    case = session.get(Case, entry.case_id)
    assert case is not None and case.number in resp.headers["Location"]


def test_deadline_follows_the_mediation_setting(db):
    from app.settings.services import set_setting
    set_setting("deadline.mediation", {"days": 15, "unit": "calendar"})
    case = make_case()
    assert case.deadline_on == case.registered_on + timedelta(days=15)
