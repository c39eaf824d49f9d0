"""Scale-out (issue 10): two app hosts on one database behave as one system.

Two gunicorn masters ("host A" and "host B", one sync worker each, separate processes with
separate in-process caches) run in production mode on the same database and the same
attachment directory, exactly as two hosts behind nginx would; migrations ran once, before
either started (``flask db upgrade``, then ``flask seed-demo``).  A browser whose requests
nginx sends to either host must see one system:

- a session begun on one host is good on the other, and ending it on one (a new password)
  ends it on both;
- login failures count across hosts (the lockout is in the database);
- a write on one host shows at once in the other's pages and reports (its report cache is
  keyed by counters in the database) and an edit saved on one host is never silently
  overwritten from a form loaded on the other (optimistic locking);
- case numbers drawn on both hosts at once never collide;
- an attachment uploaded on one host downloads from the other; a ledger preview uploaded on
  one host is confirmed on the other.

The hosts run on SQLite (a file both open) and, in the PostgreSQL run, on a fresh PostgreSQL
database.  Nginx itself is not in the loop here (``bench/scale_out.py`` measures through it).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx  # a dev dependency (pyproject): a missing one must fail, not skip
import pytest

from tests.conftest import PG_URL, _create_pg_database, _drop_pg_database


ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Qingyuan@2026"  # the demo users' documented password


class Browser:
    """One user's cookie jar; each request goes to the host named, as nginx might send it, with
    the client's address in ``X-Forwarded-For`` as nginx sets it (the hosts run with
    ``PROXY_COUNT=1``)."""

    def __init__(self, hosts: dict, address: str = "198.51.100.7"):
        self.hosts, self.address = hosts, address
        self.cookies = httpx.Cookies()

    def request(self, host: str, method: str, path: str, **kw) -> httpx.Response:
        with httpx.Client(base_url=self.hosts[host].base, cookies=self.cookies, follow_redirects=False,
                          timeout=60, headers={"X-Forwarded-For": self.address}) as c:
            resp = c.request(method, path, **kw)
            self.cookies = httpx.Cookies(c.cookies)
        return resp

    def get(self, host, path, **kw):
        return self.request(host, "GET", path, **kw)

    def post(self, host, path, **kw):
        return self.request(host, "POST", path, **kw)

    def csrf(self, host: str, path: str) -> str:
        html = self.get(host, path).text
        m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
            re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
        assert m, f"no CSRF token on {path} of host {host}"
        return m.group(1)

    def login(self, host: str, username: str, password: str = PASSWORD) -> httpx.Response:
        token = self.csrf(host, "/login")
        return self.post(host, "/login", data={"username": username, "password": password, "csrf_token": token})


def _flask(env: dict, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    from app.crypto import generate_key
    import secrets
    tmp = tmp_path_factory.mktemp("scale_out")
    url = _create_pg_database(PG_URL) if PG_URL else f"sqlite:///{tmp / 'county.db'}"
    uploads = tmp / "shared-uploads"  # what NFS or an object store mount is to real hosts
    uploads.mkdir()
    # what every host's /etc/qingyuan/qingyuan.env would hold (the same keys on every host)
    settings = dict(QY_ENV="production", SECRET_KEY=secrets.token_urlsafe(32), QY_DATA_KEYS=generate_key(),
                    QY_HASH_KEY=secrets.token_urlsafe(32), UPLOAD_DIR=str(uploads), SESSION_COOKIE_SECURE="0",
                    FLASK_APP="wsgi:app", PROXY_COUNT="1")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QY_", "FLASK_"))} | settings | {"DATABASE_URL": url}
    _flask(env, "db", "upgrade")  # once per release, on one host
    _flask(env, "seed-demo", "--if-empty")
    token = _flask(env, "accounts", "token", "township_mediator").strip().split()[-1]
    from bench.run import Server  # what bench/run.py and bench/scale_out.py serve the app with
    started = {name: Server("wsgi:app", 1, url, tmp / f"host-{name}.log", env=settings) for name in ("A", "B")}
    try:
        for h in started.values():
            h.wait_ready("/login")
        yield {"hosts": started, "token": token, "uploads": uploads, "url": url}
    finally:
        for h in started.values():
            h.stop()
        if PG_URL:
            _drop_pg_database(url, PG_URL)
    for name in started:
        log = tmp / f"host-{name}.log"
        errors = log.read_text(errors="replace") if log.exists() else ""
        assert "Traceback" not in errors, f"host {name} logged an error:\n{errors[-3000:]}"


def _api(hosts, host: str, method: str, path: str, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {hosts['token']}"}
    return httpx.request(method, hosts["hosts"][host].base + path, headers=headers, timeout=60, **kw)


def _case_body(summary: str) -> dict:
    return {"source": "网格上报", "type": "邻里", "village": "429960002001", "summary": summary,
            "parties": [{"name": "甲某", "role": "申请人"}, {"name": "乙某", "role": "被申请人"}]}


def test_a_session_begun_on_one_host_is_good_on_the_other_and_ends_on_both(hosts):
    me = Browser(hosts["hosts"])
    assert me.login("A", "village_mediator").status_code == 302
    other_copy = Browser(hosts["hosts"])
    other_copy.cookies = httpx.Cookies(me.cookies)  # the same cookie kept by another tab
    for host in ("B", "A", "B"):
        page = me.get(host, "/")
        assert page.status_code == 200 and "工作台" in page.text
    assert other_copy.get("A", "/").status_code == 200
    # a new password, saved through host B, ends every session of the user on both hosts
    token = me.csrf("B", "/account/password")
    new_password = "Qingyuan@2026-new"
    resp = me.post("B", "/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                    "new_password": new_password, "confirm": new_password})
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    for host in ("A", "B"):
        gone = other_copy.get(host, "/")
        assert gone.status_code == 302 and "/login" in gone.headers["Location"], host
    fresh = Browser(hosts["hosts"])
    assert fresh.login("A", "village_mediator", new_password).status_code == 302
    assert fresh.get("B", "/").status_code == 200


def test_login_failures_count_across_hosts(hosts):
    """Five failures for one username spread over both hosts lock it on both; so do five from
    one address (each user below comes from an address of its own)."""
    intruder = Browser(hosts["hosts"], address="203.0.113.5")
    answers = [intruder.login("AB"[i % 2], "grid_worker", "not-the-password").status_code for i in range(5)]
    assert answers == [200, 200, 200, 200, 429]  # the fifth, on host A, counted B's two
    for host, address in (("A", "203.0.113.6"), ("B", "203.0.113.7")):
        owner = Browser(hosts["hosts"], address=address)
        refused = owner.login(host, "grid_worker")  # the right password, from elsewhere
        assert refused.status_code == 429 and "锁定" in refused.text, host
        assert owner.get(host, "/").status_code == 302  # no session was begun
    scanner = Browser(hosts["hosts"], address="203.0.113.9")
    for i in range(5):
        scanner.login("BA"[i % 2], f"no_such_user_{i}", "guess")
    refused = scanner.login("A", "township_director")  # a real account, from the locked address
    assert refused.status_code == 429
    assert Browser(hosts["hosts"], address="203.0.113.10").login("B", "township_director").status_code == 302


def test_a_write_on_one_host_shows_at_once_in_the_other_hosts_pages_and_reports(hosts):
    month = time.strftime("%Y-%m")

    def registered() -> int:
        resp = _api(hosts, "B", "GET", f"/api/v1/reports/monthly?org=429960002&month={month}")
        assert resp.status_code == 200, resp.text
        return resp.json()["registered"]
    before = registered()
    assert registered() == before  # host B now has it in its report cache
    created = _api(hosts, "A", "POST", "/api/v1/cases", json=_case_body("两户因排水沟堵塞发生争执（经主机A登记）"))
    assert created.status_code == 201, created.text
    number = created.json()["number"]
    assert registered() == before + 1  # B's cached figure was not served after A's write
    on_b = _api(hosts, "B", "GET", f"/api/v1/cases/{number}")
    assert on_b.status_code == 200 and on_b.json()["summary"].endswith("（经主机A登记）")


def test_an_edit_saved_on_one_host_is_not_overwritten_from_a_form_loaded_on_the_other(hosts):
    from bench.run import edit_form_values
    created = _api(hosts, "A", "POST", "/api/v1/cases", json=_case_body("待两台主机同时修改的纠纷"))
    number = created.json()["number"]
    me = Browser(hosts["hosts"])
    assert me.login("A", "township_mediator").status_code == 302
    on_a = edit_form_values(me.get("A", f"/cases/{number}/edit").text)
    on_b = edit_form_values(me.get("B", f"/cases/{number}/edit").text)
    assert on_a["version"] == on_b["version"]
    on_a["claims"], on_b["claims"] = "主机A保存的诉求", "主机B保存的诉求"
    assert me.post("A", f"/cases/{number}/edit", data=on_a).status_code == 302
    conflict = me.post("B", f"/cases/{number}/edit", data=on_b)
    assert conflict.status_code == 409
    assert "主机B保存的诉求" in conflict.text  # what B's user typed is shown back, not lost
    stored = _api(hosts, "B", "GET", f"/api/v1/cases/{number}").json()
    assert stored["claims"] == "主机A保存的诉求"


def test_case_numbers_drawn_on_both_hosts_at_once_never_collide(hosts):
    numbers: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def register(host: str, k: int) -> None:
        for i in range(k):
            resp = _api(hosts, host, "POST", "/api/v1/cases", json=_case_body(f"并发登记 {host}-{i}"))
            with lock:
                (numbers.append(resp.json()["number"]) if resp.status_code == 201
                 else failures.append(f"{host}: {resp.status_code} {resp.text[:200]}"))
    threads = [threading.Thread(target=register, args=(h, 12)) for h in ("A", "B", "A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(numbers) == 48 and len(set(numbers)) == 48


def test_files_uploaded_on_one_host_are_served_and_confirmed_on_the_other(hosts):
    from tests.ledger_helpers import good_row, workbook
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    number = _api(hosts, "A", "POST", "/api/v1/cases", json=_case_body("附件跨主机的纠纷")).json()["number"]
    me = Browser(hosts["hosts"])
    assert me.login("A", "township_director").status_code == 302
    token = me.csrf("A", f"/cases/{number}")
    resp = me.post("A", f"/cases/{number}/attachments", data={"csrf_token": token},
                   files={"file": ("现场照片.png", png, "image/png")})
    assert resp.status_code == 302
    page = me.get("B", f"/cases/{number}").text
    link = re.search(rf'href="(/cases/{number}/attachments/\d+)"', page)
    assert link, "the attachment is not listed on host B"
    got = me.get("B", link.group(1))
    assert got.status_code == 200 and got.content == png
    assert any(p.is_file() for p in hosts["uploads"].rglob("*"))
    # the ledger: preview on A, confirm on B
    token = me.csrf("A", "/ledger/")
    data = workbook([good_row(编号="HOST-A-1")]).getvalue()
    preview = me.post("A", "/ledger/preview", data={"csrf_token": token}, files={"file": ("t.xlsx", data)})
    assert preview.status_code == 200, preview.text[-500:]
    tok = re.search(r'name="token"[^>]*value="([^"]+)"', preview.text) or \
        re.search(r'value="([^"]+)"[^>]*name="token"', preview.text)
    confirm = me.post("B", "/ledger/confirm", data={"token": tok.group(1), "csrf_token": me.csrf("B", "/ledger/")})
    assert confirm.status_code == 302
    from sqlalchemy import create_engine, text
    engine = create_engine(hosts["url"])
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM dispute_case WHERE external_number = 'HOST-A-1'")
                                ).scalar() == 1
    finally:
        engine.dispose()
