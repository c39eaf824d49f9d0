"""Login throttling and temporary lockout (ASVS 4.0.3 2.2.1, 等保2.0 登录失败处理).

Five failed logins (``LOGIN_MAX_FAILURES``) for one username, or from one client address
whatever the usernames, within 15 minutes (``LOGIN_FAILURE_WINDOW_MINUTES``) lock that
username or address for 15 minutes (``LOGIN_LOCKOUT_MINUTES``).  A wrong second-factor code
counts as a failure too.  While locked, the password is not even checked.  The lockout
applies to any typed username, existing or not, and the message is the same in every case,
so it reveals nothing about which usernames exist.  A successful login clears the
username's failures (not the address's: one valid account must not reset an address that is
guessing other people's passwords).

Why a database table rather than Flask-Limiter: Flask-Limiter's storages (memory, redis,
memcached, mongodb) have no SQL backend.  Memory storage is per process, so four gunicorn
workers on two hosts would allow 8 × 5 attempts; the others would make Redis (or another
server) a requirement of every county deployment.  The application already has one shared
database, SQLite or PostgreSQL, so the failures and lockouts are rows there
(``login_failure``, ``login_lockout``) and every process and host sees the same counts.
Login attempts are rare enough that a few indexed rows per attempt cost nothing.

The clock is ``utcnow`` of this module so tests can move time without sleeping.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Optional

from flask import current_app
from sqlalchemy import and_, delete, func, or_, select

from app.accounts.models import LoginFailure, LoginLockout
from app.audit.services import audit
from app.db import session, utcnow

KEEP_ROWS = timedelta(days=1)  # the audit log keeps the history; these rows only feed the counters


def _setting(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


def username_key(username: Optional[str]) -> str:
    """Case-folded so ``Admin`` and ``admin`` share a counter."""
    return (username or "").strip().lower()[:64]


def address_key(address: Optional[str]) -> str:
    return (address or "unknown")[:64]


def is_locked(username: Optional[str], address: Optional[str]) -> bool:
    """True while the username or the client address is locked out."""
    now = utcnow()
    stmt = select(LoginLockout.id).where(
        or_(and_(LoginLockout.kind == "username", LoginLockout.key == username_key(username)),
            and_(LoginLockout.kind == "ip", LoginLockout.key == address_key(address))),
        LoginLockout.until > now).limit(1)
    return session.scalar(stmt) is not None


def _recent_failures(kind: str, key: str, now) -> int:
    """Failures for ``key`` inside the window and after its last lockout began."""
    column = LoginFailure.username if kind == "username" else LoginFailure.ip
    since = now - timedelta(minutes=_setting("LOGIN_FAILURE_WINDOW_MINUTES", 15))
    last_lock = (select(func.max(LoginLockout.locked_at))
                 .where(LoginLockout.kind == kind, LoginLockout.key == key).scalar_subquery())
    return session.scalar(select(func.count()).select_from(LoginFailure).where(
        column == key, LoginFailure.at > since, or_(last_lock.is_(None), LoginFailure.at > last_lock))) or 0


def record_failure(username: Optional[str], address: Optional[str], reason: str = "password") -> bool:
    """Count one failed login; lock the username and/or address when it reaches the limit.

    Returns True when this failure started a lockout.  Each lockout is audited
    (``login.lockout``); the caller audits the failure itself.  Flushes, the caller commits.
    """
    now = utcnow()
    ukey, akey = username_key(username), address_key(address)
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - KEEP_ROWS))
    session.execute(delete(LoginLockout).where(LoginLockout.until < now - KEEP_ROWS))
    session.add(LoginFailure(at=now, username=ukey, ip=akey))
    session.flush()
    limit = _setting("LOGIN_MAX_FAILURES", 5)
    until = now + timedelta(minutes=_setting("LOGIN_LOCKOUT_MINUTES", 15))
    started = False
    for kind, key in (("username", ukey), ("ip", akey)):
        if _recent_failures(kind, key, now) >= limit:
            session.add(LoginLockout(kind=kind, key=key, locked_at=now, until=until))
            session.flush()
            audit("login.lockout", "user", None, {"kind": kind, "key": key, "reason": reason,
                                                  "minutes": _setting("LOGIN_LOCKOUT_MINUTES", 15)}, user=None)
            started = True
    return started


def clear_username(username: Optional[str]) -> None:
    """A successful login forgets the username's earlier failures."""
    session.execute(delete(LoginFailure).where(LoginFailure.username == username_key(username)))
    session.flush()


def unlock_username(username: Optional[str]) -> int:
    """Lift the username's lockouts and forget its failures (``flask accounts unlock``); audited."""
    key = username_key(username)
    removed = session.execute(delete(LoginLockout).where(LoginLockout.kind == "username",
                                                         LoginLockout.key == key)).rowcount
    clear_username(username)
    audit("login.unlock", "user", None, {"key": key})
    return removed or 0
