"""the schema fwbot's SQLite migrations 1–11 made, for both engines

The baseline: a SQLite file made before Alembic (``schema_migrations`` at 11) is stamped with this
revision instead of running it (:func:`storage.migrate.upgrade`).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# A change to a history row changes the cost of every later day of that deployment: drop those
# cached rollups and bump the generation a reader compares before caching (storage.costs).
_SQLITE_TRIGGERS = [
    (name, table, when, body)
    for table in ("replica_history", "traffic_history")
    for name, when, body in (
        (f"{table}_insert_rollups", "INSERT", ["NEW"]),
        (f"{table}_update_rollups", "UPDATE", ["OLD", "NEW"]),
        (f"{table}_delete_rollups", "DELETE", ["OLD"]),
    )
]

_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION fwbot_history_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM cost_rollups WHERE deployment_id = OLD.deployment_id AND day_end > OLD.at;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        DELETE FROM cost_rollups WHERE deployment_id = NEW.deployment_id AND day_end > NEW.at;
    END IF;
    UPDATE cost_rollup_state SET gen = gen + 1 WHERE id = 1;
    RETURN NULL;
END
$$"""


def upgrade() -> None:
    op.create_table('approvals',
        sa.Column('id', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('requester', sa.Text(), nullable=False),
        sa.Column('channel', sa.Text(), nullable=False),
        sa.Column('deployment_id', sa.Text(), nullable=True),
        sa.Column('request', sa.Text(), nullable=False),
        sa.Column('usd_per_hour', sa.Float(), nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('decided_by', sa.Text(), nullable=True),
        sa.Column('decided_at', sa.Text(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('executed_at', sa.Text(), nullable=True),
        sa.Column('result', sa.Text(), nullable=True),
        sa.Column('message_channel', sa.Text(), nullable=True),
        sa.Column('message_ts', sa.Text(), nullable=True),
        sa.Column('requester_ts', sa.Text(), nullable=True),
        sa.Column('created_at', sa.Text(), nullable=False),
        sa.Column('expires_at', sa.Text(), nullable=False),
        sa.Column('reminded_at', sa.Text(), nullable=True),
        sa.Column('run_by', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('approvals_status', 'approvals', ['status', 'expires_at'], unique=False)
    op.create_table('audit',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=True),
        sa.Column('at', sa.Text(), nullable=False),
        sa.Column('actor', sa.Text(), nullable=False),
        sa.Column('action', sa.Text(), nullable=False),
        sa.Column('deployment_id', sa.Text(), nullable=True),
        sa.Column('channel', sa.Text(), nullable=True),
        sa.Column('request', sa.Text(), nullable=True),
        sa.Column('result', sa.Text(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True
    )
    op.create_index('audit_deployment', 'audit', ['deployment_id', 'at'], unique=False)
    op.create_table('bot_actions',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=True),
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('deployment_id', sa.Text(), nullable=False),
        sa.Column('due_at', sa.Text(), nullable=False),
        sa.Column('payload', sa.Text(), nullable=True),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('created_at', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.Text(), nullable=False),
        sa.Column('result', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
        sqlite_autoincrement=True
    )
    op.create_index('bot_actions_deployment', 'bot_actions', ['deployment_id', 'kind'], unique=False)
    op.create_index('bot_actions_due', 'bot_actions', ['status', 'due_at'], unique=False)
    op.create_table('budgets',
        sa.Column('channel', sa.Text(), nullable=False),
        sa.Column('usd_per_month', sa.Float(), nullable=False),
        sa.Column('set_by', sa.Text(), nullable=False),
        sa.Column('set_at', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('channel')
    )
    op.create_table('cost_rollup_state',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=False),
        sa.Column('gen', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('id = 1'),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_table('cost_rollups',
        sa.Column('tz', sa.Text(), nullable=False),
        sa.Column('deployment_id', sa.Text(), nullable=False),
        sa.Column('day', sa.Text(), nullable=False),
        sa.Column('day_end', sa.Text(), nullable=False),
        sa.Column('accelerator_type', sa.Text(), nullable=False),
        sa.Column('single_region', sa.Integer(), nullable=False),
        sa.Column('serving_us', sa.BigInteger(), nullable=False),
        sa.Column('idle_us', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('tz', 'day', 'deployment_id', 'accelerator_type', 'single_region'),
        sqlite_with_rowid=False
    )
    op.create_index('cost_rollups_invalidate', 'cost_rollups', ['deployment_id', 'day_end'], unique=False)
    op.create_table('deployment_sightings',
        sa.Column('deployment_id', sa.Text(), nullable=False),
        sa.Column('seen_at', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('deployment_id'),
        sqlite_with_rowid=False
    )
    op.create_table('deployments',
        sa.Column('id', sa.Text(), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('owner', sa.Text(), nullable=True),
        sa.Column('channel', sa.Text(), nullable=True),
        sa.Column('thread_ts', sa.Text(), nullable=True),
        sa.Column('created_by_bot', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('unused_delete_s', sa.Float(), nullable=True),
        sa.Column('state', sa.Text(), nullable=True),
        sa.Column('replicas', sa.Integer(), nullable=True),
        sa.Column('desired_replicas', sa.Integer(), nullable=True),
        sa.Column('min_replicas', sa.Integer(), nullable=True),
        sa.Column('max_replicas', sa.Integer(), nullable=True),
        sa.Column('accelerator_type', sa.Text(), nullable=True),
        sa.Column('accelerator_count', sa.Integer(), nullable=True),
        sa.Column('base_model', sa.Text(), nullable=True),
        sa.Column('display_name', sa.Text(), nullable=True),
        sa.Column('scale_to_zero_s', sa.Float(), nullable=True),
        sa.Column('delete_time', sa.Text(), nullable=True),
        sa.Column('single_region', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('create_time', sa.Text(), nullable=True),
        sa.Column('wire', sa.Text(), nullable=True),
        sa.Column('first_seen_at', sa.Text(), nullable=False),
        sa.Column('last_seen_at', sa.Text(), nullable=True),
        sa.Column('ready_at', sa.Text(), nullable=True),
        sa.Column('ready_announced', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('gone_at', sa.Text(), nullable=True),
        sa.Column('adoption_offered_at', sa.Text(), nullable=True),
        sa.Column('created_at', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.Text(), nullable=False),
        sa.Column('wire_sig', sa.LargeBinary(), nullable=True),
        sa.Column('creator', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('deployments_channel', 'deployments', ['channel'], unique=False)
    op.create_index('deployments_owner', 'deployments', ['owner'], unique=False)
    op.create_table('effects',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=True),
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('next_at', sa.Text(), nullable=False),
        sa.Column('result', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.Text(), nullable=False),
        sa.Column('claimed_by', sa.Text(), nullable=True),
        sa.Column('claimed_until', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
        sqlite_autoincrement=True
    )
    op.create_index('effects_open', 'effects', ['status', 'next_at'], unique=False)
    op.create_table('kv',
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('value', sa.Text(), nullable=True),
        sa.Column('updated_at', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('key')
    )
    op.create_table('leases',
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('holder', sa.Text(), nullable=False),
        sa.Column('token', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.Text(), nullable=False),
        sa.Column('renewed_at', sa.Text(), nullable=False),
        sa.Column('acquired_at', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
        sqlite_with_rowid=False
    )
    op.create_table('replica_history',
        sa.Column('deployment_id', sa.Text(), nullable=False),
        sa.Column('at', sa.Text(), nullable=False),
        sa.Column('replicas', sa.Integer(), nullable=False),
        sa.Column('accelerator_type', sa.Text(), nullable=True),
        sa.Column('accelerator_count', sa.Integer(), nullable=True),
        sa.Column('single_region', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.PrimaryKeyConstraint('deployment_id', 'at')
    )
    op.create_table('request_receipts',
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('seen_at', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
        sqlite_with_rowid=False
    )
    op.create_table('scheduled_posts',
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('channel', sa.Text(), nullable=True),
        sa.Column('ts', sa.Text(), nullable=True),
        sa.Column('claimed_at', sa.Text(), nullable=False),
        sa.Column('posted_at', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('key')
    )
    op.create_table('slack_people',
        sa.Column('user_id', sa.Text(), nullable=False),
        sa.Column('profile', sa.Text(), nullable=False),
        sa.Column('fetched_at', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('user_id'),
        sqlite_with_rowid=False
    )
    op.create_table('sync_pages',
        sa.Column('digest', sa.LargeBinary(), nullable=False),
        sa.Column('next_token', sa.Text(), nullable=True),
        sa.Column('entries', sa.Text(), nullable=False),
        sa.Column('seen_at', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('digest')
    )
    op.create_table('traffic',
        sa.Column('deployment_id', sa.Text(), nullable=False),
        sa.Column('last_traffic_at', sa.Text(), nullable=True),
        sa.Column('serving', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('request_rate', sa.Float(), server_default=sa.text('0'), nullable=False),
        sa.Column('scraped_at', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('deployment_id')
    )
    op.create_table('traffic_history',
        sa.Column('deployment_id', sa.Text(), nullable=False),
        sa.Column('at', sa.Text(), nullable=False),
        sa.Column('serving', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('deployment_id', 'at')
    )
    op.create_table('warnings',
        sa.Column('id', sa.Integer(), nullable=False, autoincrement=True),
        sa.Column('deployment_id', sa.Text(), nullable=False),
        sa.Column('timer', sa.Text(), nullable=False),
        sa.Column('due', sa.Text(), nullable=False),
        sa.Column('lead_s', sa.Float(), server_default=sa.text('0'), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        sa.Column('channel', sa.Text(), nullable=True),
        sa.Column('ts', sa.Text(), nullable=True),
        sa.Column('token', sa.Text(), nullable=False),
        sa.Column('claimed_at', sa.Text(), nullable=False),
        sa.Column('sent_at', sa.Text(), nullable=True),
        sa.Column('resolved_at', sa.Text(), nullable=True),
        sa.Column('resolution', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('deployment_id', 'timer', 'due', 'lead_s'),
        sa.UniqueConstraint('token'),
        sqlite_autoincrement=True
    )
    op.create_index('warnings_message', 'warnings', ['channel', 'ts'], unique=False)
    op.create_index('warnings_open', 'warnings', ['status', 'deployment_id'], unique=False)
    op.create_table('warning_snapshots',
        sa.Column('warning_id', sa.Integer(), nullable=False, autoincrement=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['warning_id'], ['warnings.id'], ),
        sa.PrimaryKeyConstraint('warning_id')
    )
    op.execute("INSERT INTO cost_rollup_state (id, gen) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION)
        for table in ("replica_history", "traffic_history"):
            op.execute(f"CREATE TRIGGER {table}_rollups AFTER INSERT OR UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION fwbot_history_changed()")
    else:
        for name, table, when, rows in _SQLITE_TRIGGERS:
            deletes = "".join(f"DELETE FROM cost_rollups WHERE deployment_id = {r}.deployment_id "
                              f"AND day_end > {r}.at; " for r in rows)
            op.execute(f"CREATE TRIGGER {name} AFTER {when} ON {table} BEGIN {deletes}"
                       "UPDATE cost_rollup_state SET gen = gen + 1 WHERE id = 1; END")


def downgrade() -> None:
    raise NotImplementedError("fwbot's baseline cannot be undone: restore a backup instead")
