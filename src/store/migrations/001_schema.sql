-- 001: the whole schema of SPEC §3, in SQL that runs unchanged on SQLite and PostgreSQL.
-- Types: TEXT, BIGINT (millisecond timestamps, counters), INTEGER, DOUBLE PRECISION.
-- Every table read per workspace has the index its queries use; see docs/architecture.md.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_workspace ON api_keys(workspace_id, id);

-- Web UI sign-ins (POST /v1/session): the cookie holds a random token, never the
-- API key; only its hash is stored. Revoking the key ends its sessions.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- active_version_id has no foreign key: agents and agent_versions point at each
-- other, and the store keeps the pair consistent inside promote's transaction.
CREATE TABLE agents (
    id                 TEXT PRIMARY KEY,
    workspace_id       TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    description        TEXT,
    status             TEXT NOT NULL CHECK (status IN ('discovered', 'confirmed', 'archived')),
    active_version_id  TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX agents_name ON agents(workspace_id, name) WHERE status <> 'archived';
CREATE INDEX agents_workspace ON agents(workspace_id, id);

CREATE TABLE agent_versions (
    id                 TEXT PRIMARY KEY,
    agent_id           TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    version            INTEGER NOT NULL CHECK (version >= 1),
    prompt_template    TEXT NOT NULL,
    variables          TEXT NOT NULL,
    source             TEXT NOT NULL CHECK (source IN ('discovered', 'manual', 'ai_improved')),
    parent_version_id  TEXT REFERENCES agent_versions(id),
    status             TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'rejected', 'archived')),
    accuracy           DOUBLE PRECISION,
    change_summary     TEXT,
    changes            TEXT,
    failure_patterns   TEXT,
    created_by_job_id  TEXT,
    review_note        TEXT,
    created_at         BIGINT NOT NULL,
    decided_at         BIGINT,
    UNIQUE (agent_id, version)
);
CREATE UNIQUE INDEX agent_versions_one_active ON agent_versions(agent_id) WHERE status = 'active';

-- agent_id is denormalised from the version so per-agent reads need no join.
CREATE TABLE traces (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    agent_id          TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    agent_version_id  TEXT NOT NULL REFERENCES agent_versions(id) ON DELETE CASCADE,
    source            TEXT NOT NULL,
    external_id       TEXT,
    "timestamp"       BIGINT NOT NULL,
    input             TEXT NOT NULL,
    output            TEXT NOT NULL,
    steps             TEXT,
    metadata          TEXT,
    created_at        BIGINT NOT NULL,
    UNIQUE (workspace_id, source, external_id)
);
CREATE INDEX traces_workspace ON traces(workspace_id, id);
CREATE INDEX traces_agent ON traces(agent_id, id);
CREATE INDEX traces_version ON traces(agent_version_id, id);

-- One row per trace. agent_id is denormalised from the trace: the contradiction
-- query walks an agent's feedback newest first through feedback_agent_time.
CREATE TABLE feedback (
    id          TEXT PRIMARY KEY,
    trace_id    TEXT NOT NULL UNIQUE REFERENCES traces(id) ON DELETE CASCADE,
    agent_id    TEXT NOT NULL,
    rating      TEXT NOT NULL CHECK (rating IN ('positive', 'negative', 'neutral')),
    note        TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX feedback_agent_time ON feedback(agent_id, updated_at, trace_id);

CREATE TABLE evals (
    id           TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT,
    created_at   BIGINT NOT NULL,
    UNIQUE (agent_id, name)
);

CREATE TABLE eval_executions (
    id                 TEXT PRIMARY KEY,
    eval_id            TEXT NOT NULL REFERENCES evals(id) ON DELETE CASCADE,
    trace_id           TEXT NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
    agent_id           TEXT NOT NULL,
    predicted_result   INTEGER NOT NULL CHECK (predicted_result IN (0, 1)),
    predicted_reason   TEXT,
    execution_time_ms  BIGINT,
    executed_at        BIGINT NOT NULL,
    UNIQUE (eval_id, trace_id)
);
CREATE INDEX eval_executions_trace ON eval_executions(trace_id, predicted_result);

-- Exact per-agent counters behind Agent.stats, kept by every write path of
-- traces, feedback and eval executions (checked against a recount in tests).
-- pos_pass = executions predicting 1 on positively rated traces, and so on.
CREATE TABLE agent_stats (
    agent_id    TEXT PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    traces      BIGINT NOT NULL DEFAULT 0,
    positive    BIGINT NOT NULL DEFAULT 0,
    negative    BIGINT NOT NULL DEFAULT 0,
    neutral     BIGINT NOT NULL DEFAULT 0,
    executions  BIGINT NOT NULL DEFAULT 0,
    pos_pass    BIGINT NOT NULL DEFAULT 0,
    pos_fail    BIGINT NOT NULL DEFAULT 0,
    neg_pass    BIGINT NOT NULL DEFAULT 0,
    neg_fail    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE prompt_best_practices (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT REFERENCES workspaces(id) ON DELETE CASCADE,
    source        TEXT NOT NULL CHECK (source IN ('anthropic', 'openai', 'google', 'custom')),
    category      TEXT NOT NULL CHECK (category IN ('structure', 'clarity', 'safety', 'reasoning', 'general')),
    title         TEXT NOT NULL,
    content       TEXT NOT NULL,
    url           TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX best_practices_workspace ON prompt_best_practices(workspace_id, created_at);

-- agent_id is copied from params for the jobs list filter.
CREATE TABLE jobs (
    id                       TEXT PRIMARY KEY,
    workspace_id             TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    type                     TEXT NOT NULL,
    agent_id                 TEXT,
    status                   TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    stage                    TEXT,
    progress                 INTEGER NOT NULL DEFAULT 0,
    params                   TEXT NOT NULL,
    result                   TEXT,
    error_code               TEXT,
    error_message            TEXT,
    attempt                  INTEGER NOT NULL DEFAULT 0,
    max_attempts             INTEGER NOT NULL,
    run_at                   BIGINT NOT NULL,
    lease_owner              TEXT,
    lease_expires_at         BIGINT,
    cancel_requested         INTEGER NOT NULL DEFAULT 0,
    idempotency_key          TEXT,
    idempotency_fingerprint  TEXT,
    created_at               BIGINT NOT NULL,
    started_at               BIGINT,
    finished_at              BIGINT,
    UNIQUE (workspace_id, idempotency_key)
);
CREATE INDEX jobs_due ON jobs(run_at) WHERE status = 'queued';
CREATE INDEX jobs_leased ON jobs(lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_workspace ON jobs(workspace_id, id);
CREATE INDEX jobs_agent ON jobs(agent_id, id);

CREATE TABLE job_events (
    job_id      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

CREATE TABLE llm_calls (
    id                   TEXT PRIMARY KEY,
    job_id               TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    attempt              INTEGER NOT NULL,
    step                 TEXT NOT NULL CHECK (step IN ('analysis', 'rewrite', 'repair')),
    provider             TEXT NOT NULL,
    model                TEXT NOT NULL,
    request              TEXT NOT NULL,
    response_text        TEXT,
    stop_reason          TEXT,
    http_status          INTEGER,
    provider_request_id  TEXT,
    input_tokens         BIGINT,
    output_tokens        BIGINT,
    latency_ms           BIGINT NOT NULL,
    error                TEXT,
    created_at           BIGINT NOT NULL
);
CREATE INDEX llm_calls_job ON llm_calls(job_id, id);
