// Secrets stay secret end to end: the LLM provider's key, echoed back by the provider in
// its error messages (as some do), and refold's own API keys and session tokens never
// reach the job's error, its events, the stored LLM calls, /metrics, the server's log
// (at debug) or the CLI's output. The unit tests check the redaction itself
// (tests/unit/test_llm.c); this checks every place a secret could end up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, startFakeLLM, llmEnv, run, waitJob, readSSE } from './lib.mjs';

const LLM_KEY = 'sk-ant-SECRETqz7Vw9Lp3XkHb2Nm8Rt';
let fake, srv, env;

before(async () => {
  fake = await startFakeLLM();
  srv = await startServer({ env: llmEnv(fake, { ANTHROPIC_API_KEY: LLM_KEY, REFOLD_LOG: 'debug' }) });
  env = { XDG_CONFIG_HOME: join(srv.dir, 'client-config'), REFOLD_URL: srv.url, REFOLD_API_KEY: srv.key, REFOLD_TTY: '' };
});
after(async () => { await srv.stop(); srv.cleanup(); fake.stop(); });

// Whether text holds secret or any 10-character piece of it.
function leaks(text, secret) {
  for (let i = 0; i + 10 <= secret.length; i++) if (text.includes(secret.slice(i, i + 10))) return true;
  return false;
}

async function agentWithContradiction(name) {
  const agent = (await srv.api('POST', '/v1/agents', { name, prompt_template: 'Answer {{q}}.' })).json;
  const ev = (await srv.api('POST', '/v1/evals', { agent_id: agent.id, name: 'judge' })).json;
  const tr = (await srv.api('POST', '/v1/traces', { agent_id: agent.id, input: 'q', output: 'a' })).json;
  await srv.api('PUT', `/v1/traces/${tr.id}/feedback`, { rating: 'negative' });
  await srv.api('POST', `/v1/evals/${ev.id}/executions`, { executions: [{ trace_id: tr.id, predicted_result: true }] });
  return agent;
}

test('a provider that echoes its API key in error messages: the key is nowhere', { timeout: 60000 }, async () => {
  // Short and long messages: a key cut in two by a length limit must not survive either.
  const pads = [0, 150, 170, 185, 190, 200, 240];
  const jobs = [];
  for (const pad of pads) {
    const agent = await agentWithContradiction(`leaky-${pad}`);
    await fake.script([], { status: 401, echo_auth: true, error: { type: 'authentication_error', message: 'x'.repeat(pad) } });
    const r = await run(['improve', agent.name], { env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.ok(!leaks(r.stdout + r.stderr, LLM_KEY), `improve output (pad ${pad}): ${r.stderr}`);
    const id = (await srv.api('GET', '/v1/jobs?limit=1')).json.data[0].id;
    const job = await waitJob(srv, id);
    assert.equal(job.status, 'failed');
    jobs.push(job);
  }
  assert.match(jobs[0].error.message, /\(key: \[redacted\]\)/, 'the echoed key was there, and redacted');
  // The provider did get the key.
  const reqs = await fake.requests();
  assert.ok(reqs.some((q) => q.headers['x-api-key'] === LLM_KEY));
  for (const job of jobs) {
    const texts = [JSON.stringify(job)];
    texts.push((await srv.api('GET', `/v1/jobs/${job.id}/events`, undefined, { headers: { accept: 'application/json' } })).text);
    texts.push(JSON.stringify(await readSSE(srv, job.id)));
    texts.push((await srv.api('GET', `/v1/jobs/${job.id}/llm-calls`)).text);
    for (const args of [['job', job.id], ['job', job.id, '--json'], ['jobs', '--json']]) {
      const r = await run(args, { env });
      texts.push(r.stdout + r.stderr);
    }
    for (const t of texts) assert.ok(!leaks(t, LLM_KEY), t.slice(0, 400));
    assert.match(job.error.message, /HTTP 401/);
  }
  // A session sign-in and the requests above: no key or token in the log or the metrics.
  const s = await fetch(`${srv.url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api_key: srv.key }) });
  const token = s.headers.get('set-cookie').match(/refold_session=([^;]+)/)[1];
  await fetch(`${srv.url}/v1/agents`, { headers: { cookie: `refold_session=${token}` } });
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  for (const secret of [LLM_KEY, srv.key, token]) {
    assert.ok(!leaks(srv.logs, secret), `the log holds a secret: ${secret.slice(0, 6)}…`);
    assert.ok(!leaks(metrics, secret));
  }
  assert.match(srv.logs, /msg="llm call"/, 'the calls were logged');
  await fake.reset();
});
