"""renewals of a deployment's maximum lifetime (the *Renew* button)

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lifetime_renewals',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=True),
        sa.Column('deployment_id', sa.Text(), nullable=False),
        sa.Column('renewed_by', sa.Text(), nullable=False),
        sa.Column('renewed_at', sa.Text(), nullable=False),
        sa.Column('limit_s', sa.Float(), nullable=False),
        sa.Column('due_at', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True
    )
    op.create_index('lifetime_renewals_deployment', 'lifetime_renewals', ['deployment_id', 'renewed_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('lifetime_renewals_deployment', table_name='lifetime_renewals')
    op.drop_table('lifetime_renewals')
