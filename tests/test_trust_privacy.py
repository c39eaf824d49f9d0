"""Personal data out of URLs, logs and caches (issue 9; ASVS 8.2.1, 8.3.1, 7.1.1, 7.1.2, 7.3.1).

- The ledger's search form POSTs; the list is addressed by an opaque, expiring token (``s=``),
  so a name, phone or ID number never appears in a URL: not in links, the export link, the
  next page, or ``next=`` after a timeout.  A legacy ``?q=`` is redirected to the token form.
- ``POST /api/v1/cases/search`` takes the filters in a JSON body (``GET ?q=`` stays: §10).
- Log records are one line each, with ID numbers, mobiles and passwords masked.
- Every non-static response, downloads included, carries ``Cache-Control: no-store``.
"""
from __future__ import annotations

import io
import logging
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from openpyxl import load_workbook

from app.cases.attachments import add_attachment
from app.cases.models import Party
from app.db import session
from app.security import clean_log_text, open_search, seal_search
from tests.helpers import csrf_token
from tests.intake_helpers import login
from tests.workflow_factories import make_case, user

PHONE = "13912345678"
ID_NUMBER = "420222199001011234"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class _Urls(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v or "" for k, v in attrs if k in ("href", "action", "src", "formaction", "data-url")]


def page_urls(html: str) -> list[str]:
    parser = _Urls()
    parser.feed(html)
    return parser.urls


def _cases_with(n: int, phone: str = PHONE, id_number: str = ID_NUMBER) -> list[str]:
    numbers = []
    for i in range(n):
        case = make_case(summary=f"邻里纠纷第{i}件")
        case.parties.append(Party(position=0, kind="person", name=f"当事人{i}", role="applicant",
                                  phone=phone, id_number=id_number))
        numbers.append(case.number)
    session.flush()
    session.commit()
    return numbers


def _search(client, **form):
    token = csrf_token(client, "/cases/")
    return client.post("/cases/search", data={"csrf_token": token, **form})


def _listed(html: str) -> set[str]:
    return set(re.findall(r'href="/cases/([A-Z]+-[0-9a-f]+)"', html))


def _no_personal_data(urls: list[str], *terms: str) -> None:
    digits = [t for t in terms]
    for url in urls:
        for t in digits:
            assert t not in url, f"{t} in {url}"
            assert t[-8:] not in url, f"part of {t} in {url}"


def test_search_by_phone_keeps_it_out_of_every_url_and_still_pages(client, auth, db):
    made = set(_cases_with(55))  # more than a page (50)
    other = make_case(summary="不相关的纠纷").number
    session.commit()
    login(auth, "county_supervisor")
    resp = _search(client, q=PHONE, sort="number")
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert PHONE not in location and set(parse_qs(urlsplit(location).query)) == {"s", "sort"}
    html = client.get(location).get_data(as_text=True)
    first = _listed(html)
    assert len(first) == 50 and first <= made and other not in first
    urls = page_urls(html)
    _no_personal_data(urls, PHONE, ID_NUMBER)
    # The next page keeps the search (by token) and finds the rest.
    nxt = [u for u in urls if "cursor=" in u]
    assert nxt, "no next-page link"
    second_html = client.get(nxt[0].replace("&amp;", "&")).get_data(as_text=True)
    second = _listed(second_html)
    assert first | second == made and not first & second
    _no_personal_data(page_urls(second_html), PHONE, ID_NUMBER)
    # The sort is kept in the token form too; the export link exports the searched list.
    export = [u for u in urls if "/cases/export.xlsx" in u and "s=" in u]
    assert export
    data = client.get(export[0].replace("&amp;", "&"))
    assert data.status_code == 200
    cells = {str(c.value) for ws in load_workbook(io.BytesIO(data.data)).worksheets
             for row in ws.iter_rows() for c in row if c.value is not None}
    assert made <= cells and other not in cells


def test_search_by_id_number_and_name(client, auth, db):
    made = set(_cases_with(2, phone="13700001111", id_number="42022219850505123X"))
    login(auth, "county_supervisor")
    for term in ("42022219850505123X", "当事人1"):
        resp = _search(client, q=term)
        assert term not in resp.headers["Location"]
        html = client.get(resp.headers["Location"]).get_data(as_text=True)
        assert _listed(html) & made
        _no_personal_data(page_urls(html), term)


def test_legacy_q_redirects_to_the_token_form(client, auth, db):
    made = set(_cases_with(1))
    login(auth, "county_supervisor")
    resp = client.get(f"/cases/?q={PHONE}&status=pending_triage")
    assert resp.status_code == 302
    loc = resp.headers["Location"]
    assert PHONE not in loc and set(parse_qs(urlsplit(loc).query)) == {"s", "status"}
    assert _listed(client.get(loc).get_data(as_text=True)) == made


def test_expired_or_forged_token_asks_again(client, auth, db, app, monkeypatch):
    login(auth, "county_supervisor")
    resp = client.get("/cases/?s=not-a-token&status=open")
    assert resp.status_code == 302
    assert parse_qs(urlsplit(resp.headers["Location"]).query) == {"status": ["open"]}
    assert "搜索条件已过期" in client.get(resp.headers["Location"]).get_data(as_text=True)
    # A stored value's ciphertext (same keys) is not a search token.
    from app.crypto import encrypt
    assert open_search(encrypt(PHONE)) is None
    token = seal_search(PHONE)
    assert open_search(token) == PHONE
    monkeypatch.setitem(app.config, "SEARCH_TOKEN_HOURS", 0)
    import time
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 5)
    assert open_search(token) is None


def test_next_after_login_carries_no_search(client, db):
    resp = client.get(f"/cases/?q={PHONE}&status=open")
    assert resp.status_code == 302
    loc = resp.headers["Location"]
    assert "/login" in loc and PHONE not in loc
    nxt = parse_qs(urlsplit(loc).query)["next"][0]
    assert "q=" not in nxt and "status=open" in nxt


def test_next_after_idle_timeout_carries_no_search_token(client, auth, db, monkeypatch):
    login(auth, "county_supervisor")
    loc = _search(client, q=PHONE).headers["Location"]
    import app.security as security
    real = security.now_ts()
    monkeypatch.setattr(security, "now_ts", lambda: real + 31 * 60)
    resp = client.get(loc)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    nxt = parse_qs(urlsplit(resp.headers["Location"]).query).get("next", [""])[0]
    assert "s" not in parse_qs(urlsplit(nxt).query) and PHONE not in nxt


def test_api_search_in_a_body(client, db):
    from tests.intake_helpers import api_token
    made = set(_cases_with(3))
    token = api_token("county_supervisor")
    session.commit()
    h = {"Authorization": f"Bearer {token}"}
    resp = client.post("/api/v1/cases/search", json={"q": PHONE, "limit": 2}, headers=h)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    rest = client.post("/api/v1/cases/search", json={"q": PHONE, "cursor": body["next_cursor"]}, headers=h).get_json()
    assert {i["number"] for i in body["items"] + rest["items"]} == made
    assert all(PHONE not in str(i) for i in body["items"])  # masked
    # the GET contract stays
    assert {i["number"] for i in client.get(f"/api/v1/cases?q={PHONE}", headers=h).get_json()["items"]} == made
    for bad in ({"risk": "extreme"}, {"limit": 0}, {"nonsense": 1}, [1], {"from": "not-a-date"}):
        r = client.post("/api/v1/cases/search", json=bad, headers=h)
        assert r.status_code == 422, bad
    assert client.post("/api/v1/cases/search", json={"q": PHONE}).status_code == 401
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "post" in doc["paths"]["/cases/search"]
    assert "/cases/search" in doc["paths"]["/cases"]["get"]["description"]


# ---------------------------------------------------------------------------------------------
# Logs


def test_log_lines_cannot_be_forged_and_carry_no_personal_data(app, caplog):
    caplog.set_level(logging.INFO)
    user_input = f"张三\n2026-01-01 INFO admin logged in\r{ID_NUMBER} {PHONE}"
    app.logger.warning("search for %s password=%s", user_input, "Hunter2-secret!")
    logging.getLogger("werkzeug").info('127.0.0.1 - - "GET /cases/?q=%s&password=%s HTTP/1.1" 200 -',
                                       PHONE, "Hunter2-secret!")
    app.logger.info({"password": "Hunter2-secret!", "id": ID_NUMBER})
    records = [r for r in caplog.records if r.name in (app.logger.name, "werkzeug")]
    assert len(records) == 3
    text = caplog.text
    assert len([line for line in text.splitlines() if line.strip()]) == 3  # one line each
    assert ID_NUMBER not in text and PHONE not in text and "Hunter2" not in text
    assert "420222********1234" in text and "139****5678" in text
    assert "\\n2026-01-01 INFO admin logged in" in text


def test_gunicorn_access_log_is_filtered(app, caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("gunicorn.access").info("%(r)s %(s)s", {"r": f"GET /cases/?q={PHONE} HTTP/1.1", "s": "200"})
    assert PHONE not in caplog.text and "139****5678" in caplog.text


@pytest.mark.parametrize("raw,clean", [
    ("a\nb", "a\\nb"), ("a\r\nb", "a\\r\\nb"), ("password=abc&x=1", "password=***&x=1"),
    ('{"new_password": "abc"}', '{"new_password": "***"}'), (ID_NUMBER, "420222********1234"),
    ("42022219900101123x", "420222********123x"), (PHONE, "139****5678"), ("WF-2026-000123", "WF-2026-000123"),
    ("1234567890123", "1234567890123"),  # 13 digits: not a mobile
])
def test_clean_log_text(raw, clean):
    assert clean_log_text(raw) == clean


# ---------------------------------------------------------------------------------------------
# Cache-Control: no-store everywhere but static files


def test_no_store_on_pages_exports_and_attachments(client, auth, db):
    case = make_case(summary="附件测试")
    att = add_attachment(user("village_mediator"), case, io.BytesIO(PNG), "照片.png")
    session.commit()
    login(auth, "county_supervisor")
    for url in ("/", "/cases/", f"/cases/{case.number}", "/cases/export.xlsx",
                f"/cases/{case.number}/attachments/{att.id}",
                f"/mediation/cases/{case.number}/documents/register", "/healthz", "/login"):
        resp = client.get(url)
        assert resp.status_code in (200, 302), url
        assert resp.headers.get("Cache-Control") == "no-store", (url, resp.headers.get("Cache-Control"))
    static = client.get("/static/" + _a_static_file())
    assert static.status_code == 200 and "no-store" not in (static.headers.get("Cache-Control") or "")


def _a_static_file() -> str:
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "static"
    return next(str(p.relative_to(root)) for p in sorted(root.rglob("*.css")))
