"""to-do lists: partial indexes of the agreements awaiting follow-up, the open deadlines and
the unanswered department tasks

The 工作台's to-do queries filtered a county's ten years of cases (a follow-up due among
every closed case, a deadline among every case in mediation) and sorted them: about 0.3 s at
1,000,000 cases.  Each now reads, in the order it shows, a partial index holding only the rows
still to act on (``app.cases.models``: ``FOLLOW_UP_PENDING``, ``DEADLINE_PENDING``).

Revision ID: 5b1f0c2d7e91
Revises: 0342eaf57cb1
Create Date: 2026-12-03 09:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '5b1f0c2d7e91'
down_revision = '0342eaf57cb1'
branch_labels = None
depends_on = None

FOLLOW_UP_PENDING = "follow_up_due_on IS NOT NULL AND (followed_up_on IS NULL OR followed_up_on < closed_on)"
DEADLINE_PENDING = "deadline_on IS NOT NULL AND closed_on IS NULL"


def upgrade() -> None:
    for name, table, columns, where in (
            ("ix_case_follow_up_due", "dispute_case", ["follow_up_due_on", "id"], FOLLOW_UP_PENDING),
            ("ix_case_open_deadline", "dispute_case", ["deadline_on", "id"], DEADLINE_PENDING),
            ("ix_department_task_open_due", "department_task", ["due_on", "id"], "answered_at IS NULL")):
        with op.batch_alter_table(table) as batch:
            batch.create_index(name, columns, unique=False,
                               sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def downgrade() -> None:
    with op.batch_alter_table("department_task") as batch:
        batch.drop_index("ix_department_task_open_due", sqlite_where=sa.text("answered_at IS NULL"),
                         postgresql_where=sa.text("answered_at IS NULL"))
    with op.batch_alter_table("dispute_case") as batch:
        batch.drop_index("ix_case_open_deadline", sqlite_where=sa.text(DEADLINE_PENDING),
                         postgresql_where=sa.text(DEADLINE_PENDING))
        batch.drop_index("ix_case_follow_up_due", sqlite_where=sa.text(FOLLOW_UP_PENDING),
                         postgresql_where=sa.text(FOLLOW_UP_PENDING))
