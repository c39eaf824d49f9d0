"""Writing audit records."""
from __future__ import annotations

from typing import Any, Optional

from flask import has_request_context, request
from flask_login import current_user

from app.audit.models import AuditLog
from app.db import session


def audit(action: str, object_type: Optional[str] = None, object_id: Any = None,
          detail: Optional[dict[str, Any]] = None, user=None) -> AuditLog:
    """Record ``action`` by ``user`` (default: the logged-in user) and flush; the caller commits."""
    if user is None and has_request_context() and getattr(current_user, "is_authenticated", False):
        user = current_user
    entry = AuditLog(
        user_id=getattr(user, "id", None),
        username=getattr(user, "username", None),
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=detail,
        ip=request.remote_addr if has_request_context() else None,
    )
    session.add(entry)
    session.flush()
    return entry
