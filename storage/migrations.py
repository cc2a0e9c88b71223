"""Numbered, re-runnable schema migrations.

Each migration is a list of SQL statements that are safe to run again (``IF NOT EXISTS``), applied
in order inside one transaction and recorded in ``schema_migrations``. Never edit a released
migration: add the next number.
"""

from __future__ import annotations


def _rollup_trigger(table: str, event: str) -> str:
    """The trigger that drops the cost rollups a change to one history row affects: every day of
    that deployment ending after the row's time (the old and the new row's, for an update), and
    bumps the generation readers compare before caching."""
    rows = {"INSERT": ("NEW",), "UPDATE": ("OLD", "NEW"), "DELETE": ("OLD",)}[event]
    deletes = "".join(f"""
                   DELETE FROM cost_rollups WHERE deployment_id = {r}.deployment_id AND day_end > {r}.at;"""
                      for r in rows)
    return f"""CREATE TRIGGER IF NOT EXISTS {table}_{event.lower()}_rollups AFTER {event} ON {table} BEGIN{deletes}
                   UPDATE cost_rollup_state SET gen = gen + 1 WHERE id = 1;
               END"""


MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "deployments, audit trail, replica and traffic history",
        [
            """CREATE TABLE IF NOT EXISTS deployments (
                id TEXT PRIMARY KEY,              -- deployment id (last path segment)
                name TEXT NOT NULL,               -- accounts/{a}/deployments/{id}
                owner TEXT,                       -- Slack user id, NULL = unowned
                channel TEXT,                     -- Slack channel that tracks it
                thread_ts TEXT,                   -- the message whose thread holds its lifecycle
                created_by_bot INTEGER NOT NULL DEFAULT 0,
                unused_delete_s REAL,             -- bot policy; NULL = default 168h; 0 = never
                state TEXT,
                replicas INTEGER,
                desired_replicas INTEGER,
                min_replicas INTEGER,
                max_replicas INTEGER,
                accelerator_type TEXT,
                accelerator_count INTEGER,
                base_model TEXT,
                display_name TEXT,
                scale_to_zero_s REAL,
                delete_time TEXT,
                single_region INTEGER NOT NULL DEFAULT 0,
                create_time TEXT,
                wire TEXT,                        -- last seen API object (JSON)
                first_seen_at TEXT NOT NULL,
                last_seen_at TEXT,
                ready_at TEXT,
                ready_announced INTEGER NOT NULL DEFAULT 0,
                gone_at TEXT,                     -- vanished from the API (deleted outside the bot)
                adoption_offered_at TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS deployments_owner ON deployments(owner)",
            "CREATE INDEX IF NOT EXISTS deployments_channel ON deployments(channel)",
            """CREATE TABLE IF NOT EXISTS audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at TEXT NOT NULL,
                actor TEXT NOT NULL,              -- Slack user id, or 'fwbot' for its own actions
                action TEXT NOT NULL,
                deployment_id TEXT,
                channel TEXT,
                request TEXT,                     -- JSON of what was asked
                result TEXT NOT NULL,             -- ok | error | refused | dry-run | pending
                detail TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS audit_deployment ON audit(deployment_id, at)",
            """CREATE TABLE IF NOT EXISTS replica_history (
                deployment_id TEXT NOT NULL,
                at TEXT NOT NULL,
                replicas INTEGER NOT NULL,
                accelerator_type TEXT,
                accelerator_count INTEGER,
                single_region INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (deployment_id, at)
            )""",
            """CREATE TABLE IF NOT EXISTS traffic (
                deployment_id TEXT PRIMARY KEY,
                last_traffic_at TEXT,             -- last time the metrics showed requests
                serving INTEGER NOT NULL DEFAULT 0,
                request_rate REAL NOT NULL DEFAULT 0,
                scraped_at TEXT
            )""",
            """CREATE TABLE IF NOT EXISTS traffic_history (
                deployment_id TEXT NOT NULL,
                at TEXT NOT NULL,
                serving INTEGER NOT NULL,         -- 1 = requests seen, 0 = idle
                PRIMARY KEY (deployment_id, at)
            )""",
            """CREATE TABLE IF NOT EXISTS kv (
                key TEXT PRIMARY KEY,
                value TEXT,
                updated_at TEXT NOT NULL
            )""",
        ],
    ),
    (
        2,
        "warnings, the bot's own scheduled actions, approvals, budgets, scheduled posts",
        [
            """CREATE TABLE IF NOT EXISTS warnings (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                deployment_id TEXT NOT NULL,
                timer TEXT NOT NULL,              -- scale_to_zero | auto_delete | idle_paying
                due TEXT NOT NULL,                -- due time the warning is about
                lead_s REAL NOT NULL DEFAULT 0,   -- which lead time (auto-delete has several)
                status TEXT NOT NULL,             -- claimed | sent | resolved | stale
                channel TEXT,
                ts TEXT,
                token TEXT NOT NULL UNIQUE,       -- opaque id carried by the buttons
                claimed_at TEXT NOT NULL,
                sent_at TEXT,
                resolved_at TEXT,
                resolution TEXT,
                UNIQUE (deployment_id, timer, due, lead_s)
            )""",
            """CREATE TABLE IF NOT EXISTS bot_actions (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                key TEXT NOT NULL UNIQUE,         -- idempotency key
                kind TEXT NOT NULL,               -- keep_warm_revert | auto_delete | snooze
                deployment_id TEXT NOT NULL,
                due_at TEXT NOT NULL,
                payload TEXT,
                status TEXT NOT NULL,             -- scheduled | running | done | cancelled | failed
                attempts INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                result TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS bot_actions_due ON bot_actions(status, due_at)",
            """CREATE TABLE IF NOT EXISTS approvals (
                id TEXT PRIMARY KEY,              -- opaque token bound to the buttons
                kind TEXT NOT NULL,               -- deploy | update | scale | delete
                requester TEXT NOT NULL,
                channel TEXT NOT NULL,            -- where it was asked
                deployment_id TEXT,
                request TEXT NOT NULL,            -- JSON of the operation
                usd_per_hour REAL,
                status TEXT NOT NULL,             -- pending | approved | rejected | expired | cancelled
                decided_by TEXT,
                decided_at TEXT,
                reason TEXT,
                executed_at TEXT,
                result TEXT,
                message_channel TEXT,
                message_ts TEXT,
                requester_ts TEXT,
                created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL,
                reminded_at TEXT
            )""",
            "CREATE INDEX IF NOT EXISTS approvals_status ON approvals(status, expires_at)",
            """CREATE TABLE IF NOT EXISTS budgets (
                channel TEXT PRIMARY KEY,
                usd_per_month REAL NOT NULL,
                set_by TEXT NOT NULL,
                set_at TEXT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS scheduled_posts (
                key TEXT PRIMARY KEY,             -- e.g. summary:C123:2026-W47
                status TEXT NOT NULL,             -- claimed | posted
                channel TEXT,
                ts TEXT,
                claimed_at TEXT NOT NULL,
                posted_at TEXT
            )""",
        ],
    ),
    (
        3,
        "lifecycle: what each warning said, so a re-post or an edit can render it again",
        [
            """CREATE TABLE IF NOT EXISTS warning_snapshots (
                warning_id INTEGER PRIMARY KEY REFERENCES warnings(id) ON DELETE CASCADE,
                body TEXT NOT NULL                -- JSON: the timer and lead as decided
            )""",
            "CREATE INDEX IF NOT EXISTS warnings_message ON warnings(channel, ts)",
            "CREATE INDEX IF NOT EXISTS warnings_open ON warnings(status, deployment_id)",
            "CREATE INDEX IF NOT EXISTS bot_actions_deployment ON bot_actions(deployment_id, kind)",
        ],
    ),
    (
        4,
        "cost rollups: GPU time per deployment per closed local day",
        [
            # GPU-microseconds of one deployment over one whole local day (in the timezone
            # ``tz``) that has ended, per accelerator type and placement, split into serving and
            # idle; dollars are never cached (prices change). A day with no GPU time is one
            # marker row with both 0, so "computed, nothing ran" differs from "not computed".
            # Clustered by (tz, day) so a window is one range read.
            """CREATE TABLE IF NOT EXISTS cost_rollups (
                tz TEXT NOT NULL,                 -- IANA name, e.g. UTC or America/New_York
                deployment_id TEXT NOT NULL,
                day TEXT NOT NULL,                -- local date YYYY-MM-DD
                day_end TEXT NOT NULL,            -- iso UTC of the next local midnight
                accelerator_type TEXT NOT NULL,   -- '' = unknown
                single_region INTEGER NOT NULL,
                serving_us INTEGER NOT NULL,      -- GPU-microseconds with requests seen
                idle_us INTEGER NOT NULL,         -- GPU-microseconds without
                PRIMARY KEY (tz, day, deployment_id, accelerator_type, single_region)
            ) WITHOUT ROWID""",
            "CREATE INDEX IF NOT EXISTS cost_rollups_invalidate ON cost_rollups(deployment_id, day_end)",
            # Bumped by every change to the history: a reader caches what it computed only if
            # nothing changed between its read and its write.
            """CREATE TABLE IF NOT EXISTS cost_rollup_state (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                gen INTEGER NOT NULL
            )""",
            "INSERT OR IGNORE INTO cost_rollup_state (id, gen) VALUES (1, 0)",
            # A change point at time t sets the state every later day opens with, so it changes
            # every day ending after t and nothing before; these keep every writer correct.
            *(_rollup_trigger(table, event) for table in ("replica_history", "traffic_history")
              for event in ("INSERT", "UPDATE", "DELETE")),
        ],
    ),
    (
        5,
        "sync: a signature of each mirrored API object, sightings in a narrow table, the listing pages read",
        [
            # blake2b of the object as ``marshal`` writes it (version 2: no back-references, so
            # equal objects always give equal bytes). NULL until the next mirror writes it.
            "ALTER TABLE deployments ADD COLUMN wire_sig BLOB",
            # When a sync last saw each deployment unchanged. Kept out of ``deployments`` (whose
            # rows carry the API object): bumping a column there rewrote every wide row on every
            # pass. A deployment was last seen at the later of this and its ``last_seen_at``.
            """CREATE TABLE IF NOT EXISTS deployment_sightings (
                deployment_id TEXT PRIMARY KEY,
                seen_at TEXT NOT NULL
            ) WITHOUT ROWID""",
            # The listing pages a sync read, by a digest of their bytes: a page that comes back
            # byte for byte needs no decoding when its deployments are still stored as it showed
            # them (``entries``: JSON of each one's compared columns).
            """CREATE TABLE IF NOT EXISTS sync_pages (
                digest BLOB PRIMARY KEY,
                next_token TEXT,
                entries TEXT NOT NULL,
                seen_at TEXT NOT NULL
            )""",
        ],
    ),
    (
        6,
        "people: what Slack said of each owner, kept across restarts",
        [
            # Only what fwbot reads (name, timezone, deactivated, bot), from users.info or a
            # user_change event; a restarted bot does not ask Slack about every owner again.
            """CREATE TABLE IF NOT EXISTS slack_people (
                user_id TEXT PRIMARY KEY,
                profile TEXT NOT NULL,
                fetched_at TEXT NOT NULL
            ) WITHOUT ROWID""",
        ],
    ),
    (
        7,
        "effects: every Slack post fwbot intends, durable until confirmed, retried, or handed to a human",
        [
            # A row is written with (or before) the intent it carries out and is finished only
            # once the effect is confirmed (Slack's ts kept) or given up on, with a human told.
            # ``sending`` marks an attempt whose outcome is unknown until Slack answers: after a
            # crash it is looked up in Slack (by its key in the message metadata) before any
            # second post, so a restart neither loses nor repeats it.
            """CREATE TABLE IF NOT EXISTS effects (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                key TEXT NOT NULL UNIQUE,         -- idempotency key
                kind TEXT NOT NULL,               -- what it is for (warning, approval, note, tracking, ...)
                payload TEXT NOT NULL,            -- JSON: targets in fallback order, message, hooks
                status TEXT NOT NULL,             -- pending | sending | done | failed | cancelled
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at TEXT NOT NULL,            -- not before this time (pacing, backoff)
                result TEXT,                      -- JSON: where it landed {channel, ts, via}
                error TEXT,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS effects_open ON effects(status, next_at)",
        ],
    ),
    (
        8,
        "request receipts: Slack requests already taken, so a re-delivered one runs once",
        [
            # One row per request fwbot answered (event id, or the command's/interaction's
            # trigger id), kept for as long as Slack or a proxy could re-deliver it.
            """CREATE TABLE IF NOT EXISTS request_receipts (
                key TEXT PRIMARY KEY,
                seen_at TEXT NOT NULL
            ) WITHOUT ROWID""",
        ],
    ),
]
