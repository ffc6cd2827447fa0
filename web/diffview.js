// Renders diffPrompts() output as a side-by-side or a unified table with the
// changed words marked <del>/<ins>. Long unchanged stretches fold into a
// button that unfolds them.
import { h, templateNodes } from './ui.js';

const CONTEXT = 3;

function segs(line, tag) {
  if (!line.segs.length) return '';
  return line.segs.map((s) => (s.changed ? h(tag, { class: 'w' }, templateNodes(s.text)) : templateNodes(s.text)));
}

// Equal lines, folded when long (the first and last block keep context only
// on their inner side).
function equalRows(block, isFirst, isLast, makeRow, cols) {
  const lines = block.lines;
  const keepHead = isFirst ? 0 : CONTEXT;
  const keepTail = isLast ? 0 : CONTEXT;
  if (lines.length <= keepHead + keepTail + 2) return lines.map(makeRow);
  const hidden = lines.slice(keepHead, lines.length - keepTail);
  const rows = lines.slice(0, keepHead).map(makeRow);
  const btn = h('button', { type: 'button', class: 'fold-btn' }, `Show ${hidden.length} unchanged lines`);
  const fold = h('tr', { class: 'fold' }, h('td', { colspan: cols }, btn));
  btn.addEventListener('click', () => {
    const open = hidden.map(makeRow);
    fold.replaceWith(...open);
    // The button is gone: the focus goes to the first line it showed (a
    // cell needs a tabindex to take it).
    const cell = open[0] && open[0].querySelector('td:last-child');
    if (cell) { cell.tabIndex = -1; cell.focus({ preventScroll: true }); }
  });
  rows.push(fold, ...lines.slice(lines.length - keepTail).map(makeRow));
  return rows;
}

function table(cls, colgroup, rows, label) {
  return h('div', { class: 'diff-wrap' },
    h('table', { class: `diff ${cls}`, 'aria-label': label }, colgroup, h('tbody', null, rows)));
}

export function sideBySide(model, { baseLabel, targetLabel }) {
  const rows = [];
  const only = model.blocks.length === 1;
  model.blocks.forEach((b, i) => {
    if (b.type === 'equal') {
      rows.push(...equalRows(b, i === 0 && !only, i === model.blocks.length - 1 && !only, (l) => h('tr', { class: 'eq' },
        h('td', { class: 'ln' }, l.a), h('td', { class: 'tx' }, templateNodes(l.text)),
        h('td', { class: 'ln' }, l.b), h('td', { class: 'tx' }, templateNodes(l.text))), 4));
      return;
    }
    const n = Math.max(b.left.length, b.right.length);
    for (let k = 0; k < n; k++) {
      const L = b.left[k], R = b.right[k];
      rows.push(h('tr', { class: 'chg' },
        h('td', { class: L ? 'ln del' : 'ln none' }, L ? L.no : ''),
        h('td', { class: L ? 'tx del' : 'tx none' }, L ? [h('span', { class: 'sr-only' }, 'removed: '), segs(L, 'del')] : ''),
        h('td', { class: R ? 'ln ins' : 'ln none' }, R ? R.no : ''),
        h('td', { class: R ? 'tx ins' : 'tx none' }, R ? [h('span', { class: 'sr-only' }, 'added: '), segs(R, 'ins')] : '')));
    }
  });
  const colgroup = h('colgroup', null, h('col', { class: 'c-ln' }), h('col', { class: 'c-tx' }), h('col', { class: 'c-ln' }), h('col', { class: 'c-tx' }));
  const head = h('thead', null, h('tr', null,
    h('th', { colspan: 2, scope: 'colgroup' }, baseLabel), h('th', { colspan: 2, scope: 'colgroup' }, targetLabel)));
  const t = table('diff-split', colgroup, rows, `Side-by-side diff, ${baseLabel} to ${targetLabel}`);
  t.firstChild.insertBefore(head, t.firstChild.querySelector('tbody'));
  return t;
}

export function unified(model, { baseLabel, targetLabel }) {
  const rows = [];
  const only = model.blocks.length === 1;
  model.blocks.forEach((b, i) => {
    if (b.type === 'equal') {
      rows.push(...equalRows(b, i === 0 && !only, i === model.blocks.length - 1 && !only, (l) => h('tr', { class: 'eq' },
        h('td', { class: 'ln' }, l.a), h('td', { class: 'ln' }, l.b), h('td', { class: 'tx' }, templateNodes(l.text))), 3));
      return;
    }
    for (const L of b.left) {
      rows.push(h('tr', { class: 'chg' }, h('td', { class: 'ln del' }, L.no), h('td', { class: 'ln del' }, ''),
        h('td', { class: 'tx del' }, h('span', { class: 'sr-only' }, 'removed: '), segs(L, 'del'))));
    }
    for (const R of b.right) {
      rows.push(h('tr', { class: 'chg' }, h('td', { class: 'ln ins' }, ''), h('td', { class: 'ln ins' }, R.no),
        h('td', { class: 'tx ins' }, h('span', { class: 'sr-only' }, 'added: '), segs(R, 'ins'))));
    }
  });
  const colgroup = h('colgroup', null, h('col', { class: 'c-ln' }), h('col', { class: 'c-ln' }), h('col', { class: 'c-tx' }));
  // Column headers say which version each line number belongs to (a screen
  // reader reads them with every cell).
  const head = h('thead', null, h('tr', null,
    h('th', { scope: 'col' }, baseLabel), h('th', { scope: 'col' }, targetLabel), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Line'))));
  const t = table('diff-unified', colgroup, rows, `Unified diff, ${baseLabel} to ${targetLabel}`);
  t.firstChild.insertBefore(head, t.firstChild.querySelector('tbody'));
  return t;
}
