// Small DOM helpers shared by the pages. Everything is built with
// createElement and textContent: no HTML strings, so API data can never
// inject markup (and the CSP forbids inline scripts and styles anyway).

// h('a', {href, class, onclick, ...}, child, ...). Children may be strings,
// nodes, arrays, null or false. Attribute keys starting with "on" become
// listeners; true/false toggle boolean attributes.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'value' && (tag === 'input' || tag === 'textarea' || tag === 'select')) el.value = v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

// Replace el's children, skipping null/false like h() does.
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

let idCounter = 0;
export const uid = (p = 'f') => `${p}-${++idCounter}`;

// A labelled form field: label + control (+ hint), ids wired up.
export function field(label, control, hint) {
  const id = control.id || uid();
  control.id = id;
  const parts = [h('label', { for: id }, label)];
  if (hint) {
    const hid = uid('hint');
    control.setAttribute('aria-describedby', hid);
    parts.push(control, h('p', { class: 'hint', id: hid }, hint));
  } else parts.push(control);
  return h('div', { class: 'field' }, parts);
}

// Mark a control invalid with the error box that explains it (its text is
// read with the field), or clear the mark (box null).
export function markInvalid(control, box) {
  const ids = (control.getAttribute('aria-describedby') || '').split(/\s+/).filter((x) => x && !x.startsWith('err-'));
  if (box) {
    box.id = box.id || uid('err');
    ids.unshift(box.id);
    control.setAttribute('aria-invalid', 'true');
  } else control.removeAttribute('aria-invalid');
  if (ids.length) control.setAttribute('aria-describedby', ids.join(' '));
  else control.removeAttribute('aria-describedby');
}

// Timestamps: relative text, full time in the title and datetime attribute.
const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
export function ago(iso) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((t - Date.now()) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return rtf.format(s, 'second');
  if (abs < 2700) return rtf.format(Math.round(s / 60), 'minute');
  if (abs < 79200) return rtf.format(Math.round(s / 3600), 'hour');
  if (abs < 26 * 86400) return rtf.format(Math.round(s / 86400), 'day');
  // Month by name: 10/11/2026 reads differently in Europe and the US.
  return new Date(t).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}
const fullTime = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: fullTime(iso) }, ago(iso));
}
// A time of day ("14:03:07", or "02:03:07 PM" where the locale says so) for lines
// read in sequence, such as a job's log; the whole date in the title. It stays
// as written (class clock): it is not a relative time.
export function clock(iso, cls = '') {
  if (!iso || Number.isNaN(Date.parse(iso))) return null;
  const text = new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return h('time', { class: `clock ${cls}`.trim(), datetime: iso, title: fullTime(iso) }, text);
}
// A page left open would keep saying "created 5 seconds ago": every relative
// time on screen is worked out again each 30 s.
setInterval(() => {
  for (const t of document.querySelectorAll('time[datetime]:not(.clock)')) {
    const text = ago(t.getAttribute('datetime'));
    if (t.textContent !== text) t.textContent = text;
  }
}, 30000);

export const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(x * 100 >= 10 || x === 0 ? 0 : 1)}%`);
export const num = (x) => (x === null || x === undefined ? '—' : Number(x).toLocaleString());
// "1 contradiction", "1,005 contradictions".
export const count = (n, one, many = `${one}s`) => `${num(n)} ${Number(n) === 1 ? one : many}`;

export function badge(status, extra) {
  return h('span', { class: `badge badge-${String(status).replace(/[^a-z_]/g, '')}${extra ? ' ' + extra : ''}` }, String(status).replace(/_/g, ' '));
}

export function shortId(id) {
  if (!id) return '—';
  const i = id.indexOf('_');
  return i > 0 ? `${id.slice(0, i + 1)}…${id.slice(-6)}` : id;
}

export function excerpt(text, n = 140) {
  if (!text) return '';
  const t = String(text).replace(/\s+/g, ' ').trim();
  return t.length > n ? t.slice(0, n - 1) + '…' : t;
}

// A prompt template with its {{variables}} highlighted.
const VAR = /\{\{\s*[A-Za-z_][A-Za-z0-9_.]*\s*\}\}/g;
export function templateNodes(text) {
  const out = [];
  let last = 0;
  for (const m of String(text || '').matchAll(VAR)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h('mark', { class: 'var' }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < String(text || '').length) out.push(text.slice(last));
  return out;
}

export function errorBox(err, what) {
  const msg = err && err.message ? err.message : String(err);
  return h('div', { class: 'alert alert-error', role: 'alert' },
    what ? h('strong', null, what + ': ') : null, msg,
    err && err.requestId ? h('span', { class: 'muted small' }, ` (request ${err.requestId})`) : null);
}

export function empty(text, ...more) {
  return h('div', { class: 'empty' }, h('p', null, text), more);
}

// Toasts, announced through the live regions in index.html: a success
// ("Practice added.") politely from #toast-status, and goes after 4 s; an
// error from #toast-alerts (role=alert), and stays until its Dismiss button
// is pressed (WCAG 2.2.1: nobody has to read it in time). Outside an open
// modal dialog everything is inert and hidden from screen readers, live
// regions included, and the dialog's backdrop covers it: a toast written
// while a dialog is open (the dialog's action succeeded) waits for it to close.
export function toast(text, kind = 'ok') {
  const open = document.querySelector('dialog[open]');
  if (open) {
    open.addEventListener('close', () => setTimeout(() => toast(text, kind), 50), { once: true });
    return;
  }
  const error = kind === 'error';
  const box = document.getElementById(error ? 'toast-alerts' : 'toast-status');
  if (!box) return;
  if (!error) {
    const t = h('div', { class: `toast toast-${kind}` }, text);
    box.append(t);
    while (box.children.length > 3) box.firstElementChild.remove();
    setTimeout(() => t.remove(), 4000);
    return;
  }
  // The same error again replaces the one on screen (and is read again).
  for (const old of [...box.children]) if (old.firstElementChild?.textContent === text) old.remove();
  const t = h('div', { class: 'toast toast-error' }, h('span', { class: 'toast-text' }, text),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', title: 'Dismiss', onclick: () => {
      const hadFocus = t.contains(document.activeElement);
      const next = t.nextElementSibling || t.previousElementSibling;
      t.remove();
      if (hadFocus) (next ? next.querySelector('button') : document.getElementById('main')).focus();
    } }, '×'));
  box.append(t);
  while (box.children.length > 5) box.firstElementChild.remove();
}

// An error toast stays, and may cover the control that has the focus: Escape
// dismisses the newest one without moving the focus (WCAG 2.4.11). An open
// dialog has Escape to itself.
document.addEventListener('keydown', (ev) => {
  if (ev.key !== 'Escape' || ev.defaultPrevented || document.querySelector('dialog[open]')) return;
  const last = document.getElementById('toast-alerts')?.lastElementChild;
  if (last) last.querySelector('button.toast-close').click();
});

// A modal <dialog> built around a form. build(form) adds the fields; submit
// receives the form and returns a promise; a rejection shows its message in
// the dialog (role=alert) and keeps it open; an error that names a field
// (details.field) marks the control of that name. Resolves true when
// submitted, false if closed.
export function formDialog({ title, submitLabel = 'Save', danger = false, build, submit, wide = false }) {
  return new Promise((resolve) => {
    const titleId = uid('dlg');
    const errBox = h('div', { class: 'dialog-error' });
    const cancelBtn = h('button', { type: 'button', class: 'btn', onclick: () => dlg.close() }, 'Cancel');
    const submitBtn = h('button', { type: 'submit', class: danger ? 'btn btn-danger' : 'btn btn-primary' }, submitLabel);
    const form = h('form', { class: 'dialog-form', method: 'dialog', novalidate: false });
    const dlg = h('dialog', { class: wide ? 'modal modal-wide' : 'modal', 'aria-labelledby': titleId },
      h('div', { class: 'modal-head' },
        h('h2', { id: titleId }, title),
        h('button', { type: 'button', class: 'btn btn-ghost btn-icon', 'aria-label': 'Close', onclick: () => dlg.close() }, '×')),
      form);
    build(form);
    append(form, [errBox, h('div', { class: 'dialog-actions' },
      cancelBtn, submitBtn)]);
    let done = false;
    let busy = false; // a submit is in flight: another Enter sends nothing
    let invalid = null; // the field the last error named
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (busy || !form.reportValidity()) return;
      // aria-disabled rather than disabled: a disabled button drops the
      // focus (to the body, outside the dialog's content) while the server
      // answers, and it was not given back after an error.
      busy = true;
      submitBtn.setAttribute('aria-disabled', 'true');
      errBox.replaceChildren();
      if (invalid) { markInvalid(invalid, null); invalid = null; }
      try {
        await submit(form);
        done = true;
        dlg.close();
      } catch (err) {
        // Closed (Escape, Cancel) while the server answered: the error would
        // go with the dialog, and the user may think the action was done.
        // A 401 has sent the page to the sign-in form already.
        if (!dlg.isConnected) {
          if (err.status !== 401) toast(`${submitLabel} failed: ${err.message}`, 'error');
          return;
        }
        const box = errorBox(err.status === 401
          ? { message: 'Your session has ended. Sign in again in another tab, then submit again: what you typed here is kept.' }
          : err);
        fill(errBox, box);
        // An error about one field (details.field, named like the control)
        // marks that field invalid, is read with it, and takes the focus there.
        const name = err.status !== 401 && err.details && err.details.field;
        const control = name ? form.elements.namedItem(name) : null;
        if (control && control.focus) {
          invalid = control;
          markInvalid(control, box);
          control.focus();
        }
      } finally {
        busy = false;
        submitBtn.removeAttribute('aria-disabled');
      }
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(done); });
    document.body.append(dlg);
    dlg.showModal();
    // The focus starts on the first field (the ARIA dialog pattern), not on
    // Close, the first control in the DOM; in a dialog without fields (a
    // confirmation), on Cancel, the least destructive choice.
    const first = [...form.elements].find((el) => el.matches('input:not([type=hidden]), select, textarea') && !el.disabled);
    (first || cancelBtn).focus();
  });
}

// A read-only modal (trace viewer and the like). Its heading takes the focus
// when it opens: there is no field to start on, and from the top the reader
// goes down through what it shows (Close is the next Tab stop).
export function infoDialog(title, body) {
  const titleId = uid('dlg');
  const heading = h('h2', { id: titleId, tabindex: -1 }, title);
  const dlg = h('dialog', { class: 'modal modal-wide', 'aria-labelledby': titleId },
    h('div', { class: 'modal-head' },
      heading,
      h('button', { type: 'button', class: 'btn btn-ghost btn-icon', 'aria-label': 'Close', onclick: () => dlg.close() }, '×')),
    h('div', { class: 'modal-body' }, body));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  heading.focus();
  return dlg;
}

// After a dialog's action re-rendered the page, the control that opened it
// is gone and the focus fell back to the body: give it to el instead (a
// heading takes it with tabindex -1). Does nothing while something else has
// the focus.
export function focusIfLost(el) {
  const a = document.activeElement;
  if (!el || (a && a !== document.body && a.isConnected)) return;
  if (el.tabIndex < 0 && !el.hasAttribute('tabindex')) el.tabIndex = -1;
  el.focus();
}

// Pretty JSON in a <pre>.
export function jsonBlock(v) {
  // tabindex: it scrolls when long, and the keyboard must reach it to scroll it.
  return h('pre', { class: 'code json', tabindex: 0 }, JSON.stringify(v, null, 2));
}

// A table that becomes a list of cards on narrow screens: every cell carries
// its column name in data-label for the CSS to show.
export function table(columns, rows, { caption, rowAttrs } = {}) {
  const thead = h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label))));
  const tbody = h('tbody', null, rows.map((r, i) =>
    h('tr', rowAttrs ? rowAttrs(r, i) : null, columns.map((c) =>
      h('td', { 'data-label': c.label, class: c.class }, c.cell(r, i))))));
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'table responsive' }, caption ? h('caption', { class: 'sr-only' }, caption) : null, thead, tbody));
}

// "Load more" under a list. load() fetches the next page, adds its rows and
// resolves { added, first, done }: the number of rows added, the first new
// row's control and whether the list has ended (the button then hides).
// While a page loads the button is aria-disabled, not disabled (a disabled
// button drops the keyboard focus): it keeps the focus while more remain, and
// when it hides the focus moves to the first new row. The count of rows added
// is announced in a polite live region. A page that fails to load says so
// beside the button (role=alert), until the next try.
export function loadMore(load, { hidden = false } = {}) {
  const status = h('span', { class: 'muted small load-more-status', 'aria-live': 'polite' });
  const error = h('span', { class: 'small load-more-error inline-error', role: 'alert' });
  const btn = h('button', { type: 'button', class: 'btn load-more' }, 'Load more');
  const box = h('p', { class: 'load-more-row', hidden }, btn, ' ', status, ' ', error);
  let busy = false;
  btn.addEventListener('click', async () => {
    if (busy) return;
    busy = true;
    btn.setAttribute('aria-disabled', 'true');
    error.textContent = '';
    try {
      const r = await load();
      if (r) {
        const hadFocus = document.activeElement === btn;
        status.textContent = r.added ? `${r.added.toLocaleString()} more shown.` : '';
        box.hidden = !!r.done;
        if (r.done && hadFocus && r.first) r.first.focus();
      }
    } catch (err) {
      error.textContent = `Could not load more: ${err.message}`;
    } finally {
      busy = false;
      btn.removeAttribute('aria-disabled');
    }
  });
  return { box, button: btn, show(on) { box.hidden = !on; } };
}

export function statCard(label, value, sub, kind) {
  return h('div', { class: `stat${kind ? ' stat-' + kind : ''}` },
    h('div', { class: 'stat-value' }, value),
    h('div', { class: 'stat-label' }, label),
    sub ? h('div', { class: 'stat-sub' }, sub) : null);
}

export function setTitle(...parts) {
  document.title = [...parts.filter(Boolean), 'refold'].join(' · ');
}
