/*
 * llm_fidelity - the fake LLM server (tests/fakes/fake_llm.mjs) speaks the real wire
 * protocols: the official @anthropic-ai/sdk and openai npm clients, pointed at it through
 * their baseURL option, parse its streamed and non-streamed replies (text, usage, stop
 * reason, request id), surface its errors with the right status and message, and retry
 * on its retry headers exactly as they do against the real services. Also covers the
 * control API other suites rely on (matching by body substring, default reply, reset).
 *
 * The SDKs come from tests/node_modules (CTest's set-up test npm_deps installs them).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';

const testsDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const KEY = 'sk-fidelity-test-key';

let fake;
let base;
let Anthropic;
let OpenAI;

async function control(method, path, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.equal(r.status, 200, `control ${method} ${path}`);
  return r.json();
}

async function script(entries) {
  await control('POST', '/_control/reset', {});
  await control('POST', '/_control/script', entries);
}

const requests = () => control('GET', '/_control/requests');

before(async () => {
  const require = createRequire(join(testsDir, 'package.json'));
  Anthropic = require('@anthropic-ai/sdk');
  OpenAI = require('openai');

  fake = spawn(process.execPath, [join(testsDir, 'fakes', 'fake_llm.mjs'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: fake.stdout });
    rl.once('line', (l) => { rl.close(); resolve(l); });
    fake.once('exit', (code) => reject(new Error(`fake_llm exited with ${code}`)));
  });
  base = `http://127.0.0.1:${JSON.parse(line).port}`;
});

after(() => {
  fake?.kill('SIGTERM');
});

const anthropic = (opts = {}) => new Anthropic({ apiKey: KEY, baseURL: base, maxRetries: 0, ...opts });
const openai = (opts = {}) => new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0, ...opts });
const userMessages = [{ role: 'user', content: 'Name a colour.' }];

/* ---- Anthropic ------------------------------------------------------------ */

test('anthropic sdk: non-streamed reply', async () => {
  await script([{ text: 'Blue, plainly.', usage: { input_tokens: 12, output_tokens: 4 } }]);
  const msg = await anthropic().messages.create({ model: 'claude-test', max_tokens: 50, messages: userMessages });
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.deepEqual(msg.content, [{ type: 'text', text: 'Blue, plainly.' }]);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.deepEqual(msg.usage, { input_tokens: 12, output_tokens: 4 });
  assert.equal(msg.model, 'claude-test');
  assert.equal(msg._request_id, 'req_fake_1');
  const [req] = await requests();
  assert.equal(req.path, '/v1/messages');
  assert.equal(req.headers['x-api-key'], KEY);
  assert.equal(req.headers['anthropic-version'], '2023-06-01');
  assert.equal(req.body.max_tokens, 50);
});

test('anthropic sdk: streamed events in the documented order', async () => {
  await script([{ text: 'Green — or vert 🌿.', chunk_size: 3, usage: { input_tokens: 20, output_tokens: 7 } }]);
  const stream = await anthropic().messages.create({ model: 'claude-test', max_tokens: 50, messages: userMessages, stream: true });
  const types = [];
  let text = '';
  let usage;
  let stop;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'message_start') assert.equal(ev.message.usage.input_tokens, 20);
    if (ev.type === 'content_block_delta') text += ev.delta.text;
    if (ev.type === 'message_delta') { usage = ev.usage; stop = ev.delta.stop_reason; }
  }
  assert.equal(text, 'Green — or vert 🌿.');
  assert.equal(stop, 'end_turn');
  assert.equal(usage.output_tokens, 7);
  const deltas = types.filter((t) => t === 'content_block_delta').length;
  assert.equal(deltas, Math.ceil(Array.from('Green — or vert 🌿.').length / 3));
  assert.deepEqual(types.filter((t) => t !== 'content_block_delta'),
    ['message_start', 'content_block_start', 'content_block_stop', 'message_delta', 'message_stop']);
});

test('anthropic sdk: MessageStream accumulates a max_tokens reply sent in odd pieces', async () => {
  await script([{ text: 'A reply cut short by max_tok', stop_reason: 'max_tokens', chunk_size: 4, write_size: 5,
    line_ending: '\r\n', unknown_event: true, usage: { input_tokens: 9, output_tokens: 16 } }]);
  const stream = anthropic().messages.stream({ model: 'claude-test', max_tokens: 16, messages: userMessages });
  let seen = '';
  stream.on('text', (t) => { seen += t; });
  const msg = await stream.finalMessage();
  assert.equal(seen, 'A reply cut short by max_tok');
  assert.equal(msg.content[0].text, 'A reply cut short by max_tok');
  assert.equal(msg.stop_reason, 'max_tokens');
  assert.equal(msg.usage.output_tokens, 16);
  assert.equal(msg.usage.input_tokens, 9);
});

test('anthropic sdk: HTTP errors carry status, type, message and request id', async () => {
  const cases = [
    [400, 'BadRequestError', 'invalid_request_error', 'max_tokens: too large'],
    [401, 'AuthenticationError', 'authentication_error', 'invalid x-api-key'],
    [429, 'RateLimitError', 'rate_limit_error', 'Rate limited'],
    [529, 'InternalServerError', 'overloaded_error', 'Overloaded'],
  ];
  for (const [status, cls, type, message] of cases) {
    await script([{ status, error: { message } }]);
    await assert.rejects(
      anthropic().messages.create({ model: 'claude-test', max_tokens: 50, messages: userMessages }),
      (err) => {
        assert.equal(err.constructor.name, cls);
        assert.equal(err.status, status);
        assert.equal(err.error.type, 'error');
        assert.equal(err.error.error.type, type);
        assert.equal(err.error.error.message, message);
        assert.equal(err.request_id, 'req_fake_1');
        return true;
      });
  }
});

test('anthropic sdk: an error event after a 200 fails the stream', async () => {
  await script([{ text: 'partial partial partial', chunk_size: 4, error_after_chunks: 2 }]);
  const stream = anthropic().messages.stream({ model: 'claude-test', max_tokens: 50, messages: userMessages });
  let seen = '';
  stream.on('text', (t) => { seen += t; });
  await assert.rejects(stream.finalMessage(), /overloaded_error/);
  assert.equal(seen, 'partial '); /* the two deltas before the error */
});

test('anthropic sdk: retries on the fake\'s 529 and retry-after-ms, stops on x-should-retry: false', async () => {
  await script([{ status: 529, times: 2, headers: { 'retry-after-ms': '20' } }, { text: 'after two retries' }]);
  const msg = await anthropic({ maxRetries: 2 }).messages.create({ model: 'claude-test', max_tokens: 50, messages: userMessages });
  assert.equal(msg.content[0].text, 'after two retries');
  const reqs = await requests();
  assert.deepEqual(reqs.map((r) => r.headers['x-stainless-retry-count']), ['0', '1', '2']);
  assert.ok(reqs[1].time_ms - reqs[0].time_ms >= 19);

  await script([{ status: 529, headers: { 'x-should-retry': 'false' } }, { text: 'not reached' }]);
  await assert.rejects(
    anthropic({ maxRetries: 2 }).messages.create({ model: 'claude-test', max_tokens: 50, messages: userMessages }),
    (err) => err.status === 529);
  assert.equal((await requests()).length, 1);
});

test('anthropic sdk: a connection reset surfaces as a connection error', async () => {
  await script([{ reset_after_bytes: 0 }]);
  await assert.rejects(
    anthropic().messages.create({ model: 'claude-test', max_tokens: 50, messages: userMessages }),
    (err) => err.constructor.name === 'APIConnectionError');
});

/* ---- OpenAI --------------------------------------------------------------- */

test('openai sdk: non-streamed reply', async () => {
  await script([{ text: 'Red.', usage: { input_tokens: 14, output_tokens: 2 } }]);
  const res = await openai().chat.completions.create({ model: 'gpt-test', messages: userMessages, max_tokens: 20 });
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.choices[0].message.role, 'assistant');
  assert.equal(res.choices[0].message.content, 'Red.');
  assert.equal(res.choices[0].finish_reason, 'stop');
  assert.deepEqual(res.usage, { prompt_tokens: 14, completion_tokens: 2, total_tokens: 16 });
  assert.equal(res._request_id, 'req_fake_1');
  const [req] = await requests();
  assert.equal(req.path, '/v1/chat/completions');
  assert.equal(req.headers.authorization, `Bearer ${KEY}`);
});

test('openai sdk: streamed chunks with include_usage and a length finish', async () => {
  await script([{ text: 'Yellow, then orange, then', stop_reason: 'max_tokens', chunk_size: 5, write_size: 3,
    usage: { input_tokens: 30, output_tokens: 8 } }]);
  const stream = await openai().chat.completions.create({
    model: 'gpt-test', messages: userMessages, max_tokens: 8, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish;
  let usage;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    const c = chunk.choices[0];
    if (c?.delta?.content) text += c.delta.content;
    if (c?.finish_reason) finish = c.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'Yellow, then orange, then');
  assert.equal(finish, 'length');
  assert.deepEqual(usage, { prompt_tokens: 30, completion_tokens: 8, total_tokens: 38 });
  assert.equal(chunks, 1 + 5 + 1 + 1); /* role, deltas, finish, usage */
});

test('openai sdk: no usage chunk unless asked, and the unprefixed path works', async () => {
  await script([{ text: 'Purple.' }]);
  const client = new OpenAI({ apiKey: KEY, baseURL: base, maxRetries: 0 });
  const stream = await client.chat.completions.create({ model: 'gpt-test', messages: userMessages, stream: true });
  let text = '';
  for await (const chunk of stream) {
    assert.equal(chunk.usage, undefined);
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.equal(text, 'Purple.');
  assert.equal((await requests())[0].path, '/chat/completions');
});

test('openai sdk: a refusal comes as delta.refusal pieces (message.refusal unstreamed), content null', async () => {
  const no = "I'm sorry, I can't help with that request.";
  await script([{ refusal: no, chunk_size: 7 }, { refusal: no }]);
  const stream = openai().beta.chat.completions.stream({ model: 'gpt-test', messages: userMessages, stream_options: { include_usage: true } });
  const pieces = [];
  stream.on('refusal.delta', ({ delta }) => pieces.push(delta));
  const done = await stream.finalChatCompletion();
  assert.equal(pieces.join(''), no);
  assert.equal(pieces.length, Math.ceil(no.length / 7));
  assert.equal(done.choices[0].message.refusal, no);
  assert.equal(done.choices[0].message.content, null);
  assert.equal(done.choices[0].finish_reason, 'stop');
  const res = await openai().chat.completions.create({ model: 'gpt-test', messages: userMessages });
  assert.equal(res.choices[0].message.refusal, no);
  assert.equal(res.choices[0].message.content, null);
  assert.equal(res.choices[0].finish_reason, 'stop');
});

test('openai sdk: HTTP errors carry status, type, code and message', async () => {
  const cases = [
    [400, 'BadRequestError', "Invalid 'max_tokens'", 'invalid_value'],
    [401, 'AuthenticationError', 'Incorrect API key provided', 'invalid_api_key'],
    [529, 'InternalServerError', 'Overloaded', null],
  ];
  for (const [status, cls, message, code] of cases) {
    await script([{ status, error: { message, code, type: 'some_type' } }]);
    await assert.rejects(
      openai().chat.completions.create({ model: 'gpt-test', messages: userMessages }),
      (err) => {
        assert.equal(err.constructor.name, cls);
        assert.equal(err.status, status);
        assert.equal(err.type, 'some_type');
        assert.equal(err.code, code);
        assert.equal(err.message, `${status} ${message}`);
        assert.equal(err.request_id, 'req_fake_1');
        return true;
      });
  }
});

test('openai sdk: an error object inside the stream is thrown', async () => {
  await script([{ text: 'will break', chunk_size: 2, error_after_chunks: 1,
    stream_error: { message: 'The model crashed', type: 'server_error' } }]);
  const stream = await openai().chat.completions.create({ model: 'gpt-test', messages: userMessages, stream: true });
  await assert.rejects(async () => { for await (const chunk of stream) void chunk; },
    (err) => err.constructor.name === 'APIError' && /The model crashed/.test(err.message));
});

test('openai sdk: retries on 429 with retry-after', async () => {
  await script([{ status: 429, headers: { 'retry-after': '0.05' } }, { text: 'ok now' }]);
  const res = await openai({ maxRetries: 1 }).chat.completions.create({ model: 'gpt-test', messages: userMessages });
  assert.equal(res.choices[0].message.content, 'ok now');
  const reqs = await requests();
  assert.equal(reqs.length, 2);
  assert.ok(reqs[1].time_ms - reqs[0].time_ms >= 49);
});

/* ---- the control API ------------------------------------------------------ */

test('fake: entries match by body substring first, then FIFO; default and persist', async () => {
  await control('POST', '/_control/reset', {});
  await control('POST', '/_control/script', {
    responses: [
      { label: 'fifo-1', text: 'first in line' },
      { label: 'rewrite', match: 'REWRITE THE PROMPT', text: 'the rewrite' },
      { label: 'fifo-2', text: 'second in line', provider: 'openai' },
    ],
    default: { text: 'the default' },
  });
  const ask = (content) => anthropic().messages.create({ model: 'm', max_tokens: 5, messages: [{ role: 'user', content }] });
  assert.equal((await ask('please REWRITE THE PROMPT now')).content[0].text, 'the rewrite');
  assert.equal((await ask('anything')).content[0].text, 'first in line');
  assert.equal((await ask('anything')).content[0].text, 'the default'); /* fifo-2 is openai only */
  const res = await openai().chat.completions.create({ model: 'm', messages: userMessages });
  assert.equal(res.choices[0].message.content, 'second in line');
  assert.deepEqual((await requests()).map((r) => r.entry), ['rewrite', 'fifo-1', 'default', 'fifo-2']);

  await control('POST', '/_control/script', { mode: 'replace', responses: [{ text: 'always', persist: true }] });
  for (let i = 0; i < 3; i++) assert.equal((await ask('x')).content[0].text, 'always');
  assert.equal((await control('GET', '/_control/script')).queue.length, 1);

  await control('POST', '/_control/reset', {});
  assert.deepEqual(await requests(), []);
  assert.equal((await ask('x')).content[0].text, 'Hello from the fake LLM.');
});

test('fake: rejects malformed requests like the real APIs, without consuming an entry', async () => {
  await script([{ text: 'kept for later' }]);
  const r = await fetch(`${base}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': KEY },
    body: JSON.stringify({ model: 'm', max_tokens: 5, messages: userMessages }),
  });
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /anthropic-version/);
  const msg = await anthropic().messages.create({ model: 'm', max_tokens: 5, messages: userMessages });
  assert.equal(msg.content[0].text, 'kept for later');
});
