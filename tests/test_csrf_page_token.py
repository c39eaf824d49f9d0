"""The pages' CSRF token is signed once per session and worker (``app.security.page_csrf_token``):
the same token on every page of a session, form fields included, accepted as Flask-WTF's own;
never another session's, which may not use it; a new one after logout; and with a time limit
configured, signed anew on every request as Flask-WTF does."""
from __future__ import annotations

import re

from app import security
from app.lru import LRU
from tests.conftest import AuthActions
from tests.helpers import csrf_token


def _tokens(client, path: str) -> set[str]:
    html = client.get(path).get_data(as_text=True)
    return set(re.findall(r'name="csrf_token"[^>]*value="([^"]+)"', html)) | \
        set(re.findall(r'value="([^"]+)"[^>]*name="csrf_token"', html))


def test_a_session_keeps_one_token_on_every_page_and_it_is_accepted(client, auth, monkeypatch):
    from flask_wtf import csrf
    auth.login("township_mediator")
    first = _tokens(client, "/")
    assert len(first) == 1
    signed = []
    monkeypatch.setattr(csrf, "generate_csrf", lambda *a, **k: signed.append(1))
    assert _tokens(client, "/cases/") == first
    assert signed == []  # the kept token, not signed again
    monkeypatch.undo()
    assert _tokens(client, "/cases/new") == first  # the registration form's own field too
    assert client.post("/logout", data={"csrf_token": first.pop()}).status_code == 302


def test_another_session_gets_its_own_and_may_not_use_this_one(app, client, auth):
    auth.login("township_mediator")
    mine = csrf_token(client)
    other = app.test_client()
    AuthActions(other).login("village_mediator")
    theirs = csrf_token(other)
    assert theirs != mine
    assert other.post("/logout", data={"csrf_token": mine}).status_code == 400
    assert other.post("/logout", data={"csrf_token": theirs}).status_code == 302


def test_after_logout_the_old_token_is_refused(client, auth):
    auth.login("township_mediator")
    old = csrf_token(client)
    auth.logout()
    auth.login("township_mediator")
    new = csrf_token(client)
    assert new != old
    assert client.post("/logout", data={"csrf_token": old}).status_code == 400


def test_with_a_time_limit_every_request_signs_anew(app, client, auth, monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_TIME_LIMIT", 3600)
    monkeypatch.setattr(security, "_SIGNED_CSRF", LRU())
    auth.login("township_mediator")
    token = csrf_token(client)
    assert not security._SIGNED_CSRF.items
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302


def test_the_kept_tokens_are_bounded(client, auth, monkeypatch):
    kept = LRU()
    for n in range(3):
        kept.put(("k", str(n)), "t", 3)
    monkeypatch.setattr(security, "_SIGNED_CSRF", kept)
    monkeypatch.setattr(security, "SIGNED_CSRF_KEPT", 3)
    auth.login("township_mediator")
    token = csrf_token(client)
    assert len(kept.items) == 3 and list(kept.items.values())[-1] == token  # the newest kept
    assert ("k", "0") not in kept.items  # the least recently used dropped
