-- migration: lifecycle: what each warning said, so a re-post or an edit can render it again

CREATE TABLE IF NOT EXISTS warning_snapshots (
    warning_id INTEGER PRIMARY KEY REFERENCES warnings(id) ON DELETE CASCADE,
    body TEXT NOT NULL                -- JSON: the timer and lead as decided
);
CREATE INDEX IF NOT EXISTS warnings_message ON warnings(channel, ts);
CREATE INDEX IF NOT EXISTS warnings_open ON warnings(status, deployment_id);
CREATE INDEX IF NOT EXISTS bot_actions_deployment ON bot_actions(deployment_id, kind);
