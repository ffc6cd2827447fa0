// Best practices: the built-in ones (read-only) and the workspace's own,
// which can be added and deleted. The improvement job sends some of them to
// the model when it rewrites a prompt (SPEC §7 step 4).
import { getAll, post, del, enc } from './api.js';
import { h, fill, field, empty, errorBox, formDialog, toast, setTitle, focusIfLost } from './ui.js';
import { setQuery } from './nav.js';

const CATEGORIES = ['structure', 'clarity', 'safety', 'reasoning', 'general'];

// A practice's source link: web addresses only (rows stored before the API
// refused other schemes may hold a javascript: or data: URL).
function sourceLink(url) {
  if (!url || !/^https?:\/\//i.test(url)) return null;
  return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'small' }, 'Source');
}

// Built-in rows are many and long: a disclosure each, title first.
function builtinNode(p) {
  return h('li', { class: 'practice practice-builtin', 'data-practice-id': p.id },
    h('details', null,
      h('summary', null, h('span', { class: 'practice-title' }, p.title), ' ',
        h('span', { class: 'practice-tags' }, h('span', { class: 'chip' }, p.source), ' ', h('span', { class: 'chip' }, p.category))),
      h('p', { class: 'practice-content' }, p.content),
      sourceLink(p.url)));
}

function practiceNode(p, onDelete) {
  return h('li', { class: 'practice', 'data-practice-id': p.id },
    h('div', { class: 'practice-head' },
      h('h3', null, p.title),
      h('div', { class: 'practice-tags' }, h('span', { class: 'chip' }, p.source), ' ', h('span', { class: 'chip' }, p.category))),
    h('p', { class: 'practice-content' }, p.content),
    h('div', { class: 'practice-foot' },
      sourceLink(p.url),
      onDelete ? h('button', { type: 'button', class: 'btn btn-small btn-danger-outline', 'aria-label': `Delete “${p.title}”`, onclick: () => onDelete(p) }, 'Delete') : null));
}

// focus(root): after adding or deleting, the control to take the focus the
// dialog's opener had (it was rendered again, or deleted).
export async function practicesPage(ctx, { focus } = {}) {
  setTitle('Best practices');
  const category = ctx.query.get('category') || '';
  // Only the newest render (a category chosen, a practice added or deleted)
  // fills the page. A failed read says why and keeps the page's controls.
  const gen = (ctx.practicesGen = (ctx.practicesGen || 0) + 1);
  let all = [], failed = null;
  try {
    all = await getAll(`/v1/best-practices?limit=500${category ? `&category=${enc(category)}` : ''}`);
  } catch (err) {
    failed = err;
  }
  if (!ctx.alive() || ctx.practicesGen !== gen) return;
  const own = all.filter((p) => p.builtin === false || (p.builtin === undefined && p.source === 'custom'));
  const builtin = all.filter((p) => !own.includes(p));
  const reload = (opts) => { if (ctx.alive()) practicesPage(ctx, opts); };

  const select = h('select', { id: 'bp-category' }, h('option', { value: '' }, 'All categories'),
    CATEGORIES.map((c) => h('option', { value: c, selected: c === category }, c)));
  select.addEventListener('change', () => { setQuery({ category: select.value || null }); ctx.query.set('category', select.value); reload(); });

  async function remove(p) {
    const ok = await formDialog({
      title: 'Delete this practice?',
      submitLabel: 'Delete',
      danger: true,
      build(form) { form.append(h('p', null, `“${p.title}” will no longer be sent to the model by future improvement jobs.`)); },
      async submit() { await del(`/v1/best-practices/${enc(p.id)}`); },
    });
    // The focus goes to the Delete button that takes this one's place (the
    // next practice's, else the one before), else to Add practice.
    const i = own.indexOf(p);
    if (ok) {
      toast('Practice deleted.');
      reload({ focus: (root) => {
        const dels = root.querySelectorAll('#own-practices button');
        return dels[Math.min(i, dels.length - 1)] || root.querySelector('#add-practice');
      } });
    }
  }

  function add() {
    return formDialog({
      title: 'Add a best practice',
      submitLabel: 'Add practice',
      wide: true,
      build(form) {
        form.append(
          h('div', { class: 'field-row' },
            field('Title', h('input', { name: 'title', required: true, maxlength: 200, autocomplete: 'off' })),
            field('Category', h('select', { name: 'category', required: true }, CATEGORIES.map((c) => h('option', { value: c, selected: c === (category || 'general') }, c))))),
          field('Content', h('textarea', { name: 'content', rows: 6, required: true, maxlength: 10000 }), 'The advice itself, as the model should read it.'),
          field('URL', h('input', { name: 'url', type: 'url', autocomplete: 'off', placeholder: 'https://…' }), 'Optional. Where the advice comes from.'));
      },
      async submit(form) {
        const body = { title: form.title.value.trim(), category: form.category.value, content: form.content.value.trim() };
        if (form.url.value.trim()) body.url = form.url.value.trim();
        await post('/v1/best-practices', body);
        toast('Practice added.');
        reload({ focus: (root) => root.querySelector('#add-practice') });
      },
    });
  }

  // A category change renders the page again: the new filter keeps the focus.
  const refocus = document.activeElement && document.activeElement.id === 'bp-category';
  fill(ctx.root,
    h('div', { class: 'page-head' },
      h('div', null, h('h1', null, 'Best practices'),
        h('p', { class: 'muted' }, 'Prompt-engineering advice the improvement job gives the model when it rewrites a prompt: the built-in set and your own, your own first.')),
      h('div', { class: 'actions' },
        h('div', { class: 'field inline' }, h('label', { for: 'bp-category' }, 'Category'), select),
        h('button', { type: 'button', class: 'btn btn-primary', id: 'add-practice', onclick: add }, 'Add practice'))),
    failed ? errorBox(failed, 'Could not load the best practices') : [h('section', { class: 'card', 'aria-labelledby': 'own-h' },
      h('div', { class: 'card-head' }, h('h2', { id: 'own-h' }, 'Your workspace'), h('span', { class: 'muted small' }, String(own.length))),
      own.length ? h('ul', { class: 'practices', id: 'own-practices' }, own.map((p) => practiceNode(p, remove)))
        : empty(category ? 'None of your own in this category.' : 'No practices of your own yet.')),
    h('section', { class: 'card', 'aria-labelledby': 'builtin-h' },
      h('div', { class: 'card-head' }, h('h2', { id: 'builtin-h' }, 'Built in'), h('span', { class: 'muted small' }, String(builtin.length))),
      h('p', { class: 'muted small' }, 'Written from the public prompting guides of Anthropic, OpenAI and Google. Read-only.'),
      builtin.length ? h('ul', { class: 'practices', id: 'builtin-practices' }, builtin.map(builtinNode)) : empty('None in this category.'))]);
  if (refocus) select.focus();
  if (focus) focusIfLost(focus(ctx.root));
}
