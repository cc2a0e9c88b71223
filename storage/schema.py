"""fwbot"s tables as SQLAlchemy Core knows them: what the migrations (:mod:`storage.alembic`) build,
on SQLite and PostgreSQL alike.

``tests/storage/test_migrations.py`` checks that a migrated database and this module agree, so a
change to one without the other fails there; ``fwbot db revision`` drafts the migration from the
difference. Times are RFC3339 UTC text (``bot.core.clock.iso``), compared as text on both engines;
flags are integers 0/1; JSON is text.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Index, MetaData, Table

metadata = MetaData()

approvals = Table("approvals", metadata,
    sa.Column("id", sa.Text(), nullable=False),
    sa.Column("kind", sa.Text(), nullable=False),
    sa.Column("requester", sa.Text(), nullable=False),
    sa.Column("channel", sa.Text(), nullable=False),
    sa.Column("deployment_id", sa.Text(), nullable=True),
    sa.Column("request", sa.Text(), nullable=False),
    sa.Column("usd_per_hour", sa.Float(), nullable=True),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("decided_by", sa.Text(), nullable=True),
    sa.Column("decided_at", sa.Text(), nullable=True),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("executed_at", sa.Text(), nullable=True),
    sa.Column("result", sa.Text(), nullable=True),
    sa.Column("message_channel", sa.Text(), nullable=True),
    sa.Column("message_ts", sa.Text(), nullable=True),
    sa.Column("requester_ts", sa.Text(), nullable=True),
    sa.Column("created_at", sa.Text(), nullable=False),
    sa.Column("expires_at", sa.Text(), nullable=False),
    sa.Column("reminded_at", sa.Text(), nullable=True),
    sa.Column("run_by", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id")
)
Index("approvals_status", approvals.c.status, approvals.c.expires_at)
audit = Table("audit", metadata,
    sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
    sa.Column("at", sa.Text(), nullable=False),
    sa.Column("actor", sa.Text(), nullable=False),
    sa.Column("action", sa.Text(), nullable=False),
    sa.Column("deployment_id", sa.Text(), nullable=True),
    sa.Column("channel", sa.Text(), nullable=True),
    sa.Column("request", sa.Text(), nullable=True),
    sa.Column("result", sa.Text(), nullable=False),
    sa.Column("detail", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sqlite_autoincrement=True
)
Index("audit_deployment", audit.c.deployment_id, audit.c.at)
bot_actions = Table("bot_actions", metadata,
    sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
    sa.Column("key", sa.Text(), nullable=False),
    sa.Column("kind", sa.Text(), nullable=False),
    sa.Column("deployment_id", sa.Text(), nullable=False),
    sa.Column("due_at", sa.Text(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=True),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
    sa.Column("created_at", sa.Text(), nullable=False),
    sa.Column("updated_at", sa.Text(), nullable=False),
    sa.Column("result", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("key"),
    sqlite_autoincrement=True
)
Index("bot_actions_deployment", bot_actions.c.deployment_id, bot_actions.c.kind)
Index("bot_actions_due", bot_actions.c.status, bot_actions.c.due_at)
budgets = Table("budgets", metadata,
    sa.Column("channel", sa.Text(), nullable=False),
    sa.Column("usd_per_month", sa.Float(), nullable=False),
    sa.Column("set_by", sa.Text(), nullable=False),
    sa.Column("set_at", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("channel")
)
cost_rollup_state = Table("cost_rollup_state", metadata,
    sa.Column("id", sa.Integer(), nullable=False, autoincrement=False),
    sa.Column("gen", sa.BigInteger(), nullable=False),
    sa.CheckConstraint("id = 1"),
    sa.PrimaryKeyConstraint("id")
)
cost_rollups = Table("cost_rollups", metadata,
    sa.Column("tz", sa.Text(), nullable=False),
    sa.Column("deployment_id", sa.Text(), nullable=False),
    sa.Column("day", sa.Text(), nullable=False),
    sa.Column("day_end", sa.Text(), nullable=False),
    sa.Column("accelerator_type", sa.Text(), nullable=False),
    sa.Column("single_region", sa.Integer(), nullable=False),
    sa.Column("serving_us", sa.BigInteger(), nullable=False),
    sa.Column("idle_us", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("tz", "day", "deployment_id", "accelerator_type", "single_region"),
    sqlite_with_rowid=False
)
Index("cost_rollups_invalidate", cost_rollups.c.deployment_id, cost_rollups.c.day_end)
deployment_sightings = Table("deployment_sightings", metadata,
    sa.Column("deployment_id", sa.Text(), nullable=False),
    sa.Column("seen_at", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("deployment_id"),
    sqlite_with_rowid=False
)
deployments = Table("deployments", metadata,
    sa.Column("id", sa.Text(), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("owner", sa.Text(), nullable=True),
    sa.Column("channel", sa.Text(), nullable=True),
    sa.Column("thread_ts", sa.Text(), nullable=True),
    sa.Column("created_by_bot", sa.Integer(), server_default=sa.text("0"), nullable=False),
    sa.Column("unused_delete_s", sa.Float(), nullable=True),
    sa.Column("state", sa.Text(), nullable=True),
    sa.Column("replicas", sa.Integer(), nullable=True),
    sa.Column("desired_replicas", sa.Integer(), nullable=True),
    sa.Column("min_replicas", sa.Integer(), nullable=True),
    sa.Column("max_replicas", sa.Integer(), nullable=True),
    sa.Column("accelerator_type", sa.Text(), nullable=True),
    sa.Column("accelerator_count", sa.Integer(), nullable=True),
    sa.Column("base_model", sa.Text(), nullable=True),
    sa.Column("display_name", sa.Text(), nullable=True),
    sa.Column("scale_to_zero_s", sa.Float(), nullable=True),
    sa.Column("delete_time", sa.Text(), nullable=True),
    sa.Column("single_region", sa.Integer(), server_default=sa.text("0"), nullable=False),
    sa.Column("create_time", sa.Text(), nullable=True),
    sa.Column("wire", sa.Text(), nullable=True),
    sa.Column("first_seen_at", sa.Text(), nullable=False),
    sa.Column("last_seen_at", sa.Text(), nullable=True),
    sa.Column("ready_at", sa.Text(), nullable=True),
    sa.Column("ready_announced", sa.Integer(), server_default=sa.text("0"), nullable=False),
    sa.Column("gone_at", sa.Text(), nullable=True),
    sa.Column("adoption_offered_at", sa.Text(), nullable=True),
    sa.Column("created_at", sa.Text(), nullable=False),
    sa.Column("updated_at", sa.Text(), nullable=False),
    sa.Column("wire_sig", sa.LargeBinary(), nullable=True),
    sa.Column("creator", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id")
)
Index("deployments_channel", deployments.c.channel)
Index("deployments_owner", deployments.c.owner)
effects = Table("effects", metadata,
    sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
    sa.Column("key", sa.Text(), nullable=False),
    sa.Column("kind", sa.Text(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
    sa.Column("next_at", sa.Text(), nullable=False),
    sa.Column("result", sa.Text(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("created_at", sa.Text(), nullable=False),
    sa.Column("updated_at", sa.Text(), nullable=False),
    sa.Column("claimed_by", sa.Text(), nullable=True),
    sa.Column("claimed_until", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("key"),
    sqlite_autoincrement=True
)
Index("effects_open", effects.c.status, effects.c.next_at)
lifetime_renewals = Table("lifetime_renewals", metadata,
    sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
    sa.Column("deployment_id", sa.Text(), nullable=False),
    sa.Column("renewed_by", sa.Text(), nullable=False),
    sa.Column("renewed_at", sa.Text(), nullable=False),
    sa.Column("limit_s", sa.Float(), nullable=False),
    sa.Column("due_at", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sqlite_autoincrement=True
)
Index("lifetime_renewals_deployment", lifetime_renewals.c.deployment_id, lifetime_renewals.c.renewed_at)

kv = Table("kv", metadata,
    sa.Column("key", sa.Text(), nullable=False),
    sa.Column("value", sa.Text(), nullable=True),
    sa.Column("updated_at", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("key")
)
leases = Table("leases", metadata,
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("holder", sa.Text(), nullable=False),
    sa.Column("token", sa.Integer(), nullable=False),
    sa.Column("expires_at", sa.Text(), nullable=False),
    sa.Column("renewed_at", sa.Text(), nullable=False),
    sa.Column("acquired_at", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("name"),
    sqlite_with_rowid=False
)
replica_history = Table("replica_history", metadata,
    sa.Column("deployment_id", sa.Text(), nullable=False),
    sa.Column("at", sa.Text(), nullable=False),
    sa.Column("replicas", sa.Integer(), nullable=False),
    sa.Column("accelerator_type", sa.Text(), nullable=True),
    sa.Column("accelerator_count", sa.Integer(), nullable=True),
    sa.Column("single_region", sa.Integer(), server_default=sa.text("0"), nullable=False),
    sa.PrimaryKeyConstraint("deployment_id", "at")
)
request_receipts = Table("request_receipts", metadata,
    sa.Column("key", sa.Text(), nullable=False),
    sa.Column("seen_at", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("key"),
    sqlite_with_rowid=False
)
schedules = Table("schedules", metadata,
    sa.Column("deployment_id", sa.Text(), nullable=False),
    sa.Column("down", sa.Text(), nullable=False),
    sa.Column("up", sa.Text(), nullable=True),
    sa.Column("up_min", sa.Integer(), server_default=sa.text("1"), nullable=False),
    sa.Column("set_by", sa.Text(), nullable=False),
    sa.Column("set_at", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("deployment_id")
)
scheduled_posts = Table("scheduled_posts", metadata,
    sa.Column("key", sa.Text(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("channel", sa.Text(), nullable=True),
    sa.Column("ts", sa.Text(), nullable=True),
    sa.Column("claimed_at", sa.Text(), nullable=False),
    sa.Column("posted_at", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("key")
)
slack_people = Table("slack_people", metadata,
    sa.Column("user_id", sa.Text(), nullable=False),
    sa.Column("profile", sa.Text(), nullable=False),
    sa.Column("fetched_at", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("user_id"),
    sqlite_with_rowid=False
)
sync_pages = Table("sync_pages", metadata,
    sa.Column("digest", sa.LargeBinary(), nullable=False),
    sa.Column("next_token", sa.Text(), nullable=True),
    sa.Column("entries", sa.Text(), nullable=False),
    sa.Column("seen_at", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("digest")
)
traffic = Table("traffic", metadata,
    sa.Column("deployment_id", sa.Text(), nullable=False),
    sa.Column("last_traffic_at", sa.Text(), nullable=True),
    sa.Column("serving", sa.Integer(), server_default=sa.text("0"), nullable=False),
    sa.Column("request_rate", sa.Float(), server_default=sa.text("0"), nullable=False),
    sa.Column("scraped_at", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("deployment_id")
)
traffic_history = Table("traffic_history", metadata,
    sa.Column("deployment_id", sa.Text(), nullable=False),
    sa.Column("at", sa.Text(), nullable=False),
    sa.Column("serving", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("deployment_id", "at")
)
warnings = Table("warnings", metadata,
    sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
    sa.Column("deployment_id", sa.Text(), nullable=False),
    sa.Column("timer", sa.Text(), nullable=False),
    sa.Column("due", sa.Text(), nullable=False),
    sa.Column("lead_s", sa.Float(), server_default=sa.text("0"), nullable=False),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("channel", sa.Text(), nullable=True),
    sa.Column("ts", sa.Text(), nullable=True),
    sa.Column("token", sa.Text(), nullable=False),
    sa.Column("claimed_at", sa.Text(), nullable=False),
    sa.Column("sent_at", sa.Text(), nullable=True),
    sa.Column("resolved_at", sa.Text(), nullable=True),
    sa.Column("resolution", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("deployment_id", "timer", "due", "lead_s"),
    sa.UniqueConstraint("token"),
    sqlite_autoincrement=True
)
Index("warnings_message", warnings.c.channel, warnings.c.ts)
Index("warnings_open", warnings.c.status, warnings.c.deployment_id)
warning_snapshots = Table("warning_snapshots", metadata,
    sa.Column("warning_id", sa.Integer(), nullable=False, autoincrement=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(["warning_id"], ["warnings.id"], ),
    sa.PrimaryKeyConstraint("warning_id")
)
