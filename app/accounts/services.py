"""Accounts: creating and editing users, passwords, login checks, the second factor and API tokens."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Optional

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import bindparam, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts import totp
from app.accounts.models import ApiToken, User
from app.accounts.roles import ROLE_ORG_LEVEL, ROLES
from app.audit.services import audit
from app.db import column_keys, entity_columns, persistent_from_row, prepared, select_rows, session, utcnow
from app.errors import ValidationFailed
from app.orgs.models import LEVEL_LABELS, OrgUnit
from app.reports import cache as report_cache

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")
MIN_PASSWORD_LENGTH = 12
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
# Checked when the username does not exist, so an unknown user costs as much time as a known one.
_DUMMY_HASH = generate_password_hash("qingyuan-timing-equaliser", method="pbkdf2:sha256:1")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (ASVS 2.1.7), lower-cased; see the file's header."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def is_common_password(password: str) -> bool:
    return (password or "").strip().lower() in common_passwords()


def hash_password(password: str) -> str:
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt") if current_app else "scrypt"
    return generate_password_hash(password, method=method)


def check_password_rules(password: str) -> Optional[str]:
    """The Chinese reason a new password is refused, or None."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        return _("密码至少 %(n)s 位", n=MIN_PASSWORD_LENGTH)
    if is_common_password(password):
        return _("该密码过于常见，容易被猜中，请换一个")
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
    """Set a new password (refused if short or common) and end every session of the user,
    the one making the change included: after a change the user logs in again with the new
    password (ASVS 3.3.3), and a session an attacker may hold ends too."""
    reason = check_password_rules(password)
    if reason:
        raise ValidationFailed(errors={"password": reason})
    user.password_hash = hash_password(password)
    user.session_version += 1
    user.must_change_password = by_admin
    session.flush()
    audit("user.password_reset" if by_admin else "user.password_change", "user", user.id)


def authenticate(username: str, password: str) -> Optional[User]:
    """The active user with these credentials, or None; audits the failure (not the success:
    the login is complete, and audited by ``complete_login``, only after any second factor)."""
    user = session.scalar(select(User).where(User.username == (username or "").strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
    if user is None or not check_password_hash(user.password_hash, password or ""):
        audit("login.failed", "user", getattr(user, "id", None), {"username": (username or "")[:64]}, user=None)
        return None
    if not user.active:
        audit("login.inactive", "user", user.id, user=user)
        return None
    return user


def complete_login(user: User, second_factor: bool) -> None:
    """Record a completed login (after the password and, when enrolled, the code)."""
    user.last_login_at = utcnow()
    audit("login", "user", user.id, {"second_factor": second_factor}, user=user)


# ---- the second factor ------------------------------------------------------------------------

def start_totp_enrolment(user: User) -> str:
    """The secret being enrolled: a new one, or the one already shown and not yet confirmed."""
    if user.totp_enabled:
        raise ValidationFailed(errors={"code": _("已启用双因素认证。")})
    if not user.totp_secret:
        user.totp_secret = totp.new_secret()
        user.totp_last_step = None
        session.flush()
    return user.totp_secret


def check_totp(user: User, code: str) -> bool:
    """Accept a code of the user's secret once (a used time step cannot be replayed)."""
    step = totp.matching_step(user.totp_secret or "", code, user.totp_last_step)
    if step is None:
        return False
    user.totp_last_step = step
    session.flush()
    return True


def confirm_totp_enrolment(user: User, code: str) -> None:
    """Switch the second factor on once the user proves their authenticator shows the secret."""
    if user.totp_enabled or not user.totp_secret:
        raise ValidationFailed(errors={"code": _("请先开始绑定。")})
    if not check_totp(user, code):
        audit("user.totp_enable_failed", "user", user.id, user=user)
        raise ValidationFailed(errors={"code": _("验证码不正确或已使用，请输入验证器上当前显示的 6 位数字。")})
    user.totp_enabled = True
    session.flush()
    audit("user.totp_enable", "user", user.id, user=user)


def disable_totp(user: User, password: str, code: str) -> None:
    """Switch the second factor off with the password and a current code; not for roles that
    require it."""
    if totp.required_for(user):
        raise ValidationFailed(errors={"code": _("您的角色必须使用双因素认证，不能关闭。")})
    errors = {}
    if not check_password_hash(user.password_hash, password or ""):
        errors["password"] = _("密码不正确")
    elif not check_totp(user, code):
        errors["code"] = _("验证码不正确或已使用")
    if errors:
        audit("user.totp_disable_failed", "user", user.id, user=user)
        raise ValidationFailed(errors=errors)
    _clear_totp(user)
    audit("user.totp_disable", "user", user.id, user=user)


def reset_totp(user: User) -> None:
    """Remove a user's second factor (lost phone; ``flask accounts reset-totp``) and end their
    sessions; a role that requires it enrols again at the next login."""
    _clear_totp(user)
    user.session_version += 1
    session.flush()
    audit("user.totp_reset", "user", user.id)


def _clear_totp(user: User) -> None:
    user.totp_secret = None
    user.totp_enabled = False
    user.totp_last_step = None
    session.flush()


def load_user_from_cookie(user_id: str) -> Optional[User]:
    """Flask-Login loader: ``"<id>:<session_version>"``; a bumped version ends the session."""
    try:
        uid, version = (int(part) for part in user_id.split(":"))
    except (ValueError, AttributeError):
        return None
    # One row: the user's columns, their unit's and the write counters the caches are keyed on
    # (``app.reports.cache``: the settings, the ledger's filter choices and the reports then
    # cost no statement for them).  A statement kept per process and read as a row
    # (``select_rows``: straight on the driver), the user and the unit then made
    # the session's own instances from it (``persistent_from_row``): every request of a
    # logged-in user runs this first, and the ORM's query machinery cost more than the read.
    rows = select_rows(prepared("user.row", _user_statement, server_prepare=True), {"id": uid})
    if not rows:
        return None
    row = rows[0]
    user_values = row[:_USER_COLUMNS]
    org_values = row[_USER_COLUMNS:_USER_COLUMNS + _ORG_COLUMNS]
    # the row decides, even when the session already holds an older copy of the user
    if user_values[_USER_KEYS.index("session_version")] != version or not user_values[_USER_KEYS.index("active")]:
        return None
    report_cache.note_counters(*row[_USER_COLUMNS + _ORG_COLUMNS:])
    user = persistent_from_row(User, _USER_KEYS, user_values)
    if "org" in sa_inspect(user).unloaded:
        set_committed_value(user, "org", persistent_from_row(OrgUnit, _ORG_KEYS, org_values))
    return user  # persistent, with its unit: loads, changes and flushes as after a query


_USER_KEYS, _ORG_KEYS = column_keys(User), column_keys(OrgUnit)
_USER_COLUMNS, _ORG_COLUMNS = len(_USER_KEYS), len(_ORG_KEYS)


def _user_statement():
    """The user's columns, their unit's and the write counters, as one row: the user's unit,
    joined once, serves both ``user.org`` and the county's counter."""
    org = aliased(OrgUnit, name="qy_user_org")
    joins, columns = report_cache.counter_columns(org)
    source = User.__table__.outerjoin(org, org.id == User.org_id)
    for target, on in joins:
        source = source.outerjoin(target, on)
    return (select(*entity_columns(User), *entity_columns(org), *columns).select_from(source)
            .where(User.id == bindparam("id")))


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, label: Optional[str] = None) -> str:
    """Create a bearer token for ``user``; the plain token is returned once and stored hashed."""
    token = "qy_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_digest(token), label=label))
    session.flush()
    audit("token.issue", "user", user.id, {"label": label}, user=user)
    return token


TOKEN_USE_RESOLUTION = timedelta(minutes=1)
"""How stale a token's 最近使用 may get: it is written at most once a minute per token."""


def token_for_request(token: str) -> Optional[ApiToken]:
    """The unrevoked token ``token`` of an active user, or None; changes nothing."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(token or ""),
                                                ApiToken.revoked_at.is_(None)))
    if row is None or not row.user.active:
        return None
    return row


def note_token_use(row: ApiToken, now: Optional[datetime] = None) -> bool:
    """Set the token's 最近使用 to now if it is older than ``TOKEN_USE_RESOLUTION`` (flushed;
    the caller commits); whether it did.

    Why not on every request: the API's reads wrote nothing else, and the UPDATE made every
    request of one token wait for the previous one's row lock (an integration calling in
    parallel with one token ran one request at a time) and ended each read in a rollback.
    Before this the reads never even kept the time: nobody committed it."""
    now = now or utcnow()
    last = row.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=timezone.utc)
    if last is not None and now - last < TOKEN_USE_RESOLUTION:
        return False
    session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return True


def tokens_of(user: User) -> list[ApiToken]:
    """``user``'s API tokens, newest first, revoked ones included (the admin page lists them)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke_token(token_id: int, owner: Optional[User] = None) -> bool:
    """Revoke one token (of ``owner`` when given); audited.  True when it was revoked now; an
    unknown token, one of another user, or one already revoked changes nothing."""
    row = session.get(ApiToken, token_id)
    if row is None or (owner is not None and row.user_id != owner.id) or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    session.flush()
    audit("token.revoke", "api_token", token_id, {"user": row.user.username, "label": row.label})
    return True


def revoke_all_tokens(user: User) -> int:
    """Revoke every unrevoked token of ``user``; audited once per token.  Returns how many."""
    live = [row for row in tokens_of(user) if row.revoked_at is None]
    for row in live:
        revoke_token(row.id, user)
    return len(live)
