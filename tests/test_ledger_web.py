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


def _dropdown_values(wb, ws, header):
    """The values of the drop-down list on ``header``'s column, read back from the validation:
    an inline ``"a,b,c"`` list or a range of the hidden 选项 sheet."""
    from openpyxl.utils import range_boundaries
    col = [c.value for c in ws[1]].index(header) + 1
    for dv in ws.data_validations.dataValidation:
        if any(r.min_col <= col <= r.max_col and r.min_row == 2 for r in dv.sqref.ranges):
            assert dv.type == "list"
            formula = dv.formula1
            if formula.startswith('"'):
                return formula.strip('"').split(",")
            sheet, ref = formula.rsplit("!", 1)
            min_col, min_row, max_col, max_row = range_boundaries(ref.replace("$", ""))
            lists = wb[sheet.strip("'")]
            return [lists.cell(row=r, column=min_col).value for r in range(min_row, max_row + 1)]
    raise AssertionError(f"no drop-down on {header}")


def test_template_dropdown_contents_only_active_types(client, auth, db):
    from app.settings.models import CaseSource, DisputeType
    old = db.scalar(select(DisputeType).where(DisputeType.name == "邻里"))
    db.add(DisputeType(name="已停用的类型", active=False))
    db.flush()
    auth.login("township_director")
    wb = openpyxl.load_workbook(io.BytesIO(client.get("/ledger/template.xlsx").data))
    ws = wb["矛盾纠纷台账"]
    assert wb["选项"].sheet_state == "hidden"
    assert _dropdown_values(wb, ws, "风险等级") == ["高", "中", "低"]
    assert _dropdown_values(wb, ws, "化解层级") == ["村级", "乡镇级", "县级"]
    assert "调解成功" in _dropdown_values(wb, ws, "办理结果")
    assert _dropdown_values(wb, ws, "协议形式") == ["书面", "口头"]
    assert _dropdown_values(wb, ws, "满意度") == ["满意", "基本满意", "不满意"]
    types = _dropdown_values(wb, ws, "纠纷类型")
    assert old.name in types and "劳动争议" in types and "已停用的类型" not in types
    active_types = db.scalars(select(DisputeType.name).where(DisputeType.active.is_(True))).all()
    assert sorted(types) == sorted(active_types)
    sources = _dropdown_values(wb, ws, "来源")
    assert sources == db.scalars(select(CaseSource.name).where(CaseSource.active.is_(True))
                                 .order_by(CaseSource.position)).all() and "群众来访" in sources
    assert _dropdown_values(wb, wb["来访登记"], "处理方式") == ["直接答复", "登记为纠纷", "转办", "引导"]


def test_preview_waits_on_the_shared_upload_path_and_is_audited_once(app, client, auth, db):
    """The previewed file lies under UPLOAD_DIR (shared by every app host), is removed by the
    confirm, and a preview left unconfirmed for a day is removed by the next upload."""
    import os
    import re
    import time
    from pathlib import Path

    from sqlalchemy import func

    from app.audit.models import AuditLog
    previews = Path(app.config["UPLOAD_DIR"]) / "ledger_previews"
    previews.mkdir(parents=True, exist_ok=True)
    stale = previews / ("0" * 32 + ".xlsx")
    stale.write_bytes(b"old")
    os.utime(stale, (time.time() - 25 * 3600,) * 2)
    auth.login("township_director")
    html = _upload(client, workbook([good_row(编号="WEB-2")]).getvalue()).get_data(as_text=True)
    token = (re.search(r'name="token"[^>]*value="([^"]+)"', html)
             or re.search(r'value="([^"]+)"[^>]*name="token"', html)).group(1)
    assert (previews / f"{token}.xlsx").is_file() and not stale.exists()
    before = db.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "ledger.import"))
    ok = client.post("/ledger/confirm", data={"token": token, "csrf_token": csrf_token(client, "/ledger/")})
    assert ok.status_code == 302 and not (previews / f"{token}.xlsx").exists()
    after = db.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "ledger.import"))
    assert after == before + 1
