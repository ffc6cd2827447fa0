// Concurrent migrations (issue 8): several nodes starting at once on a fresh PostgreSQL
// database - `refold migrate`, `refold serve` and `refold worker` processes, all racing -
// apply each migration exactly once (store_migrate holds an advisory lock for the whole
// run), every one of them starts, and the schema is complete.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, SOURCE_DIR, run, sleep } from '../integration/lib.mjs';
import { requirePg, createDatabase, dropDatabaseSync, psql } from './pg_lib.mjs';

const base = requirePg();
const dir = mkdtempSync(join(tmpdir(), 'refold-pgmig-'));
const dbs = [];
after(() => {
  rmSync(dir, { recursive: true, force: true });
  for (const db of dbs) dropDatabaseSync(base, db);
});

const MIGRATIONS = readdirSync(join(SOURCE_DIR, 'src', 'store', 'migrations')).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
const env = { ...process.env, XDG_CONFIG_HOME: join(dir, 'cfg'), REFOLD_LOG: 'info', REFOLD_TEST_JOBS: '1' };

// A long-running process (serve or worker) until `ready` shows in its log.
function startProcess(args, ready) {
  const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = { child, logs: '' };
  child.stdout.on('data', (d) => (p.logs += d));
  child.stderr.on('data', (d) => (p.logs += d));
  p.exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  p.ready = (async () => {
    const deadline = Date.now() + 20000;
    while (!ready.test(p.logs)) {
      if (child.exitCode !== null) throw new Error(`${args[0]} exited ${child.exitCode}: ${p.logs}`);
      if (Date.now() > deadline) throw new Error(`${args[0]} did not start: ${p.logs}`);
      await sleep(20);
    }
  })();
  return p;
}

for (let round = 1; round <= 3; round++) {
  test(`round ${round}: 4 migrate + 2 serve + 2 worker processes at once on an empty database migrate it once`, { timeout: 60000 }, async () => {
    const db = await createDatabase(base);
    dbs.push(db);
    const migrators = Array.from({ length: 4 }, () => run(['migrate', '--db', db], { env }));
    const serves = Array.from({ length: 2 }, (_, i) => {
      const portFile = join(dir, `port-${round}-${i}`);
      const p = startProcess(['serve', '--db', db, '--listen', '127.0.0.1:0', '--port-file', portFile, '--workers', '1'], /msg="listening"/);
      p.portFile = portFile;
      return p;
    });
    const workers = Array.from({ length: 2 }, () => startProcess(['worker', '--db', db, '--workers', '1'], /worker running/));
    const procs = [...serves, ...workers];
    try {
      const results = await Promise.all(migrators);
      for (const r of results) assert.equal(r.code, 0, `refold migrate failed: ${r.stderr}`);
      await Promise.all(procs.map((p) => p.ready));

      // Each migration was applied by exactly one process.
      const logs = [...results.map((r) => r.stderr), ...procs.map((p) => p.logs)].join('\n');
      for (const m of MIGRATIONS) {
        const n = logs.split('\n').filter((l) => l.includes('msg="migration applied"') && l.includes(`migration=${m}`)).length;
        assert.equal(n, 1, `${m} applied ${n} times`);
      }
      assert.equal(await psql(db, 'SELECT COUNT(*) || \' \' || COUNT(DISTINCT version) FROM schema_migrations'),
        `${MIGRATIONS.length} ${MIGRATIONS.length}`);
      const last = Number(MIGRATIONS.at(-1).split('_')[0]);
      assert.equal(await psql(db, 'SELECT MAX(version) FROM schema_migrations'), String(last));
      // Every migrator reports the final version, whoever applied what.
      for (const r of results) assert.match(r.stdout, new RegExp(`schema version ${last}$`, 'm'));
      const practices = Number(await psql(db, 'SELECT COUNT(*) FROM prompt_best_practices WHERE workspace_id IS NULL'));
      assert.ok(practices >= 20, `${practices} built-in best practices`);

      // The serve nodes answer on the migrated database.
      for (const s of serves) {
        assert.ok(existsSync(s.portFile));
        const port = Number(readFileSync(s.portFile, 'utf8'));
        const h = await fetch(`http://127.0.0.1:${port}/healthz`);
        assert.equal(h.status, 200);
      }
    } finally {
      for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM');
      const exits = await Promise.all(procs.map((p) => p.exited));
      for (const [i, e] of exits.entries()) assert.equal(e.code, 0, `process ${i} exited ${JSON.stringify(e)}: ${procs[i].logs.slice(-2000)}`);
    }
  });
}

// `refold init` on every node at once (a deployment script that runs it before `serve`):
// each one succeeds, whichever created the workspace, and there is one workspace and one key.
test('12 rounds of 4 `refold init` at once on an empty database: all succeed, one workspace, one key', { timeout: 60000 }, async () => {
  for (let round = 0; round < 12; round++) {
    const db = await createDatabase(base);
    dbs.push(db);
    const results = await Promise.all(Array.from({ length: 4 }, () => run(['init', '--db', db, '--no-config'], { env })));
    for (const r of results) assert.equal(r.code, 0, `refold init failed: ${r.stderr}`);
    const created = results.filter((r) => /workspace "default" created/.test(r.stdout)).length;
    assert.equal(created, 1, results.map((r) => r.stdout).join('\n'));
    assert.equal(results.filter((r) => /workspace "default" already exists/.test(r.stdout)).length, 3);
    assert.equal(await psql(db, 'SELECT COUNT(*) FROM workspaces'), '1');
    assert.equal(await psql(db, 'SELECT COUNT(*) FROM api_keys'), '1');
  }
});
