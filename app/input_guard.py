"""Refuse text no field may hold, before any route sees it.

A NUL character (``\\x00``) cannot be stored in a PostgreSQL text column (psycopg raises, and
the request would end in a 500 after a partial transaction), and a lone UTF-16 surrogate
(``"\\ud800"`` in JSON) cannot be encoded at all.  Neither can be typed by a person, so a request
carrying one in its query string, path, form fields or JSON body is refused as a whole: 400 on
a page, 422 with a per-field message on the API.  Uploaded files are bytes and not checked here
(attachments are checked by content in ``app.cases.attachments``).
"""
from __future__ import annotations

from typing import Any, Iterator

from flask import request

from app.i18n import N_

MESSAGE = N_("提交的内容含有不允许的控制字符，请检查后重新输入。")


def _bad(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return False


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def offending_input() -> bool:
    """Whether the current request carries text that no field may hold."""
    parts: list[Any] = [request.path, list(request.args.items(multi=True)), list((request.view_args or {}).values())]
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if request.is_json:
            parts.append(request.get_json(silent=True))
        elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            parts.append(list(request.form.items(multi=True)))
    return any(_bad(s) for s in _strings(parts))


def init_app(app) -> None:
    @app.before_request
    def _refuse_unstorable_text():
        if offending_input():
            from app.errors import error_response
            if request.path.startswith("/api/"):
                return error_response(422, MESSAGE, {"_body": MESSAGE})
            return error_response(400, MESSAGE)
        return None
