"""outbox: per-incident order, fencing, dead letters

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The rows still waiting to go (neither delivered nor set aside as dead letters).
WAITING = "delivered_at IS NULL AND dead_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.add_column(sa.Column('dead_at', storage.models.UTCDateTime(timezone=True), nullable=True))
    # Per-incident order: "is an earlier row of this incident still waiting?" for every candidate.
    op.create_index(
        'ix_outbox_incident_waiting',
        'outbox',
        ['incident_id', 'id'],
        postgresql_where=sa.text(WAITING),
        sqlite_where=sa.text(WAITING),
    )


def downgrade() -> None:
    op.drop_index('ix_outbox_incident_waiting', table_name='outbox')
    with op.batch_alter_table('outbox') as batch_op:
        batch_op.drop_column('dead_at')
