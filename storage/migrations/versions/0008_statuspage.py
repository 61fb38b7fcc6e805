"""status page: public incidents, their components and updates, maintenance windows, a version row

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 05:18:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.models


revision: str = '0008'
# The lead rechains this after another branch's 0007.
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('public_incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('impact', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_update_due', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminded_at', storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_public_incident_created_at', 'public_incident', ['created_at'], unique=False)
    op.create_index('ix_public_incident_incident_id', 'public_incident', ['incident_id'], unique=False)
    op.create_index('ix_public_incident_open', 'public_incident', ['resolved_at', 'created_at'], unique=False)
    op.create_index('ix_public_incident_due', 'public_incident', ['next_update_due', 'reminded_at'], unique=False)

    op.create_table('public_incident_component',
    sa.Column('public_incident_id', sa.Integer(), nullable=False),
    sa.Column('component', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['public_incident_id'], ['public_incident.id'], ),
    sa.PrimaryKeyConstraint('public_incident_id', 'component')
    )
    op.create_index(
        'ix_public_incident_component_component', 'public_incident_component', ['component'], unique=False
    )

    op.create_table('public_update',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_incident_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('impact', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('author_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.ForeignKeyConstraint(['public_incident_id'], ['public_incident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_public_update_created_at', 'public_update', ['created_at'], unique=False)
    op.create_index(
        'ix_public_update_incident_time', 'public_update', ['public_incident_id', 'created_at'], unique=False
    )

    op.create_table('maintenance_window',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('components', sa.JSON(), nullable=False),
    sa.Column('starts_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('created_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_maintenance_window_time', 'maintenance_window', ['starts_at', 'ends_at'], unique=False)

    op.create_table('status_page_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('changed_at', storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('status_page_version')
    op.drop_index('ix_maintenance_window_time', table_name='maintenance_window')
    op.drop_table('maintenance_window')
    op.drop_index('ix_public_update_incident_time', table_name='public_update')
    op.drop_index('ix_public_update_created_at', table_name='public_update')
    op.drop_table('public_update')
    op.drop_index('ix_public_incident_component_component', table_name='public_incident_component')
    op.drop_table('public_incident_component')
    op.drop_index('ix_public_incident_due', table_name='public_incident')
    op.drop_index('ix_public_incident_open', table_name='public_incident')
    op.drop_index('ix_public_incident_incident_id', table_name='public_incident')
    op.drop_index('ix_public_incident_created_at', table_name='public_incident')
    op.drop_table('public_incident')
