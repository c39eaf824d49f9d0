"""Login (password, then the second factor), logout, change password and the account's
security page (enrol or remove the TOTP second factor).

The login is complete, and ``login_user`` called, only after every factor: the password step
leaves a short-lived "pending" marker in the session (user id, session version, time), the
code step (or, for a role that requires a second factor and has none yet, the enrolment
step) finishes it.  Each step starts from an emptied session, so nothing from before the
login survives it (ASVS 3.2.1; Flask's session is a signed cookie, so a new session means
emptying it).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session as http_session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash

from app.accounts import services, throttle, totp
from app.accounts.forms import ChangePasswordForm, CodeForm, DisableTotpForm, LoginForm
from app.accounts.models import User
from app.audit.services import audit
from app.db import session
from app.errors import ValidationFailed

bp = Blueprint("accounts", __name__)

PENDING_KEY = "_pending_login"
KEEP_ACROSS_LOGIN = ("lang",)  # a display preference, nothing an attacker could plant usefully


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the 工作台 (no open redirect)."""
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    # Browsers drop tabs and newlines inside URLs ("/\t/evil.com" becomes "//evil.com").
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(ch.isspace() or ord(ch) < 32 for ch in target):
        return url_for("home.index")
    return target


def _lockout_message() -> str:
    return _("登录失败次数过多，已暂时锁定，请 %(n)s 分钟后再试。",
             n=current_app.config.get("LOGIN_LOCKOUT_MINUTES", 15))


def _new_session() -> None:
    """Empty the session (dropping anything set before login) but keep the language choice."""
    kept = {k: http_session[k] for k in KEEP_ACROSS_LOGIN if k in http_session}
    http_session.clear()
    http_session.update(kept)
    http_session.permanent = True


def _finish_login(user: User, second_factor: bool, next_url: str | None):
    _new_session()
    login_user(user)
    now = int(totp.now_ts())
    http_session["_login_at"] = now
    http_session["_last_seen"] = now
    services.complete_login(user, second_factor)
    session.commit()
    return redirect(safe_next(next_url))


def _pending_user() -> User | None:
    """The user who passed the password step in this session a moment ago, or None."""
    pending = http_session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    ttl = 60 * int(current_app.config.get("MFA_PENDING_MINUTES", 5))
    if not isinstance(pending.get("uid"), int) or totp.now_ts() - pending.get("at", 0) > ttl:
        return None
    user = session.get(User, pending["uid"])
    if user is None or not user.active or user.session_version != pending.get("ver"):
        return None
    return user


def _restart_login(message: str):
    http_session.pop(PENDING_KEY, None)
    flash(message, "warning")
    return redirect(url_for("accounts.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        username, address = form.username.data, request.remote_addr
        if throttle.is_locked(username, address):
            audit("login.refused_locked", "user", None, {"username": (username or "")[:64]}, user=None)
            session.commit()
            flash(_lockout_message(), "danger")
            return render_template("accounts/login.html", form=form), 429
        user = services.authenticate(username, form.password.data)
        if user is None:
            locked_now = throttle.record_failure(username, address)
            session.commit()  # keep the failed-login audit record and the counter
            flash(_lockout_message() if locked_now else _("用户名或密码错误，或账号已停用。"), "danger")
            return render_template("accounts/login.html", form=form), 429 if locked_now else 200
        throttle.clear_username(username)
        next_url = request.args.get("next")
        if user.totp_enabled or totp.required_for(user):
            _new_session()
            http_session[PENDING_KEY] = {"uid": user.id, "ver": user.session_version,
                                         "at": int(totp.now_ts()), "next": next_url}
            session.commit()
            return redirect(url_for("accounts.login_code" if user.totp_enabled else "accounts.login_enrol"))
        return _finish_login(user, False, next_url)
    return render_template("accounts/login.html", form=form)


@bp.route("/login/code", methods=["GET", "POST"])
def login_code():
    """Step two: the code from the user's authenticator."""
    user = _pending_user()
    if user is None or not user.totp_enabled:
        return _restart_login(_("登录已超时或无效，请重新输入用户名和密码。"))
    form = CodeForm()
    if form.validate_on_submit():
        address = request.remote_addr
        if throttle.is_locked(user.username, address):
            audit("login.refused_locked", "user", user.id, {"username": user.username, "step": "code"}, user=None)
            session.commit()
            return _restart_login(_lockout_message())
        if services.check_totp(user, form.code.data):
            return _finish_login(user, True, http_session[PENDING_KEY].get("next"))
        audit("login.code_failed", "user", user.id, {"username": user.username}, user=None)
        locked_now = throttle.record_failure(user.username, address, reason="code")
        session.commit()
        if locked_now:
            return _restart_login(_lockout_message())
        form.code.errors.append(_("验证码不正确或已使用，请输入验证器上当前显示的 6 位数字。"))
    return render_template("accounts/login_code.html", form=form, user=user)


@bp.route("/login/totp-setup", methods=["GET", "POST"])
def login_enrol():
    """Step two for a role that must use a second factor and has none yet: enrol now."""
    user = _pending_user()
    if user is None or user.totp_enabled or not totp.required_for(user):
        return _restart_login(_("登录已超时或无效，请重新输入用户名和密码。"))
    secret = services.start_totp_enrolment(user)
    session.commit()
    form = CodeForm()
    if form.validate_on_submit():
        try:
            services.confirm_totp_enrolment(user, form.code.data)
        except ValidationFailed as exc:
            session.commit()  # keep the audit record
            form.code.errors.append(exc.errors["code"])
        else:
            flash(_("双因素认证已启用，以后登录时需输入验证器上的验证码。"), "success")
            return _finish_login(user, True, http_session[PENDING_KEY].get("next"))
    return render_template("accounts/login_enrol.html", form=form, user=user, **_enrolment(user, secret))


def _enrolment(user: User, secret: str) -> dict:
    uri = totp.provisioning_uri(user.username, secret)
    return {"secret": secret, "uri": uri, "qr": totp.qr_svg(uri)}


@bp.post("/logout")
@login_required
def logout():
    audit("logout", "user", current_user.id)
    session.commit()
    logout_user()
    http_session.clear()
    flash(_("您已安全退出。"), "info")
    return redirect(url_for("accounts.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """A new password ends every session of the user, this one too (``set_password``): the
    user logs in again with the new password."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not check_password_hash(current_user.password_hash, form.current_password.data):
            form.current_password.errors.append(_("当前密码不正确"))
        else:
            try:
                services.set_password(current_user, form.new_password.data)
            except ValidationFailed as exc:
                form.new_password.errors.append(exc.errors["password"])
            else:
                session.commit()
                logout_user()
                http_session.clear()
                flash(_("密码已修改，请用新密码重新登录。"), "success")
                return redirect(url_for("accounts.login"))
    return render_template("accounts/change_password.html", form=form)


@bp.get("/account/security")
@login_required
def security():
    """The second factor: enrol (secret, URI, QR code, confirm with a code) or remove it."""
    context = {"required": totp.required_for(current_user), "code_form": CodeForm(formdata=None),
               "disable_form": DisableTotpForm(formdata=None)}
    if not current_user.totp_enabled:
        secret = services.start_totp_enrolment(current_user)
        session.commit()
        context.update(_enrolment(current_user, secret))
    return render_template("accounts/security.html", **context)


@bp.post("/account/totp/enable")
@login_required
def totp_enable():
    form = CodeForm()
    if form.validate_on_submit():
        try:
            services.confirm_totp_enrolment(current_user, form.code.data)
        except ValidationFailed as exc:
            session.commit()
            flash(exc.errors["code"], "danger")
        else:
            session.commit()
            flash(_("双因素认证已启用，以后登录时需输入验证器上的验证码。"), "success")
    else:
        flash(_("请输入验证码。"), "danger")
    return redirect(url_for("accounts.security"))


@bp.post("/account/totp/disable")
@login_required
def totp_disable():
    form = DisableTotpForm()
    if form.validate_on_submit():
        try:
            services.disable_totp(current_user, form.password.data, form.code.data)
        except ValidationFailed as exc:
            session.commit()  # keep the audit record
            flash("；".join(exc.errors.values()), "danger")
        else:
            session.commit()
            flash(_("双因素认证已关闭。"), "success")
    else:
        flash(_("请输入密码和验证码。"), "danger")
    return redirect(url_for("accounts.security"))
