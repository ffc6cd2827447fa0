// The refold HTTP API as seen from the browser: cookie session, JSON in and
// out, the X-Requested-With header on every write (SPEC §4.1), and one place
// that sends the user back to the sign-in page on a 401.

export class ApiError extends Error {
  constructor(status, body, fallback) {
    const e = body && body.error;
    super((e && e.message) || fallback || `HTTP ${status}`);
    this.status = status;
    this.code = e ? e.code : null;
    this.details = (e && e.details) || {};
    this.requestId = e ? e.request_id : null;
  }
}

let unauthorized = () => {};
export function onUnauthorized(fn) { unauthorized = fn; }

// Did the newest answer say the session is gone? A later success (the user
// signed in again, perhaps in another tab) clears it.
let sessionLost = false;
export const isSessionLost = () => sessionLost;

// Full request: resolves {status, json, headers}; rejects with ApiError on a
// non-2xx answer. A 401 also calls the unauthorized handler unless quiet401.
export async function request(method, path, body, { headers = {}, quiet401 = false } = {}) {
  const h = { Accept: 'application/json', ...headers };
  const init = { method, headers: h, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET' && method !== 'HEAD') h['X-Requested-With'] = 'refold';
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, null, 'The server could not be reached. Check that refold is running.');
  }
  const text = await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (res.status === 401 && !quiet401) { sessionLost = true; unauthorized(); }
  if (res.ok) sessionLost = false;
  if (!res.ok) throw new ApiError(res.status, json);
  return { status: res.status, json, headers: res.headers };
}

export const get = async (path, opts) => (await request('GET', path, undefined, opts)).json;
export const post = async (path, body = {}, opts) => (await request('POST', path, body, opts)).json;
export const del = async (path, opts) => (await request('DELETE', path, undefined, opts)).json;

// Every item of a list endpoint, following next_cursor (up to max items).
export async function getAll(path, max = 2000) {
  const out = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const url = cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path;
    const page = await get(url);
    const data = Array.isArray(page) ? page : page.data || [];
    out.push(...data);
    cursor = Array.isArray(page) ? null : page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}

// A list answer as an array, whatever its envelope.
export const items = (page) => (Array.isArray(page) ? page : (page && page.data) || []);

// Was this 404 "the endpoint does not exist on this server" (an older build,
// or a feature not deployed), as opposed to "no such object"?
export const isMissingEndpoint = (err) =>
  err instanceof ApiError && (err.status === 404 || err.status === 405) && /endpoint/i.test(err.message);

export const enc = encodeURIComponent;

// A random Idempotency-Key; crypto.randomUUID needs a secure context, plain
// http on a LAN address is not one.
export function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
