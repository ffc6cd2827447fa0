#!/usr/bin/env node
/*
 * fake_llm.mjs - a fake LLM server speaking the Anthropic Messages and OpenAI chat
 * completions wire protocols on loopback, scripted per request. Node built-ins only.
 *
 *   node tests/fakes/fake_llm.mjs [--port 0] [--host 127.0.0.1] [--script FILE] [--verbose]
 *
 * Prints {"port":N} as the first line of stdout once listening. Exits on SIGTERM, or
 * when its parent process goes away.
 *
 * PROVIDER ENDPOINTS
 *   POST /v1/messages                              Anthropic (streams when body.stream)
 *   POST /chat/completions, /v1/chat/completions   OpenAI (streams when body.stream;
 *                                                  usage chunk when stream_options.include_usage)
 * Requests are checked like the real APIs do (valid JSON, model, max_tokens and messages for
 * Anthropic, no empty or blank Anthropic turn but a final assistant one, the anthropic-version
 * and x-api-key headers): a bad one gets a 400/401 in the provider's error format and consumes
 * no scripted entry.
 *
 * CONTROL ENDPOINTS
 *   POST /_control/script    body: an array of entries (appended), or
 *                            {"responses": [...], "mode": "append"|"replace", "default": {...}}
 *   GET  /_control/script    {"queue": [...], "default": {...}|null}
 *   GET  /_control/requests  [{seq, method, path, provider, headers, body, raw_body, time_ms,
 *                              entry}] - every provider request, headers as received (nothing
 *                              redacted), body parsed (null if not JSON), time_ms = arrival of
 *                              the request head, ms since the epoch (fractional), entry = label
 *   POST /_control/reset     forget the queue, the default and the recorded requests
 * --script FILE takes the same object as POST /_control/script.
 *
 * CHOOSING AN ENTRY
 * First the oldest queued entry whose "match" is a substring of the raw request body, else the
 * oldest entry without "match"; "provider" ("anthropic"|"openai") restricts an entry to one
 * protocol. An entry is used "times" times (default 1), or forever with "persist": true. With
 * nothing queued the "default" entry answers (built in: a short valid reply).
 *
 * ENTRY FIELDS (all optional)
 *   label               name recorded with the request
 *   text                reply text ("Hello from the fake LLM.")
 *   stop_reason         Anthropic word: end_turn|max_tokens|stop_sequence|tool_use (mapped to
 *                       OpenAI stop|length|stop|tool_calls); finish_reason overrides for OpenAI
 *   refusal             the model declines with this text: OpenAI sends it as delta.refusal
 *                       pieces (message.refusal unstreamed) with content null and finish_reason
 *                       stop; Anthropic as the reply text with stop_reason refusal
 *   usage               {"input_tokens", "output_tokens"} (OpenAI: prompt/completion_tokens)
 *   status              HTTP status (200); non-2xx answers with an error body
 *   error               {"type", "message", "code"} of that error body (defaults by status)
 *   echo_auth           append the received API key to the error message (leak tests)
 *   headers             extra response headers: retry-after, retry-after-ms, x-should-retry,
 *                       request-id / x-request-id (default req_fake_<seq>) ...
 *   latency_ms          wait before sending the response head
 *   stream              true|false: override the request's choice of streaming
 *   chunk_size          characters of text per delta event (16)
 *   chunk_delay_ms      wait between delta events (0)
 *   write_size          split every write into pieces of this many bytes (cuts UTF-8 and lines)
 *   line_ending         "\n" (default) or "\r\n" for the SSE lines
 *   unknown_event       insert an event of an unknown type (Anthropic) / a comment (OpenAI)
 *   error_after_chunks  after k deltas send an error event (Anthropic `event: error`, OpenAI
 *                       `data: {"error":...}`) and end the stream; stream_error {"type",
 *                       "message"} sets it (overloaded_error / server_error)
 *   end_after_chunks    after k deltas end the response cleanly without finishing the stream
 *   stall_ms            stop sending for this long after stall_after_chunks deltas (1)
 *   reset_after_bytes   send a TCP reset after N body bytes (0: before the response head)
 *   close_after_bytes   close the connection (FIN) after N body bytes (0: before the head)
 *   reset_at_end        send the whole stream, then a TCP reset instead of its proper end
 */
import http from 'node:http';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

const DEFAULT_TEXT = 'Hello from the fake LLM.';

function parseArgs(argv) {
  const opts = { port: 0, host: '127.0.0.1', script: null, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') opts.port = Number(argv[++i]);
    else if (a === '--host') opts.host = argv[++i];
    else if (a === '--script') opts.script = argv[++i];
    else if (a === '--verbose') opts.verbose = true;
    else {
      process.stderr.write(`fake_llm: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const state = { queue: [], def: null, requests: [], seq: 0 };

const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => { if (opts.verbose) process.stderr.write(`fake_llm: ${a.join(' ')}\n`); };

function loadScript(obj) {
  if (Array.isArray(obj)) obj = { responses: obj };
  if (!obj || typeof obj !== 'object') throw new Error('script must be an array or an object');
  const list = obj.responses ?? [];
  if (!Array.isArray(list)) throw new Error('responses must be an array');
  for (const e of list) if (!e || typeof e !== 'object') throw new Error('entries must be objects');
  if (obj.mode === 'replace') state.queue = [];
  else if (obj.mode !== undefined && obj.mode !== 'append') throw new Error('mode: append|replace');
  for (const e of list) state.queue.push({ ...e, times: e.times ?? 1 });
  if (obj.default !== undefined) state.def = obj.default;
  return state.queue.length;
}

function takeEntry(provider, raw) {
  const fits = (e) => !e.provider || e.provider === provider;
  let i = state.queue.findIndex((e) => e.match !== undefined && fits(e) && raw.includes(e.match));
  if (i < 0) i = state.queue.findIndex((e) => e.match === undefined && fits(e));
  if (i < 0) return { label: 'default', ...(state.def ?? {}) };
  const e = state.queue[i];
  if (!e.persist && --e.times <= 0) state.queue.splice(i, 1);
  return e;
}

/* ---- provider vocabulary ------------------------------------------------ */

const ANTHROPIC_ERRORS = {
  400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error',
  404: 'not_found_error', 408: 'timeout_error', 409: 'conflict_error',
  413: 'request_too_large', 422: 'invalid_request_error', 429: 'rate_limit_error',
  500: 'api_error', 502: 'api_error', 503: 'api_error', 504: 'timeout_error',
  529: 'overloaded_error',
};
const MESSAGES = {
  400: 'Invalid request', 401: 'invalid x-api-key', 403: 'Permission denied',
  404: 'Not found', 408: 'Request timed out', 409: 'Conflict', 413: 'Request too large',
  422: 'Unprocessable entity', 429: 'Rate limited', 500: 'Internal server error',
  502: 'Bad gateway', 503: 'Service unavailable', 504: 'Gateway timeout', 529: 'Overloaded',
};
const OPENAI_FINISH = { end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls' };

function errorBody(provider, status, spec, req) {
  const type = spec.error?.type ?? ANTHROPIC_ERRORS[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  let message = spec.error?.message ?? MESSAGES[status] ?? `HTTP ${status}`;
  if (spec.echo_auth) message += ` (key: ${req.headers['x-api-key'] ?? req.headers.authorization ?? ''})`;
  if (provider === 'anthropic') return { type: 'error', error: { type, message } };
  return { error: { message, type, param: null, code: spec.error?.code ?? null } };
}

function estimateTokens(s) { return Math.max(1, Math.ceil(Buffer.byteLength(s ?? '') / 4)); }

function splitText(text, size) {
  const chars = Array.from(text);
  const out = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out;
}

/* ---- response writer: byte limits, resets, stalls -------------------------- */

class Out {
  constructor(req, res, spec) {
    this.req = req; this.res = res; this.spec = spec; this.sent = 0; this.dead = false;
    this.cut = spec.reset_after_bytes ?? spec.close_after_bytes ?? null;
    this.cutMode = spec.reset_after_bytes !== undefined ? 'reset' : 'close';
    res.on('close', () => { this.dead = true; });
    res.on('error', () => { this.dead = true; });
  }
  kill() {
    this.dead = true;
    const sock = this.req.socket;
    if (this.cutMode === 'reset' && typeof sock.resetAndDestroy === 'function') sock.resetAndDestroy();
    else sock.destroy();
  }
  async head(status, headers) {
    if (this.dead) return false;
    if (this.cut === 0) { this.kill(); return false; }
    this.res.writeHead(status, status === 529 ? 'Overloaded' : http.STATUS_CODES[status] ?? 'Unknown', headers);
    this.res.flushHeaders();
    return true;
  }
  writeRaw(buf) {
    return new Promise((resolve) => {
      if (this.dead) return resolve(false);
      this.res.write(buf, () => resolve(!this.dead));
    });
  }
  async write(str) {
    let buf = Buffer.from(str, 'utf8');
    if (this.dead) return false;
    if (this.cut !== null && this.sent + buf.length >= this.cut) {
      const part = buf.subarray(0, this.cut - this.sent);
      if (part.length) { await this.writeRaw(part); this.sent += part.length; }
      await sleep(30); /* let the bytes reach the client before the cut */
      this.kill();
      return false;
    }
    const size = this.spec.write_size;
    if (size > 0) {
      for (let i = 0; i < buf.length; i += size) {
        if (!(await this.writeRaw(buf.subarray(i, i + size)))) return false;
        await new Promise((r) => setImmediate(r));
      }
    } else if (!(await this.writeRaw(buf))) {
      return false;
    }
    this.sent += buf.length;
    return !this.dead;
  }
  end() { if (!this.dead) this.res.end(); }
}

/* ---- replies ------------------------------------------------------------ */

function baseHeaders(provider, spec, seq, contentType) {
  const h = { 'content-type': contentType };
  h[provider === 'anthropic' ? 'request-id' : 'x-request-id'] = `req_fake_${seq}`;
  for (const [k, v] of Object.entries(spec.headers ?? {})) h[k.toLowerCase()] = String(v);
  return h;
}

function usageOf(spec, body, raw, text) {
  return {
    input: spec.usage?.input_tokens ?? spec.usage?.prompt_tokens ?? estimateTokens(raw),
    output: spec.usage?.output_tokens ?? spec.usage?.completion_tokens ?? estimateTokens(text),
  };
}

/* A stream is a list of SSE events; `delta` marks the events that carry text. */
/* Anthropic has no refusal field: the refusal is the text, and the stop says so. */
function anthropicSpec(spec) {
  return spec.refusal === undefined ? spec : { ...spec, text: spec.refusal, stop_reason: spec.stop_reason ?? 'refusal' };
}

function anthropicEvents(spec, body, raw, seq) {
  spec = anthropicSpec(spec);
  const text = spec.text ?? DEFAULT_TEXT;
  const u = usageOf(spec, body, raw, text);
  const model = body.model ?? 'claude-fake';
  const ev = (type, data, delta = false) => ({ type, data: JSON.stringify({ type, ...data }), delta });
  const out = [
    ev('message_start', { message: { id: `msg_fake_${seq}`, type: 'message', role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null, usage: { input_tokens: u.input, output_tokens: 1 } } }),
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ev('ping', {}),
  ];
  splitText(text, spec.chunk_size ?? 16).forEach((piece, i) => {
    out.push(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } }, true));
    if (i === 0 && spec.unknown_event) out.push(ev('some_future_event', { note: 'clients must ignore this' }));
  });
  out.push(ev('content_block_stop', { index: 0 }));
  out.push(ev('message_delta', { delta: { stop_reason: spec.stop_reason ?? 'end_turn', stop_sequence: null }, usage: { output_tokens: u.output } }));
  out.push(ev('message_stop', {}));
  return out;
}

function anthropicMessage(spec, body, raw, seq) {
  spec = anthropicSpec(spec);
  const text = spec.text ?? DEFAULT_TEXT;
  const u = usageOf(spec, body, raw, text);
  return {
    id: `msg_fake_${seq}`, type: 'message', role: 'assistant', model: body.model ?? 'claude-fake',
    content: [{ type: 'text', text }], stop_reason: spec.stop_reason ?? 'end_turn',
    stop_sequence: null, usage: { input_tokens: u.input, output_tokens: u.output },
  };
}

function openaiFinish(spec) {
  return spec.finish_reason ?? OPENAI_FINISH[spec.stop_reason ?? 'end_turn'] ?? spec.stop_reason;
}

function openaiEvents(spec, body, raw, seq) {
  const refused = spec.refusal !== undefined;
  const text = refused ? spec.refusal : spec.text ?? DEFAULT_TEXT;
  const u = usageOf(spec, body, raw, text);
  const base = { id: `chatcmpl-fake-${seq}`, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: body.model ?? 'gpt-fake', system_fingerprint: 'fp_fake' };
  const includeUsage = body.stream_options?.include_usage === true;
  const chunk = (choices, extra = {}, delta = false) => ({ type: null, data: JSON.stringify({ ...base, choices, ...(includeUsage ? { usage: null } : {}), ...extra }), delta });
  const first = refused ? { role: 'assistant', content: null, refusal: '' } : { role: 'assistant', content: '', refusal: null };
  const out = [chunk([{ index: 0, delta: first, logprobs: null, finish_reason: null }])];
  splitText(text, spec.chunk_size ?? 16).forEach((piece, i) => {
    out.push(chunk([{ index: 0, delta: refused ? { refusal: piece } : { content: piece }, logprobs: null, finish_reason: null }], {}, true));
    if (i === 0 && spec.unknown_event) out.push({ comment: 'keep-alive' });
  });
  out.push(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: openaiFinish(spec) }]));
  if (includeUsage) out.push(chunk([], { usage: { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output } }));
  out.push({ type: null, data: '[DONE]' });
  return out;
}

function openaiCompletion(spec, body, raw, seq) {
  const refused = spec.refusal !== undefined;
  const text = refused ? spec.refusal : spec.text ?? DEFAULT_TEXT;
  const u = usageOf(spec, body, raw, text);
  const message = refused ? { role: 'assistant', content: null, refusal: text } : { role: 'assistant', content: text, refusal: null };
  return {
    id: `chatcmpl-fake-${seq}`, object: 'chat.completion', created: Math.floor(Date.now() / 1000),
    model: body.model ?? 'gpt-fake', system_fingerprint: 'fp_fake',
    choices: [{ index: 0, message, logprobs: null, finish_reason: openaiFinish(spec) }],
    usage: { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output },
  };
}

function sseText(e, eol) {
  if (e.comment !== undefined) return `: ${e.comment}${eol}${eol}`;
  const lines = [];
  if (e.type) lines.push(`event: ${e.type}`);
  for (const l of e.data.split('\n')) lines.push(`data: ${l}`);
  return lines.join(eol) + eol + eol;
}

function streamErrorEvent(provider, spec) {
  if (provider === 'anthropic') {
    const error = { type: spec.stream_error?.type ?? 'overloaded_error', message: spec.stream_error?.message ?? 'Overloaded' };
    return { type: 'error', data: JSON.stringify({ type: 'error', error }) };
  }
  const error = { message: spec.stream_error?.message ?? 'The server had an error while processing your request.', type: spec.stream_error?.type ?? 'server_error', param: null, code: spec.stream_error?.code ?? null };
  return { type: null, data: JSON.stringify({ error }) };
}

async function sendStream(out, provider, spec, body, raw, seq) {
  const events = provider === 'anthropic' ? anthropicEvents(spec, body, raw, seq) : openaiEvents(spec, body, raw, seq);
  const eol = spec.line_ending ?? '\n';
  if (!(await out.head(200, { ...baseHeaders(provider, spec, seq, 'text/event-stream; charset=utf-8'), 'cache-control': 'no-cache' })))
    return;
  let deltas = 0;
  for (const e of events) {
    if (e.delta && deltas > 0 && spec.chunk_delay_ms) await sleep(spec.chunk_delay_ms);
    if (out.dead) return;
    if (!(await out.write(sseText(e, eol)))) return;
    if (!e.delta) continue;
    deltas++;
    if (spec.stall_ms && deltas === (spec.stall_after_chunks ?? 1)) {
      log(`stalling ${spec.stall_ms} ms`);
      await sleep(spec.stall_ms);
    }
    if (spec.error_after_chunks !== undefined && deltas === spec.error_after_chunks) {
      await out.write(sseText(streamErrorEvent(provider, spec), eol));
      return out.end();
    }
    if (spec.end_after_chunks !== undefined && deltas === spec.end_after_chunks) return out.end();
  }
  if (spec.reset_at_end) {
    await sleep(30); /* let the last event reach the client first */
    out.cutMode = 'reset';
    return out.kill();
  }
  out.end();
}

async function sendJson(out, provider, spec, status, obj, seq) {
  if (!(await out.head(status, baseHeaders(provider, spec, seq, 'application/json')))) return;
  if (await out.write(JSON.stringify(obj))) out.end();
}

/* The checks the real APIs make before anything else. */
function invalidRequest(provider, req, body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return [400, 'invalid_request_error', 'The request body is not valid JSON.'];
  if (provider === 'anthropic') {
    if (!req.headers['anthropic-version']) return [400, 'invalid_request_error', 'anthropic-version: header is required'];
    if (!req.headers['x-api-key']) return [401, 'authentication_error', 'x-api-key header is required'];
    if (typeof body.model !== 'string') return [400, 'invalid_request_error', 'model: Field required'];
    if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) return [400, 'invalid_request_error', 'max_tokens: Field required'];
  } else if (typeof body.model !== 'string') {
    return [400, 'invalid_request_error', 'you must provide a model parameter'];
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) return [400, 'invalid_request_error', 'messages: at least one message is required'];
  for (const [i, m] of body.messages.entries()) {
    const roles = provider === 'anthropic' ? ['user', 'assistant'] : ['system', 'developer', 'user', 'assistant', 'tool'];
    if (!m || !roles.includes(m.role)) return [400, 'invalid_request_error', `messages: unexpected role ${m?.role}`];
    if (typeof m.content !== 'string' && !Array.isArray(m.content)) return [400, 'invalid_request_error', 'messages: content must be a string or an array'];
    // Anthropic refuses empty and blank turns; only the final assistant turn (a prefill) may be empty.
    const finalAssistant = i === body.messages.length - 1 && m.role === 'assistant';
    if (provider === 'anthropic' && typeof m.content === 'string' && !finalAssistant) {
      if (m.content === '') return [400, 'invalid_request_error', `messages.${i}: all messages must have non-empty content except for the optional final assistant message`];
      if (m.content.trim() === '') return [400, 'invalid_request_error', `messages.${i}: text content blocks must contain non-whitespace text`];
    }
  }
  return null;
}

async function serveProvider(req, res, provider, raw, arrival) {
  const seq = ++state.seq;
  let body = null;
  try { body = JSON.parse(raw); } catch { body = null; }
  const record = { seq, method: req.method, path: new URL(req.url, 'http://fake').pathname, provider, headers: req.headers, body, raw_body: raw, time_ms: arrival, entry: null };
  state.requests.push(record);
  const bad = invalidRequest(provider, req, body);
  if (bad) {
    const [status, type, message] = bad;
    record.entry = 'rejected';
    return sendJson(new Out(req, res, {}), provider, {}, status, errorBody(provider, status, { error: { type, message } }, req), seq);
  }
  const spec = takeEntry(provider, raw);
  record.entry = spec.label ?? null;
  log(`#${seq} ${provider} entry=${record.entry} status=${spec.status ?? 200}`);
  const out = new Out(req, res, spec);
  if (spec.latency_ms) await sleep(spec.latency_ms);
  const status = spec.status ?? 200;
  if (status < 200 || status >= 300) return sendJson(out, provider, spec, status, errorBody(provider, status, spec, req), seq);
  const streaming = spec.stream ?? body.stream === true;
  if (streaming) return sendStream(out, provider, spec, body, raw, seq);
  const obj = provider === 'anthropic' ? anthropicMessage(spec, body, raw, seq) : openaiCompletion(spec, body, raw, seq);
  return sendJson(out, provider, spec, status, obj, seq);
}

function sendControl(res, status, obj) {
  const s = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}

function serveControl(req, res, path, raw) {
  try {
    if (path === '/_control/script' && req.method === 'POST') return sendControl(res, 200, { queued: loadScript(JSON.parse(raw)) });
    if (path === '/_control/script' && req.method === 'GET') return sendControl(res, 200, { queue: state.queue, default: state.def });
    if (path === '/_control/requests' && req.method === 'GET') return sendControl(res, 200, state.requests);
    if (path === '/_control/reset' && req.method === 'POST') {
      state.queue = []; state.def = null; state.requests = []; state.seq = 0;
      return sendControl(res, 200, { ok: true });
    }
    return sendControl(res, 404, { error: `no control endpoint ${req.method} ${path}` });
  } catch (e) {
    return sendControl(res, 400, { error: String(e.message ?? e) });
  }
}

const server = http.createServer(async (req, res) => {
  const arrival = nowMs();
  const chunks = [];
  try {
    for await (const c of req) chunks.push(c);
  } catch {
    return;
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  const path = new URL(req.url, 'http://fake').pathname;
  if (path.startsWith('/_control/')) return serveControl(req, res, path, raw);
  const provider = path === '/v1/messages' ? 'anthropic'
    : path === '/chat/completions' || path === '/v1/chat/completions' ? 'openai' : null;
  if (!provider) return sendControl(res, 404, { type: 'error', error: { type: 'not_found_error', message: `no route ${path}` } });
  if (req.method !== 'POST') return sendControl(res, 405, { type: 'error', error: { type: 'invalid_request_error', message: 'use POST' } });
  try {
    await serveProvider(req, res, provider, raw, arrival);
  } catch (e) {
    process.stderr.write(`fake_llm: ${e.stack ?? e}\n`);
    if (!res.headersSent) sendControl(res, 500, { type: 'error', error: { type: 'api_error', message: 'fake_llm crashed' } });
    else res.destroy();
  }
});
server.on('clientError', (err, socket) => { socket.destroy(); });

if (opts.script) {
  try {
    loadScript(JSON.parse(fs.readFileSync(opts.script, 'utf8')));
  } catch (e) {
    process.stderr.write(`fake_llm: --script ${opts.script}: ${e.message}\n`);
    process.exit(2);
  }
}

server.listen(opts.port, opts.host, () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});

const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 500).unref();
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
