"""trust and scale: login throttling, monthly summaries, encrypted personal data

Besides the schema, ``upgrade`` encrypts the ID numbers and phones already stored in plain text
and fills their lookup hashes (app/crypto.py), so a database that held cases before this
revision is never left half-plain.  The monthly summary starts empty and is built on its first
read (app/reports/summary.py ``refresh_summary``).  ``downgrade`` restores the schema only: the
values stay encrypted (decrypt them with ``flask keys`` tooling before going back, if ever).

Revision ID: aa8c38706a2d
Revises: beb4f87ebb0f
Create Date: 2026-12-01 10:01:41.750166
"""
from alembic import op
import sqlalchemy as sa

from app.cases.search import drop_search, install_search
from app.crypto import encrypt, is_token, lookup_hash


revision = 'aa8c38706a2d'
down_revision = 'beb4f87ebb0f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # batch mode rebuilds ``party``; the FTS triggers that name it would break the rename
        drop_search(bind)
    op.create_table('case_month_summary',
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('ym', sa.Integer(), nullable=False),
    sa.Column('township_id', sa.Integer(), nullable=False),
    sa.Column('county_id', sa.Integer(), nullable=False),
    sa.Column('registered', sa.Integer(), nullable=False),
    sa.Column('accepted', sa.Integer(), nullable=False),
    sa.Column('accepted_resolved', sa.Integer(), nullable=False),
    sa.Column('closed', sa.Integer(), nullable=False),
    sa.Column('resolved', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('village_id', 'ym', 'township_id', 'county_id', name=op.f('pk_case_month_summary'))
    )
    with op.batch_alter_table('case_month_summary', schema=None) as batch_op:
        batch_op.create_index('ix_case_month_summary_county_ym', ['county_id', 'ym'], unique=False)
        batch_op.create_index('ix_case_month_summary_township_ym', ['township_id', 'ym'], unique=False)

    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure'))
    )
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.create_index('ix_login_failure_ip_at', ['ip', 'at'], unique=False)
        batch_op.create_index('ix_login_failure_username_at', ['username', 'at'], unique=False)

    op.create_table('login_lockout',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('locked_at', sa.DateTime(), nullable=False),
    sa.Column('until', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_lockout'))
    )
    with op.batch_alter_table('login_lockout', schema=None) as batch_op:
        batch_op.create_index('ix_login_lockout_kind_key', ['kind', 'key'], unique=False)

    op.create_table('summary_dirty',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('ym', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_summary_dirty'))
    )
    with op.batch_alter_table('case_source', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('dispute_type', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('party', schema=None) as batch_op:
        batch_op.add_column(sa.Column('id_number_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('phone_hash', sa.String(length=64), nullable=True))
        batch_op.alter_column('id_number',
               existing_type=sa.VARCHAR(length=32),
               type_=sa.String(length=255),
               existing_nullable=True)
        batch_op.alter_column('phone',
               existing_type=sa.VARCHAR(length=32),
               type_=sa.String(length=255),
               existing_nullable=True)
        batch_op.drop_index(batch_op.f('ix_party_id_number'))
        batch_op.drop_index(batch_op.f('ix_party_phone'))
        batch_op.create_index(batch_op.f('ix_party_id_number_hash'), ['id_number_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_party_phone_hash'), ['phone_hash'], unique=False)

    with op.batch_alter_table('reception_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_hash', sa.String(length=64), nullable=True))
        batch_op.alter_column('phone',
               existing_type=sa.VARCHAR(length=32),
               type_=sa.String(length=255),
               existing_nullable=True)
        batch_op.create_index(batch_op.f('ix_reception_entry_phone_hash'), ['phone_hash'], unique=False)

    with op.batch_alter_table('risk_factor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('roster_member', schema=None) as batch_op:
        batch_op.alter_column('phone',
               existing_type=sa.VARCHAR(length=32),
               type_=sa.String(length=255),
               existing_nullable=True)

    with op.batch_alter_table('setting', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('totp_enabled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))

    _encrypt_plain_rows()
    install_search(bind)


# (table, encrypted column, its hash column or None, hash kind)
_PLAIN_COLUMNS = (
    ("party", "id_number", "id_number_hash", "id"),
    ("party", "phone", "phone_hash", "phone"),
    ("reception_entry", "phone", "phone_hash", "phone"),
    ("roster_member", "phone", None, None),
)


def _encrypt_plain_rows() -> None:
    bind = op.get_bind()
    for table_name, col, hash_col, kind in _PLAIN_COLUMNS:
        cols = [sa.column("id"), sa.column(col)] + ([sa.column(hash_col)] if hash_col else [])
        table = sa.table(table_name, *cols)
        rows = bind.execute(sa.select(table.c.id, table.c[col]).where(table.c[col].is_not(None))).all()
        params = []
        for row_id, stored in rows:
            if is_token(stored):
                continue
            p = {"pk": row_id, "v": encrypt(stored)}
            if hash_col:
                p["h"] = lookup_hash(kind, stored)
            params.append(p)
        if params:
            values = {col: sa.bindparam("v")}
            if hash_col:
                values[hash_col] = sa.bindparam("h")
            bind.execute(table.update().where(table.c.id == sa.bindparam("pk")).values(values), params)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        drop_search(bind)
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_enabled')
        batch_op.drop_column('totp_secret')

    with op.batch_alter_table('setting', schema=None) as batch_op:
        batch_op.drop_column('version')

    with op.batch_alter_table('roster_member', schema=None) as batch_op:
        batch_op.alter_column('phone',
               existing_type=sa.String(length=255),
               type_=sa.VARCHAR(length=32),
               existing_nullable=True)

    with op.batch_alter_table('risk_factor', schema=None) as batch_op:
        batch_op.drop_column('version')

    with op.batch_alter_table('reception_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reception_entry_phone_hash'))
        batch_op.alter_column('phone',
               existing_type=sa.String(length=255),
               type_=sa.VARCHAR(length=32),
               existing_nullable=True)
        batch_op.drop_column('phone_hash')

    with op.batch_alter_table('party', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_party_phone_hash'))
        batch_op.drop_index(batch_op.f('ix_party_id_number_hash'))
        batch_op.create_index(batch_op.f('ix_party_phone'), ['phone'], unique=False)
        batch_op.create_index(batch_op.f('ix_party_id_number'), ['id_number'], unique=False)
        batch_op.alter_column('phone',
               existing_type=sa.String(length=255),
               type_=sa.VARCHAR(length=32),
               existing_nullable=True)
        batch_op.alter_column('id_number',
               existing_type=sa.String(length=255),
               type_=sa.VARCHAR(length=32),
               existing_nullable=True)
        batch_op.drop_column('phone_hash')
        batch_op.drop_column('id_number_hash')

    with op.batch_alter_table('dispute_type', schema=None) as batch_op:
        batch_op.drop_column('version')

    with op.batch_alter_table('case_source', schema=None) as batch_op:
        batch_op.drop_column('version')

    op.drop_table('summary_dirty')
    with op.batch_alter_table('login_lockout', schema=None) as batch_op:
        batch_op.drop_index('ix_login_lockout_kind_key')

    op.drop_table('login_lockout')
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failure_username_at')
        batch_op.drop_index('ix_login_failure_ip_at')

    op.drop_table('login_failure')
    with op.batch_alter_table('case_month_summary', schema=None) as batch_op:
        batch_op.drop_index('ix_case_month_summary_township_ym')
        batch_op.drop_index('ix_case_month_summary_county_ym')

    op.drop_table('case_month_summary')
    install_search(bind)
