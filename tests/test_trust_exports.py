"""Spreadsheet injection (issue 9): every Excel or CSV export neutralises text that a spreadsheet
would run as a formula (starting with =, +, -, @, tab or CR).  Cases carrying such text in every
free-text field are exported through each real route and read back with openpyxl: no cell is a
formula, no text cell starts with a trigger, and the hostile text is still there (apostrophe-led)."""
from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from app.cases.models import Party
from app.db import session
from app.reception.models import ReceptionEntry
from app.spreadsheets import FORMULA_PREFIXES, neutralise
from app.templating import today_local
from tests.helpers import csrf_token
from tests.workflow_factories import make_case, org, user

PAYLOADS = ['=HYPERLINK("http://x")', "@SUM(1)", "+1", "-1", "\t=1", "\r=1", "=1+1"]
TRIGGERS = tuple(FORMULA_PREFIXES)


def test_neutralise_marks_only_formula_text():
    for p in PAYLOADS:
        assert neutralise(p) == "'" + p
    for safe in ("张三", "1", "a=b", " =1", "", "'=1"):
        assert neutralise(safe) == safe
    for number in (-1, -2.5, 0, None):
        assert neutralise(number) == number  # numbers are not text and run nothing


def test_every_spreadsheet_writer_uses_the_shared_helper():
    """A module of app/ that builds a workbook or writes CSV must neutralise its cells."""
    root = Path(__file__).resolve().parent.parent / "app"
    writers = re.compile(r"Workbook\(|csv\.writer|csv\.DictWriter|\.to_csv\(|\.to_excel\(")
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "spreadsheets.py" and writers.search(p.read_text(encoding="utf-8"))
                 and "neutralise" not in p.read_text(encoding="utf-8")]
    assert not offenders, f"spreadsheet writers without app.spreadsheets.neutralise: {offenders}"


def _hostile_cases():
    """One case per payload in 南湖镇 village 429960002001, the payload in every text field."""
    today = today_local()
    first = today.replace(day=1)
    registered = first - timedelta(days=10)  # last month: the report's month
    numbers = []
    for p in PAYLOADS:
        case = make_case("in_mediation", "village", "429960002001", registered_on=registered, summary=p, claims=p,
                         notes=p, responsible_name=p, source=p, amount=12.5)
        case.parties.append(Party(position=0, kind="person", name=p, role="applicant", phone="13800001111",
                                  id_number="420222199001011234"))
        v = org("429960002001")
        session.add(ReceptionEntry(centre_id=v.id, county_id=v.county_id, township_id=v.township_id,
                                   village_id=v.id, received_on=registered, visitor_names=p, headcount=1, matter=p,
                                   handling="direct_answer", notes=p))
        numbers.append(case.number)
    session.flush()
    session.commit()  # into the test's savepoint: the routes' rollbacks must not undo it
    return registered, numbers


def _check_workbook(data: bytes, expect_payload: bool = True) -> list[str]:
    """Every cell of every sheet: no formula, no text starting with a trigger; returns the texts."""
    wb = load_workbook(io.BytesIO(data))
    texts = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.value is None:
                    continue
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula: {cell.value!r}"
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(TRIGGERS), f"{ws.title}!{cell.coordinate}: {cell.value!r}"
                    texts.append(cell.value)
    if expect_payload:
        joined = "\n".join(texts)
        for p in PAYLOADS:  # XML keeps no bare CR: it reads back as LF
            assert ("'" + p).replace("\r", "\n") in joined, f"payload {p!r} missing from the export"
    return texts


def test_case_list_export_masked_and_unmasked(client, auth):
    _hostile_cases()
    auth.login("township_mediator")
    resp = client.get("/cases/export.xlsx")
    assert resp.status_code == 200
    _check_workbook(resp.data)
    resp = client.post("/cases/export.xlsx", data={"full": "1", "csrf_token": csrf_token(client, "/cases/")})
    assert resp.status_code == 200
    _check_workbook(resp.data)
    # Numbers stay numbers (only text is neutralised).
    ws = load_workbook(io.BytesIO(resp.data)).active
    amounts = [row[12] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert amounts and all(a == 12.5 for a in amounts)


@pytest.mark.parametrize("unmasked", [False, True])
def test_ledger_export(client, auth, unmasked):
    _hostile_cases()
    auth.login("township_director")
    data = {"org": "429960002", "csrf_token": csrf_token(client, "/ledger/")}
    if unmasked:
        data["unmasked"] = "y"
    resp = client.post("/ledger/export", data=data)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    texts = _check_workbook(resp.data)
    assert any(t.startswith("'@SUM(1)") for t in texts)


def test_ledger_export_cli(runner, tmp_path):
    _hostile_cases()
    out = tmp_path / "ledger.xlsx"
    result = runner.invoke(args=["ledger", "export", str(out), "--org", "429960002"])
    assert result.exit_code == 0, result.output
    _check_workbook(out.read_bytes())


def test_ledger_export_masks_phones_unless_asked_and_logs_unmasking(client, auth):
    """The ledger export masks phones by default (logged as a plain export); a role allowed to
    unmask who asks gets full phones and an audit entry ``ledger.export_unmasked``; a role not
    allowed to unmask is refused and nothing is logged."""
    from sqlalchemy import func, select
    from app.audit.models import AuditLog

    _hostile_cases()

    def phones(data):
        ws = load_workbook(io.BytesIO(data))["矛盾纠纷台账"]
        col = [c.value for c in ws[1]].index("联系电话")
        return {row[col] for row in ws.iter_rows(min_row=2, values_only=True)}

    def logged(action):
        return session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == action))

    auth.login("township_director")
    before = (logged("ledger.export"), logged("ledger.export_unmasked"))
    masked = client.post("/ledger/export", data={"org": "429960002", "csrf_token": csrf_token(client, "/ledger/")})
    assert masked.status_code == 200
    assert phones(masked.data) == {"138****1111"}
    assert (logged("ledger.export"), logged("ledger.export_unmasked")) == (before[0] + 1, before[1])
    full = client.post("/ledger/export", data={"org": "429960002", "unmasked": "y",
                                               "csrf_token": csrf_token(client, "/ledger/")})
    assert full.status_code == 200
    assert phones(full.data) == {"13800001111"}
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "ledger.export_unmasked")
                            .order_by(AuditLog.id.desc())).first()
    assert logged("ledger.export_unmasked") == before[1] + 1
    assert entry.username == "township_director" and entry.object_id == str(org("429960002").id)
    assert entry.detail["cases"] == len(PAYLOADS)
    auth.logout()
    auth.login("admin")  # may export, may not unmask
    refused = client.post("/ledger/export", data={"org": "429960002", "unmasked": "y",
                                                  "csrf_token": csrf_token(client, "/ledger/")})
    assert refused.status_code == 403
    assert logged("ledger.export_unmasked") == before[1] + 1


def test_ledger_template_with_hostile_vocabulary(client, auth):
    from app.settings.models import DisputeType
    session.add(DisputeType(name='=HYPERLINK("http://x")'))
    session.commit()
    auth.login("township_director")
    resp = client.get("/ledger/template.xlsx")
    assert resp.status_code == 200
    wb = load_workbook(io.BytesIO(resp.data))
    values = [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert "'=HYPERLINK(\"http://x\")" in values
    assert not any(isinstance(v, str) and v.startswith(TRIGGERS) for v in values)


def test_monthly_report_excel(client, auth):
    registered, _numbers = _hostile_cases()
    township = org("429960002")
    township.name = '=HYPERLINK("http://x")'
    me = user("county_supervisor")
    me.display_name = "@SUM(1)"
    session.commit()
    auth.login("county_supervisor")
    month = f"{registered.year:04d}-{registered.month:02d}"
    resp = client.get(f"/reports/monthly.xlsx?org=429960&month={month}")
    assert resp.status_code == 200
    texts = _check_workbook(resp.data, expect_payload=False)
    joined = "\n".join(texts)
    assert "'=HYPERLINK(\"http://x\")" in joined  # the township in the ranking
    assert "'@SUM(1)" in joined  # 制表人
    assert "'+1" in joined and "'-1" in joined  # sources in 按来源
