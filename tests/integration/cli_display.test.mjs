// What the client commands show people beyond the basics of cli.test.mjs: the tables'
// columns with long and wide (CJK) names, and what `job --follow` and `improve` say while
// the event stream reconnects after the server went away (a status line on a terminal, a
// line on stderr when lost and one when back otherwise), with every event still shown once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeLLM, llmEnv, run } from './lib.mjs';
import { startJobsServer } from './jobs_lib.mjs';

const TEMPLATE = 'You answer for {{company}}.\nBe brief.\n';
const A = { match: 'Identify the failure patterns',
  text: JSON.stringify({ failure_patterns: ['Guesses order numbers'], summary: 'Guessing.' }),
  usage: { input_tokens: 50, output_tokens: 10 } };
const R = { match: 'Rewrite the prompt template below',
  text: JSON.stringify({ improved_prompt: 'You answer for {{company}}.\nNever guess.\nBe brief.\n',
    changes: ['No guessing'], reasoning: 'x' }), usage: { input_tokens: 70, output_tokens: 20 } };
const UTF8 = { LANG: 'C.UTF-8', LC_ALL: '', LC_CTYPE: '' };

let fake, srv, env;
const cli = (args, extra = {}) => run(args, { env: { ...env, ...extra } });

// Columns a terminal gives s: 2 for the CJK characters used below, 1 for the rest.
const cols = (s) => [...s].reduce((n, c) => n + (/[\u3000-\u9fff]/.test(c) ? 2 : 1), 0);

before(async () => {
  fake = await startFakeLLM();
  srv = await startJobsServer(llmEnv(fake));
  env = { XDG_CONFIG_HOME: `${srv.dir}/client-config`, REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key,
    REFOLD_TTY: '', NO_COLOR: '', TERM: 'xterm', ...UTF8 };
});
after(async () => { await srv.stop(); srv.cleanup?.(); fake.stop(); });

test('agents: names over 40 columns are cut with an ellipsis, wide characters count 2: the columns line up', async () => {
  const long = 'support-agent-for-the-northern-european-region-and-more';
  for (const name of [long, '注文サポート担当エージェント', 'short'])
    assert.equal((await srv.api('POST', '/v1/agents', { name, prompt_template: TEMPLATE })).status, 201);
  for (const [lang, dots] of [[UTF8, '…'], [{ LANG: 'C', LC_ALL: '', LC_CTYPE: '' }, '...']]) {
    const r = await cli(['agents'], lang);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    // STATUS starts at the same column on every line, two after the name column.
    const at = lines.map((l) => cols(l.slice(0, l.search(/  (STATUS|confirmed)/))));
    assert.ok(at.every((c) => c === 40), `${JSON.stringify(at)}\n${r.stdout}`);
    const cut = lines.find((l) => l.startsWith('support-agent'));
    assert.equal(cut.slice(0, 40), long.slice(0, 40 - dots.length) + dots);
    assert.ok(lines.some((l) => l.startsWith('注文サポート担当エージェント  ')), r.stdout);
  }
  // --json keeps the whole name.
  const j = JSON.parse((await cli(['agents', '--json'])).stdout);
  assert.ok(j.some((a) => a.name === long));
});
