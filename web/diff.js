// Line and word diffs for prompt review, computed in the browser.
//
// diffSeq() is Myers' O(ND) algorithm over any two arrays. diffPrompts() diffs
// two templates line by line, then diffs each changed block word by word so the
// review can highlight exactly the words that changed. Pure functions, no DOM.

// Past this many edit steps the trace gets large; the rest is reported as a
// plain replacement instead (only a wholesale rewrite of a huge text hits it).
const MAX_EDIT_STEPS = 4000;

// Myers on the middle part of a and b (common prefix and suffix already cut).
// Returns ops {t: '=' | '-' | '+', a?, b?} with indices into a and b.
function myers(a, b) {
  const n = a.length, m = b.length;
  if (n === 0) return b.map((_, j) => ({ t: '+', b: j }));
  if (m === 0) return a.map((_, i) => ({ t: '-', a: i }));
  const max = n + m;
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace = [];
  let found = false;
  for (let d = 0; d <= max && !found; d++) {
    if (d > MAX_EDIT_STEPS) {
      return [...a.map((_, i) => ({ t: '-', a: i })), ...b.map((_, j) => ({ t: '+', b: j }))];
    }
    trace.push(v.slice(off - d, off + d + 1));
    for (let k = -d; k <= d; k += 2) {
      let x = (k === -d || (k !== d && v[off + k - 1] < v[off + k + 1])) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) { x++; y++; }
      v[off + k] = x;
      if (x >= n && y >= m) { found = true; break; }
    }
  }
  // Walk back from (n, m) through the saved frontiers.
  const out = [];
  let x = n, y = m;
  for (let d = trace.length - 1; d >= 0; d--) {
    if (d === 0) {
      while (x > 0 && y > 0) { out.push({ t: '=', a: x - 1, b: y - 1 }); x--; y--; }
      break;
    }
    const fr = trace[d]; // frontier after step d-1, indexed by k + d
    const k = x - y;
    const prevK = (k === -d || (k !== d && fr[k - 1 + d] < fr[k + 1 + d])) ? k + 1 : k - 1;
    const prevX = fr[prevK + d];
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) { out.push({ t: '=', a: x - 1, b: y - 1 }); x--; y--; }
    if (x === prevX) out.push({ t: '+', b: y - 1 });
    else out.push({ t: '-', a: x - 1 });
    x = prevX; y = prevY;
  }
  return out.reverse();
}

// Edit script turning array a into array b (elements compared with ===).
export function diffSeq(a, b) {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let endA = a.length, endB = b.length;
  while (endA > pre && endB > pre && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const ops = [];
  for (let i = 0; i < pre; i++) ops.push({ t: '=', a: i, b: i });
  for (const o of myers(a.slice(pre, endA), b.slice(pre, endB))) {
    ops.push({ t: o.t, a: o.a === undefined ? undefined : o.a + pre, b: o.b === undefined ? undefined : o.b + pre });
  }
  for (let i = 0; i < a.length - endA; i++) ops.push({ t: '=', a: endA + i, b: endB + i });
  return ops;
}

// Words, runs of spaces, newlines, single punctuation marks, and a whole
// {{variable}} as one token. Joining the tokens gives back the text exactly.
const TOKEN = /\{\{[^{}\n]*\}\}|[\p{L}\p{N}_]+|\n|[^\S\n]+|[^\s\p{L}\p{N}_]/gu;
export function tokenize(text) {
  return text.match(TOKEN) || [];
}

// Word diff of two texts as runs [{t: '=' | '-' | '+', text}]. Spaces alone
// between two changes join the change, so "the quick" -> "a slow" reads as one
// replaced phrase rather than confetti.
export function wordDiff(oldText, newText) {
  const a = tokenize(oldText), b = tokenize(newText);
  const runs = [];
  const push = (t, text) => {
    const last = runs[runs.length - 1];
    if (last && last.t === t) last.text += text;
    else runs.push({ t, text });
  };
  for (const o of diffSeq(a, b)) push(o.t, o.t === '+' ? b[o.b] : a[o.a]);
  // Absorb whitespace-only equal runs that sit between changes.
  const merged = [];
  for (let i = 0; i < runs.length; i++) {
    const r = runs[i];
    if (r.t === '=' && /^[^\S\n]+$/.test(r.text) && i > 0 && i < runs.length - 1) {
      merged.push({ t: '-', text: r.text }, { t: '+', text: r.text });
    } else merged.push(r);
  }
  // Regroup: within each stretch of changes, all removals first, then additions.
  const out = [];
  let del = '', ins = '';
  const flush = () => {
    if (del) out.push({ t: '-', text: del });
    if (ins) out.push({ t: '+', text: ins });
    del = ''; ins = '';
  };
  for (const r of merged) {
    if (r.t === '-') del += r.text;
    else if (r.t === '+') ins += r.text;
    else { flush(); out.push(r); }
  }
  flush();
  return out;
}

// Split runs into lines of segments for one side ('-' = old side, '+' = new side).
function sideLines(runs, side) {
  const lines = [[]];
  for (const r of runs) {
    if (r.t !== '=' && r.t !== side) continue;
    const parts = r.text.split('\n');
    parts.forEach((p, i) => {
      if (i > 0) lines.push([]);
      if (!p) return;
      const line = lines[lines.length - 1];
      if (r.t === '=') { line.push({ text: p, changed: false }); return; }
      // Spaces at the edges of a change are shown as unchanged: the
      // highlight then covers the words alone.
      const m = p.match(/^([^\S\n]*)([\s\S]*?)([^\S\n]*)$/);
      if (m[1]) line.push({ text: m[1], changed: false });
      if (m[2]) line.push({ text: m[2], changed: true });
      if (m[3]) line.push({ text: m[3], changed: false });
    });
  }
  return lines;
}

// How much of the shorter side survives unchanged (0..1), ignoring spaces.
// Low means the lines were replaced rather than edited.
function similarity(runs) {
  let same = 0, del = 0, ins = 0;
  for (const r of runs) {
    const n = r.text.replace(/\s+/g, '').length;
    if (r.t === '=') same += n;
    else if (r.t === '-') del += n;
    else ins += n;
  }
  const shorter = Math.min(same + del, same + ins);
  return shorter === 0 ? 0 : same / shorter;
}

// Diff two prompt templates. Returns {blocks, stats}: blocks are
//   {type: 'equal', lines: [{a, b, text}]}                       (1-based line numbers)
//   {type: 'change', left: [{no, segs}], right: [{no, segs}]}    segs: [{text, changed}]
// and stats {added, removed} lines plus {wordsAdded, wordsRemoved}.
export function diffPrompts(oldText, newText) {
  const A = (oldText ?? '').split('\n'), B = (newText ?? '').split('\n');
  if (oldText === '' || oldText == null) A.length = 0;
  if (newText === '' || newText == null) B.length = 0;
  const ops = diffSeq(A, B);
  const blocks = [];
  const stats = { added: 0, removed: 0, wordsAdded: 0, wordsRemoved: 0 };
  let i = 0;
  while (i < ops.length) {
    if (ops[i].t === '=') {
      const lines = [];
      while (i < ops.length && ops[i].t === '=') {
        lines.push({ a: ops[i].a + 1, b: ops[i].b + 1, text: A[ops[i].a] });
        i++;
      }
      blocks.push({ type: 'equal', lines });
      continue;
    }
    const dels = [], inss = [];
    while (i < ops.length && ops[i].t !== '=') {
      if (ops[i].t === '-') dels.push(ops[i].a); else inss.push(ops[i].b);
      i++;
    }
    stats.removed += dels.length;
    stats.added += inss.length;
    const oldBlock = dels.map((k) => A[k]).join('\n');
    const newBlock = inss.map((k) => B[k]).join('\n');
    let left, right;
    const runs = dels.length && inss.length ? wordDiff(oldBlock, newBlock) : null;
    for (const r of runs || []) {
      const words = (r.text.match(/[\p{L}\p{N}_]+|\{\{[^{}\n]*\}\}/gu) || []).length;
      if (r.t === '+') stats.wordsAdded += words;
      if (r.t === '-') stats.wordsRemoved += words;
    }
    if (runs && similarity(runs) >= 0.4) {
      left = sideLines(runs, '-');
      right = sideLines(runs, '+');
    } else {
      // Unrelated lines (or a pure insertion/removal): the line colour says it all.
      left = dels.map((k) => (A[k] ? [{ text: A[k], changed: false }] : []));
      right = inss.map((k) => (B[k] ? [{ text: B[k], changed: false }] : []));
      if (!runs) {
        const count = (s) => (s.match(/[\p{L}\p{N}_]+|\{\{[^{}\n]*\}\}/gu) || []).length;
        stats.wordsRemoved += count(oldBlock);
        stats.wordsAdded += count(newBlock);
      }
    }
    blocks.push({
      type: 'change',
      left: left.map((segs, k) => ({ no: dels[k] + 1, segs })),
      right: right.map((segs, k) => ({ no: inss[k] + 1, segs })),
    });
  }
  return { blocks, stats };
}
