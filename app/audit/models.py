"""The append-only audit trail: every write, login, unmasking, export and admin change."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class AuditLog(Base):
    """One audited event.  No route edits or deletes these rows (网络安全法 Art. 21: ≥ 6 months)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), index=True)
    username: Mapped[Optional[str]] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[Optional[str]] = mapped_column(String(40))
    object_id: Mapped[Optional[str]] = mapped_column(String(64))
    detail: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    ip: Mapped[Optional[str]] = mapped_column(String(64))


# ---------------------------------------------------------------------------------------------
# Append-only, enforced: the ORM refuses to change or delete an audit row.  Nothing in the
# application purges the trail; rows are kept at least 180 days (网络安全法 Art. 21) and in
# practice for ever.  An operator who must trim a very old trail does it in SQL, with a backup.


class AuditLogImmutable(RuntimeError):
    """An attempt to update or delete an ``AuditLog`` row through the ORM."""


def _refuse(*_args, **_kwargs):
    raise AuditLogImmutable("审计日志只能追加，不能修改或删除。")


def _install_guards() -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    event.listen(AuditLog, "before_update", _refuse)
    event.listen(AuditLog, "before_delete", _refuse)

    @event.listens_for(Session, "before_flush")
    def _no_changed_audit_rows(session, _flush_context, _instances):
        for obj in session.deleted:
            if isinstance(obj, AuditLog):
                _refuse()
        for obj in session.dirty:
            if isinstance(obj, AuditLog) and session.is_modified(obj, include_collections=False):
                _refuse()

    @event.listens_for(Session, "do_orm_execute")
    def _no_bulk_audit_changes(state):
        if (state.is_update or state.is_delete) and state.bind_mapper is not None \
                and state.bind_mapper.class_ is AuditLog:
            _refuse()


_install_guards()
