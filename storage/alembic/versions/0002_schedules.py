"""per-deployment off-hours schedules (``/fw schedule``)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('schedules',
        sa.Column('deployment_id', sa.Text(), nullable=False),
        sa.Column('down', sa.Text(), nullable=False),
        sa.Column('up', sa.Text(), nullable=True),
        sa.Column('up_min', sa.Integer(), server_default=sa.text('1'), nullable=False),
        sa.Column('set_by', sa.Text(), nullable=False),
        sa.Column('set_at', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('deployment_id')
    )


def downgrade() -> None:
    op.drop_table('schedules')
