"""Hostile input (issue 9): property-based tests (hypothesis) over the registration form, the
reception form, a workflow action form, the JSON API intake and the ledger import.  No input
gives a 500; a refused input writes nothing (every row of the database is unchanged); an
accepted input is stored exactly (as typed, less surrounding whitespace).  HTML in text fields
is shown as text; uploads are checked by content, size and name.

Example counts are modest and the run is derandomised (the ``qingyuan`` hypothesis profile in
tests/conftest.py), so CI is fast and deterministic."""
from __future__ import annotations

import io
import os
import string
from pathlib import Path
from datetime import datetime

import pytest
from hypothesis import HealthCheck, event, example, given, settings, strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import func, select

from app.cases.models import Attachment, Case, TimelineEntry
from app.db import session
from app.reception.models import ReceptionEntry
from tests.helpers import csrf_token
from tests.test_trust_authz import database_digest
from tests.workflow_factories import make_case, user

FIXTURES_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                       deadline=None)

HOSTILE = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "{{ 7*7 }}", "{% raw %}",
           "'; DROP TABLE dispute_case; --", "=HYPERLINK(\"http://x\")", "\x00", "a\x00b", "\u202e反转",
           "\r\n\r\n", "%00", "../../etc/passwd", "😀" * 3, "　", "\ufeff", "x" * 5000, "名" * 4001]
# Text a browser can post: any code point but lone surrogates.
TEXT = st.one_of(st.text(st.characters(codec="utf-8"), max_size=80), st.sampled_from(HOSTILE))
NUMBERISH = st.one_of(st.text(string.digits + "-.,e+ _", max_size=25), st.integers().map(str),
                      st.sampled_from(["", "NaN", "Infinity", "1e999", "-0", "99999999999999999999", "٣"]))


def OR_BLANK(*strategies):
    """Mostly blank: an optional field left empty lets the other fields' checks decide."""
    return st.one_of(st.just(""), st.just(""), *strategies)


def _ok(status: int) -> None:
    assert status < 500, f"server error {status}"


def _login(client, auth, role: str, page: str = "/") -> str:
    assert auth.login(role).status_code == 302
    return csrf_token(client, page)


# Logged in once per test (hypothesis runs every example inside one test call).
@pytest.fixture()
def vm_csrf(client, auth):
    return _login(client, auth, "village_mediator")


@pytest.fixture()
def tm_csrf(client, auth):
    return _login(client, auth, "township_mediator")


@pytest.fixture()
def td_csrf(client, auth):
    return _login(client, auth, "township_director", "/ledger/")


@pytest.fixture()
def as_user(client, auth):
    """Log ``client`` in as a demo role; returns a CSRF token of the session."""
    def login(role: str, page: str = "/") -> str:
        assert auth.login(role).status_code == 302
        return csrf_token(client, page)
    return login


# ---------------------------------------------------------------------------------------------
# 登记纠纷 (the registration form)

@FIXTURES_OK
@given(summary=TEXT, claims=TEXT, name=TEXT, phone=OR_BLANK(TEXT), id_number=OR_BLANK(TEXT),
       people=OR_BLANK(NUMBERISH), amount=OR_BLANK(NUMBERISH), occurred_on=OR_BLANK(st.dates().map(str), TEXT))
@example(summary="<script>alert(1)</script>", claims="", name="张三", phone="", id_number="", people="",
         amount="", occurred_on="")
@example(summary="a\x00b", claims="", name="张三", phone="", id_number="", people="", amount="", occurred_on="")
@example(summary="x" * 5000, claims="", name="n" * 101, phone="1" * 40, id_number="9" * 40,
         people="99999999999999999999", amount="1e999", occurred_on="9999-12-31")
def test_registration_form(client, vm_csrf, summary, claims, name, phone, id_number, people, amount,
                           occurred_on):
    token = vm_csrf
    form = {"csrf_token": token, "source": "群众来访", "type": "邻里", "village": "429960002001",
            "summary": summary, "claims": claims, "people_involved": people, "amount": amount,
            "occurred_on": occurred_on, "parties-0-kind": "person", "parties-0-name": name,
            "parties-0-role": "applicant", "parties-0-phone": phone, "parties-0-id_number": id_number,
            "confirm_duplicates": "1"}
    before = database_digest()
    resp = client.post("/cases/new", data=form)
    _ok(resp.status_code)
    event(f"status {resp.status_code}")
    if resp.status_code == 302:
        number = resp.headers["Location"].rsplit("/", 1)[-1]
        case = session.scalar(select(Case).where(Case.number == number))
        assert case.summary == summary.strip()
        assert (case.claims or "") == claims.strip()
        assert case.parties[0].name == name.strip()
    else:
        assert resp.status_code in (400, 422)
        assert database_digest() == before, "a refused registration wrote something"


# ---------------------------------------------------------------------------------------------
# 来访登记 (the reception form)

@FIXTURES_OK
@given(names=TEXT, headcount=OR_BLANK(NUMBERISH), phone=OR_BLANK(TEXT), matter=TEXT, notes=TEXT,
       received_at=OR_BLANK(st.datetimes(datetime(2020, 1, 1), datetime(2026, 1, 1))
                            .map(lambda d: d.strftime("%Y-%m-%dT%H:%M")), TEXT),
       handling=st.sampled_from(["direct_answer", "direct_answer", "guided", "transferred", "bogus", ""]))
@example(names="<b>王五</b>", headcount="1", phone="", matter="a\x00b", notes="", received_at="",
         handling="direct_answer")
def test_reception_form(client, tm_csrf, names, headcount, phone, matter, notes, received_at, handling):
    token = tm_csrf
    before_count = session.scalar(select(func.count()).select_from(ReceptionEntry))
    before = database_digest()
    resp = client.post("/reception/", data={"csrf_token": token, "visitor_names": names, "headcount": headcount,
                                            "phone": phone, "matter": matter, "notes": notes,
                                            "received_at": received_at, "handling": handling})
    _ok(resp.status_code)
    event(f"status {resp.status_code}")
    if resp.status_code == 302:
        entry = session.scalar(select(ReceptionEntry).order_by(ReceptionEntry.id.desc()))
        assert session.scalar(select(func.count()).select_from(ReceptionEntry)) == before_count + 1
        assert entry.visitor_names == names.strip() and entry.matter == matter.strip()
        assert (entry.notes or "") == notes.strip()
    else:
        assert resp.status_code in (400, 422)
        assert database_digest() == before, "a refused visit wrote something"


# ---------------------------------------------------------------------------------------------
# A workflow action form (不予受理 with its reason and guidance)

@FIXTURES_OK
@given(reason=TEXT, guidance=TEXT, version=st.one_of(st.just(""), NUMBERISH))
@example(reason="<script>x</script>", guidance="诉讼", version="")
def test_workflow_action_form(client, vm_csrf, reason, guidance, version):
    token = vm_csrf
    case = make_case("pending_triage", "village")
    session.commit()
    before = database_digest()
    resp = client.post(f"/workflow/cases/{case.number}/actions/decline",
                       data={"csrf_token": token, "reason": reason, "guidance": guidance, "version": version})
    _ok(resp.status_code)
    session.refresh(case)
    event(f"status {case.status}")
    if case.status == "declined":
        entry = session.scalar(select(TimelineEntry).where(TimelineEntry.case_id == case.id)
                               .order_by(TimelineEntry.id.desc()))
        assert entry.note == reason.strip() and entry.data["guidance"] == guidance.strip()
    else:
        assert resp.status_code in (302, 400, 409, 422)
        assert database_digest() == before, "a refused action wrote something"


# ---------------------------------------------------------------------------------------------
# The JSON API intake

JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
JSON_ANY = st.recursive(JSON_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                             st.dictionaries(TEXT, inner, max_size=3)),
                        max_leaves=8)
def MOSTLY(value):
    return st.one_of(st.just(value), st.just(value), st.just(value), TEXT)


PARTY = st.fixed_dictionaries({"name": st.one_of(TEXT, TEXT, JSON_ANY), "role": st.sampled_from(["申请人", "申请人", "x"])},
                              optional={"kind": JSON_ANY, "phone": st.one_of(TEXT, JSON_ANY),
                                        "id_number": st.one_of(TEXT, JSON_ANY), "address": TEXT})
BODY = st.fixed_dictionaries(
    {"source": MOSTLY("网格上报"), "type": MOSTLY("邻里"), "village": MOSTLY("429960002001"), "summary": st.one_of(TEXT, TEXT, JSON_ANY),
     "parties": st.one_of(st.lists(PARTY, min_size=1, max_size=3), st.lists(PARTY, max_size=3), JSON_ANY)},
    optional={"claims": st.one_of(TEXT, JSON_ANY), "people_involved": st.one_of(st.integers(), JSON_ANY),
              "amount": st.one_of(st.integers(), st.floats(allow_nan=False), TEXT, JSON_ANY),
              "occurred_on": st.one_of(st.dates().map(str), TEXT)})


@pytest.fixture()
def api_token(db):
    from app.accounts.services import issue_token
    token = issue_token(user("village_mediator"))
    session.commit()
    return token


@FIXTURES_OK
@given(body=st.one_of(BODY, BODY, JSON_ANY))
@example(body={"source": "网格上报", "type": "邻里", "village": "429960002001", "summary": "<script>x</script>",
               "parties": [{"name": "张三", "role": "申请人"}]})
@example(body={"source": "网格上报", "type": "邻里", "village": "429960002001", "summary": "a\x00b",
               "parties": [{"name": "张\x00三", "role": "申请人"}]})
@example(body={"source": "网格上报", "type": "邻里", "village": "429960002001", "summary": "\ud800",
               "parties": [{"name": "张三", "role": "申请人"}]})
def test_api_intake(client, api_token, body):
    before = database_digest()
    resp = client.post("/api/v1/cases", json=body, headers={"Authorization": f"Bearer {api_token}"})
    _ok(resp.status_code)
    event(f"status {resp.status_code}")
    if resp.status_code == 201:
        case = session.scalar(select(Case).where(Case.number == resp.get_json()["number"]))
        assert case.summary == body["summary"].strip()
        assert [p.name for p in case.parties] == [p["name"].strip() for p in body["parties"]]
    else:
        assert resp.status_code == 422, resp.get_json()
        assert "errors" in resp.get_json()
        assert database_digest() == before, "a refused API intake wrote something"


def test_nul_in_a_path_or_query_is_refused(client, vm_csrf, api_token):
    """Text no column can hold is refused before any handler (PostgreSQL cannot store NUL)."""
    for url in ("/cases/?q=a%00b", "/cases/WF%00x", "/reports/monthly?org=4299%0060"):
        assert client.get(url).status_code == 400, url
    h = {"Authorization": f"Bearer {api_token}"}
    assert client.get("/api/v1/cases?q=%00", headers=h).status_code == 422
    assert client.get("/api/v1/cases/x%00y", headers=h).status_code == 422


def test_api_refuses_bodies_that_are_not_json(client, api_token):
    h = {"Authorization": f"Bearer {api_token}"}
    for data, ctype in ((b"\xff\xfe garbage", "application/json"), (b"[1,2", "application/json"),
                        (b"summary=x", "application/x-www-form-urlencoded"), (b"", "application/json")):
        before = database_digest()
        resp = client.post("/api/v1/cases", data=data, content_type=ctype, headers=h)
        assert resp.status_code == 422 and database_digest() == before


# ---------------------------------------------------------------------------------------------
# The ledger import: a generated workbook with random cell values

LEDGER_HEADERS = ["编号", "登记日期", "来源", "乡镇", "村(社区)", "纠纷类型", "简要情况", "当事人", "联系电话",
                  "涉及人数", "涉及金额", "风险等级", "化解层级", "办理结果", "结案日期"]
# Text openpyxl can write (a workbook cannot hold most C0 control characters).
CELL_TEXT = TEXT.map(lambda t: ILLEGAL_CHARACTERS_RE.sub("", t))
CELL = st.one_of(st.none(), CELL_TEXT, st.integers(min_value=-10**15, max_value=10**15), st.floats(allow_nan=False),
                 st.dates(), st.booleans())
GOOD_ROW = ["", "2026-10-08", "群众来访", "南湖镇", "朱湖社区", "邻里", "两户因排水沟发生争执", "张三(申请人)",
            "", 2, 0, "低", "村级", "", ""]


def _ledger_bytes(rows: list[list]) -> bytes:
    from app.ledger.importer import CASE_SHEET, RECEPTION_SHEET
    wb = Workbook()
    ws = wb.active
    ws.title = CASE_SHEET
    ws.append(LEDGER_HEADERS)
    for row in rows:
        ws.append(row)
    wb.create_sheet(RECEPTION_SHEET).append(["日期", "乡镇", "来访人", "人数", "事由", "处理方式", "备注"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@settings(FIXTURES_OK, max_examples=30)
@given(rows=st.lists(st.lists(CELL, min_size=0, max_size=len(LEDGER_HEADERS) + 2), min_size=1, max_size=4),
       mutate=st.lists(st.tuples(st.integers(0, len(LEDGER_HEADERS) - 1), CELL), max_size=3))
def test_ledger_import_random_workbook(client, td_csrf, rows, mutate):
    token = td_csrf
    good = list(GOOD_ROW)
    for col, value in mutate:
        good[col] = value
    data = _ledger_bytes([good] + rows)
    before_cases = session.scalar(select(func.count()).select_from(Case))
    before = database_digest()
    resp = client.post("/ledger/preview", data={"csrf_token": token, "file": (io.BytesIO(data), "台账.xlsx")},
                       content_type="multipart/form-data")
    _ok(resp.status_code)
    assert database_digest() == before, "a preview (dry run) wrote something"
    m = __import__("re").search(r'name="token"[^>]*value="([^"]+)"', resp.get_data(as_text=True))
    event(f"preview {resp.status_code}")
    if resp.status_code != 200 or m is None:
        return
    resp = client.post("/ledger/confirm", data={"csrf_token": token, "token": m.group(1)})
    for suffix in (".xlsx", ".name"):  # a refused confirm leaves the upload behind
        (Path(client.application.instance_path) / "ledger_uploads" / (m.group(1) + suffix)).unlink(missing_ok=True)
    _ok(resp.status_code)
    if resp.status_code == 302:
        assert session.scalar(select(func.count()).select_from(Case)) > before_cases
    else:
        assert database_digest() == before, "a refused import wrote something"


@pytest.mark.parametrize("payload", [b"", b"PK\x03\x04garbage", b"not a zip", b"PK\x03\x04" + os.urandom(2000)])
def test_ledger_import_damaged_files(client, as_user, payload):
    token = as_user("township_director", "/ledger/")
    before = database_digest()
    resp = client.post("/ledger/preview", data={"csrf_token": token, "file": (io.BytesIO(payload), "台账.xlsx")},
                       content_type="multipart/form-data")
    assert resp.status_code in (400, 422) and database_digest() == before


# ---------------------------------------------------------------------------------------------
# HTML is shown as text


def test_html_in_text_fields_is_escaped(client, as_user):
    script = "<script>alert('xss')</script>"
    case = make_case("pending_triage", "village", summary=script + "排水沟", claims="<img src=x onerror=alert(1)>")
    from app.cases.models import Party
    case.parties.append(Party(position=0, kind="person", name="<b>张三</b>", role="applicant"))
    session.commit()
    as_user("township_mediator")
    for url in (f"/cases/{case.number}", "/cases/", f"/cases/?q={script}", f"/workflow/cases/{case.number}",
                f"/mediation/cases/{case.number}/documents/register"):
        html = client.get(url, follow_redirects=True).get_data(as_text=True)
        assert "<script>alert('xss')</script>" not in html, url
        assert "<img src=x" not in html and "<b>张三</b>" not in html, url
        assert "&lt;script&gt;" in html or "&lt;b&gt;张三" in html, url
    api = client.get(f"/api/v1/cases/{case.number}",
                     headers={"Authorization": f"Bearer {_token('township_mediator')}"}).get_json()
    assert api["summary"] == script + "排水沟"  # JSON carries the text as it is; the client escapes


def test_html_in_reception_and_roster_is_escaped(client, tm_csrf):
    from app.mediation.models import RosterMember
    from tests.workflow_factories import org
    resp = client.post("/reception/", data={"csrf_token": tm_csrf, "visitor_names": "<script>v()</script>王五",
                                            "headcount": "1", "matter": "<iframe src=x>", "handling": "direct_answer"})
    assert resp.status_code == 302
    session.add(RosterMember(org_id=org("429960002001").id, kind="wulao", name="<svg onload=r()>老李"))
    session.commit()
    for url, raw in (("/reception/", "<script>v()</script>"), ("/reception/", "<iframe src=x>"),
                     ("/mediation/roster", "<svg onload=r()>")):
        html = client.get(url).get_data(as_text=True)
        assert raw not in html and raw.replace("<", "&lt;").replace(">", "&gt;") in html, (url, raw)


def _token(role: str) -> str:
    from app.accounts.services import issue_token
    token = issue_token(user(role))
    session.commit()
    return token


# ---------------------------------------------------------------------------------------------
# Uploads: content, size and name

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _upload(client, token, number, content: bytes, name: str):
    return client.post(f"/cases/{number}/attachments", data={"csrf_token": token, "file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def _stored_files(app) -> set[str]:
    d = app.config["UPLOAD_DIR"]
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def test_upload_name_is_reduced_to_a_plain_file_name(app, client, as_user):
    case = make_case("pending_triage", "village")
    session.commit()
    token = as_user("village_mediator")
    for name in ("../../x.pdf", "..\\..\\x.pdf", "/etc/x.pdf", "x\x00.pdf", "<script>.pdf"):
        resp = _upload(client, token, case.number, PDF, name)
        assert resp.status_code == 302
        att = session.scalar(select(Attachment).where(Attachment.case_id == case.id).order_by(Attachment.id.desc()))
        assert "/" not in att.filename and "\\" not in att.filename, att.filename  # no path survives
        assert "\x00" not in att.filename and "<" not in att.filename
        assert os.path.basename(att.storage_key) == att.storage_key and att.filename not in att.storage_key
        assert att.content_type == "application/pdf"
    assert not os.path.exists(os.path.join(app.config["UPLOAD_DIR"], "..", "..", "x.pdf"))
    # The download names the file plainly and sends it with the sniffed type.
    resp = client.get(f"/cases/{case.number}/attachments/{att.id}")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert "/" not in resp.headers["Content-Disposition"].split("filename", 1)[1]


@pytest.mark.parametrize("content,name", [
    (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 200, "invoice.pdf"),  # a Windows program renamed .pdf
    (b"#!/bin/sh\nrm -rf /\n", "photo.png"),
    (b"<html><script>alert(1)</script></html>", "page.jpg"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "image.svg"),
    (b"", "empty.pdf"),
])
def test_upload_checked_by_content(app, client, as_user, content, name):
    case = make_case("pending_triage", "village")
    session.commit()
    token = as_user("village_mediator")
    files, before = _stored_files(app), database_digest()
    resp = _upload(client, token, case.number, content, name)
    _ok(resp.status_code)
    assert session.scalar(select(func.count()).select_from(Attachment).where(Attachment.case_id == case.id)) == 0
    assert database_digest() == before and _stored_files(app) == files


def test_upload_oversize_is_refused(app, client, as_user):
    case = make_case("pending_triage", "village")
    session.commit()
    token = as_user("village_mediator")
    limit = app.config.get("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
    files, before = _stored_files(app), database_digest()
    resp = _upload(client, token, case.number, PNG + b"\x00" * limit, "big.png")
    assert resp.status_code in (302, 413)
    assert database_digest() == before and _stored_files(app) == files
    # Exactly at the limit is accepted.
    resp = _upload(client, token, case.number, PNG + b"\x00" * (limit - len(PNG)), "ok.png")
    assert resp.status_code == 302
    assert session.scalar(select(func.count()).select_from(Attachment).where(Attachment.case_id == case.id)) == 1


# ---------------------------------------------------------------------------------------------
# Wider coverage: the case edit form, a mediation session record, a sweep, an admin settings
# form, the API PATCH and the API actions.  Each: no 500, and a refused input writes nothing.

REFUSED = (302, 400, 403, 404, 409, 422)


@FIXTURES_OK
@given(source=MOSTLY("群众来访"), type_=MOSTLY("邻里"), occurred_on=OR_BLANK(st.dates().map(str), TEXT),
       people=OR_BLANK(NUMBERISH), amount=OR_BLANK(NUMBERISH), summary=TEXT, claims=TEXT,
       version=st.one_of(st.just("1"), st.just("1"), NUMBERISH))
@example(source="群众来访", type_="邻里", occurred_on="", people="", amount="", summary="<script>x</script>",
         claims="a\x00b", version="1")
@example(source="群众来访", type_="邻里", occurred_on="9999-12-31", people="99999999999999999999", amount="1e999",
         summary="x" * 5000, claims="", version="99999999999999999999")
def test_case_edit_form(client, vm_csrf, source, type_, occurred_on, people, amount, summary, claims, version):
    case = make_case("pending_triage", "village", summary="原有情况")
    session.commit()
    before = database_digest()
    resp = client.post(f"/cases/{case.number}/edit", data={
        "csrf_token": vm_csrf, "source": source, "type": type_, "occurred_on": occurred_on,
        "people_involved": people, "amount": amount, "summary": summary, "claims": claims, "version": version})
    _ok(resp.status_code)
    session.refresh(case)
    event(f"status {resp.status_code}")
    if resp.status_code == 302 and database_digest() != before:
        assert case.summary == summary.strip() and (case.claims or "") == claims.strip()
        assert case.version == 2
    else:
        assert resp.status_code in REFUSED
        assert database_digest() == before, "a refused edit wrote something"


@FIXTURES_OK
@given(held_on=OR_BLANK(st.dates().map(str), TEXT), place=TEXT, record=TEXT, agreed=OR_BLANK(TEXT),
       others=OR_BLANK(TEXT), party_ids=OR_BLANK(NUMBERISH, TEXT), user_ids=OR_BLANK(NUMBERISH),
       version=OR_BLANK(NUMBERISH))
@example(held_on="2026-11-01", place="村委会", record="<script>x</script>", agreed="", others="", party_ids="",
         user_ids="", version="")
@example(held_on="0001-01-01", place="x" * 300, record="a\x00b", agreed="", others="、,，\n", party_ids="-1",
         user_ids="99999999999999999999", version="")
def test_mediation_session_form(client, tm_csrf, held_on, place, record, agreed, others, party_ids, user_ids,
                                version):
    from app.mediation.models import MediationSession
    from tests.mediation_factories import mediation_case
    case = mediation_case()
    session.commit()
    before = database_digest()
    resp = client.post(f"/mediation/cases/{case.number}/session", data={
        "csrf_token": tm_csrf, "held_on": held_on, "place": place, "record": record, "agreed": agreed,
        "others": others, "party_ids": party_ids, "user_ids": user_ids, "version": version})
    _ok(resp.status_code)
    stored = session.scalar(select(MediationSession).where(MediationSession.case_id == case.id))
    event(f"status {resp.status_code}, stored {stored is not None}")
    if stored is not None:
        assert stored.place == place.strip() and stored.record == record.strip()
    else:
        assert resp.status_code in REFUSED
        assert database_digest() == before, "a refused session record wrote something"


@FIXTURES_OK
@given(swept_on=OR_BLANK(st.dates().map(str), TEXT), households=OR_BLANK(NUMBERISH),
       participants=st.lists(st.one_of(st.sampled_from(["网格员", "村干部"]), TEXT), max_size=3),
       other=OR_BLANK(TEXT), nil_report=st.sampled_from(["", "y", "1", "x"]), notes=OR_BLANK(TEXT))
@example(swept_on="2026-11-01", households="1", participants=["网格员"], other="<b>x</b>", nil_report="y",
         notes="a\x00b")
def test_sweep_form(client, auth, swept_on, households, participants, other, nil_report, notes):
    from app.screening.models import Sweep
    token = getattr(test_sweep_form, "_token", None)
    if token is None or not _session_alive(client):
        token = _login(client, auth, "grid_worker")
        test_sweep_form._token = token
    count = session.scalar(select(func.count()).select_from(Sweep))
    before = database_digest()
    data = {"csrf_token": token, "swept_on": swept_on, "households_visited": households,
            "participants": participants, "participants_other": other, "notes": notes}
    if nil_report:
        data["nil_report"] = nil_report
    resp = client.post("/screening/new", data=data)
    _ok(resp.status_code)
    added = session.scalar(select(func.count()).select_from(Sweep)) - count
    event(f"status {resp.status_code}, added {added}")
    if added:
        assert added == 1
        sweep = session.scalar(select(Sweep).order_by(Sweep.id.desc()))
        assert (sweep.notes or "") == notes.strip()
        session.delete(sweep)  # the next example's period is free again
        session.commit()
    else:
        assert resp.status_code in REFUSED
        assert database_digest() == before, "a refused sweep wrote something"


def _session_alive(client) -> bool:
    return client.get("/screening/new").status_code == 200


@FIXTURES_OK
@given(kind=st.sampled_from(["types", "sources", "risk_factors", "types"]), name=TEXT,
       parent=OR_BLANK(st.integers(-2**70, 2**70).map(str), st.text(string.digits + "-x", max_size=24)),
       suggests=OR_BLANK(st.sampled_from(["high", "medium", "low"]), TEXT))
@example(kind="types", name="<script>x</script>", parent="", suggests="")
def test_admin_settings_form(client, auth, kind, name, parent, suggests):
    from app.audit.models import AuditLog
    token = getattr(test_admin_settings_form, "_token", None)
    if token is None or client.get("/admin/settings").status_code != 200:
        token = _login(client, auth, "admin", "/admin/settings")
        test_admin_settings_form._token = token
    audits = session.scalar(select(func.count()).select_from(AuditLog))
    before = database_digest()
    resp = client.post(f"/admin/settings/{kind}", data={"csrf_token": token, "name": name, "parent_id": parent,
                                                         "suggests": suggests})
    _ok(resp.status_code)
    event(f"status {resp.status_code}")
    if resp.status_code == 302:
        assert database_digest() != before
        assert session.scalar(select(func.count()).select_from(AuditLog)) > audits, "an admin change unaudited"
    else:
        assert resp.status_code in (400, 422)
        assert database_digest() == before, "a refused settings change wrote something"


@pytest.fixture()
def mediator_token(db):
    from app.accounts.services import issue_token
    token = issue_token(user("village_mediator"))
    session.commit()
    return token


PATCH_BODY = st.one_of(
    st.fixed_dictionaries({}, optional={
        "version": st.one_of(st.just(1), st.just(1), JSON_ANY), "summary": st.one_of(TEXT, TEXT, JSON_ANY),
        "claims": st.one_of(TEXT, JSON_ANY), "source": MOSTLY("群众来访"), "type": MOSTLY("邻里"),
        "people_involved": st.one_of(st.integers(), JSON_ANY), "amount": st.one_of(st.integers(), TEXT, JSON_ANY),
        "occurred_on": st.one_of(st.dates().map(str), TEXT), "status": TEXT}),
    JSON_ANY)


@FIXTURES_OK
@given(body=PATCH_BODY)
@example(body={"version": 1, "summary": "<script>x</script>"})
@example(body={"version": 1, "summary": "a\x00b"})
@example(body={"version": 99999999999999999999, "summary": "新"})
def test_api_patch(client, mediator_token, body):
    case = make_case("pending_triage", "village", summary="原有情况")
    session.commit()
    before = database_digest()
    resp = client.patch(f"/api/v1/cases/{case.number}", json=body,
                        headers={"Authorization": f"Bearer {mediator_token}"})
    _ok(resp.status_code)
    event(f"status {resp.status_code}")
    session.refresh(case)
    if resp.status_code == 200:
        if isinstance(body.get("summary"), str):
            assert case.summary == body["summary"].strip()
    else:
        assert resp.status_code in (400, 403, 409, 422), resp.get_json()
        assert database_digest() == before, "a refused PATCH wrote something"


ACTION_NAMES = ["accept", "decline", "answer_directly", "transfer", "escalate", "grade_risk", "log_session",
                "agree", "terminate", "withdraw", "archive", "supervise", "nonsense"]
ACTION_BODY = st.one_of(
    st.fixed_dictionaries({"action": st.one_of(st.sampled_from(ACTION_NAMES), TEXT)}, optional={
        "version": st.one_of(st.just(1), JSON_ANY), "reason": st.one_of(TEXT, JSON_ANY), "note": TEXT,
        "guidance": TEXT, "level": st.one_of(st.sampled_from(["high", "medium", "low"]), TEXT, JSON_ANY),
        "department": st.one_of(TEXT, JSON_ANY), "due_on": st.one_of(st.dates().map(str), TEXT),
        "factors": JSON_ANY, "mediator": JSON_ANY}),
    JSON_ANY)


@FIXTURES_OK
@given(body=ACTION_BODY)
@example(body={"action": "accept", "version": 1})
@example(body={"action": "decline", "reason": "<script>x</script>", "guidance": "诉讼"})
@example(body={"action": "grade_risk", "level": "high", "factors": [{"x": None}]})
@example(body={"action": "\x00"})
def test_api_actions(client, mediator_token, body):
    case = make_case("pending_triage", "village")
    session.commit()
    before = database_digest()
    resp = client.post(f"/api/v1/cases/{case.number}/actions", json=body,
                       headers={"Authorization": f"Bearer {mediator_token}"})
    _ok(resp.status_code)
    event(f"status {resp.status_code}")
    if resp.status_code == 200:
        session.refresh(case)
        assert resp.get_json()["status"] == case.status
    else:
        assert resp.status_code in (400, 403, 409, 422), resp.get_json()
        assert database_digest() == before, "a refused API action wrote something"


def test_admin_settings_huge_parent_id(client, auth):
    token = _login(client, auth, "admin", "/admin/settings")
    before = database_digest()
    resp = client.post("/admin/settings/types", data={"csrf_token": token, "name": "新类型",
                                                      "parent_id": "99999999999999999999"})
    assert resp.status_code == 422 and database_digest() == before
