"""reopen impact intervals, nudge spells, retention

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reopen',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('resolved_before', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reopened_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reopened_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('mitigated_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'seq', name='uq_reopen_seq')
    )
    with op.batch_alter_table('incident') as batch_op:
        batch_op.add_column(sa.Column('alert_group', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    # Incidents declared before this revision: the open ones still hold their group; resolved
    # ones are found through the notifications that were linked to them.
    op.execute("UPDATE incident SET alert_group = alert_group_open WHERE alert_group_open IS NOT NULL")
    op.execute(
        "UPDATE incident SET alert_group = (SELECT MIN(n.group_key) FROM alert_notification n"
        " WHERE n.incident_id = incident.id) WHERE alert_group IS NULL AND source = 'alertmanager'"
    )


def downgrade() -> None:
    with op.batch_alter_table('incident') as batch_op:
        batch_op.drop_column('alert_group')
    op.drop_table('reopen')
