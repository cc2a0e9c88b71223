-- migration: effects: which replica is posting each one, so replicas sharing the database never post one twice

-- An attempt under way (status ``sending``) belongs to the replica that marked it, while that
-- replica is present (its ``replica:<id>`` lease) and until ``claimed_until``: another replica
-- neither posts it again nor cancels it meanwhile. Once the claim lapses, the attempt's outcome
-- is looked up in Slack before anything is posted again, as after a crash.
ALTER TABLE effects ADD COLUMN claimed_by TEXT;
ALTER TABLE effects ADD COLUMN claimed_until TEXT;
