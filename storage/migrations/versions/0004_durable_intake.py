"""durable intake: the inbox of acked Slack requests, view submissions

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('mode', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('received_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('lease_until', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('done_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_index('ix_inbox_pending', 'inbox', ['done_at', 'lease_until'], unique=False)
    op.create_table('view_submission',
    sa.Column('view_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('callback_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('received_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('view_id')
    )
    op.create_index(op.f('ix_view_submission_received_at'), 'view_submission', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_view_submission_received_at'), table_name='view_submission')
    op.drop_table('view_submission')
    op.drop_index('ix_inbox_pending', table_name='inbox')
    op.drop_table('inbox')
