// refold demo: offline (no provider, no keys in the environment), from nothing but
// the binary: every stage of the job, a unified diff, a candidate that keeps the
// sample prompt's three variables, a temporary database that is removed (or kept
// with --keep, and removed when the demo is interrupted), and a quiet stderr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, run, sql } from './lib.mjs';

const STAGES = ['fetching agent', 'fetching contradictions', 'analyzing failures', 'fetching best practices',
  'generating improved prompt', 'validating prompt', 'creating new version', 'finalizing', 'completed'];
const VARIABLES = ['company_name', 'customer_tier', 'language'];

// An environment without any LLM configuration and without a config file.
function offlineEnv(extra = {}) {
  const home = mkdtempSync(join(tmpdir(), 'refold-demo-test-'));
  return { home, env: { REFOLD_LLM_PROVIDER: '', REFOLD_SCRIPTED_REPLIES: '', ANTHROPIC_API_KEY: '', OPENAI_API_KEY: '',
    REFOLD_LOG: '', REFOLD_TTY: '', REFOLD_URL: '', REFOLD_API_KEY: '', XDG_CONFIG_HOME: join(home, 'config'),
    TMPDIR: home, ...extra } };
}

test('refold demo runs offline to the end: stages, diff, the candidate, nothing left behind', async () => {
  const { home, env } = offlineEnv();
  const started = Date.now();
  const r = await run(['demo'], { env, timeout: 60000 });
  try {
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stderr, '', 'no log noise on stderr');
    const out = r.stdout;
    assert.match(out, /LLM: canned replies from examples\/demo-replies\.json/);
    assert.match(out, /1,083 records in [\d.]+ s: 1 agent, 2 evals, 300 traces, 180 ratings, 600 eval executions/);
    assert.match(out, /People and evals disagree 43 times: 32 missed failures/);
    let at = -1;
    for (const s of STAGES) {
      const i = out.indexOf(`] ${s}`, at + 1);
      assert.ok(i > at, `stage "${s}" is shown, after the previous one`);
      at = i;
    }
    assert.match(out, /analyzing failures: 43 contradictions \(32 missed failures, 11 false alarms\)/);
    assert.match(out, /Candidate v2 of acme-support, changes:/);
    // A unified diff with removed and added lines.
    assert.match(out, /^--- v1\n\+\+\+ v2\n@@ -\d+,\d+ \+\d+,\d+ @@/m);
    const lines = out.split('\n');
    assert.ok(lines.some((l) => l.startsWith('-') && !l.startsWith('---')), 'removed lines');
    assert.ok(lines.some((l) => l.startsWith('+') && !l.startsWith('+++')), 'added lines');
    assert.ok(!out.includes('\x1b['), 'plain output on a pipe');
    assert.match(out, /refold promote acme-support 2/);
    assert.match(out, /temporary and has been deleted/);
    const dir = out.match(/fresh database in (\S+)/)[1];
    assert.ok(dir.startsWith(home), 'the temporary directory honours TMPDIR');
    assert.ok(!existsSync(dir), 'the temporary database is removed');
    console.log(`# refold demo took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('refold demo --keep leaves a database whose candidate keeps the three variables', async () => {
  const { home, env } = offlineEnv();
  // The steps it prints name where `refold serve` will listen: REFOLD_LISTEN when set
  // (the demo's own server listens on an ephemeral port regardless).
  const r = await run(['demo', '--keep'], { env: { ...env, REFOLD_LISTEN: '127.0.0.1:7979' }, timeout: 60000 });
  try {
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const dir = r.stdout.match(/The demo database is kept in (\S+)\./)[1];
    const db = join(dir, 'refold.db');
    assert.ok(existsSync(db));
    assert.match(r.stdout, new RegExp(`refold serve --db ${db.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(r.stdout, /export REFOLD_URL=http:\/\/127\.0\.0\.1:7979 REFOLD_API_KEY=rf_[a-z0-9]+/);
    assert.match(r.stdout, /The web UI is at http:\/\/127\.0\.0\.1:7979 /);
    const rows = JSON.parse(await sql(db, "SELECT json_group_array(json_object('version', version, 'status', status, "
      + "'source', source, 'variables', json(variables), 'tmpl', prompt_template)) FROM agent_versions ORDER BY version"));
    assert.deepEqual(rows.map((v) => [v.version, v.status, v.source]), [[1, 'active', 'manual'], [2, 'candidate', 'ai_improved']]);
    assert.deepEqual([...rows[1].variables].sort(), VARIABLES);
    for (const v of VARIABLES) assert.ok(rows[1].tmpl.includes(`{{${v}}}`), v);
    assert.notEqual(rows[1].tmpl, rows[0].tmpl);
    const job = JSON.parse(await sql(db, "SELECT result FROM jobs"));
    assert.equal(job.scripted, true, 'the result says the replies were canned');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('an interrupted refold demo removes its temporary database and exits 128 + the signal', async () => {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
    const { home, env } = offlineEnv();
    try {
      const child = spawn(BIN, ['demo'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      child.stderr.on('data', (d) => (err += d));
      const exited = new Promise((r) => child.on('exit', (c) => r(c)));
      // Interrupted once its server runs on the database (the import is next).
      await new Promise((resolve) => child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('API and workers on')) resolve();
      }));
      const dir = out.match(/fresh database in (\S+)/)[1];
      assert.ok(existsSync(join(dir, 'refold.db')));
      child.kill(signal);
      assert.equal(await exited, code, out + err);
      assert.ok(!existsSync(dir), `${signal}: ${dir} is left behind`);
      assert.deepEqual(readdirSync(home).filter((f) => f.startsWith('refold-demo-')), []);
      assert.match(err, /demo interrupted; removed /);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }
});
