-- migration: people: what Slack said of each owner, kept across restarts

-- Only what fwbot reads (name, timezone, deactivated, bot), from users.info or a user_change
-- event; a restarted bot does not ask Slack about every owner again.
CREATE TABLE IF NOT EXISTS slack_people (
    user_id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    fetched_at TEXT NOT NULL
) WITHOUT ROWID;
