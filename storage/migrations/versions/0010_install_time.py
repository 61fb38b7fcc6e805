"""installation: when the database was created

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:00:00

A fresh database gets the time of its creation. A database that existed before this revision gets
the time the bot first claimed a digest in it (it was installed at least that long ago), or, if it
never did, the time of this upgrade: such an install catches up only on digests scheduled after it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('installation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute(
        "INSERT INTO installation (id, created_at) "
        "SELECT 1, COALESCE((SELECT MIN(claimed_at) FROM digest_run), CURRENT_TIMESTAMP)"
    )


def downgrade() -> None:
    op.drop_table('installation')
