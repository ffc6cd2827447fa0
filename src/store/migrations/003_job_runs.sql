-- 003: runs of a job (docs/api.md, docs/jobs.md).
--
-- POST /v1/jobs/{id}/retry starts a failed or cancelled job over under the same id, with a
-- fresh attempt budget (attempt back to 0), so the attempts of its runs repeat 1, 2 …:
-- jobs.run counts the runs (1, then one more per API retry) and each LLM call records the
-- run it was made in, beside its attempt, so the job's transcript tells the runs apart.
-- Rows from before this migration are run 1: earlier API retries are not counted.
ALTER TABLE jobs ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
ALTER TABLE llm_calls ADD COLUMN run INTEGER NOT NULL DEFAULT 1;
