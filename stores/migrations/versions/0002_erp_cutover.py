"""The ERP cut-over's tables: which entity's books moved to which ERP, and every record a cut-over copied
(``stores/cutover.py``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('erp_entity_switch',
    sa.Column('entity', sa.String(), nullable=False),
    sa.Column('cutover_id', sa.String(), nullable=False),
    sa.Column('from_adapter', sa.String(), nullable=False),
    sa.Column('from_tenant', sa.String(), nullable=False),
    sa.Column('to_adapter', sa.String(), nullable=False),
    sa.Column('to_tenant', sa.String(), nullable=False),
    sa.Column('switched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('entity')
    )
    op.create_index(op.f('ix_erp_entity_switch_from_tenant'), 'erp_entity_switch', ['from_tenant'], unique=False)
    op.create_table('erp_moved_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cutover_id', sa.String(), nullable=False),
    sa.Column('entity', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('old_id', sa.String(), nullable=False),
    sa.Column('new_id', sa.String(), nullable=False),
    sa.Column('to_tenant', sa.String(), nullable=False),
    sa.Column('reference', sa.String(), nullable=False),
    sa.Column('amount', sa.String(), nullable=False),
    sa.Column('currency', sa.String(), nullable=False),
    sa.Column('moved_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('cutover_id', 'kind', 'old_id', name='uq_erp_moved_record')
    )
    op.create_index(op.f('ix_erp_moved_record_cutover_id'), 'erp_moved_record', ['cutover_id'], unique=False)
    op.create_index(op.f('ix_erp_moved_record_old_id'), 'erp_moved_record', ['old_id'], unique=False)
    op.create_index(op.f('ix_erp_moved_record_to_tenant'), 'erp_moved_record', ['to_tenant'], unique=False)


def downgrade() -> None:
    op.drop_table('erp_moved_record')
    op.drop_table('erp_entity_switch')
