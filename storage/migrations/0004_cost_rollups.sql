-- migration: cost rollups: GPU time per deployment per closed local day

-- GPU-microseconds of one deployment over one whole local day (in the timezone ``tz``) that has
-- ended, per accelerator type and placement, split into serving and idle; dollars are never
-- cached (prices change). A day with no GPU time is one marker row with both 0, so "computed,
-- nothing ran" differs from "not computed". Clustered by (tz, day) so a window is one range read.
CREATE TABLE IF NOT EXISTS cost_rollups (
    tz TEXT NOT NULL,                 -- IANA name, e.g. UTC or America/New_York
    deployment_id TEXT NOT NULL,
    day TEXT NOT NULL,                -- local date YYYY-MM-DD
    day_end TEXT NOT NULL,            -- iso UTC of the next local midnight
    accelerator_type TEXT NOT NULL,   -- '' = unknown
    single_region INTEGER NOT NULL,
    serving_us INTEGER NOT NULL,      -- GPU-microseconds with requests seen
    idle_us INTEGER NOT NULL,         -- GPU-microseconds without
    PRIMARY KEY (tz, day, deployment_id, accelerator_type, single_region)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cost_rollups_invalidate ON cost_rollups(deployment_id, day_end);

-- Bumped by every change to the history: a reader caches what it computed only if nothing
-- changed between its read and its write.
CREATE TABLE IF NOT EXISTS cost_rollup_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    gen INTEGER NOT NULL
);
INSERT OR IGNORE INTO cost_rollup_state (id, gen) VALUES (1, 0);

-- A change point at time t sets the state every later day opens with, so it changes every day
-- ending after t and nothing before. These triggers drop the rollups a change to one history row
-- affects (every day of that deployment ending after the row's time: the old and the new row's,
-- for an update) and bump the generation readers compare before caching, so every writer of the
-- history keeps the cache right.
CREATE TRIGGER IF NOT EXISTS replica_history_insert_rollups AFTER INSERT ON replica_history BEGIN
    DELETE FROM cost_rollups WHERE deployment_id = NEW.deployment_id AND day_end > NEW.at;
    UPDATE cost_rollup_state SET gen = gen + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS replica_history_update_rollups AFTER UPDATE ON replica_history BEGIN
    DELETE FROM cost_rollups WHERE deployment_id = OLD.deployment_id AND day_end > OLD.at;
    DELETE FROM cost_rollups WHERE deployment_id = NEW.deployment_id AND day_end > NEW.at;
    UPDATE cost_rollup_state SET gen = gen + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS replica_history_delete_rollups AFTER DELETE ON replica_history BEGIN
    DELETE FROM cost_rollups WHERE deployment_id = OLD.deployment_id AND day_end > OLD.at;
    UPDATE cost_rollup_state SET gen = gen + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS traffic_history_insert_rollups AFTER INSERT ON traffic_history BEGIN
    DELETE FROM cost_rollups WHERE deployment_id = NEW.deployment_id AND day_end > NEW.at;
    UPDATE cost_rollup_state SET gen = gen + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS traffic_history_update_rollups AFTER UPDATE ON traffic_history BEGIN
    DELETE FROM cost_rollups WHERE deployment_id = OLD.deployment_id AND day_end > OLD.at;
    DELETE FROM cost_rollups WHERE deployment_id = NEW.deployment_id AND day_end > NEW.at;
    UPDATE cost_rollup_state SET gen = gen + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS traffic_history_delete_rollups AFTER DELETE ON traffic_history BEGIN
    DELETE FROM cost_rollups WHERE deployment_id = OLD.deployment_id AND day_end > OLD.at;
    UPDATE cost_rollup_state SET gen = gen + 1 WHERE id = 1;
END;
