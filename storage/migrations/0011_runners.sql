-- migration: runners: which replica sent a create, and which runs an approved request

-- Work a replica began (a create whose answer it waits for, an approved request it carries out)
-- is settled or taken over by another replica only once that replica is gone (its presence lease
-- ran out), never while it may still be at it. NULL: recorded before replicas had names.
ALTER TABLE deployments ADD COLUMN creator TEXT;
ALTER TABLE approvals ADD COLUMN run_by TEXT;
