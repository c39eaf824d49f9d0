"""Loading many rows at once: COPY on PostgreSQL, a plain ``executemany`` on SQLite.

``flask bench seed --cases 1000000`` writes some four million rows.  Through a Core
``insert(table)`` with a list of dicts, SQLAlchemy processes every row's parameters in Python
and psycopg then sends one INSERT per row (pipelined, but each parsed and executed on its own):
on this machine kind 50,000 cases took 25 s, two thirds of it in PostgreSQL.  ``bulk_insert``
does what that INSERT did to the values (the columns' Python-side defaults, the hashes of the
encrypted columns among them, and each type's bind processing: encryption, JSON, dates on
SQLite) and hands the rows to the driver in one go: ``COPY … FROM STDIN`` on PostgreSQL,
``executemany`` on SQLite.

It writes beside the session's hooks: the figure summary and the report cache do not see these
rows.  A caller that inserts cases must rebuild the summary before it commits
(``app.reports.summary.rebuild_summary``, which also invalidates every cached report), as
``app.benchgen.generate_cases`` does.  ``tests/test_bulk.py`` checks that the rows read back
the same as rows written by Core ``insert``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable

from sqlalchemy import Table

from app.db import mark_written, session


class _RowContext:
    """What a column default may ask of SQLAlchemy's execution context: the row's values
    (``app.crypto.hash_default`` hashes the plaintext of the column it shadows)."""

    __slots__ = ("row",)

    def __init__(self):
        self.row: dict[str, Any] = {}

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> dict[str, Any]:
        return self.row


def bulk_insert(table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` (dicts with the same keys, by column key) into ``table`` in the session's
    transaction; returns how many.  Columns not given get their Python-side default or, failing
    that, the database's."""
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    given = list(rows[0])
    unknown = [k for k in given if k not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(unknown)}")
    defaulted = [c for c in table.columns if c.key not in rows[0] and c.default is not None]
    for column in defaulted:
        if not (column.default.is_scalar or column.default.is_callable):
            raise ValueError(f"{table.name}.{column.name}: a SQL-expression default cannot be bulk loaded")
    columns = [table.c[k] for k in given] + defaulted
    processors = [c.type._cached_bind_processor(dialect) for c in columns]
    context = _RowContext()

    def values() -> Iterable[tuple]:
        keys = set(given)
        for row in rows:
            if row.keys() != keys:
                raise ValueError(f"{table.name}: every row must have the same keys as the first")
            context.row = row
            out = [row[k] for k in given]
            for column in defaulted:
                default = column.default
                out.append(default.arg if default.is_scalar else default.arg(context))
            yield tuple(v if p is None else p(v) for v, p in zip(out, processors))

    prep = dialect.identifier_preparer
    names = ", ".join(prep.format_column(c) for c in columns)
    target = prep.format_table(table)
    if dialect.name == "postgresql":
        mark_written(connection)
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:  # nosec B608 # names from the metadata
                for row in values():
                    copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES ({marks})",  # nosec B608
                                   list(values()))
    return len(rows)


LOAD_CACHE_KIB = 2 * 1024 * 1024
"""SQLite's page cache during a large load (its default is 2 MB).  Each new case updates some
twenty indexes at random places; once they outgrow the cache every row re-reads pages, and
50,000 cases took 130 s instead of 25 s.  It is a ceiling, not an allocation."""


@contextmanager
def large_load():
    """Around a large ``bulk_insert`` on SQLite: the page cache raised to ``LOAD_CACHE_KIB`` on
    the session's connection, restored afterwards.  PostgreSQL: nothing (``shared_buffers`` is
    the server's business)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{LOAD_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")
