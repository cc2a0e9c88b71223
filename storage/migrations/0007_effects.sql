-- migration: effects: every Slack post fwbot intends, durable until confirmed, retried, or handed to a human

-- A row is written with (or before) the intent it carries out and is finished only once the
-- effect is confirmed (Slack's ts kept) or given up on, with a human told. ``sending`` marks an
-- attempt whose outcome is unknown until Slack answers: after a crash it is looked up in Slack
-- (by its key in the message metadata) before any second post, so a restart neither loses nor
-- repeats it.
CREATE TABLE IF NOT EXISTS effects (
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
);
CREATE INDEX IF NOT EXISTS effects_open ON effects(status, next_at);
