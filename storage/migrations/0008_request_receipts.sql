-- migration: request receipts: Slack requests already taken, so a re-delivered one runs once

-- One row per request fwbot answered (event id, or the command's/interaction's trigger id), kept
-- for as long as Slack or a proxy could re-deliver it.
CREATE TABLE IF NOT EXISTS request_receipts (
    key TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
) WITHOUT ROWID;
