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

-- Built-in best practices (SPEC §3): global rows (workspace_id NULL), written in our own
-- words from the public prompting guides of Anthropic, OpenAI and Google.
INSERT INTO prompt_best_practices (id, workspace_id, source, category, title, content, url, created_at) VALUES
    ('bp_01KDVDNA0000FG000000000000', NULL, 'anthropic', 'clarity', 'Be clear and direct, as if briefing a new colleague',
     'Write the system prompt for a capable newcomer who knows nothing about your product, users or conventions. State what the task is for, who reads the output and what a finished result looks like. Give instructions as numbered or bulleted steps when order matters, and replace vague wording such as ''be helpful'' with concrete expectations.',
     'https://docs.anthropic.com/en/docs/build-with-claude/prompt-engineering/be-clear-and-direct', 1767225600000),
    ('bp_01KDVDNA0100FG000000000001', NULL, 'anthropic', 'structure', 'Wrap distinct parts of the prompt in XML tags',
     'Put instructions, background, examples and user-supplied material in their own tags, such as <instructions>, <context> and <document>, so the model never mistakes one for another. Keep tag names consistent and refer to them by name in the instructions, for example ''answer using the policy in <policy>''. Nest tags for hierarchical content, and ask for output inside tags when a program has to extract it.',
     'https://docs.anthropic.com/en/docs/build-with-claude/prompt-engineering/use-xml-tags', 1767225600001),
    ('bp_01KDVDNA0200FG000000000002', NULL, 'anthropic', 'general', 'Give the agent a specific role in the system prompt',
     'Open the system prompt with the role the agent plays, as specific as you can make it: ''a senior support engineer for a billing API'' steers tone, vocabulary and judgement far better than ''a helpful assistant''. Keep the role and standing rules in the system prompt and put the per-request task in the user turn. Name the audience too, since expert and novice readers need different answers.',
     'https://docs.anthropic.com/en/docs/build-with-claude/prompt-engineering/system-prompts', 1767225600002),
    ('bp_01KDVDNA0300FG000000000003', NULL, 'anthropic', 'reasoning', 'Let the model reason before it answers',
     'For multi-step analysis, calculations or decisions, ask the agent to work through the problem before committing to an answer, and say what it should consider rather than only ''think step by step''. Keep the reasoning apart from the result, for example in <thinking> and <answer> tags, so the final output stays clean and easy to parse. Reserve this for tasks that need it, because it adds length and latency.',
     'https://docs.anthropic.com/en/docs/build-with-claude/prompt-engineering/chain-of-thought', 1767225600003),
    ('bp_01KDVDNA0400FG000000000004', NULL, 'anthropic', 'structure', 'Show several varied examples of the expected output',
     'Three to five well-chosen examples teach format, tone and edge-case handling more reliably than a description does. Make them resemble real inputs, vary them enough that the model does not copy incidental details, and include at least one tricky case. Wrap them in <example> tags so they stay clearly separate from the instructions.',
     'https://docs.anthropic.com/en/docs/build-with-claude/prompt-engineering/multishot-prompting', 1767225600004),
    ('bp_01KDVDNA0500FG000000000005', NULL, 'anthropic', 'reasoning', 'Chain prompts for work with distinct stages',
     'When a job has clear phases, such as research, drafting and review, give each phase its own prompt instead of one overloaded instruction. Pass each stage''s output to the next inside tags, so every step gets the model''s full attention and can be tested and fixed on its own. A final self-review step that checks the previous output against the requirements often catches mistakes cheaply.',
     'https://docs.anthropic.com/en/docs/build-with-claude/prompt-engineering/chain-prompts', 1767225600005),
    ('bp_01KDVDNA0600FG000000000006', NULL, 'anthropic', 'structure', 'Put long documents first and the question last',
     'With large inputs, place the documents near the top of the prompt and the instructions and question after them; questions at the end tend to get better answers. Wrap each document in its own tags with metadata such as its source and date. For tasks over long documents, ask the model to pull out the relevant quotes first and then answer from them.',
     'https://docs.anthropic.com/en/docs/build-with-claude/prompt-engineering/long-context-tips', 1767225600006),
    ('bp_01KDVDNA0700FG000000000007', NULL, 'anthropic', 'safety', 'Allow ''I don''t know'' and ground claims in sources',
     'Tell the agent explicitly that it may say it lacks the information instead of guessing; that one permission removes many fabricated answers. When it works from supplied material, require it to back each claim with a quote or citation and to withdraw any claim it cannot support. Restrict it to the provided documents when relying on general knowledge would be a liability.',
     'https://docs.anthropic.com/en/docs/test-and-evaluate/strengthen-guardrails/reduce-hallucinations', 1767225600007),
    ('bp_01KDVDNA0800FG000000000008', NULL, 'anthropic', 'safety', 'Treat user content and tool results as data, not instructions',
     'State in the system prompt which sources may give instructions, and that text arriving in user documents, web pages or tool results must never override them. Describe the agent''s scope and what to do with out-of-scope or harmful requests, such as a short refusal that points to the right channel. For high-risk deployments, screen inputs with a lightweight check before the main agent acts on them.',
     'https://docs.anthropic.com/en/docs/test-and-evaluate/strengthen-guardrails/mitigate-jailbreaks', 1767225600008),
    ('bp_01KDVDNA0900FG000000000009', NULL, 'openai', 'clarity', 'Put the details that matter into the instruction',
     'The model cannot guess what you have in mind, so include the specifics: the audience, the level of detail, the constraints and what to do in edge cases. Compare ''summarise the meeting'' with ''summarise the meeting in one paragraph, then list each decision and its owner''; the second leaves far less to chance. If an output would surprise you, the missing detail probably belongs in the prompt.',
     'https://platform.openai.com/docs/guides/prompt-engineering', 1767225600009),
    ('bp_01KDVDNA0A00FG00000000000A', NULL, 'openai', 'structure', 'Mark separate inputs with delimiters',
     'Set off quoted text, documents and user input with clear delimiters such as triple quotes, section headings or XML-style tags. Delimiters show the model where the instructions stop and the material to work on starts, which matters most when a task has several inputs of the same kind. They also make it harder for text inside an input to pass itself off as an instruction.',
     'https://platform.openai.com/docs/guides/prompt-engineering', 1767225600010),
    ('bp_01KDVDNA0B00FG00000000000B', NULL, 'openai', 'clarity', 'Specify the output format and length',
     'Say exactly what shape the answer should take: a JSON object with named fields, a bulleted list, a table or plain prose. Give a target length in concrete units such as paragraphs, bullet points or a range of words, bearing in mind that exact word counts are followed only roughly. Where a program consumes the output, show the format with a short example.',
     'https://platform.openai.com/docs/guides/prompt-engineering', 1767225600011),
    ('bp_01KDVDNA0C00FG00000000000C', NULL, 'openai', 'reasoning', 'Write out the steps the agent should follow',
     'When a task needs a fixed procedure, list the steps explicitly in the system prompt: for example, first classify the request, then gather the facts it needs, then draft the reply. Numbered steps make the agent''s behaviour predictable and make it easy to see which step went wrong in a bad trace. Say what each step should produce, not only what to do.',
     'https://platform.openai.com/docs/guides/prompt-engineering', 1767225600012),
    ('bp_01KDVDNA0D00FG00000000000D', NULL, 'openai', 'safety', 'Provide reference text and confine answers to it',
     'When accuracy matters, give the agent the relevant documents and instruct it to answer only from them, citing the passage it relied on. Tell it what to say when the answer is not in the material, for example ''I could not find that in the provided documents''. This cuts invented facts, especially about niche topics, recent events or your own product.',
     'https://platform.openai.com/docs/guides/prompt-engineering', 1767225600013),
    ('bp_01KDVDNA0E00FG00000000000E', NULL, 'openai', 'reasoning', 'Have the model work out its own answer before judging',
     'If the agent evaluates something, such as a user''s solution or a proposed fix, ask it to solve the problem itself first and only then compare. Judging directly tends to wave through mistakes that look plausible. When the working should not be shown to the user, have it written in a separate section that the application strips out.',
     'https://platform.openai.com/docs/guides/prompt-engineering', 1767225600014),
    ('bp_01KDVDNA0F00FG00000000000F', NULL, 'openai', 'general', 'Split complex jobs into simpler subtasks',
     'An agent that handles many kinds of request does better when a first step classifies the request and routes it to instructions written for that kind. For long conversations or documents, summarise earlier parts piece by piece and carry the summary forward instead of the full history. Smaller, focused prompts make fewer errors and are easier to test.',
     'https://platform.openai.com/docs/guides/prompt-engineering', 1767225600015),
    ('bp_01KDVDNA0G00FG00000000000G', NULL, 'openai', 'general', 'Test prompt changes against a fixed evaluation set',
     'A change that fixes one example can quietly break others, so judge prompt edits on a representative set of cases with known good answers. Keep that set stable, add past failures to it, and run the old and new prompts on the same inputs before adopting a change. Score with exact checks where possible and with a model or human rubric where not.',
     'https://platform.openai.com/docs/guides/prompt-engineering', 1767225600016),
    ('bp_01KDVDNA0H00FG00000000000H', NULL, 'google', 'structure', 'Use few-shot examples with a consistent format',
     'Include a few examples of input and desired output; prompts with examples usually outperform those without. Show patterns to follow rather than mistakes to avoid, and keep every example in exactly the same layout, since inconsistent formatting produces inconsistent output. Settle the number of examples by testing: too few may not teach the pattern, too many can make the model imitate them too closely.',
     'https://ai.google.dev/gemini-api/docs/prompting-strategies', 1767225600017),
    ('bp_01KDVDNA0J00FG00000000000J', NULL, 'google', 'general', 'Add the context the model needs to solve the task',
     'Do not assume the model knows your domain; include the facts, reference data and constraints it needs, such as product details or the relevant policy excerpt. Context lets it reason about your specific situation instead of answering generically. Keep the context relevant, since filler distracts from what matters.',
     'https://ai.google.dev/gemini-api/docs/prompting-strategies', 1767225600018),
    ('bp_01KDVDNA0K00FG00000000000K', NULL, 'google', 'structure', 'Label inputs, outputs and examples with prefixes',
     'Short prefixes such as ''Input:'', ''Output:'', ''Order:'' or ''JSON:'' tell the model what each part of the prompt is and what it should produce next. Use the same prefixes in the examples and in the live input so the pattern is obvious. Ending the prompt with an output prefix is a simple way to steer the answer into the right form.',
     'https://ai.google.dev/gemini-api/docs/prompting-strategies', 1767225600019),
    ('bp_01KDVDNA0M00FG00000000000M', NULL, 'google', 'reasoning', 'Break a complex prompt into components',
     'If one prompt asks for too much, split it: one prompt per instruction, prompts chained so that each output feeds the next, or parallel prompts whose results are combined at the end. Each part becomes simpler to write, debug and evaluate. Still tell the model the overall goal, so intermediate steps stay aimed at it.',
     'https://ai.google.dev/gemini-api/docs/prompting-strategies', 1767225600020),
    ('bp_01KDVDNA0N00FG00000000000N', NULL, 'google', 'general', 'Keep persistent behaviour in system instructions',
     'Put the agent''s persona, scope, tone and standing rules in the system instructions, which apply to every turn, rather than repeating them in each user message. Write them as concrete directives, for example which topics to decline and how to format answers. System instructions steer behaviour but do not guarantee it, so keep validating outputs and never place secrets in them.',
     'https://cloud.google.com/vertex-ai/generative-ai/docs/learn/prompts/system-instruction-introduction', 1767225600021),
    ('bp_01KDVDNA0P00FG00000000000P', NULL, 'google', 'safety', 'State constraints explicitly',
     'Spell out what the agent must and must not do: topics to avoid, actions that need confirmation, data it may not reveal, and limits on length or scope. Phrase constraints positively where you can (''answer only questions about billing'') and name the fallback behaviour when a request breaks one. A limit left unstated is a limit the model does not know about.',
     'https://ai.google.dev/gemini-api/docs/prompting-strategies', 1767225600022),
    ('bp_01KDVDNA0Q00FG00000000000Q', NULL, 'google', 'clarity', 'Specify the response format',
     'Describe the format you want, whether a table, a bulleted list, a short paragraph or JSON following a given schema, and include a partial example or template when precision matters. Starting the expected output for the model, such as an opening brace or the first list item, nudges it into that format. Ask for exactly the format you parse, with nothing extra around it.',
     'https://ai.google.dev/gemini-api/docs/prompting-strategies', 1767225600023);
