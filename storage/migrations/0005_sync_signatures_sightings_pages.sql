-- migration: sync: a signature of each mirrored API object, sightings in a narrow table, the listing pages read

-- blake2b of the object as ``marshal`` writes it (version 2: no back-references, so equal
-- objects always give equal bytes). NULL until the next mirror writes it.
ALTER TABLE deployments ADD COLUMN wire_sig BLOB;

-- When a sync last saw each deployment unchanged. Kept out of ``deployments`` (whose rows carry
-- the API object): bumping a column there rewrote every wide row on every pass. A deployment was
-- last seen at the later of this and its ``last_seen_at``.
CREATE TABLE IF NOT EXISTS deployment_sightings (
    deployment_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
) WITHOUT ROWID;

-- The listing pages a sync read, by a digest of their bytes: a page that comes back byte for
-- byte needs no decoding when its deployments are still stored as it showed them (``entries``:
-- JSON of each one's compared columns).
CREATE TABLE IF NOT EXISTS sync_pages (
    digest BLOB PRIMARY KEY,
    next_token TEXT,
    entries TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
