"""Security headers on every response; the login wall for every page but login and static;
the idle and absolute session timeouts; the second-factor wall for roles that require it.

Timeouts (ASVS 3.3.1/3.3.2 level 2): a session unused for ``IDLE_TIMEOUT_MINUTES`` (default
30) or older than ``SESSION_MAX_HOURS`` (default 12) is logged out and sent to the login page
with a Chinese message.  The times live in the signed session cookie (``_last_seen``,
``_login_at``, set at login); the cookie's own lifetime (``PERMANENT_SESSION_LIFETIME``) is
only an outer bound, so the user is told why they were logged out.

Behind a reverse proxy set ``PROXY_COUNT`` (the number of proxies that append to
``X-Forwarded-For``): the per-address login throttle must see the client's address, not
the proxy's, or one typo-prone office would lock everybody out.
"""
from __future__ import annotations

import time

from flask import flash, redirect, request, session as http_session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user

from app.db import write_intent

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
       "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")

# The login steps check their own state (app.accounts.routes).
PUBLIC_ENDPOINTS = {"accounts.login", "accounts.login_code", "accounts.login_enrol", "static", "health"}
PASSWORD_CHANGE_ENDPOINTS = {"accounts.change_password", "accounts.logout"}
# What a user whose role requires a second factor may reach before enrolling.
ENROLMENT_ENDPOINTS = {"accounts.security", "accounts.totp_enable", "accounts.logout"}
# GET pages that store a new enrolment secret: their SQLite transaction must begin IMMEDIATE.
# GETs that write (an audit record of an export or a printed document): their transactions must
# begin IMMEDIATE too, or a concurrent writer makes them fail with "database is locked" at once.
WRITING_GETS = {"accounts.security", "accounts.login_enrol", "cases.export", "mediation.document"}
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


def init_app(app) -> None:
    proxies = int(app.config.get("PROXY_COUNT", 0) or 0)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    @app.before_request
    def _transaction_intent():
        write_intent.set(request.method not in ("GET", "HEAD", "OPTIONS") or request.endpoint in WRITING_GETS)

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
                target = request.full_path.rstrip("?") if request.method == "GET" else None
                return redirect(url_for("accounts.login", next=target))
            http_session["_last_seen"] = int(now_ts())
        if endpoint in PUBLIC_ENDPOINTS:
            return None
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
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
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.endpoint != "static":
            # Pages carry personal data: never cached (ASVS 8.2.1).
            h.setdefault("Cache-Control", "no-store")
        if app.config.get("SESSION_COOKIE_SECURE"):
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        return resp


def _second_factor_missing() -> bool:
    """A logged-in user whose role requires a second factor and who has none (a session from
    before the requirement, or a role changed by hand in the database)."""
    from app.accounts.totp import required_for
    return required_for(current_user) and not current_user.totp_enabled
