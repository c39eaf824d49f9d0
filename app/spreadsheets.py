"""Spreadsheet-injection defence shared by every Excel/CSV export (OWASP "CSV injection").

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return may be run
as a formula by Excel, WPS or LibreOffice (``=HYPERLINK(...)`` exfiltrates, ``@SUM`` runs
DDE in old versions).  Exports write such text with a leading apostrophe, so it shows as the
text that was typed and is never evaluated.  Numbers and dates are left alone: a negative
amount stored as a number is not text and runs nothing.
"""
from __future__ import annotations

from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` as a cell that cannot be run as a formula (text only; other types unchanged)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
