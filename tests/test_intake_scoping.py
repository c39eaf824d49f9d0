"""One scoping function for every read: for every role, a case outside its jurisdiction is
invisible in the list, search, export, page URL, attachment URL and API; masking (§9)."""
from io import BytesIO
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from app.audit.models import AuditLog
from app.cases.models import Attachment, Case, DepartmentTask, Party
from app.db import session
from app.orgs.services import add_unit
from app.templating import today_local
from tests.helpers import csrf_token
from tests.intake_helpers import (DEMO_TOWNSHIP, OTHER_TOWNSHIP_VILLAGE, OTHER_VILLAGE_SAME_TOWNSHIP, api_token,
                                  login, make_case, org, valid_id)

ROLES = ["admin", "county_supervisor", "county_leader", "township_director", "township_secretary",
         "township_mediator", "village_mediator", "grid_worker", "dept_liaison"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _outside_case(app) -> Case:
    """A case in another county (outside every demo user's jurisdiction), with an attachment."""
    county = add_unit("邻县", "county", None, code="429961")
    township = add_unit("外乡", "township", county, code="429961001")
    village = add_unit("外村", "village", township, code="429961001001")
    today = today_local()
    case = Case(number="ZZ-2026-000001", source="其他", dispute_type="邻里", type_category="邻里",
                county_id=county.id, township_id=township.id, village_id=village.id, handling_level="village",
                status="pending_triage", summary="境外秘密纠纷", registered_on=today)
    case.parties.append(Party(name="境外人", role="applicant", kind="person"))
    session.add(case)
    session.flush()
    key = "outside-test.png"
    (Path(app.config["UPLOAD_DIR"]) / key).parent.mkdir(parents=True, exist_ok=True)
    (Path(app.config["UPLOAD_DIR"]) / key).write_bytes(PNG)
    att = Attachment(case_id=case.id, filename="x.png", content_type="image/png", size=len(PNG), storage_key=key)
    session.add(att)
    session.flush()
    return case, att


@pytest.mark.parametrize("role", ROLES)
def test_outside_case_is_invisible_everywhere(app, client, auth, db, role):
    inside = make_case(summary="境内可见纠纷")
    if role == "dept_liaison":
        session.add(DepartmentTask(case_id=inside.id, department_id=org(DEMO_TOWNSHIP + "D001").id, kind="transfer"))
    outside, att = _outside_case(app)
    token = api_token(role)
    session.flush()
    login(auth, role)

    listing = client.get("/cases/").get_data(as_text=True)
    assert inside.number in listing and outside.number not in listing
    assert outside.number not in client.get("/cases/?q=境外秘密", follow_redirects=True).get_data(as_text=True)
    assert inside.number in client.get("/cases/?q=境内可见", follow_redirects=True).get_data(as_text=True)
    xlsx = client.get("/cases/export.xlsx")
    assert xlsx.status_code == 200
    numbers = [row[0] for row in load_workbook(BytesIO(xlsx.data)).active.iter_rows(min_row=2, values_only=True)]
    assert inside.number in numbers and outside.number not in numbers
    assert client.get(f"/cases/{inside.number}").status_code == 200
    assert client.get(f"/cases/{outside.number}").status_code == 404
    assert client.get(f"/cases/{outside.number}/attachments/{att.id}").status_code == 404

    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/cases/{outside.number}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/cases/{inside.number}", headers=headers).status_code == 200
    api_numbers = [c["number"] for c in client.get("/api/v1/cases?q=纠纷", headers=headers).get_json()["items"]]
    assert inside.number in api_numbers and outside.number not in api_numbers


def test_other_township_invisible_to_village_and_township_roles(client, auth, db):
    far = make_case(village="429960001003", summary="别的乡镇的纠纷")
    for role in ("township_mediator", "village_mediator", "grid_worker", "dept_liaison"):
        login(auth, role)
        assert client.get(f"/cases/{far.number}").status_code == 404, role
    login(auth, "county_supervisor")
    assert client.get(f"/cases/{far.number}").status_code == 200


def test_village_roles_see_only_their_village(client, auth, db):
    sibling = make_case(village="429960002004", summary="同镇别村")
    login(auth, "village_mediator")
    assert client.get(f"/cases/{sibling.number}").status_code == 404
    login(auth, "township_director")
    assert client.get(f"/cases/{sibling.number}").status_code == 200


def _masked_case():
    return make_case(parties=[{"name": "张三", "role": "申请人", "id_number": valid_id(), "phone": "13812345678"}])


def test_page_masks_and_unmask_is_logged(client, auth, db):
    case = _masked_case()
    login(auth, "township_mediator")
    html = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert valid_id() not in html and "13812345678" not in html
    assert valid_id()[:6] + "********" + valid_id()[-4:] in html and "138****5678" in html
    assert client.get(f"/cases/{case.number}?full=1").get_data(as_text=True).count("13812345678") == 0
    resp = client.post(f"/cases/{case.number}/unmask", data={"csrf_token": csrf_token(client, f"/cases/{case.number}")})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and valid_id() in html and "13812345678" in html
    assert session.scalar(select(AuditLog).where(AuditLog.action == "case.unmask", AuditLog.object_id == case.number))


def test_unmask_refused_for_other_roles(client, auth, db):
    case = _masked_case()
    login(auth, "county_leader")
    html = client.get(f"/cases/{case.number}").get_data(as_text=True)
    assert 'data-testid="unmask"' not in html
    resp = client.post(f"/cases/{case.number}/unmask", data={"csrf_token": csrf_token(client, f"/cases/{case.number}")})
    assert resp.status_code == 403


def test_export_masks_and_neutralises_formulas(client, auth, db):
    case = make_case(summary="=HYPERLINK(\"http://x\")", claims="+1",
                     parties=[{"name": "@张三", "role": "申请人", "id_number": valid_id(), "phone": "13812345678"}])
    login(auth, "township_mediator")
    ws = load_workbook(BytesIO(client.get("/cases/export.xlsx").data)).active
    header = [c.value for c in ws[1]]
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == case.number)
    data = dict(zip(header, row))
    assert data["联系电话"] == "138****5678" and "********" in data["证件号码"]
    assert data["简要情况"].startswith("'=") and data["主要诉求"] == "'+1" and data["当事人"].startswith("'@")
    assert session.scalar(select(AuditLog).where(AuditLog.action == "case.export"))


def test_full_export_for_unmask_roles_only(client, auth, db):
    case = _masked_case()
    login(auth, "township_mediator")
    resp = client.post("/cases/export.xlsx", data={"csrf_token": csrf_token(client, "/cases/"), "full": "1"})
    rows = list(load_workbook(BytesIO(resp.data)).active.iter_rows(min_row=2, values_only=True))
    assert any(r[0] == case.number and r[10] == "13812345678" for r in rows)
    login(auth, "county_leader")
    resp = client.post("/cases/export.xlsx", data={"csrf_token": csrf_token(client, "/cases/"), "full": "1"})
    rows = list(load_workbook(BytesIO(resp.data)).active.iter_rows(min_row=2, values_only=True))
    assert any(r[0] == case.number and r[10] == "138****5678" for r in rows)


def test_attachment_upload_checks_content_and_serves_in_scope(client, auth, db):
    case = make_case()
    login(auth, "township_mediator")
    token = csrf_token(client, f"/cases/{case.number}")
    resp = client.post(f"/cases/{case.number}/attachments", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (BytesIO(b"<script>alert(1)</script>"), "evil.png")})
    assert resp.status_code == 302
    assert session.scalar(select(Attachment).where(Attachment.case_id == case.id)) is None
    resp = client.post(f"/cases/{case.number}/attachments", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (BytesIO(PNG), "现场照片.png")})
    att = session.scalar(select(Attachment).where(Attachment.case_id == case.id))
    assert att is not None and att.content_type == "image/png" and att.filename == "现场照片.png"
    got = client.get(f"/cases/{case.number}/attachments/{att.id}")
    assert got.status_code == 200 and got.data == PNG and got.mimetype == "image/png"
    assert "static" not in att.storage_key
    login(auth, "village_mediator")  # same village: may see it
    assert client.get(f"/cases/{case.number}/attachments/{att.id}").status_code == 200
    far = make_case(village="429960001003")
    login(auth, "county_supervisor")
    assert client.get(f"/cases/{far.number}/attachments/{att.id}").status_code == 404  # wrong case


def test_attachment_size_limit(app, client, auth, db):
    case = make_case()
    login(auth, "township_mediator")
    app.config["ATTACHMENT_MAX_BYTES"] = 100
    try:
        resp = client.post(f"/cases/{case.number}/attachments", content_type="multipart/form-data",
                           data={"csrf_token": csrf_token(client, f"/cases/{case.number}"),
                                 "file": (BytesIO(PNG + b"\x00" * 200), "big.png")}, follow_redirects=True)
    finally:
        app.config.pop("ATTACHMENT_MAX_BYTES")
    assert "文件过大" in resp.get_data(as_text=True)
    assert session.scalar(select(Attachment).where(Attachment.case_id == case.id)) is None


# ---- the same county: another township, a sibling village, an untransferred case -------------

def _invisible_everywhere(client, headers, case, marker):
    """``case`` (whose summary contains ``marker``) is in none of the list, search, export,
    page URL and API answers of the logged-in user / token."""
    assert case.number not in client.get("/cases/").get_data(as_text=True)
    assert case.number not in client.get(f"/cases/?q={marker}", follow_redirects=True).get_data(as_text=True)
    xlsx = client.get("/cases/export.xlsx")
    assert xlsx.status_code == 200
    numbers = [row[0] for row in load_workbook(BytesIO(xlsx.data)).active.iter_rows(min_row=2, values_only=True)]
    assert case.number not in numbers
    assert client.get(f"/cases/{case.number}").status_code == 404
    assert client.get(f"/api/v1/cases/{case.number}", headers=headers).status_code == 404
    api = client.get(f"/api/v1/cases?q={marker}", headers=headers)
    assert api.status_code == 200 and case.number not in [c["number"] for c in api.get_json()["items"]]
    everything = client.get("/api/v1/cases", headers=headers).get_json()["items"]
    assert case.number not in [c["number"] for c in everything]


def _visible(client, headers, case, marker):
    assert case.number in client.get(f"/cases/?q={marker}", follow_redirects=True).get_data(as_text=True)
    api = client.get(f"/api/v1/cases?q={marker}", headers=headers).get_json()["items"]
    assert case.number in [c["number"] for c in api]


@pytest.mark.parametrize("role", ["township_director", "township_mediator", "village_mediator", "grid_worker"])
def test_other_township_of_the_same_county_is_invisible(client, auth, db, role):
    far = make_case(village=OTHER_TOWNSHIP_VILLAGE, summary="同县别镇水渠纠纷")
    near = make_case(summary="本村水渠纠纷")
    headers = {"Authorization": f"Bearer {api_token(role)}"}
    session.flush()
    login(auth, role)
    _invisible_everywhere(client, headers, far, "水渠")
    _visible(client, headers, near, "水渠")


@pytest.mark.parametrize("role", ["village_mediator", "grid_worker"])
def test_sibling_village_is_invisible_to_village_roles(client, auth, db, role):
    sibling = make_case(village=OTHER_VILLAGE_SAME_TOWNSHIP, summary="同镇别村鱼塘纠纷")
    mine = make_case(summary="本村鱼塘纠纷")
    headers = {"Authorization": f"Bearer {api_token(role)}"}
    session.flush()
    login(auth, role)
    _invisible_everywhere(client, headers, sibling, "鱼塘")
    _visible(client, headers, mine, "鱼塘")


def test_liaison_does_not_see_an_untransferred_case_of_its_own_township(client, auth, db):
    untransferred = make_case(summary="未转办的山林纠纷")
    transferred = make_case(summary="已转办的山林纠纷")
    session.add(DepartmentTask(case_id=transferred.id, department_id=org(DEMO_TOWNSHIP + "D001").id, kind="transfer"))
    headers = {"Authorization": f"Bearer {api_token('dept_liaison')}"}
    session.flush()
    login(auth, "dept_liaison")
    _invisible_everywhere(client, headers, untransferred, "山林")
    _visible(client, headers, transferred, "山林")


def test_reception_log_links_only_cases_in_scope(client, auth, db):
    """A visit of the township centre linked to a case the user may not see shows no number."""
    from app.reception.models import ReceptionEntry
    far = make_case(village=OTHER_TOWNSHIP_VILLAGE, summary="别镇登记的纠纷")
    near = make_case(summary="本镇登记的纠纷")
    township = org(DEMO_TOWNSHIP)
    for case, name in ((far, "来访甲"), (near, "来访乙")):
        session.add(ReceptionEntry(centre_id=township.id, county_id=township.county_id, township_id=township.id,
                                   received_on=today_local(), visitor_names=name, headcount=1, matter="纠纷",
                                   handling="registered", case_id=case.id))
    session.flush()
    login(auth, "township_mediator")
    html = client.get("/reception/").get_data(as_text=True)
    assert "来访甲" in html and "来访乙" in html
    assert near.number in html and far.number not in html
