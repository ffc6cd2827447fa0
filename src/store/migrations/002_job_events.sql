-- 002: what the job queue needs beyond 001 (docs/jobs.md).
--
-- jobs.event_seq is the seq of the job's last event. Every event insert first increments it
-- with an UPDATE fenced on the job row, in the same transaction: seqs come out 1, 2, 3 … with
-- no MAX() scan, and on PostgreSQL the row lock orders concurrent writers of one job's events.
ALTER TABLE jobs ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;

-- GET /v1/jobs?status= within a workspace, newest first.
CREATE INDEX jobs_workspace_status ON jobs(workspace_id, status, id);
