"""on-call wiring: page.next_step_at, so the paging sweep reads only the pages that are due

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models


revision: str = '0012'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('page') as batch:
        batch.add_column(sa.Column('next_step_at', storage.models.UTCDateTime(timezone=True), nullable=True))
    op.create_index('ix_page_next_step', 'page', ['next_step_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_page_next_step', table_name='page')
    with op.batch_alter_table('page') as batch:
        batch.drop_column('next_step_at')
