"""Plain helper functions for tests (factories live in tests/factories.py)."""
from __future__ import annotations

import re
from contextlib import contextmanager


def csrf_token(client, path: str = "/") -> str:
    """A CSRF token for the client's session, read from a page's logout form or a form field."""
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert m, f"no csrf token on {path}"
    return m.group(1)


@contextmanager
def count_queries(app):
    """Statements sent to the database inside the block (a list of SQL strings)."""
    from sqlalchemy import event

    from app import db as app_db
    engine = app_db.get_engine(app)
    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)
