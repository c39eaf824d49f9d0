"""Searching the audit trail (admin only)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Optional

from sqlalchemy import Select, select

from app.audit.models import AuditLog
from app.templating import SHANGHAI


def search_audit(username: Optional[str] = None, action: Optional[str] = None,
                 object_type: Optional[str] = None, object_id: Optional[str] = None,
                 date_from: Optional[date] = None, date_to: Optional[date] = None,
                 before_id: Optional[int] = None, limit: int = 100) -> Select:
    """Newest first, keyset-paged by id (``before_id``); dates are Asia/Shanghai days."""
    stmt = select(AuditLog)
    if username:
        stmt = stmt.where(AuditLog.username == username)
    if action:
        stmt = stmt.where(AuditLog.action.startswith(action))
    if object_type:
        stmt = stmt.where(AuditLog.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditLog.object_id == object_id)
    if date_from:
        stmt = stmt.where(AuditLog.at >= _utc_start(date_from))
    if date_to:
        stmt = stmt.where(AuditLog.at < _utc_start(date_to + timedelta(days=1)))
    if before_id:
        stmt = stmt.where(AuditLog.id < before_id)
    return stmt.order_by(AuditLog.id.desc()).limit(limit)


def _utc_start(day: date) -> datetime:
    from datetime import timezone
    return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(timezone.utc)
