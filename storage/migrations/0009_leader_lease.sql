-- migration: leases: which replica runs the scheduled work, for how long, under which fencing token

-- One row per lease: ``scheduler`` (the leader, who runs every scheduled job) and one
-- ``replica:<id>`` per running replica (its presence). A lease is taken or renewed by one
-- conditional upsert and never deleted while it matters: ``token`` only grows (by one at every
-- take-over), so work begun under an older token can be refused. Times are RFC3339 UTC text.
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,             -- the replica that holds it: hostname-pid-random
    token INTEGER NOT NULL,           -- the fencing token: 1 at the first holder, +1 at every take-over
    expires_at TEXT NOT NULL,         -- held until then unless renewed
    renewed_at TEXT NOT NULL,
    acquired_at TEXT NOT NULL         -- when the current holder took it
) WITHOUT ROWID;
