"""figure summary: the cases of each row by status (the 工作台's counts)

The 工作台 shows a person's cases by status.  For a county that counted ten years of cases
on every request after a write (158 ms at 1,000,000 cases on PostgreSQL); summed from the
summary's ~70,000 rows of the county it is ~10 ms.  The new columns are not known for the
rows already there, so the rows are dropped: the summary is rebuilt whole by the first
request or case write that finds cases but no summary (readers count live until then), or at
release time by ``flask report rebuild-summary``.

Revision ID: b3e7f1a9c5d2
Revises: 9d4f2b6e8a13
Create Date: 2026-12-03 18:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'b3e7f1a9c5d2'
down_revision = '9d4f2b6e8a13'
branch_labels = None
depends_on = None

STATUSES = ("pending_triage", "in_mediation", "escalated", "transferred", "closed", "archived", "declined")


def upgrade() -> None:
    op.execute("DELETE FROM case_figure_summary")
    op.execute("DELETE FROM summary_dirty")
    with op.batch_alter_table('case_figure_summary', schema=None) as batch_op:
        for status in STATUSES:
            batch_op.add_column(sa.Column(f'status_{status}', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('case_figure_summary', schema=None) as batch_op:
        for status in STATUSES:
            batch_op.drop_column(f'status_{status}')
