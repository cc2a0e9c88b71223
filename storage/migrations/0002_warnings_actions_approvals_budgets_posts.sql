-- migration: warnings, the bot's own scheduled actions, approvals, budgets, scheduled posts

CREATE TABLE IF NOT EXISTS warnings (
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
);

CREATE TABLE IF NOT EXISTS bot_actions (
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
);
CREATE INDEX IF NOT EXISTS bot_actions_due ON bot_actions(status, due_at);

CREATE TABLE IF NOT EXISTS approvals (
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
);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals(status, expires_at);

CREATE TABLE IF NOT EXISTS budgets (
    channel TEXT PRIMARY KEY,
    usd_per_month REAL NOT NULL,
    set_by TEXT NOT NULL,
    set_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS scheduled_posts (
    key TEXT PRIMARY KEY,             -- e.g. summary:C123:2026-W47
    status TEXT NOT NULL,             -- claimed | posted
    channel TEXT,
    ts TEXT,
    claimed_at TEXT NOT NULL,
    posted_at TEXT
);
