-- Recount of the denormalised data against the rows it summarises: one line per
-- mismatch, nothing when every counter and copied column is exact. Portable SQL
-- (SQLite and PostgreSQL); used by tests/integration/counters.test.mjs and bench/run.sh.
WITH
t AS (SELECT agent_id, COUNT(*) AS n FROM traces GROUP BY agent_id),
f AS (SELECT t.agent_id,
             SUM(CASE WHEN f.rating = 'positive' THEN 1 ELSE 0 END) AS pos,
             SUM(CASE WHEN f.rating = 'negative' THEN 1 ELSE 0 END) AS neg,
             SUM(CASE WHEN f.rating = 'neutral' THEN 1 ELSE 0 END) AS neu
        FROM feedback f JOIN traces t ON t.id = f.trace_id GROUP BY t.agent_id),
x AS (SELECT t.agent_id, COUNT(*) AS n,
             SUM(CASE WHEN f.rating = 'positive' AND x.predicted_result = 1 THEN 1 ELSE 0 END) AS pp,
             SUM(CASE WHEN f.rating = 'positive' AND x.predicted_result = 0 THEN 1 ELSE 0 END) AS pf,
             SUM(CASE WHEN f.rating = 'negative' AND x.predicted_result = 1 THEN 1 ELSE 0 END) AS np,
             SUM(CASE WHEN f.rating = 'negative' AND x.predicted_result = 0 THEN 1 ELSE 0 END) AS nf
        FROM eval_executions x JOIN traces t ON t.id = x.trace_id
        LEFT JOIN feedback f ON f.trace_id = x.trace_id GROUP BY t.agent_id)
SELECT 'agent_stats ' || s.agent_id || ' has ' ||
       s.traces || '/' || s.positive || '/' || s.negative || '/' || s.neutral || '/' ||
       s.executions || '/' || s.pos_pass || '/' || s.pos_fail || '/' || s.neg_pass || '/' ||
       s.neg_fail || ', recount ' ||
       COALESCE(t.n, 0) || '/' || COALESCE(f.pos, 0) || '/' || COALESCE(f.neg, 0) || '/' ||
       COALESCE(f.neu, 0) || '/' || COALESCE(x.n, 0) || '/' || COALESCE(x.pp, 0) || '/' ||
       COALESCE(x.pf, 0) || '/' || COALESCE(x.np, 0) || '/' || COALESCE(x.nf, 0) AS mismatch
  FROM agent_stats s
  LEFT JOIN t ON t.agent_id = s.agent_id
  LEFT JOIN f ON f.agent_id = s.agent_id
  LEFT JOIN x ON x.agent_id = s.agent_id
 WHERE s.traces <> COALESCE(t.n, 0) OR s.positive <> COALESCE(f.pos, 0)
    OR s.negative <> COALESCE(f.neg, 0) OR s.neutral <> COALESCE(f.neu, 0)
    OR s.executions <> COALESCE(x.n, 0) OR s.pos_pass <> COALESCE(x.pp, 0)
    OR s.pos_fail <> COALESCE(x.pf, 0) OR s.neg_pass <> COALESCE(x.np, 0)
    OR s.neg_fail <> COALESCE(x.nf, 0)
UNION ALL
SELECT 'agent without agent_stats ' || a.id FROM agents a
  LEFT JOIN agent_stats s ON s.agent_id = a.id WHERE s.agent_id IS NULL
UNION ALL
SELECT 'traces.agent_id of ' || t.id FROM traces t
  JOIN agent_versions v ON v.id = t.agent_version_id WHERE t.agent_id <> v.agent_id
UNION ALL
SELECT 'feedback.agent_id of ' || f.trace_id FROM feedback f
  JOIN traces t ON t.id = f.trace_id WHERE f.agent_id <> t.agent_id
UNION ALL
SELECT 'eval_executions.agent_id of ' || x.id FROM eval_executions x
  JOIN traces t ON t.id = x.trace_id WHERE x.agent_id <> t.agent_id
UNION ALL
SELECT 'eval_executions.agent_id of ' || x.id || ' differs from its eval''s' FROM eval_executions x
  JOIN evals e ON e.id = x.eval_id WHERE x.agent_id <> e.agent_id;
