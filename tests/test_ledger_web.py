"""The ledger page: preview, confirm (CSRF, roles), template download with drop-downs."""
from __future__ import annotations

import io

import openpyxl
from sqlalchemy import select

from app.cases.models import Case
from tests.helpers import csrf_token
from tests.ledger_helpers import good_row, workbook


def _upload(client, data, name="t.xlsx"):
    token = csrf_token(client, "/ledger/")
    return client.post("/ledger/preview", data={"csrf_token": token, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_preview_then_confirm(client, auth, db):
    auth.login("township_director")
    resp = _upload(client, workbook([good_row(编号="WEB-1")]).getvalue())
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "确认导入" in html
    assert db.scalar(select(Case).where(Case.external_number == "WEB-1")) is None
    import re
    tok = re.search(r'name="token"[^>]*value="([^"]+)"', html) or re.search(r'value="([^"]+)"[^>]*name="token"', html)
    no_csrf = client.post("/ledger/confirm", data={"token": tok.group(1)})
    assert no_csrf.status_code == 400
    ok = client.post("/ledger/confirm", data={"token": tok.group(1), "csrf_token": csrf_token(client, "/ledger/")})
    assert ok.status_code == 302
    assert db.scalar(select(Case).where(Case.external_number == "WEB-1")) is not None


def test_preview_lists_problems_and_rejects_non_xlsx(client, auth, db):
    auth.login("township_director")
    resp = _upload(client, workbook([good_row(纠纷类型="邻居")]).getvalue())
    assert resp.status_code == 422 and "矛盾纠纷台账!F2" in resp.get_data(as_text=True)
    assert _upload(client, b"not a zip", "x.xlsx").status_code == 422


def test_template_has_dropdowns(client, auth, db):
    auth.login("township_director")
    resp = client.get("/ledger/template.xlsx")
    assert resp.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(resp.data))
    assert "填写说明" in wb.sheetnames
    ranges = [str(dv.sqref) for dv in wb["矛盾纠纷台账"].data_validations.dataValidation]
    assert len(ranges) == 8
    assert len(wb["来访登记"].data_validations.dataValidation) == 1


def test_grid_worker_cannot_use_the_page(client, auth, db):
    auth.login("grid_worker")
    assert client.get("/ledger/").status_code == 403
