"""English UI for the Python-side labels (app.cases.vocab, TIMELINE_LABELS, SORTS): with
``?lang=en`` the case page, the ledger list and the registration form show them in English,
while the stored codes, exports and the API keep the Chinese labels."""
from __future__ import annotations

from io import BytesIO

from openpyxl import load_workbook

from tests.intake_helpers import login, make_case, valid_id


def _case():
    return make_case(summary="英文界面测试纠纷",
                     parties=[{"kind": "person", "name": "张三", "role": "申请人", "gender": "男",
                               "id_number": valid_id(), "phone": "13800001111"},
                              {"kind": "organisation", "name": "某某公司", "role": "被申请人"}])


def test_case_page_in_english(client, auth, db):
    case = _case()
    assert case.status == "pending_triage"
    login(auth, "township_mediator")
    html = client.get(f"/cases/{case.number}?lang=en").get_data(as_text=True)
    assert "Awaiting triage" in html and "待研判" not in html  # status badge and timeline
    assert "Applicant" in html and "Respondent" in html and "被申请人" not in html  # party roles
    assert "Male" in html and "Resident ID card" in html  # gender, ID type
    assert "Registered" in html  # the timeline's 登记
    html = client.get(f"/cases/{case.number}?lang=zh").get_data(as_text=True)
    assert "待研判" in html and "被申请人" in html


def test_ledger_list_in_english(client, auth, db):
    case = _case()
    login(auth, "township_mediator")
    html = client.get("/cases/?lang=en").get_data(as_text=True)
    assert case.number in html
    assert "Awaiting triage" in html and "待研判" not in html  # the row's status and the filter
    assert "Registered (newest first)" in html and "登记日期（新→旧）" not in html  # SORTS
    assert ">High<" in html  # risk filter
    # The export stays in Chinese: it is a ledger (and re-imported by its labels).
    ws = load_workbook(BytesIO(client.get("/cases/export.xlsx").data)).active
    header = [c.value for c in ws[1]]
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == case.number)
    assert dict(zip(header, row))["状态"] == "待研判"


def test_registration_form_choices_in_english(client, auth, db):
    login(auth, "township_mediator")
    html = client.get("/cases/new?lang=en").get_data(as_text=True)
    assert ">Respondent<" in html and ">Third party<" in html and ">Person<" in html and ">Female<" in html
    assert ">第三人<" not in html


def test_api_keeps_chinese_labels(client, db):
    from tests.intake_helpers import api_token
    case = _case()
    headers = {"Authorization": f"Bearer {api_token('township_mediator')}"}
    data = client.get(f"/api/v1/cases/{case.number}?lang=en", headers=headers).get_json()
    assert data["status_label"] == "待研判"
