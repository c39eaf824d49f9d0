"""Users and API tokens."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from flask_login import UserMixin
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.roles import ROLES, can
from app.crypto import EncryptedString
from app.db import Base, utcnow
from app.orgs.models import OrgUnit


class User(UserMixin, Base):
    """A person who logs in, with one role of PRODUCT.md §1 and one org unit.

    ``session_version`` is bumped to end every session of the user (password change,
    deactivation, the admin's "end sessions"); the login cookie carries it.

    Second factor (TOTP, RFC 6238): ``totp_secret`` is the base32 secret, set when enrolment
    starts and live only once ``totp_enabled`` (the user confirmed a code).  It is stored
    Fernet-encrypted with the personal-data keys (``app.crypto.EncryptedString``, rotated by
    ``flask keys rotate`` with the rest): a copy of the database alone does not give anyone the
    second factor.  ``totp_last_step`` is the last accepted 30-second time step, so a code
    cannot be used twice.
    """

    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint("role IN (" + ",".join(f"'{r}'" for r in ROLES) + ")", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[Optional[str]] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(32))
    org_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    session_version: Mapped[int] = mapped_column(default=1)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[Optional[datetime]]
    totp_secret: Mapped[Optional[str]] = mapped_column(EncryptedString(255))
    totp_enabled: Mapped[bool] = mapped_column(default=False)
    totp_last_step: Mapped[Optional[int]] = mapped_column(BigInteger)

    org: Mapped[OrgUnit] = relationship(lazy="joined")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def role_label(self) -> str:
        return ROLES.get(self.role, self.role)

    def can(self, capability: str) -> bool:
        return can(self.role, capability)

    @property
    def department_id(self) -> Optional[int]:
        """A liaison's department is their org unit."""
        return self.org_id if self.role == "dept_liaison" else None


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored, revocable by the admin."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[Optional[str]] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[Optional[datetime]]
    last_used_at: Mapped[Optional[datetime]]

    user: Mapped[User] = relationship(lazy="joined")


class LoginFailure(Base):
    """One failed login (wrong password, unknown or inactive user, wrong second-factor code).

    The throttle counts these rows per username and per client address.  They live in the
    database, not in process memory, so every app process and host behind the load balancer
    sees the same counts (see ``app.accounts.throttle``).
    """

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_username_at", "username", "at"),
                      Index("ix_login_failure_ip_at", "ip", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))


class LoginLockout(Base):
    """A temporary lockout of a username (``kind='username'``) or a client address (``'ip'``)."""

    __tablename__ = "login_lockout"
    __table_args__ = (Index("ix_login_lockout_kind_key", "kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    locked_at: Mapped[datetime] = mapped_column(default=utcnow)
    until: Mapped[datetime]


def users_by_id():
    """``SELECT user_account WHERE id IN :ids`` (expanding), built once per process
    (``app.db.prepared``): the case page names its registrar, mediators and actors with it."""
    from sqlalchemy import bindparam, select
    from app.db import prepared
    return prepared("users_by_id", lambda: select(User).where(User.id.in_(bindparam("ids", expanding=True))),
                    server_prepare=True)
