"""Security headers on every response; the login wall for every page but login and static;
the idle and absolute session timeouts; the second-factor wall for roles that require it.

Timeouts (ASVS 3.3.1/3.3.2 level 2): a session unused for ``IDLE_TIMEOUT_MINUTES`` (default
30) or older than ``SESSION_MAX_HOURS`` (default 12) is logged out and sent to the login page
with a Chinese message.  The times live in the signed session cookie (``_last_seen``,
``_login_at``, set at login; ``_last_seen`` is refreshed at most once a minute, so the cookie
is not re-signed on every request); the cookie's own lifetime (``PERMANENT_SESSION_LIFETIME``) is
only an outer bound, so the user is told why they were logged out.

Behind a reverse proxy set ``PROXY_COUNT`` (the number of proxies that append to
``X-Forwarded-For``): the per-address login throttle must see the client's address, not
the proxy's, or one typo-prone office would lock everybody out.

Search tokens (ASVS 8.2.1/8.3.1): the ledger list's search term (a name, a phone, an ID
number) never travels in a URL.  The search form POSTs; the list is then addressed with
``s=<token>``, the term Fernet-encrypted with the data keys (``app.crypto``) and valid for
``SEARCH_TOKEN_HOURS`` (default 8).  See ``seal_search``/``open_search``.

Log hygiene (ASVS 7.1.1/7.1.2/7.3.1): ``LogHygieneFilter`` escapes CR/LF, masks 18-digit ID
numbers, 11-digit mobiles and ``password=…`` in every record of the app's, werkzeug's and
gunicorn's loggers (``install_log_hygiene``, called by ``create_app``).
"""
from __future__ import annotations

import logging
import re
import time
from urllib.parse import urlencode

from flask import current_app, flash, g, redirect, request, session as http_session, url_for
from flask_wtf import csrf
from flask_babel import gettext as _
from flask_login import current_user, logout_user

from app.db import write_intent
from app.lru import LRU

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
       "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")

# On every response unless the view set its own (``_headers``).
SECURITY_HEADERS = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                    ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin"),
                    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()")]

# The login steps check their own state (app.accounts.routes).
PUBLIC_ENDPOINTS = {"accounts.login", "accounts.login_code", "accounts.login_enrol", "static", "health"}
PASSWORD_CHANGE_ENDPOINTS = {"accounts.change_password", "accounts.logout"}
# What a user whose role requires a second factor may reach before enrolling.
ENROLMENT_ENDPOINTS = {"accounts.security", "accounts.totp_enable", "accounts.logout"}
# GET pages that store a new enrolment secret: their SQLite transaction must begin IMMEDIATE.
# GETs that write (an audit record of an export or a printed document): their transactions must
# begin IMMEDIATE too, or a concurrent writer makes them fail with "database is locked" at once.
WRITING_GETS = {"accounts.security", "accounts.login_enrol", "cases.export", "mediation.document",
                "cases.attachment", "reports.export_xlsx"}
# Query-string arguments that may hold personal data: never carried into ``next=``.
PERSONAL_ARGS = {"q", "s", "phone", "id_number", "name"}
UNTIMED_ENDPOINTS = {"static", "health"}


def now_ts() -> float:
    """The clock of the session timeouts (tests patch it)."""
    return time.time()


def _session_expired(app) -> str | None:
    """The Chinese reason the logged-in session has ended, or None."""
    now = now_ts()
    last_seen, login_at = http_session.get("_last_seen"), http_session.get("_login_at")
    idle = int(app.config.get("IDLE_TIMEOUT_MINUTES", 30))
    if not isinstance(last_seen, (int, float)) or now - last_seen > idle * 60:
        return _("您已超过 %(n)s 分钟未操作，为保护数据已自动退出，请重新登录。", n=idle)
    max_hours = int(app.config.get("SESSION_MAX_HOURS", 12))
    if not isinstance(login_at, (int, float)) or now - login_at > max_hours * 3600:
        return _("本次登录已超过 %(n)s 小时，请重新登录。", n=max_hours)
    return None


# The signed CSRF token of each session's raw token, per signing key: at most this many kept
_SIGNED_CSRF = LRU()
SIGNED_CSRF_KEPT = 10000


def page_csrf_token() -> str:
    """The page's CSRF token (the ``csrf_token()`` of the templates): Flask-WTF's
    ``generate_csrf``, signed once per session and worker instead of once per request.

    Why: every page's layout carries a token (the logout form, htmx's header), and Flask-WTF
    signs the session's raw token anew for each request (a serializer built, its key derived,
    JSON, a timestamp, HMAC): ~0.2 ms, about 2 % of a case page.  With ``WTF_CSRF_TIME_LIMIT =
    None`` (config.py: the token lives as long as the session) a token signed earlier for the
    same raw token validates exactly as a new one, so the first one is kept, keyed by the signing
    key and the raw token (a secret of that session alone: a key never reaches another session)
    and handed to the request as Flask-WTF's own (``g.csrf_token``, which a form's token field
    then reuses).  With a time limit set, each request signs as before."""
    config = current_app.config
    field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    if field in g:
        return g.get(field)
    if config.get("WTF_CSRF_TIME_LIMIT", 3600) is not None:
        return csrf.generate_csrf()
    secret = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    token = _SIGNED_CSRF.get((secret, http_session.get(field)))
    if token is not None:
        setattr(g, field, token)
        return token
    token = csrf.generate_csrf()  # which makes the raw token of a session that has none yet
    raw = http_session.get(field)
    if isinstance(raw, str):
        _SIGNED_CSRF.put((secret, raw), token, SIGNED_CSRF_KEPT)
    return token


def init_app(app) -> None:
    # after CSRFProtect.init_app, which installed generate_csrf under this name as a global
    # (macros imported without context) and in a context processor (pages): both replaced
    app.jinja_env.globals["csrf_token"] = page_csrf_token
    app.context_processor(lambda: {"csrf_token": page_csrf_token})
    proxies = int(app.config.get("PROXY_COUNT", 0) or 0)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    @app.before_request
    def _transaction_intent():
        g._write_intent_token = write_intent.set(request.method not in ("GET", "HEAD", "OPTIONS")
                                                 or request.endpoint in WRITING_GETS)

    @app.teardown_request
    def _transaction_intent_reset(_exc=None):
        # the context variable outlives the request in its thread: put back what was there, so a
        # CLI command, a test or the next request never inherits a GET's read-only intent
        token = g.pop("_write_intent_token", None)
        if token is not None:
            try:
                write_intent.reset(token)
            except ValueError:  # set in another context (a copied context): nothing to undo here
                pass

    @app.before_request
    def _login_wall():
        endpoint = request.endpoint or ""
        if endpoint in UNTIMED_ENDPOINTS or endpoint.startswith("api."):
            return None  # the API authenticates by bearer token
        if current_user.is_authenticated:
            reason = _session_expired(app)
            if reason:
                logout_user()
                http_session.clear()
                flash(reason, "warning")
                target = _next_target() if request.method == "GET" else None
                return redirect(url_for("accounts.login", next=target))
            now = int(now_ts())
            # Kept to the minute: rewriting it every second re-signs and re-sends the cookie on
            # nearly every request; the 30-minute idle timeout loses nothing to a minute.
            if now - (http_session.get("_last_seen") or 0) >= 60:
                http_session["_last_seen"] = now
        if endpoint in PUBLIC_ENDPOINTS:
            return None
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=_next_target()))
        missing_factor = _second_factor_missing()
        if missing_factor and endpoint not in ENROLMENT_ENDPOINTS:
            flash(_("您的角色必须使用双因素认证，请先完成绑定。"), "warning")
            return redirect(url_for("accounts.security"))
        if getattr(current_user, "must_change_password", False) and not missing_factor \
                and endpoint not in PASSWORD_CHANGE_ENDPOINTS:
            return redirect(url_for("accounts.change_password"))  # after an admin's reset
        return None

    @app.after_request
    def _headers(resp):
        h = resp.headers
        # The names already set, read once: werkzeug's ``Headers`` answers a missing name in
        # ``setdefault``/``pop``/``in`` by raising and catching a BadRequestKeyError, ~5 µs
        # each, and a response lacks all of these.
        present = {name.lower() for name, _value in h.items()}
        for name, value in SECURITY_HEADERS:
            if name.lower() not in present:  # a view's own value wins
                h.add(name, value)
        if app.config.get("SESSION_COOKIE_SECURE") and "strict-transport-security" not in present:
            h.add("Strict-Transport-Security", "max-age=31536000")
        if request.endpoint != "static":
            # Pages and downloads (exports, attachments, documents) carry personal data: never
            # cached (ASVS 8.2.1).  Set outright: send_file's own caching headers must not win.
            if "cache-control" in present or "expires" in present:
                h["Cache-Control"] = "no-store"
                h.pop("Expires", None)
            else:
                h.add("Cache-Control", "no-store")
        return resp


def _second_factor_missing() -> bool:
    """A logged-in user whose role requires a second factor and who has none (a session from
    before the requirement, or a role changed by hand in the database)."""
    from app.accounts.totp import required_for
    return required_for(current_user) and not current_user.totp_enabled


def _next_target() -> str:
    """Where to return after logging in: this path and query string minus anything personal."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in PERSONAL_ARGS]
    return request.path + ("?" + urlencode(args) if args else "")


# ---------------------------------------------------------------------------------------------
# Search tokens: the ledger's search term kept out of URLs

SEARCH_PURPOSE = "qy-search:"


def seal_search(term: str) -> str:
    """An opaque, URL-safe token standing for the search ``term`` (Fernet under the data keys)."""
    from app.crypto import fernet
    return fernet().encrypt((SEARCH_PURPOSE + term).encode("utf-8")).decode("ascii")


def open_search(token: str, app=None) -> str | None:
    """The term of a token made by ``seal_search`` within ``SEARCH_TOKEN_HOURS``, else None."""
    from cryptography.fernet import InvalidToken
    from flask import current_app
    from app.crypto import fernet
    hours = int((app or current_app).config.get("SEARCH_TOKEN_HOURS", 8))
    try:
        plain = fernet().decrypt(token.encode("ascii"), ttl=hours * 3600).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError, TypeError):
        return None
    if not plain.startswith(SEARCH_PURPOSE):
        return None  # a stored value's ciphertext is not a search token
    return plain[len(SEARCH_PURPOSE):]


# ---------------------------------------------------------------------------------------------
# Log hygiene

_ID_RE = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")
_MOBILE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_SECRET_RE = re.compile(r"(?i)((?:password|passwd|pwd|new_password|old_password|current_password)"
                        r"[\w-]*[\"']?\s*(?:=|:|%3D)\s*[\"']?)([^&\s\"',;}]*)")
LOGGERS = ("app", "werkzeug", "gunicorn.access", "gunicorn.error", "flask.app")


def clean_log_text(text: str) -> str:
    """``text`` with CR/LF escaped, ID numbers and mobiles masked and password values removed."""
    text = _SECRET_RE.sub(lambda m: m.group(1) + "***", text)
    text = _ID_RE.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    text = _MOBILE_RE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
    return text.replace("\r", "\\r").replace("\n", "\\n")


class LogHygieneFilter(logging.Filter):
    """Rewrites each record's message (its arguments merged in) through ``clean_log_text``.
    Tracebacks (``exc_info``) keep their own line breaks; they are the formatter's, not input."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_qy_clean", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string: log what there is
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = clean_log_text(str(message)), None
        record._qy_clean = True
        return True


def install_log_hygiene(app=None) -> LogHygieneFilter:
    """Put one ``LogHygieneFilter`` on the app's, werkzeug's and gunicorn's loggers and on the
    handlers already attached to them and to the root logger (a logger's filter does not see
    its children's records; a handler's does).  Idempotent."""
    names = list(LOGGERS) + ([app.logger.name] if app is not None else [])
    loggers = [logging.getLogger(n) for n in names] + [logging.getLogger()]
    existing = next((f for lg in loggers for f in lg.filters if isinstance(f, LogHygieneFilter)), None)
    hygiene = existing or LogHygieneFilter()
    for lg in loggers:
        targets = ([lg] if lg.name != "root" else []) + list(lg.handlers)
        for target in targets:
            if not any(isinstance(f, LogHygieneFilter) for f in target.filters):
                target.addFilter(hygiene)
    return hygiene
