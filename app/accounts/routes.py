"""Login, logout and change password."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session as http_session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash

from app.accounts.forms import ChangePasswordForm, LoginForm
from app.accounts.services import authenticate, set_password
from app.audit.services import audit
from app.db import session
from app.errors import ValidationFailed

bp = Blueprint("accounts", __name__)


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


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.username.data, form.password.data)
        if user is not None:
            http_session.clear()  # a new session at login (no fixation)
            http_session.permanent = True
            login_user(user)
            session.commit()
            return redirect(safe_next(request.args.get("next")))
        session.commit()  # keep the failed-login audit record
        flash(_("用户名或密码错误，或账号已停用。"), "danger")
    return render_template("accounts/login.html", form=form)


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
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if not check_password_hash(current_user.password_hash, form.current_password.data):
            form.current_password.errors.append(_("当前密码不正确"))
        else:
            try:
                set_password(current_user, form.new_password.data)
            except ValidationFailed as exc:
                form.new_password.errors.append(exc.errors["password"])
            else:
                session.commit()
                logout_user()
                http_session.clear()
                flash(_("密码已修改，请用新密码重新登录。"), "success")
                return redirect(url_for("accounts.login"))
    return render_template("accounts/change_password.html", form=form)
