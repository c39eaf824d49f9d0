"""``app.pg_cursor.LazyDescriptionCursor`` describes results exactly as psycopg does (PostgreSQL only)."""
from __future__ import annotations

import pytest

from app import db as app_db

QUERIES = [
    "SELECT 1 AS one, 'x'::text AS t, now() AS ts, NULL::numeric(10, 2) AS amount, ARRAY[1, 2] AS arr",
    "SELECT id, number, registered_on FROM dispute_case WHERE false",  # rows: none, columns: three
    "SELECT",  # no columns, but a row set
    "SET LOCAL statement_timeout = 0",  # no row set at all
]


def _describe(description):
    if description is None:
        return None
    return [(c.name, c.type_code, c.display_size, c.internal_size, c.precision, c.scale, c.null_ok,
             c.type_display) for c in description]


@pytest.fixture()
def raw(app, db):
    engine = app_db.get_engine(app)
    if engine.dialect.name != "postgresql":
        pytest.skip("a psycopg cursor: PostgreSQL only")
    conn = engine.raw_connection()
    try:
        yield conn.driver_connection
    finally:
        conn.rollback()
        conn.close()


def test_the_app_engine_uses_the_lazy_cursor(raw):
    from app.pg_cursor import LazyDescriptionCursor
    assert isinstance(raw.cursor(), LazyDescriptionCursor)


@pytest.mark.parametrize("sql", QUERIES)
def test_lazy_description_equals_psycopgs(raw, sql):
    from psycopg import Cursor
    lazy, plain = raw.cursor(), Cursor(raw)
    lazy.execute(sql)
    plain.execute(sql)
    assert (lazy.description is None) == (plain.description is None)
    if plain.description is not None:
        assert len(lazy.description) == len(plain.description)
    assert _describe(lazy.description) == _describe(plain.description)


def test_a_description_kept_describes_its_own_statement(raw):
    cur = raw.cursor()
    cur.execute("SELECT 1 AS first_col, 'a'::text AS second_col")
    kept = cur.description  # not looked into until the cursor has run something else
    cur.execute("SELECT 2 AS other")
    assert [c.name for c in kept] == ["first_col", "second_col"]
    assert [c.name for c in cur.description] == ["other"]
