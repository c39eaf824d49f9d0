"""Security headers on every response, and the login wall for every page but login and static."""
from __future__ import annotations

from flask import redirect, request, url_for
from flask_login import current_user

from app.db import write_intent

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
       "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")

PUBLIC_ENDPOINTS = {"accounts.login", "static", "health"}
PASSWORD_CHANGE_ENDPOINTS = {"accounts.change_password", "accounts.logout"}


def init_app(app) -> None:
    @app.before_request
    def _transaction_intent():
        write_intent.set(request.method not in ("GET", "HEAD", "OPTIONS"))

    @app.before_request
    def _login_wall():
        endpoint = request.endpoint or ""
        if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith("api."):
            return None  # the API authenticates by bearer token
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        if getattr(current_user, "must_change_password", False) and endpoint not in PASSWORD_CHANGE_ENDPOINTS:
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
