-- migration: deployments, audit trail, replica and traffic history

CREATE TABLE IF NOT EXISTS deployments (
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
);
CREATE INDEX IF NOT EXISTS deployments_owner ON deployments(owner);
CREATE INDEX IF NOT EXISTS deployments_channel ON deployments(channel);

CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,              -- Slack user id, or 'fwbot' for its own actions
    action TEXT NOT NULL,
    deployment_id TEXT,
    channel TEXT,
    request TEXT,                     -- JSON of what was asked
    result TEXT NOT NULL,             -- ok | error | refused | dry-run | pending
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_deployment ON audit(deployment_id, at);

CREATE TABLE IF NOT EXISTS replica_history (
    deployment_id TEXT NOT NULL,
    at TEXT NOT NULL,
    replicas INTEGER NOT NULL,
    accelerator_type TEXT,
    accelerator_count INTEGER,
    single_region INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (deployment_id, at)
);

CREATE TABLE IF NOT EXISTS traffic (
    deployment_id TEXT PRIMARY KEY,
    last_traffic_at TEXT,             -- last time the metrics showed requests
    serving INTEGER NOT NULL DEFAULT 0,
    request_rate REAL NOT NULL DEFAULT 0,
    scraped_at TEXT
);

CREATE TABLE IF NOT EXISTS traffic_history (
    deployment_id TEXT NOT NULL,
    at TEXT NOT NULL,
    serving INTEGER NOT NULL,         -- 1 = requests seen, 0 = idle
    PRIMARY KEY (deployment_id, at)
);

CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT,
    updated_at TEXT NOT NULL
);
