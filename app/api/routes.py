"""The JSON API (``/api/v1``): bearer-token authentication, JSON errors, and the modules that
add routes to ``bp`` (``app.api.cases``, ``app.api.reports``).

The API sees exactly what the token's user may see in the web UI: every route loads the
user from the token and goes through the same services and scoping as the pages.
"""
from __future__ import annotations

import importlib
from functools import wraps

from flask import Blueprint, g, request

from sqlalchemy.exc import OperationalError

from app.accounts.services import note_token_use, token_for_request
from app.db import session
from app.errors import DomainError, StaleRecord, conflict_response, error_response
from app.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens, no cookies: CSRF does not apply

API_MODULES = ("app.api.cases", "app.api.actions", "app.api.reports")


def token_required(view):
    """Authenticate ``Authorization: Bearer <token>``; 401 in Chinese otherwise.  Sets ``g.api_user``."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        row = token_for_request(token.strip()) if scheme.lower() == "bearer" and token else None
        if row is None:
            return error_response(401, "缺少或无效的访问令牌（Authorization: Bearer <token>）。")
        _note_use(row)
        g.api_user = row.user
        return view(*args, **kwargs)
    return wrapper


def _note_use(row) -> None:
    """Record the token's use (at most once a minute) in a transaction of its own, committed
    before the view runs: a read request then writes nothing else.  A SQLite read transaction
    cannot always become a writer (another process wrote since it began): then the time waits
    for the next request, and the request goes on."""
    try:
        if note_token_use(row):
            session.commit()
    except OperationalError:
        session.rollback()


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError):
    session.rollback()
    if isinstance(exc, StaleRecord):
        return conflict_response(exc)  # 409 with the current version and values
    return error_response(exc.status, exc.message, exc.errors)


for _name in API_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:
        if exc.name != _name:
            raise
