"""A psycopg cursor whose ``description`` builds its column objects only when read.

SQLAlchemy reads ``cursor.description`` after every statement, and psycopg answers with a new
list of ``Column`` objects, one per column of the result, each decoding its name and looking up
its type.  For a statement SQLAlchemy has seen before (every statement of a page after the first
request) it never looks inside: the result's column map is cached on the compiled statement.
A case page paid for some 170 such objects, about 4 % of its worker CPU on PostgreSQL.

``LazyDescriptionCursor.description`` gives the same answer (None, or a sequence of the same
``Column`` objects) but makes the columns on first use, from the result the statement produced
(kept, so a later statement on the cursor does not change it).  ``tests/test_pg_cursor.py``
compares it with psycopg's own on PostgreSQL.
"""
from __future__ import annotations

from collections.abc import Sequence

from psycopg import Cursor, pq
from psycopg._column import Column

_ROWS = {pq.ExecStatus.TUPLES_OK, pq.ExecStatus.SINGLE_TUPLE}
if hasattr(pq.ExecStatus, "TUPLES_CHUNK"):
    _ROWS.add(pq.ExecStatus.TUPLES_CHUNK)


class _ResultView:
    """What ``Column`` reads of a cursor, taken when the statement finished."""

    __slots__ = ("pgresult", "_encoding", "adapters")

    def __init__(self, cursor: Cursor):
        self.pgresult = cursor.pgresult
        self._encoding = cursor._encoding
        self.adapters = cursor.adapters


class LazyDescription(Sequence):
    __slots__ = ("_view", "_count", "_columns")

    def __init__(self, cursor: Cursor, count: int):
        self._view, self._count, self._columns = _ResultView(cursor), count, None

    def _made(self) -> list:
        if self._columns is None:
            self._columns = [Column(self._view, i) for i in range(self._count)]  # type: ignore[arg-type]
        return self._columns

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        return self._made()[index]

    def __iter__(self):
        return iter(self._made())

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    def __repr__(self) -> str:
        return repr(self._made())


class LazyDescriptionCursor(Cursor):
    @property
    def description(self):  # same rule as psycopg's: columns, or rows were returned
        res = self.pgresult
        if res and (res.nfields or res.status in _ROWS):
            return LazyDescription(self, res.nfields)
        return None
