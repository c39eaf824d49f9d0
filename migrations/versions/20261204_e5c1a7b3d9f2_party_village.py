"""party: the case's village on each party row (同村同名 in one index range)

The case page names the other cases with a party of the same name in the same village.  With
the village only on the case, PostgreSQL read every party of the name in the county and probed
the case index for each one's village: a common name has a few hundred parties at 1,000,000
cases, 1.3 ms of the ~3 ms the database spent on a case page.  The village on the party row,
indexed after the name, answers it with one index range.

The copy cannot drift: ``party (village_id, case_id)`` references ``dispute_case (village_id,
id)`` ON UPDATE CASCADE (a case moved to another village, by the ledger re-import say, moves its
parties with it; a party row naming another village than its case's is refused).  The parent
side needs a unique index on those two columns: ``ix_case_village_id`` (village, id) already
existed and is unique anyway (id is the key), so it becomes a unique index; no index is added.

Upgrading fills the column from the cases in one UPDATE, which rewrites every party row and
its indexes (the search's GIN indexes among them) and holds the table's lock meanwhile: measured
at 1,000,000 cases (2,000,000 parties) on PostgreSQL on a 2-core machine, 266 s; a county's ten
years (~500,000 cases) take about half that.  Run it in the release's maintenance window.  On
SQLite ``party`` is rebuilt (batch mode): the triggers that name it (the search index's) are
kept aside and put back as they were.

Revision ID: e5c1a7b3d9f2
Revises: c4a8d2e6f0b1
Create Date: 2026-12-04 18:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'e5c1a7b3d9f2'
down_revision = 'c4a8d2e6f0b1'
branch_labels = None
depends_on = None


def _set_party_triggers_aside(bind) -> list[str]:
    """SQLite: drop the triggers that name ``party`` (a rebuilt table's rename fails on them);
    their DDL, to put them back as they were."""
    if bind.dialect.name != "sqlite":
        return []
    rows = bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                "AND (tbl_name = 'party' OR sql LIKE '%party%')").all()
    for name, _ in rows:
        bind.exec_driver_sql(f'DROP TRIGGER "{name}"')
    return [sql for _, sql in rows]


def _put_back(bind, triggers: list[str]) -> None:
    for ddl in triggers:
        bind.exec_driver_sql(ddl)


def upgrade() -> None:
    bind = op.get_bind()
    triggers = _set_party_triggers_aside(bind)
    op.drop_index('ix_case_village_id', table_name='dispute_case')
    op.create_index('ix_case_village_id', 'dispute_case', ['village_id', 'id'], unique=True)
    op.add_column('party', sa.Column('village_id', sa.Integer(), nullable=True))
    op.execute("UPDATE party SET village_id = (SELECT dispute_case.village_id FROM dispute_case "
               "WHERE dispute_case.id = party.case_id)")
    with op.batch_alter_table('party', schema=None) as batch_op:
        batch_op.alter_column('village_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index('ix_party_name')
        batch_op.create_index('ix_party_name', ['name', 'kind', 'village_id', 'case_id'], unique=False)
        batch_op.create_foreign_key('fk_party_village_id_dispute_case', 'dispute_case',
                                    ['village_id', 'case_id'], ['village_id', 'id'],
                                    ondelete='CASCADE', onupdate='CASCADE')
    _put_back(bind, triggers)


def downgrade() -> None:
    bind = op.get_bind()
    triggers = _set_party_triggers_aside(bind)
    with op.batch_alter_table('party', schema=None) as batch_op:
        batch_op.drop_constraint('fk_party_village_id_dispute_case', type_='foreignkey')
        batch_op.drop_index('ix_party_name')
        batch_op.create_index('ix_party_name', ['name', 'kind', 'case_id'], unique=False)
        batch_op.drop_column('village_id')
    op.drop_index('ix_case_village_id', table_name='dispute_case')
    op.create_index('ix_case_village_id', 'dispute_case', ['village_id', 'id'], unique=False)
    _put_back(bind, triggers)
