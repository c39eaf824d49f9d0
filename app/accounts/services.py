"""Accounts: creating and editing users, passwords, login checks and API tokens."""
from __future__ import annotations

import hashlib
import re
import secrets
from typing import Optional

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts.models import ApiToken, User
from app.accounts.roles import ROLE_ORG_LEVEL, ROLES
from app.audit.services import audit
from app.db import session, utcnow
from app.errors import ValidationFailed
from app.orgs.models import LEVEL_LABELS, OrgUnit

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")
MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt") if current_app else "scrypt"
    return generate_password_hash(password, method=method)


def check_password_rules(password: str) -> Optional[str]:
    """The Chinese reason a new password is refused, or None."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        return _("密码至少 %(n)s 位", n=MIN_PASSWORD_LENGTH)
    return None


def validate_user_fields(username: str, role: str, org: Optional[OrgUnit], password: Optional[str],
                         display_name: str = "x", existing: Optional[User] = None) -> dict[str, str]:
    """Per-field Chinese messages for a user being created or edited (empty when all is well)."""
    errors: dict[str, str] = {}
    if existing is None:
        if not USERNAME_RE.match(username or ""):
            errors["username"] = _("用户名为 2–64 位字母、数字、下划线、点或连字符")
        elif session.scalar(select(User.id).where(User.username == username)):
            errors["username"] = _("用户名 %(name)s 已存在", name=username)
    if not (display_name or "").strip():
        errors["display_name"] = _("请填写姓名")
    if role not in ROLES:
        errors["role"] = _("角色 %(role)s 无效，应为：%(roles)s", role=role, roles="、".join(ROLES))
    if org is None:
        errors["org"] = _("所属单位不存在")
    elif role in ROLES and org.level not in ROLE_ORG_LEVEL[role]:
        errors["org"] = _("%(role)s应属于%(levels)s级单位", role=_(ROLES[role]),
                          levels=_("或").join(_(LEVEL_LABELS[lv]) for lv in ROLE_ORG_LEVEL[role]))
    if password is not None:
        reason = check_password_rules(password)
        if reason:
            errors["password"] = reason
    return errors


def create_user(username: str, display_name: str, role: str, org: Optional[OrgUnit], password: str,
                phone: Optional[str] = None) -> User:
    """Create a user after validating every field; raise ``ValidationFailed`` with per-field messages."""
    errors = validate_user_fields(username, role, org, password, display_name)
    if errors:
        raise ValidationFailed(errors=errors)
    user = User(username=username, display_name=display_name.strip(), role=role, org_id=org.id,
                phone=(phone or None), password_hash=hash_password(password))
    session.add(user)
    session.flush()
    audit("user.create", "user", user.id, {"username": username, "role": role, "org": org.code})
    return user


def update_user(user: User, display_name: str, role: str, org: Optional[OrgUnit], phone: Optional[str],
                active: bool) -> None:
    """Edit a user's name, role, org, phone and active flag; a change of role, org or active
    ends the user's sessions.  Audited with the changed fields."""
    errors = validate_user_fields(user.username, role, org, None, display_name, existing=user)
    if errors:
        raise ValidationFailed(errors=errors)
    changes = {}
    for field, value in (("display_name", display_name.strip()), ("role", role), ("org_id", org.id),
                         ("phone", phone or None), ("active", active)):
        if getattr(user, field) != value:
            changes[field] = [getattr(user, field), value]
            setattr(user, field, value)
    if "active" in changes or "role" in changes or "org_id" in changes:
        user.session_version += 1  # ends the user's sessions
    session.flush()
    audit("user.update", "user", user.id, changes)


def set_active(user: User, active: bool) -> None:
    """Deactivate (ending every session) or reactivate a user; audited."""
    if user.active == active:
        return
    user.active = active
    user.session_version += 1
    session.flush()
    audit("user.activate" if active else "user.deactivate", "user", user.id)


def end_sessions(user: User) -> None:
    """End every open session of ``user`` (the login cookie carries ``session_version``)."""
    user.session_version += 1
    session.flush()
    audit("user.end_sessions", "user", user.id)


def set_password(user: User, password: str, by_admin: bool = False) -> None:
    reason = check_password_rules(password)
    if reason:
        raise ValidationFailed(errors={"password": reason})
    user.password_hash = hash_password(password)
    user.session_version += 1
    user.must_change_password = by_admin
    session.flush()
    audit("user.password_reset" if by_admin else "user.password_change", "user", user.id)


def authenticate(username: str, password: str) -> Optional[User]:
    """The active user with these credentials, or None; logs success and failure."""
    user = session.scalar(select(User).where(User.username == (username or "").strip()))
    if user is None or not check_password_hash(user.password_hash, password or ""):
        audit("login.failed", "user", getattr(user, "id", None), {"username": (username or "")[:64]}, user=None)
        return None
    if not user.active:
        audit("login.inactive", "user", user.id, user=user)
        return None
    user.last_login_at = utcnow()
    audit("login", "user", user.id, user=user)
    return user


def load_user_from_cookie(user_id: str) -> Optional[User]:
    """Flask-Login loader: ``"<id>:<session_version>"``; a bumped version ends the session."""
    try:
        uid, version = (int(part) for part in user_id.split(":"))
    except (ValueError, AttributeError):
        return None
    user = session.get(User, uid)
    if user is None or user.session_version != version or not user.active:
        return None
    return user


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, label: Optional[str] = None) -> str:
    """Create a bearer token for ``user``; the plain token is returned once and stored hashed."""
    token = "qy_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_digest(token), label=label))
    session.flush()
    audit("token.issue", "user", user.id, {"label": label}, user=user)
    return token


def user_for_token(token: str) -> Optional[User]:
    """The active user owning an unrevoked token, or None."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(token or ""),
                                                ApiToken.revoked_at.is_(None)))
    if row is None or not row.user.active:
        return None
    row.last_used_at = utcnow()
    return row.user


def revoke_token(token_id: int) -> None:
    row = session.get(ApiToken, token_id)
    if row and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
        audit("token.revoke", "api_token", token_id)
