"""search: bigram GIN indexes for 2-character terms on PostgreSQL

A trigram index has no trigram of a 2-character term (a two-character name, 王伟), so on
PostgreSQL such a search scanned every case of the user's area (about 0.9 s at 1,000,000
cases on a slow 2-core machine).  Each searched column gets a GIN index of its lower-cased
character pairs (``qy_bigrams``); ``app.cases.search`` looks the term's pair up there and
rechecks with ILIKE.  The DDL is written out here (not ``install_search``) so this revision
stays what it was.  SQLite needs nothing: its 1–2-character search reads the base tables.
Building the indexes takes about 45 s per 1,000,000 cases on that machine.

Revision ID: 0342eaf57cb1
Revises: 1ce1d764bd97
Create Date: 2026-12-01 16:50:00
"""
from alembic import op


revision = '0342eaf57cb1'
down_revision = '1ce1d764bd97'
branch_labels = None
depends_on = None

BIGRAMS = """CREATE OR REPLACE FUNCTION qy_bigrams(t text) RETURNS text[] LANGUAGE sql IMMUTABLE
   PARALLEL SAFE STRICT AS $$ SELECT coalesce(array_agg(DISTINCT lower(substr(t, i, 2))), '{}'::text[])
   FROM generate_series(1, char_length(t) - 1) AS i $$"""
INDEXES = {"ix_case_summary_bigram": "dispute_case USING gin (qy_bigrams(summary))",
           "ix_case_number_bigram": "dispute_case USING gin (qy_bigrams(number))",
           "ix_party_name_bigram": "party USING gin (qy_bigrams(name))"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(BIGRAMS)
    for name, target in INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP FUNCTION IF EXISTS qy_bigrams(text)")
