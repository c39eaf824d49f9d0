"""``app.sessions.VerifiedCookieSessionInterface``: a cookie value verified once is not verified
again while it is young enough, and everything else is Flask's: a changed or forged cookie, an
expired one, one signed with another key; each request gets its own copy of the data."""
from __future__ import annotations

import time

from flask.sessions import SecureCookieSessionInterface

from app.sessions import VerifiedCookieSessionInterface


def _cookie(app, data: dict) -> str:
    return SecureCookieSessionInterface().get_signing_serializer(app).dumps(data)


def _open(app, iface, value):
    with app.test_request_context("/", headers={"Cookie": f"session={value}"}):
        return iface.open_session(app, __import__("flask").request)


def test_the_app_uses_it(app):
    assert isinstance(app.session_interface, VerifiedCookieSessionInterface)


def test_a_verified_value_is_opened_again_without_the_serializer(app, monkeypatch):
    iface = VerifiedCookieSessionInterface()
    value = _cookie(app, {"_user_id": "3:1", "csrf_token": "abc", "_last_seen": 5})
    first = _open(app, iface, value)
    assert dict(first) == {"_user_id": "3:1", "csrf_token": "abc", "_last_seen": 5}
    monkeypatch.setattr(iface, "get_signing_serializer", lambda _app: (_ for _ in ()).throw(AssertionError))
    second = _open(app, iface, value)
    assert dict(second) == dict(first)
    second["_user_id"] = "changed"  # a request's copy: the next one reads the cookie's data
    assert _open(app, iface, value)["_user_id"] == "3:1"


def test_forged_changed_and_other_key_cookies_are_refused(app):
    iface = VerifiedCookieSessionInterface()
    value = _cookie(app, {"_user_id": "3:1"})
    assert _open(app, iface, value)["_user_id"] == "3:1"
    payload, stamp, signature = value.rsplit(".", 2)
    forged = _cookie(app, {"_user_id": "1:1"}).rsplit(".", 2)[0] + f".{stamp}.{signature}"
    assert dict(_open(app, iface, forged)) == {}
    assert dict(_open(app, iface, value[:-2] + "xx")) == {}
    other = SecureCookieSessionInterface()
    with app.app_context():
        app.secret_key, old = "another-key-entirely", app.secret_key
        try:
            other_value = other.get_signing_serializer(app).dumps({"_user_id": "2:1"})
        finally:
            app.secret_key = old
    assert dict(_open(app, iface, other_value)) == {}


def test_an_expired_cookie_is_refused_even_when_verified_before(app, monkeypatch):
    iface = VerifiedCookieSessionInterface()
    value = _cookie(app, {"_user_id": "3:1"})
    assert _open(app, iface, value)["_user_id"] == "3:1"
    later = time.time() + app.permanent_session_lifetime.total_seconds() + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert dict(_open(app, iface, value)) == {}


def test_a_session_with_lists_is_verified_every_time(app):
    iface = VerifiedCookieSessionInterface()
    value = _cookie(app, {"_flashes": [("info", "已保存")]})
    assert list(_open(app, iface, value)["_flashes"]) == [("info", "已保存")]
    assert not iface.verified.items


def test_logging_in_and_out_still_works(client, auth):
    assert auth.login("township_mediator").status_code in (200, 302)
    assert client.get("/").status_code == 200
    auth.logout()
    assert client.get("/").status_code == 302
