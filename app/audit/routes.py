"""The audit-trail search page.  Read-only: no route edits or deletes audit records."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, render_template, request
from flask_login import current_user

from app.audit.queries import search_audit
from app.db import session

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")
PAGE_SIZE = 100


def _date_arg(name: str):
    value = request.args.get(name, "").strip()
    if not value:
        return None, None
    try:
        return date.fromisoformat(value), None
    except ValueError:
        return None, f"日期 {value} 格式应为 YYYY-MM-DD"


@bp.get("/")
def index():
    if not current_user.can("audit.view"):
        abort(403)
    date_from, err1 = _date_arg("from")
    date_to, err2 = _date_arg("to")
    before = request.args.get("before", type=int)
    rows = list(session.scalars(search_audit(
        username=request.args.get("username", "").strip() or None,
        action=request.args.get("action", "").strip() or None,
        object_type=request.args.get("object_type", "").strip() or None,
        object_id=request.args.get("object_id", "").strip() or None,
        date_from=date_from, date_to=date_to, before_id=before, limit=PAGE_SIZE + 1)))
    next_before = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
    return render_template("audit/index.html", rows=rows[:PAGE_SIZE], next_before=next_before,
                           errors=[e for e in (err1, err2) if e], args=request.args)
