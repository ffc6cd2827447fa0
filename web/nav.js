// URL fragment helpers shared by the router (app.js) and the pages.

// The current route: {path: '/agents/…', query: URLSearchParams}.
export function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/agents';
  const q = raw.indexOf('?');
  const path = (q >= 0 ? raw.slice(0, q) : raw).replace(/\/+$/, '') || '/agents';
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  return { path, query };
}

// Change query parameters of the current view without re-rendering it.
export function setQuery(changes) {
  const { path, query } = parseHash();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') query.delete(k);
    else query.set(k, v);
  }
  const qs = query.toString();
  history.replaceState(null, '', `#${path}${qs ? '?' + qs : ''}`);
}

let rerender = () => {};
export function setRenderer(fn) { rerender = fn; }

// Go to a fragment; re-render when it is already the current one.
export function navigate(hash) {
  if (location.hash === hash) rerender();
  else location.hash = hash;
}

export const agentHref = (id) => `#/agents/${encodeURIComponent(id)}`;
export const versionHref = (agentId, n) => `#/agents/${encodeURIComponent(agentId)}/versions/${n}`;
export const jobHref = (id) => `#/jobs/${encodeURIComponent(id)}`;
