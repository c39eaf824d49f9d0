"""The signed session cookie, verified once per worker for each exact cookie value.

Flask's ``SecureCookieSessionInterface`` opens the session on every request: it builds a
serializer (and its signer), derives the signing key, checks the HMAC, decodes base64 and
Flask's tagged JSON — ~3 % of a case page, and the same work for the same cookie on every page
a user opens until the session changes (the cookie is re-signed at most once a minute,
``app.security``).

``VerifiedCookieSessionInterface`` keeps what it verified: for a cookie value seen before with
the same keys, the session's data and the time it was signed.  A hit is the same string the
HMAC already vouched for, so only the age is checked again, as itsdangerous checks it (not
older than ``PERMANENT_SESSION_LIFETIME``, not from the future); anything else — a new or
changed cookie, a forged one (its signature is part of the value), another key — goes through
Flask's own verification.  Each request gets its own copy of the data; only data of plain
values (strings, numbers, booleans, None) is kept, so a request can never change what another
one reads (a session holding flashed messages, a list, is verified every time).  At most
``KEPT`` values are kept, the least recently used dropped first (``app.lru``).
"""
from __future__ import annotations

import time

from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from app.lru import LRU

KEPT = 10000
_PLAIN = (str, int, float, bool, type(None))


class VerifiedCookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, each cookie value verified once per worker."""

    def __init__(self) -> None:
        self.verified = LRU()  # (keys, cookie value) → (signed at, data)

    def open_session(self, app, request):
        if not app.secret_key:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()), value)
        hit = self.verified.get(key)
        if hit is not None:
            signed_at, data = hit
            age = int(time.time()) - signed_at
            if 0 <= age <= max_age:
                return self.session_class(data)  # a copy: the session is a dict of its own
            self.verified.pop(key)
            return self.session_class()  # expired, as itsdangerous would say
        try:
            data, signed_at = self.get_signing_serializer(app).loads(value, max_age=max_age,
                                                                     return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(type(v) in _PLAIN for v in data.values()):
            self.verified.put(key, (int(signed_at.timestamp()), dict(data)), KEPT)
        return self.session_class(data)
