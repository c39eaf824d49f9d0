"""Plain helper functions for tests (factories live in tests/factories.py)."""
from __future__ import annotations

import re


def csrf_token(client, path: str = "/") -> str:
    """A CSRF token for the client's session, read from a page's logout form or a form field."""
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert m, f"no csrf token on {path}"
    return m.group(1)
