"""Full-text search of cases over number, party names and summary, finding Chinese substrings
(排水 in 排水沟堵塞) on both databases; a term that is a whole ID number or phone also finds the
cases of the party holding it (by keyed hash: the numbers are encrypted, so no substring search).

- SQLite: an FTS5 ``trigram`` table ``case_search`` (rowid = case id) kept in step with
  ``dispute_case`` and ``party`` by triggers, so bulk writers (the ledger importer) need do
  nothing.  Terms of 3+ characters use MATCH; 1–2 characters use LIKE on the base tables
  (a trigram index cannot answer them; on SQLite 3.40 LIKE on the FTS table returns nothing).
- PostgreSQL: ``pg_trgm`` GIN indexes on the summary, the number and party names; ILIKE uses
  them for 3+ characters (the database needs a UTF-8 ctype).

``install_search(connection)`` creates all of it and is idempotent: the migration calls it,
and an ``after_create`` hook on the metadata calls it so ``create_all`` (tests) installs it.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

from sqlalchemy import Text, and_, bindparam, cast, column, event, exists, func, or_, select, text, union
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.orm import aliased
from sqlalchemy.engine import Connection

from app.cases.models import Case, Party
from app.crypto import lookup_hash, normalise
from app.db import Base

SQLITE_TRIGGERS = {
    "case_search_ai": """CREATE TRIGGER IF NOT EXISTS case_search_ai AFTER INSERT ON dispute_case BEGIN
         INSERT INTO case_search(rowid, number, names, summary) VALUES (new.id, new.number,
           coalesce((SELECT group_concat(name, ' ') FROM party WHERE case_id = new.id), ''), new.summary);
       END""",
    "case_search_au": """CREATE TRIGGER IF NOT EXISTS case_search_au AFTER UPDATE OF number, summary ON dispute_case BEGIN
         UPDATE case_search SET number = new.number, summary = new.summary WHERE rowid = new.id;
       END""",
    "case_search_ad": """CREATE TRIGGER IF NOT EXISTS case_search_ad AFTER DELETE ON dispute_case BEGIN
         DELETE FROM case_search WHERE rowid = old.id;
       END""",
    "party_search_ai": """CREATE TRIGGER IF NOT EXISTS party_search_ai AFTER INSERT ON party BEGIN
         UPDATE case_search SET names = coalesce((SELECT group_concat(name, ' ') FROM party
           WHERE case_id = new.case_id), '') WHERE rowid = new.case_id;
       END""",
    "party_search_au": """CREATE TRIGGER IF NOT EXISTS party_search_au AFTER UPDATE OF name, case_id ON party BEGIN
         UPDATE case_search SET names = coalesce((SELECT group_concat(name, ' ') FROM party
           WHERE case_id = old.case_id), '') WHERE rowid = old.case_id;
         UPDATE case_search SET names = coalesce((SELECT group_concat(name, ' ') FROM party
           WHERE case_id = new.case_id), '') WHERE rowid = new.case_id;
       END""",
    "party_search_ad": """CREATE TRIGGER IF NOT EXISTS party_search_ad AFTER DELETE ON party BEGIN
         UPDATE case_search SET names = coalesce((SELECT group_concat(name, ' ') FROM party
           WHERE case_id = old.case_id), '') WHERE rowid = old.case_id;
       END""",
}
SQLITE_DDL = ["CREATE VIRTUAL TABLE IF NOT EXISTS case_search USING fts5(number, names, summary, tokenize='trigram')",
              *SQLITE_TRIGGERS.values()]
SQLITE_REBUILD = """INSERT INTO case_search(rowid, number, names, summary)
    SELECT c.id, c.number, coalesce((SELECT group_concat(p.name, ' ') FROM party p WHERE p.case_id = c.id), ''),
           c.summary FROM dispute_case c WHERE c.id NOT IN (SELECT rowid FROM case_search)"""

POSTGRES_DDL = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_case_summary_trgm ON dispute_case USING gin (summary gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_case_number_trgm ON dispute_case USING gin (number gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_party_name_trgm ON party USING gin (name gin_trgm_ops)",
] + [
    # 2-character terms (a two-character name: 王伟): a trigram index has no trigram of them, so
    # each column also has a GIN index of its lower-cased character pairs; a 2-character term
    # looks its pair up there and the ILIKE rechecks the rows found.
    """CREATE OR REPLACE FUNCTION qy_bigrams(t text) RETURNS text[] LANGUAGE sql IMMUTABLE
       PARALLEL SAFE STRICT AS $$ SELECT coalesce(array_agg(DISTINCT lower(substr(t, i, 2))), '{}'::text[])
       FROM generate_series(1, char_length(t) - 1) AS i $$""",
    "CREATE INDEX IF NOT EXISTS ix_case_summary_bigram ON dispute_case USING gin (qy_bigrams(summary))",
    "CREATE INDEX IF NOT EXISTS ix_case_number_bigram ON dispute_case USING gin (qy_bigrams(number))",
    "CREATE INDEX IF NOT EXISTS ix_party_name_bigram ON party USING gin (qy_bigrams(name))",
]
BIGRAM_INDEXES = ("ix_case_summary_bigram", "ix_case_number_bigram", "ix_party_name_bigram")


def install_search(connection: Connection) -> None:
    """Create the search table/triggers (SQLite) or extension/indexes (PostgreSQL); idempotent.
    Also indexes cases that exist already (a database upgraded with data)."""
    name = connection.dialect.name
    if name == "sqlite":
        for ddl in SQLITE_DDL:
            connection.exec_driver_sql(ddl)
        connection.exec_driver_sql(SQLITE_REBUILD)
    elif name == "postgresql":
        for ddl in POSTGRES_DDL:
            connection.exec_driver_sql(ddl)


SQLITE_ROW_TRIGGERS = ("case_search_ai", "party_search_ai")


@contextmanager
def search_index_deferred(connection: Connection):
    """Around a large load of NEW cases with their parties (``app.benchgen``): on SQLite the
    insert triggers of ``case_search`` are dropped for the load, the new cases are indexed with
    one ``INSERT … SELECT`` at the end (``SQLITE_REBUILD``) and the triggers put back, all in
    the caller's transaction (SQLite's DDL is transactional: a failed load gets its triggers
    back with the rollback).  Why: fed one row at a time through triggers, each row a statement
    of its own, FTS5 writes a tiny segment per statement and merges them again and again; the
    cost per case grew with the cases already loaded (200,000 cases: 100 s in the triggers, 3 s
    in one ``INSERT … SELECT``).  Parties added during the load to cases that existed before it
    would not be indexed: the generator adds none.  PostgreSQL: nothing (GIN indexes)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    for trigger in SQLITE_ROW_TRIGGERS:
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger}")
    yield
    connection.exec_driver_sql(SQLITE_REBUILD)
    for trigger in SQLITE_ROW_TRIGGERS:
        connection.exec_driver_sql(SQLITE_TRIGGERS[trigger])


def drop_search(connection: Connection) -> None:
    """Undo ``install_search`` (migration downgrade)."""
    if connection.dialect.name == "sqlite":
        for trig in SQLITE_TRIGGERS:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trig}")
        connection.exec_driver_sql("DROP TABLE IF EXISTS case_search")
    elif connection.dialect.name == "postgresql":
        for ix in ("ix_case_summary_trgm", "ix_case_number_trgm", "ix_party_name_trgm") + BIGRAM_INDEXES:
            connection.exec_driver_sql(f"DROP INDEX IF EXISTS {ix}")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS qy_bigrams(text)")


def _after_create(target, connection, tables=None, **_kw) -> None:
    names = {t.name for t in tables} if tables is not None else set(target.tables)
    if "dispute_case" in names or tables is None:
        install_search(connection)


event.listen(Base.metadata, "after_create", _after_create)


def _like_pattern(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _like_clause(term: str, operator: str = "like", within=None):
    """``term`` as a substring of the number, the summary or a party's name, tested per row.
    ``within(model)``: the user's area on a ``Case`` alias; given, the party test becomes the
    parties of cases in that area (PostgreSQL otherwise hashes every party name in the
    database matching the term: 1.2 s over a province's 10,000,000 names, for one county)."""
    pattern = _like_pattern(term)

    def match(col):
        return col.ilike(pattern, escape="\\") if operator == "ilike" else col.like(pattern, escape="\\")

    if within is None:
        party = exists().where(Party.case_id == Case.id, match(Party.name))
    else:
        area = aliased(Case)
        party = Case.id.in_(select(Party.case_id).join(area, area.id == Party.case_id)
                            .where(within(area), match(Party.name)))
    return or_(match(Case.number), match(Case.summary), party)


def search_terms(q: str | None) -> list[str]:
    """The whitespace-separated terms of a query (at most 5)."""
    return [t for t in (q or "").split() if t][:5]


def search_clause(q: str | None, dialect: str, per_row: bool = False, within=None):
    """A WHERE clause on ``Case`` that every term of ``q`` matches (number, party names or
    summary), or None for an empty query.

    Two shapes of the same test: the indexed one (default) finds the matching ids through the
    FTS5 / pg_trgm index first, cheap for a rare term; ``per_row`` tests each row on its own
    (LIKE on the row's number and summary and its parties' names), cheap when the rows are
    few already: ``app.cases.queries.page_of_cases`` applies it to a window of the list.
    ``within``: the user's area as a function of a ``Case`` alias (``jurisdiction_clause``), used
    by the 1–2-character test on PostgreSQL (see ``_like_clause``)."""
    terms = search_terms(q)
    if not terms:
        return None
    clauses = []
    for i, term in enumerate(terms):
        if per_row:
            clauses.append(_like_clause(term, "ilike" if dialect == "postgresql" else "like"))
        elif dialect == "sqlite" and len(term) >= 3:
            phrase = '"' + term.replace('"', '""') + '"'
            # only the bind parameter's name is formatted (from the loop index); the term is bound
            match = text(f"SELECT rowid FROM case_search WHERE case_search MATCH :fts_{i}").bindparams(  # nosec B608
                bindparam(f"fts_{i}", phrase)).columns(column("rowid"))
            clauses.append(Case.id.in_(match))
        elif dialect == "postgresql" and len(term) >= 3:
            # One indexed lookup per column (each answers from its pg_trgm GIN index), so a
            # rare term costs a few index probes instead of a scan of the ordered list.
            pattern = _like_pattern(term)
            ids = union(select(Case.id).where(Case.summary.ilike(pattern, escape="\\")),
                        select(Case.id).where(Case.number.ilike(pattern, escape="\\")),
                        select(Party.case_id).where(Party.name.ilike(pattern, escape="\\")))
            clauses.append(Case.id.in_(ids))
        elif dialect == "postgresql" and len(term) == 2:
            # the pair's entries in the bigram GIN indexes, rechecked by ILIKE (lower-cased
            # both sides, as ILIKE compares)
            pattern, pair = _like_pattern(term), cast(array([term.lower()]), ARRAY(Text))
            ids = union(*[select(key).where(func.qy_bigrams(col).op("@>")(pair), col.ilike(pattern, escape="\\"))
                          for key, col in ((Case.id, Case.summary), (Case.id, Case.number),
                                           (Party.case_id, Party.name))])
            clauses.append(Case.id.in_(ids))
        elif dialect == "postgresql":
            clauses.append(_like_clause(term, "ilike", within))
        else:
            clauses.append(_like_clause(term, "like"))
        exact = _exact_party_clause(term)
        if exact is not None:
            clauses[-1] = or_(clauses[-1], exact)
    return and_(*clauses)


ID_TERM_RE = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}")
PHONE_TERM_RE = re.compile(r"\+?[0-9][0-9\-]{5,19}")


def _exact_party_clause(term: str):
    """Cases with a party whose full ID number or phone is ``term``.  Both are encrypted, so only
    a whole number can be found (through its keyed hash, app/crypto.py); a part of one cannot."""
    hashes = []
    if ID_TERM_RE.fullmatch(term):
        hashes.append(Party.id_number_hash == lookup_hash("id", term))
    if PHONE_TERM_RE.fullmatch(term) and len(normalise("phone", term) or "") >= 7:
        hashes.append(Party.phone_hash == lookup_hash("phone", term))
    if not hashes:
        return None
    return Case.id.in_(select(Party.case_id).where(or_(*hashes)))
