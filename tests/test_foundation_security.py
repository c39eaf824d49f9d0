"""Safe by default: every non-public URL sends an anonymous visitor to login (API URLs answer
401), security headers on every response, Chinese error pages."""
from __future__ import annotations

import re

import pytest
from flask import json

from app import create_app
from app.errors import InvalidTransition, StaleRecord

# Public: the login page, static files, the health check and the API's OpenAPI document.
# The two later login steps (code, enrolment) check their own half-logged-in state instead.
PUBLIC_ENDPOINTS = {"accounts.login", "accounts.login_code", "accounts.login_enrol", "static", "health",
                    "api.openapi_document"}


def _dummy(converter):
    """A value the converter accepts (the login wall answers before any view looks it up)."""
    from werkzeug.routing import FloatConverter, IntegerConverter, UUIDConverter
    if isinstance(converter, IntegerConverter):
        return 1
    if isinstance(converter, FloatConverter):
        return 1.0
    if isinstance(converter, UUIDConverter):
        import uuid
        return uuid.UUID(int=0)
    return "x"


CREATE_APP_FAILED = "<create_app failed>"


def _url_map_rules():
    """(endpoint, method, url) for every rule and method, URL params filled with dummy values."""
    try:
        app = create_app({"TESTING": True, "DATABASE_URL": "sqlite://"})  # touches no data
    except Exception as exc:  # report it as a failing test, not a collection error that stops the run
        return [pytest.param(CREATE_APP_FAILED, "GET", repr(exc), id="create_app")]
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        values = {arg: _dummy(rule._converters[arg]) for arg in rule.arguments}
        url = rule.build(values, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append(pytest.param(rule.endpoint, method, url, id=f"{method} {rule.rule}"))
    return out


@pytest.mark.parametrize("endpoint,method,url", _url_map_rules())
def test_anonymous_visitor_is_sent_to_login(client, endpoint, method, url):
    if endpoint == CREATE_APP_FAILED:
        pytest.fail(f"create_app() failed: {url}")
    from tests.helpers import csrf_token
    if method == "GET":
        resp = client.get(url)
    else:  # a valid CSRF token, so only the login wall can refuse
        resp = client.open(url, method=method, data={"csrf_token": csrf_token(client, "/login")},
                           headers={"Accept": "text/html"})
    if endpoint.startswith("api."):
        assert resp.status_code == 401
        assert "令牌" in resp.get_json()["message"]
        return
    assert resp.status_code == 302, f"{method} {url} answered {resp.status_code}"
    assert re.match(r"^(http://localhost)?/login\?next=", resp.headers["Location"])


def test_public_pages_need_no_login(client):
    assert client.get("/login").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/static/css/app.css").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


@pytest.mark.parametrize("path", ["/login", "/", "/static/js/app.js", "/api/v1/cases"])
def test_security_headers_on_every_response(client, auth, path):
    auth.login("township_mediator")
    resp = client.get(path)
    csp = resp.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", csp).group(1)
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin", "no-referrer")
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                 "Permissions-Policy"):
        assert len(resp.headers.getlist(name)) == 1, name
    assert len(resp.headers.getlist("Cache-Control")) == 1
    assert ("no-store" in resp.headers["Cache-Control"]) is (not path.startswith("/static/"))
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP in the tests


def test_strict_transport_security_with_secure_cookies(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    resp = client.get("/login")
    assert resp.headers.getlist("Strict-Transport-Security") == ["max-age=31536000"]


def test_pages_have_no_inline_script(client, auth):
    auth.login("admin")
    for path in ("/login", "/", "/admin/users", "/admin/orgs/", "/admin/settings"):
        html = client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag, f"inline script on {path}"
        assert " onclick=" not in html and " onsubmit=" not in html


def test_session_cookie_flags(app, client):
    resp = client.get("/login")
    cookie = resp.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True


def test_403_page_in_chinese(client, auth):
    auth.login("grid_worker")
    resp = client.get("/admin/users")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403
    assert "没有权限" in html and 'lang="zh-CN"' in html


def test_404_page_in_chinese(client, auth):
    auth.login("grid_worker")
    resp = client.get("/no/such/page")
    assert resp.status_code == 404
    assert "页面不存在" in resp.get_data(as_text=True)


@pytest.mark.parametrize("exc,status,words", [
    (InvalidTransition(), 409, "当前状态下不能进行此操作"),
    (StaleRecord(), 409, "该记录已被他人修改"),
    (RuntimeError("boom"), 500, "系统出错"),
])
def test_409_and_500_pages_in_chinese(app, db, exc, status, words):
    with app.test_request_context("/"):
        resp = app.make_response(app.handle_user_exception(exc))
    html = resp.get_data(as_text=True)
    assert resp.status_code == status
    assert words in html
    assert ("操作冲突" if status == 409 else "系统出错") in html
    assert "boom" not in html


def test_api_errors_are_json_in_chinese(client):
    resp = client.get("/api/v1/cases")
    assert resp.status_code == 401
    assert json.loads(resp.get_data())["error"] == "请先登录"
