// refold web UI: hash router, page shell and sign-in.
//
// Routes live in the URL fragment (#/agents/…), so the server serves one page
// and every view survives a reload, the live job view included (#/jobs/{id}).
// Each navigation renders a fresh page root; work a page leaves running
// (an EventSource, a timer) is registered with ctx.cleanup and stopped on the
// next navigation.
import { request, onUnauthorized, isSessionLost } from './api.js';
import { parseHash, setRenderer } from './nav.js';
import { h, fill, field, errorBox, markInvalid, toast, setTitle, focusIfLost } from './ui.js';
import { agentsPage } from './agents.js';
import { agentPage } from './agent.js';
import { versionPage } from './review.js';
import { jobsPage, jobPage } from './jobs.js';
import { practicesPage } from './practices.js';

const routes = [
  [/^\/signin$/, signinPage, 'signin'],
  [/^\/agents$/, agentsPage, 'agents'],
  [/^\/agents\/([^/]+)$/, agentPage, 'agents'],
  [/^\/agents\/([^/]+)\/versions\/(\d+)$/, versionPage, 'agents'],
  [/^\/jobs$/, jobsPage, 'jobs'],
  [/^\/jobs\/([^/]+)$/, jobPage, 'jobs'],
  [/^\/best-practices$/, practicesPage, 'best-practices'],
];

let current = null; // {cleanups: []} of the page on screen
let returnTo = null; // where to go after signing in

async function render({ focus = false } = {}) {
  if (current) for (const fn of current.cleanups) { try { fn(); } catch { /* ignore */ } }
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  const { path, query } = parseHash();
  let match = null, page = null, section = null;
  for (const [re, fn, sec] of routes) {
    match = path.match(re);
    if (match) { page = fn; section = sec; break; }
  }
  const main = document.getElementById('main');
  const root = h('div', { class: 'page' });
  fill(main, root);
  document.body.classList.toggle('signed-out', section === 'signin');
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const ctx = { root, query, cleanups: [], cleanup(fn) { this.cleanups.push(fn); } };
  current = ctx;
  ctx.alive = () => current === ctx;
  // An unknown route is a page too: its heading takes the focus like any other.
  if (!page) { page = notFoundPage; match = [path]; }
  const args = match.slice(1).map(decodeURIComponent);
  // A page that renders itself again, with what changed (after a dialog's
  // action: a rollback, say), does so with ctx.reload(opts), which ends the
  // same way as this first render when it fails.
  ctx.reload = async (opts) => {
    if (!ctx.alive()) return;
    if (await load(ctx, () => page(ctx, ...args, opts))) return;
    // It failed: the control that opened the dialog went with the page.
    if (ctx.alive()) focusIfLost(root.querySelector('h1'));
  };
  root.append(h('p', { class: 'loading' }, 'Loading…'));
  await load(ctx, () => page(ctx, ...args));
  // The heading takes the focus unless the page gave it to a field of its own
  // (the sign-in page to the key).
  if (focus && ctx.alive() && !root.contains(document.activeElement)) {
    const h1 = root.querySelector('h1');
    if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); }
  }
}

// One render of the page in ctx. A failure takes the page's place and says
// why, unless another page is on screen by now or the session ended (the
// sign-in page is on its way). Resolves true when the page rendered.
async function load(ctx, run) {
  try {
    await run();
    return true;
  } catch (err) {
    if (!ctx.alive() || err.status === 401) return false;
    fill(ctx.root, h('h1', null, err.status === 404 ? 'Not found' : 'Something went wrong'), errorBox(err),
      h('p', null, h('a', { href: '#/agents' }, 'Back to the agents')));
    return false;
  }
}

function notFoundPage(ctx) {
  setTitle('Not found');
  fill(ctx.root, h('h1', null, 'Page not found'), h('p', null, h('a', { href: '#/agents' }, 'Back to the agents')));
}

function signinPage(ctx) {
  setTitle('Sign in');
  const key = h('input', { type: 'password', name: 'api_key', required: true, autocomplete: 'current-password', spellcheck: 'false', placeholder: 'rf_…' });
  const msg = h('div', { class: 'signin-error' });
  const btn = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const form = h('form', { class: 'signin-form' },
    field('API key', key, 'Create one with “refold init” or “refold key create”. It is exchanged for a session cookie and not stored by the browser.'),
    msg, btn);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    fill(msg);
    markInvalid(key, null);
    btn.disabled = true;
    try {
      await request('POST', '/v1/session', { api_key: key.value.trim() }, { quiet401: true });
      const to = returnTo && !returnTo.startsWith('#/signin') ? returnTo : '#/agents';
      returnTo = null;
      // The sign-in page leaves no history entry behind: Back after signing
      // in goes to where the user was before, not to the sign-in form.
      location.replace(to);
    } catch (err) {
      const box = errorBox(err.status === 401 ? { message: 'That API key was not accepted.' } : err);
      fill(msg, box);
      if (err.status === 401) markInvalid(key, box); // read with the field, which keeps the focus
      key.select();
    } finally {
      btn.disabled = false;
    }
  });
  fill(ctx.root, h('div', { class: 'signin' },
    h('div', { class: 'signin-card card' },
      h('div', { class: 'signin-brand' }, h('img', { src: '/ui/favicon.svg', alt: '', width: 40, height: 40 })),
      h('h1', null, 'Sign in to refold'),
      h('p', { class: 'muted' }, 'Review contradictions, run prompt improvements and promote the results.'),
      form)));
  key.focus();
}

onUnauthorized(() => {
  const { path } = parseHash();
  if (path === '/signin') return;
  // An open form dialog keeps what was typed in it: it says the session
  // ended and stays open, so the user can sign in again in another tab and
  // submit again. Closing it without that goes to the sign-in page.
  const dlg = document.querySelector('dialog[open] form.dialog-form')?.closest('dialog');
  if (dlg) {
    if (!dlg.dataset.signinAfter) {
      dlg.dataset.signinAfter = '1';
      dlg.addEventListener('close', () => { if (isSessionLost()) toSignin(); }, { once: true });
    }
    return;
  }
  toSignin();
});

function toSignin() {
  if (parseHash().path === '/signin') return;
  returnTo = location.hash;
  location.replace('#/signin'); // takes the place of the page that was refused
}

document.getElementById('signout').addEventListener('click', async () => {
  try {
    await request('DELETE', '/v1/session', undefined, { quiet401: true });
  } catch (err) {
    toast(`Sign-out failed: ${err.message}`, 'error');
    return;
  }
  returnTo = null;
  location.hash = '#/signin';
  toast('Signed out.');
});

// "Skip to content" cannot be a plain #main link: the fragment holds the
// route, so following it opened "Page not found". It moves the focus itself
// and leaves the URL alone.
document.querySelector('.skip-link').addEventListener('click', (ev) => {
  ev.preventDefault();
  document.getElementById('main').focus();
});

setRenderer(() => render({ focus: true }));
window.addEventListener('hashchange', () => render({ focus: true }));
if (!location.hash) history.replaceState(null, '', '#/agents');
render();
