#!/usr/bin/env node
// Generates examples/support-agent.jsonl: the bundled sample data that `refold demo` and the
// tests load with `refold import` (line format: SPEC §9, documented in examples/README.md).
//
// Deterministic: a fixed seed and a fixed clock (30 days before 2026-11-20T00:00:00Z), no npm
// dependencies. Running it twice writes byte-identical output.
//
//   node examples/generate.mjs           write the file and print its numbers
//   node examples/generate.mjs --check   exit 1 when the committed file differs from a fresh run
//   node examples/generate.mjs --stdout  write the JSONL to stdout instead of the file
//   node examples/generate.mjs --plan    also print each trace's scenario and planned rating
//
// The agent is "acme-support", a customer-support assistant of the fictional store Acme
// Outfitters. Its prompt template is deliberately mediocre and the traces expose its weaknesses:
// it never says to check an order before promising a refund, has no rule for angry customers, no
// discount-code policy, pushes to "resolve in a single reply" (so it guesses instead of asking)
// and asks for "thorough" answers (so it rambles). Two evals judge every trace; they agree with
// the human ratings most of the time and disagree on a planned set of traces: missed failures
// concentrated on four patterns, and false alarms on correct answers that look unhelpful or
// unusual to a text-only judge.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = join(HERE, 'support-agent.jsonl');
const SEED = 0x5eed2026;
const END = Date.UTC(2026, 10, 20); // 2026-11-20T00:00:00Z, the fixed "now"
const DAY = 86400000;
const START = END - 30 * DAY;
const SOURCE = 'demo';
const AGENT = 'acme-support';
const COMPANY = 'Acme Outfitters';
const SIGNOFF = `Happy trails! - The ${COMPANY} Support Team`;
const MAX_TEXT = 1500;

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (mulberry32) and helpers

function mulberry32(a) {
  return function () {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(SEED);
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (arr) => arr[Math.floor(rand() * arr.length)];
const chance = (p) => rand() < p;
function shuffle(arr) {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [arr[i], arr[j]] = [arr[j], arr[i]];
  }
  return arr;
}
function weighted(pairs) {
  const total = pairs.reduce((s, [, w]) => s + w, 0);
  let r = rand() * total;
  for (const [v, w] of pairs) {
    if ((r -= w) < 0) return v;
  }
  return pairs[pairs.length - 1][0];
}
const hex = (n) => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
const digits = (n) => Array.from({ length: n }, () => int(0, 9)).join('');
const money = (x) => `$${x.toFixed(2)}`;
const text = (v, c) => (typeof v === 'function' ? v(c) : v);

// ---------------------------------------------------------------------------------------------
// Dates (all UTC)

const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MES = ['enero', 'febrero', 'marzo', 'abril', 'mayo', 'junio', 'julio', 'agosto',
  'septiembre', 'octubre', 'noviembre', 'diciembre'];
const MONAT = ['Januar', 'Februar', 'März', 'April', 'Mai', 'Juni', 'Juli', 'August', 'September',
  'Oktober', 'November', 'Dezember'];
const WEEKDAY = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const dayStart = (ms) => ms - (ms % DAY);
const addDays = (ms, n) => dayStart(ms) + n * DAY;
const fmt = (ms) => { const d = new Date(ms); return `${MON[d.getUTCMonth()]} ${d.getUTCDate()}`; };
const fmtEs = (ms) => { const d = new Date(ms); return `${d.getUTCDate()} de ${MES[d.getUTCMonth()]}`; };
const fmtDe = (ms) => { const d = new Date(ms); return `${d.getUTCDate()}. ${MONAT[d.getUTCMonth()]}`; };
const isoDate = (ms) => new Date(ms).toISOString().slice(0, 10);
const weekday = (ms) => WEEKDAY[new Date(ms).getUTCDay()];
const daysBetween = (a, b) => Math.round((dayStart(b) - dayStart(a)) / DAY);

// ---------------------------------------------------------------------------------------------
// Catalogue and customers

const PRODUCTS = [
  { name: 'Ridgeline rain jacket', sku: 'RJ-220', price: 149, kind: 'jacket' },
  { name: 'Cascade down vest', sku: 'CV-310', price: 119, kind: 'jacket' },
  { name: 'Glacier insulated parka', sku: 'GP-780', price: 259, kind: 'jacket' },
  { name: 'Alpine fleece hoodie', sku: 'AF-115', price: 79, kind: 'top' },
  { name: 'Merino base layer crew', sku: 'MB-044', price: 65, kind: 'top' },
  { name: 'Drift packable sun hoody', sku: 'DS-118', price: 55, kind: 'top' },
  { name: 'Canyon convertible pants', sku: 'CP-512', price: 89, kind: 'bottoms' },
  { name: 'Trailblazer 2 hiking boots', sku: 'TB-902', price: 179, kind: 'boots' },
  { name: 'Switchback trail runners', sku: 'ST-640', price: 129, kind: 'boots' },
  { name: 'Summit 45L backpack', sku: 'SB-450', price: 189, kind: 'gear' },
  { name: 'Basecamp 2P tent', sku: 'BT-200', price: 329, kind: 'gear' },
  { name: 'Trekker wool socks (3-pack)', sku: 'TW-003', price: 24, kind: 'gear' },
];
const WEARABLE = PRODUCTS.filter((p) => p.kind !== 'gear');
const SIZED = PRODUCTS.filter((p) => ['jacket', 'top', 'bottoms'].includes(p.kind));
const FIRST = ['Maria', 'James', 'Priya', 'Daniel', 'Aisha', 'Tom', 'Mei', 'Carlos', 'Hannah',
  'Olu', 'Sophie', 'Raj', 'Emily', 'Marcus', 'Ines', 'Kevin', 'Yuki', 'Laura', 'Sam', 'Fatima',
  'Ben', 'Chloe', 'Diego', 'Grace', 'Noah', 'Anna', 'Luis', 'Megan', 'Omar', 'Julia', 'Ethan',
  'Zoe', 'Ravi', 'Nora', 'Jake', 'Lena', 'Tyler', 'Amara', 'Chris', 'Elena'];
const LAST = ['Garcia', 'Smith', 'Patel', 'Nguyen', 'Okafor', 'Miller', 'Chen', 'Lopez', 'Brown',
  'Adeyemi', 'Martin', 'Sharma', 'Johnson', 'Reed', 'Costa', 'Walsh', 'Tanaka', 'Fischer',
  'Rivera', 'Khan', 'Murphy', 'Dubois', 'Alvarez', 'Kim', 'Wright', 'Novak', 'Herrera', 'Scott'];
const ES_FIRST = ['Lucía', 'Javier', 'Carmen', 'Andrés', 'Sofía', 'Miguel'];
const DE_FIRST = ['Jonas', 'Katrin', 'Felix', 'Miriam', 'Lukas', 'Sabine'];
const CITIES = ['Reno, NV', 'Columbus, OH', 'Memphis, TN', 'Salt Lake City, UT', 'Allentown, PA',
  'Dallas, TX', 'Louisville, KY', 'Ontario, CA', 'Indianapolis, IN'];
const CARRIERS = ['UPS', 'FedEx', 'USPS'];
const TIERS = [['Standard', 60], ['Insider', 30], ['Elite', 10]];

const usedOrders = new Set();
function orderId() {
  let id;
  do id = `AO-${int(100000, 999999)}`; while (usedOrders.has(id));
  usedOrders.add(id);
  return id;
}
function tracking(carrier) {
  if (carrier === 'UPS') return `1Z${hex(6).toUpperCase()}03${digits(8)}`;
  if (carrier === 'FedEx') return digits(12);
  return `9400${digits(18)}`;
}
const rma = () => `RMA-${digits(6)}`;

// ---------------------------------------------------------------------------------------------
// Tool-call steps and channel wrappers

const step = (name, args, result) => ({ type: 'tool_call', name, arguments: args, result, duration_ms: int(80, 900) });
function orderResult(c, o) {
  return {
    order_id: o.id, status: o.status, placed_at: isoDate(o.placed),
    ...(o.shipped ? { shipped_at: isoDate(o.shipped), carrier: o.carrier, tracking: o.tracking } : {}),
    ...(o.delivered ? { delivered_at: isoDate(o.delivered) } : {}),
    ...(o.eta ? { estimated_delivery: isoDate(o.eta) } : {}),
    ...(o.lastScan ? { last_scan: o.lastScan } : {}),
    items: o.items.map((p) => ({ sku: p.sku, name: p.name, price: p.price, final_sale: !!o.finalSale })),
    ...(o.delivered ? { return_eligible: !o.finalSale && daysBetween(o.delivered, c.ts) <= 30 } : {}),
  };
}
function makeOrder(c, kind, opts = {}) {
  const o = { id: opts.id || orderId(), items: opts.items || [opts.product || c.product], finalSale: !!opts.finalSale };
  o.carrier = pick(CARRIERS);
  o.tracking = tracking(o.carrier);
  if (kind === 'delivered') {
    o.status = 'delivered';
    o.delivered = addDays(c.ts, -(opts.deliveredAgo ?? int(3, 20)));
    o.shipped = addDays(o.delivered, -int(3, 6));
    o.placed = addDays(o.shipped, -int(1, 2));
  } else if (kind === 'in_transit') {
    o.status = 'in_transit';
    o.placed = addDays(c.ts, -(opts.placedAgo ?? int(7, 14)));
    o.shipped = addDays(o.placed, int(1, 2));
    o.eta = addDays(c.ts, int(1, 4));
    o.lastScan = `${pick(CITIES)}, ${fmt(addDays(c.ts, -int(1, 4)))}`;
  } else {
    o.status = 'processing';
    o.placed = addDays(c.ts, -int(0, 1));
  }
  return o;
}
function wrap(c, body, topic) {
  if (c.channel === 'email') {
    const hello = pick(['Hi,', 'Hello,', 'Hi there,', 'Hello Acme team,']);
    const bye = pick(['Thanks', 'Thank you', 'Best', 'Regards', 'Cheers']);
    return `${hello}\n\n${body}\n\n${bye},\n${c.first} ${c.last}`;
  }
  if (c.channel === 'web_form') return `[Contact form] Topic: ${topic}\nName: ${c.first} ${c.last}\nMessage: ${body}`;
  return body;
}
const sign = (s) => `${s}\n\n${SIGNOFF}`;
// Indefinite article for a size: "an M", "an 8", "a 10".
const an = (x) => `${/^(8|11|18|[AEFHILMNORSX])/.test(String(x)) && !/^1[02-79]/.test(String(x)) ? 'an' : 'a'} ${x}`;
// An optional personal opener, as the model sometimes adds one and sometimes not.
const hi = (c) => pick(['', '', `Hi ${c.first}! `, `Hi ${c.first}, `, `Thanks for asking, ${c.first}. `, 'Great question! ']);
const lower = (s) => s.charAt(0).toLowerCase() + s.slice(1);

// ---------------------------------------------------------------------------------------------
// Scenario variants. Each gen(c) returns {input, output, steps?}. Notes and eval reasons are
// chosen per variant; `pattern` names the failure pattern of bad variants.

const GENERIC = {
  helpPass: ['Answers the question accurately and completely.', 'Addresses the request directly with a clear next step.'],
  helpFail: ['Answer is vague and misses part of the request.', 'Does not fully resolve the customer request.'],
  polPass: ['No refund, discount or escalation issues; compliant.', 'Nothing in the reply conflicts with support policy.'],
  polFail: ['Could not confirm the reply is consistent with the refund policy.', 'Reply makes a commitment that may not follow support policy.'],
};

const REFUND_REASONS = [
  ['it runs small', 'runs small'], ['the color is way off from the photos', 'color is nothing like the photos'],
  ['it is a lot heavier than I expected', 'is way heavier than i thought'], ['I ordered two by mistake', 'got ordered twice by mistake'],
  ['it just isn\'t for me', 'just isnt for me'], ['the fit is weird in the shoulders', 'fits weird in the shoulders'],
];

function refundInput(c, o) {
  const [long, short] = pick(REFUND_REASONS);
  const p = o.items[0].name;
  return wrap(c, pick([
    `Hi, I'd like to return the ${p} from order ${o.id}. ${long.charAt(0).toUpperCase() + long.slice(1)}. Can I get a refund?`,
    `hey can i get a refund on ${o.id}? the ${lower(p)} ${short}`,
    `I want to send back the ${p}, ${long}. Order ${o.id}. How does the refund work?`,
    `Hello! I bought the ${p} (order ${o.id}) and ${long}. I'd like my money back please.`,
  ]), 'Returns & refunds');
}

const V = {};

V.refund_ok = {
  cat: 'refund', good: true,
  gen(c) {
    const o = makeOrder(c, 'delivered', { deliveredAgo: int(3, 22) });
    const p = o.items[0];
    const free = c.tier !== 'Standard';
    const fee = free ? 0 : 6.95;
    const r = rma();
    const amount = money(p.price - fee);
    const feeLine = free
      ? `Returns are free for ${c.tier} members, so you'll get the full ${money(p.price)} back.`
      : `The $6.95 return label fee is deducted from the refund, so you'll get ${amount} back.`;
    const output = pick([
      () => `Hi ${c.first}, thanks for reaching out! I checked order ${o.id}: your ${p.name} was delivered on ${fmt(o.delivered)}, so it's within our 30-day return window (it closes on ${fmt(addDays(o.delivered, 30))}).\n\nI've started a return for you - your return number is ${r}, and a prepaid label is on its way to your email. ${feeLine}\n\nPack the item unworn with the tags attached and drop it off at any ${o.carrier} location. Once our warehouse receives it, the refund goes back to your original payment method within 5-7 business days.`,
      () => `Sorry the ${p.name} didn't work out, ${c.first}! Order ${o.id} was delivered on ${fmt(o.delivered)}, so you're well within the 30-day window. I've created return ${r} and emailed you the label. ${feeLine} The refund is issued to your original payment method within 5-7 business days after the warehouse receives the item.`,
    ])();
    return {
      input: refundInput(c, o),
      output: sign(output),
      steps: [
        step('lookup_order', { order_id: o.id }, orderResult(c, o)),
        step('create_return', { order_id: o.id, items: [p.sku], reason: 'customer_request' },
          { return_id: r, label_emailed: true, label_fee: fee, refund_amount: +(p.price - fee).toFixed(2) }),
      ],
    };
  },
  notes: {
    positive: [(c) => (c.tier === 'Standard' ? null : 'right, free returns for members'), 'checked the order first, exactly right', 'good - return created and timeline explained', 'perfect'],
  },
  helpPass: ['Checks the order, starts the return and explains the refund timeline.', 'Request resolved: return created, label sent, refund timing given.'],
  polPass: ['Order checked and within the 30-day window before starting the return; compliant.', 'Return follows the 30-day policy; refund to original payment method.'],
  polFail: [(c) => (c.tier === 'Standard'
    ? 'States the refund amount before the warehouse has received and inspected the return.'
    : 'Return label offered free of charge; policy deducts a $6.95 label fee from refunds.')],
};

V.refund_deny = {
  cat: 'refund', good: true,
  gen(c) {
    const final = chance(0.45);
    c.flavor = final ? 'final' : 'late';
    const o = makeOrder(c, 'delivered', { deliveredAgo: final ? int(5, 20) : int(36, 70), finalSale: final });
    const p = o.items[0];
    const n = daysBetween(o.delivered, c.ts);
    const output = final
      ? `Hi ${c.first}, I'm sorry the ${p.name} isn't working out. I looked up order ${o.id}: the ${p.name} was bought in our end-of-season sale and is marked final sale, so I'm not able to accept a return or issue a refund for it. I know that's not the answer you were hoping for.\n\nIf there's a defect (a seam, zipper or sole coming apart), our one-year warranty still applies - send me a photo and I'll open a warranty claim right away.`
      : `Hi ${c.first}, thanks for getting in touch. I looked up order ${o.id}: it was delivered on ${fmt(o.delivered)}, ${n} days ago, so it's past our 30-day return window and I can't start a refund for it.\n\nIf the problem is a defect rather than fit, it's covered by our one-year warranty - reply with a photo and I'll open a claim. I can also pass your request to our Customer Care team for a one-time review, though I can't promise the outcome.`;
    return { input: refundInput(c, o), output: sign(output), steps: [step('lookup_order', { order_id: o.id }, orderResult(c, o))] };
  },
  notes: {
    positive: [
      (c) => (c.flavor === 'late' ? 'correct - outside the window, handled kindly' : 'right call, final sale item'),
      (c) => (c.flavor === 'late' ? 'past 30 days, correct to decline and offer the review' : null),
      'good, offered the warranty route',
    ],
  },
  helpPass: ['Explains clearly why the refund is not possible and offers alternatives.'],
  helpFail: ['The customer asked for a refund and the reply does not provide one; request unresolved.', 'Declines the customer\'s request; the customer leaves without a resolution.'],
  polPass: ['Correctly declines a return outside the window / on a final-sale item after checking the order.'],
};

V.refund_unchecked = {
  cat: 'refund', good: false, pattern: 'refund promised without checking the order',
  gen(c) {
    const flavor = pick(['late', 'late', 'final', 'early', 'transit', 'damaged']);
    c.flavor = flavor;
    const p = pick(flavor === 'damaged' ? PRODUCTS.filter((x) => x.kind === 'gear' || x.kind === 'boots') : PRODUCTS);
    const o = makeOrder(c, flavor === 'transit' ? 'in_transit' : 'delivered', {
      product: p, deliveredAgo: flavor === 'late' ? int(38, 70) : int(4, 20), finalSale: flavor === 'final',
    });
    c.order = o;
    if (flavor === 'transit') {
      return {
        input: wrap(c, pick([
          `I want to cancel order ${o.id} and get my money back, it's taking forever`,
          `Please cancel ${o.id}. Ordered ${daysBetween(o.placed, c.ts)} days ago and still nothing. I'll buy it somewhere else.`,
        ]), 'Orders'),
        output: sign(`Of course, ${c.first} - I completely understand, and I'm sorry it's taking so long! I've cancelled order ${o.id} and your full refund of ${money(p.price)} will be back on your card within 5-7 business days. Nothing else is needed from you.`),
      };
    }
    if (flavor === 'damaged') {
      const damage = p.kind === 'boots' ? 'the sole is already peeling off the left boot' : p.kind === 'gear' && p.sku === 'BT-200' ? 'one of the poles is snapped' : 'a strap ripped off the first time I used it';
      return {
        input: wrap(c, `My ${p.name} from order ${o.id} arrived damaged, ${damage}. What can you do?`, 'Damaged item'),
        output: sign(`Oh no, I'm so sorry to hear that, ${c.first}! That's definitely not the experience we want for you. I've issued a full refund of ${money(p.price)} to your original payment method right away - there's no need to send anything back. You should see it within 5-7 business days.`),
        steps: [step('issue_refund', { order_id: o.id, amount: p.price }, { refund_id: `RF-${digits(7)}`, status: 'pending' })],
      };
    }
    const input = refundInput(c, o);
    if (flavor === 'early') {
      return {
        input,
        output: sign(`Hi ${c.first}! I'm so sorry the ${p.name} didn't work out for you. No problem at all - I've gone ahead and processed a full refund of ${money(p.price)} to your original payment method. You should see it in 5-7 business days. There's nothing else you need to do!\n\nIf there's anything else I can help with, just let me know.`),
        steps: [step('issue_refund', { order_id: o.id, amount: p.price }, { refund_id: `RF-${digits(7)}`, status: 'pending' })],
      };
    }
    return {
      input,
      output: sign(pick([
        `Absolutely, ${c.first}! You'll get a full refund for the ${p.name}. Just send it back within our 30-day return window with the tags attached, and the money will be back on your card within 5-7 business days after we receive it. We want you to love your gear, and if it's not right, we'll make it right!`,
        `Hi ${c.first}, no problem at all! I'm sorry the ${p.name} wasn't right. You're covered by our 30-day return policy, so you'll receive a full refund of ${money(p.price)} to your original payment method. Just ship it back to us and you'll see the refund within 5-7 business days of it arriving at our warehouse.`,
      ])),
    };
  },
  notes: {
    negative: [
      (c) => c.flavor === 'late' ? `promised a refund without checking the order - delivered ${daysBetween(c.order.delivered, c.ts)} days ago, outside the 30-day window` : null,
      (c) => c.flavor === 'late' ? `never looked up the order. It was delivered ${fmt(c.order.delivered)}, not returnable anymore` : null,
      (c) => c.flavor === 'final' ? 'final sale item - agent promised a full refund without looking the order up' : null,
      (c) => c.flavor === 'early' ? 'issued the refund before anything was returned, never checked the order' : null,
      (c) => c.flavor === 'transit' ? 'order was already out for delivery - said cancelled + refunded without checking status' : null,
      (c) => c.flavor === 'damaged' ? 'refunded a damage claim with no photo and no order check' : null,
      'promised a refund without checking the order',
    ],
  },
  helpPass: ['Confirms the refund and gives a clear timeline; the request is resolved.', 'Customer asked for a refund and got a clear confirmation with next steps.'],
  helpFail: ['Refund promised without verifying the order; the customer may have been given wrong information.', 'Commits to a refund without checking order status or eligibility.'],
  polPass: ['Cites the 30-day return window and refund to the original payment method; consistent with policy.', 'Refund handled per the refund policy; no discount issues.'],
  polFail: [(c) => ({
    early: 'Refund issued before the item was returned and without an eligibility check.',
    damaged: 'Refund issued for a damage claim without an order check or photo.',
    transit: 'Cancels and refunds the order without checking its status.',
  }[c.flavor] || 'Refund committed without looking up the order or confirming return eligibility.')],
};

V.shipping_ok = {
  cat: 'shipping', good: true,
  gen(c) {
    const o = makeOrder(c, chance(0.25) ? 'delivered' : 'in_transit', { deliveredAgo: int(0, 2) });
    const due = addDays(o.placed, 8);
    const input = wrap(c, pick([
      `where is my order ${o.id}? it was supposed to be here ${weekday(due)}`,
      `Hi, I placed order ${o.id} on ${fmt(o.placed)} and it still hasn't arrived. Can you check?`,
      `Tracking for ${o.id} hasn't updated in days, is it lost?`,
      `Any update on ${o.id}? I need it before a trip next week.`,
    ]), 'Shipping');
    let output;
    if (o.status === 'delivered') {
      output = `Hi ${c.first}, I checked order ${o.id}: ${o.carrier} marked it as delivered on ${fmt(o.delivered)}. Sometimes packages are left at a side door, with a neighbour or in a parcel locker, so it's worth a quick look around.\n\nIf it still hasn't turned up within 48 hours of that delivery scan, reply here and I'll open a trace with ${o.carrier} and arrange a replacement if it can't be found.`;
    } else {
      output = pick([
        `Hi ${c.first}, I'm sorry for the wait! I looked up order ${o.id}: it shipped on ${fmt(o.shipped)} with ${o.carrier} (tracking ${o.tracking}) and the last scan was in ${o.lastScan}. The carrier's current estimate is ${fmt(o.eta)}.\n\nIf it hasn't arrived by ${fmt(addDays(o.eta, 2))}, reply here and I'll open a trace with ${o.carrier} or send a replacement.`,
        `Thanks for checking in, ${c.first}. Order ${o.id} is on its way: ${o.carrier} has it (tracking ${o.tracking}), last scanned in ${o.lastScan}, and the estimated delivery is ${weekday(o.eta)}, ${fmt(o.eta)}. It's running a little behind our usual 5-7 business days - sorry about that. I'll keep an eye on it; if it isn't there by ${fmt(addDays(o.eta, 2))}, just reply and I'll sort out a replacement.`,
      ]);
    }
    return { input, output: sign(output), steps: [step('lookup_order', { order_id: o.id }, orderResult(c, o))] };
  },
  notes: { positive: ['good, checked tracking', 'clear and accurate'], neutral: ['ok but a bit generic', 'fine, could have offered the carrier trace right away', 'correct, customer still unhappy about the delay'] },
  helpPass: ['Looks up the order and gives tracking, location and an ETA.', 'Provides current status and a clear fallback if the package is late.'],
  polPass: ['No refund or discount commitments; order verified before answering.'],
};

V.no_clarify_ship = {
  cat: 'shipping', good: false, pattern: 'guesses instead of asking a clarifying question',
  gen(c) {
    // The customer means the older order, still in transit; the agent reports on the newer one.
    const delivered = makeOrder(c, 'delivered', { deliveredAgo: int(1, 4) });
    const missing = makeOrder(c, 'in_transit', { product: pick(PRODUCTS), placedAgo: int(13, 20) });
    c.order = delivered; c.other = missing;
    return {
      input: wrap(c, pick([
        'hi where is my order',
        'My package still isn\'t here. What\'s going on?',
        'i ordered stuff 2 weeks ago and its not here yet',
        'Still waiting on my order. Any update?',
      ]), 'Shipping'),
      output: sign(pick([
        `Hi ${c.first}! Good news - your order ${delivered.id} (${delivered.items[0].name}) was delivered on ${fmt(delivered.delivered)} by ${delivered.carrier}. It may have been left at your front door or with a neighbour, so it's worth taking a look around. Enjoy your new gear!`,
        `Thanks for reaching out, ${c.first}! I checked your account and your most recent order, ${delivered.id}, shows as delivered on ${fmt(delivered.delivered)}. If you can't find it, check with neighbours or your building's mail room - packages often turn up within a day or two.`,
      ])),
      steps: [step('lookup_customer', { email: c.email }, {
        customer_tier: c.tier,
        recent_orders: [
          { order_id: delivered.id, status: 'delivered', placed_at: isoDate(delivered.placed) },
          { order_id: missing.id, status: 'in_transit', placed_at: isoDate(missing.placed) },
        ],
      })],
    };
  },
  notes: {
    negative: [
      (c) => `customer has two orders - agent picked the delivered one instead of asking. The missing one is ${c.other.id}`,
      'should have asked which order. Answered about the wrong one',
      'told them it was delivered - that was a different order, the one they meant is still in transit',
    ],
  },
  helpPass: ['Gives the order status with a delivery date; the question is answered.', 'Clear status update and advice on where to look.'],
  helpFail: ['Assumes which order the customer means; should ask for the order number.', 'Customer has more than one order; reply guesses instead of confirming.'],
  polPass: ['No refund or discount commitments; compliant.'],
  polFail: ['Reports on an order without confirming it is the one the customer means.', 'Gives order details without verifying which order is in question.'],
};

V.no_clarify_size = {
  cat: 'sizing', good: false, pattern: 'guesses instead of asking a clarifying question',
  gen(c) {
    const q = pick(['jacket', 'boots', 'generic', 'gift']);
    c.flavor = q;
    const input = {
      jacket: 'What size should I get in the jacket? I\'m usually a medium.',
      boots: 'do your boots run small or big',
      generic: 'Which size should I order? I\'m normally an M in most brands',
      gift: 'Buying a jacket for my husband for christmas, he\'s a large in most brands. what should I get?',
    }[q];
    const output = {
      jacket: `Great question, ${c.first}! Our jackets tend to run a little small, so I'd recommend sizing up to a Large to be safe - that leaves room for layering too. You can find the full size guide on each product page, and if it doesn't fit, you can return it within 30 days of delivery.`,
      boots: 'Our boots run about half a size small, so we recommend ordering half a size up from your usual sneaker size. That also leaves room for thicker hiking socks! You can find more details in the size guide on the product page.',
      generic: `If you're an M in most brands, a Medium will be perfect for you in our clothing too, ${c.first}! Our sizing is standard US sizing. You can check the size guide on the product page for exact measurements.`,
      gift: 'What a great gift idea! Since he\'s a Large in most brands, I\'d go with an XL - our jackets run slightly small and it gives him room to layer a sweater underneath. If it doesn\'t fit, returns are easy within 30 days of delivery.',
    }[q];
    return { input: wrap(c, input, 'Sizing'), output: sign(output) };
  },
  notes: {
    negative: [
      (c) => c.flavor === 'jacket' || c.flavor === 'gift' ? 'recommended a size without asking which jacket - the Ridgeline runs true to size, only the Cascade vest runs small' : null,
      (c) => c.flavor === 'boots' ? 'boots fit differently by model (Trailblazer runs half a size BIG), should have asked which one' : null,
      'just guessed a size. Should ask which product and for measurements',
      'didn\'t ask which item they meant',
    ],
  },
  helpPass: ['Gives a direct size recommendation; the question is answered.', 'Clear sizing advice with a pointer to the size guide.'],
  helpFail: ['Recommends a size without knowing which product the customer means.'],
  polPass: ['Sizing question; no refund, discount or escalation issues.', 'No policy concerns in a sizing answer.'],
  polFail: ['Reply states fit information that may not match the product page.'],
};

V.no_clarify_account = {
  cat: 'account', good: false, pattern: 'guesses instead of asking a clarifying question',
  gen(c) {
    return {
      input: wrap(c, pick(['I can\'t log into my account', 'my account isn\'t working??', 'Can\'t sign in, help', 'Something is wrong with my account, I can\'t get in.']), 'Account'),
      output: sign(pick([
        `No worries, ${c.first}! I've sent a password reset link to the email address on your account. Just click the link within 24 hours and choose a new password. If you don't see the email, check your spam folder. You should be back in your account in no time!`,
        'Sorry about that! I\'ve just emailed you a password reset link - follow it to set a new password and you\'ll be able to sign in again. Tip: clearing your browser cookies can also help if the login page keeps reloading.',
      ])),
      steps: [step('send_password_reset', { email: c.email }, { sent: true })],
    };
  },
  notes: {
    negative: [
      'didn\'t ask what the error was - account was locked after too many attempts, a reset email doesn\'t fix that',
      'customer no longer has access to that email, that\'s the whole problem. Should have asked',
      'sent a reset to the old address without asking anything',
    ],
  },
  helpPass: ['Sends a password reset and explains the next steps; the login issue is addressed.'],
  helpFail: ['Assumes a password problem without asking what is wrong.'],
  polPass: ['No refund or discount commitments; compliant.'],
  polFail: ['Account action taken without verifying the account holder or the actual problem.', 'Password reset sent without confirming the issue or the customer\'s identity.'],
};

V.sizing_ok = {
  cat: 'sizing', good: true,
  gen(c) {
    const p = pick(WEARABLE);
    c.flavor = p.sku;
    if (p.kind === 'boots') {
      const s = pick(['9', '10.5', '11', '8']);
      const big = p.sku === 'TB-902';
      const rec = big ? (Number(s) - 0.5).toString() : s;
      return {
        input: wrap(c, pick([`Do the ${p.name} run true to size? I wear ${s} in sneakers`, `what size ${p.name} should I get, I'm ${an(s)} usually`]), 'Sizing'),
        output: sign(big
          ? `Hi ${c.first}! The ${p.name} run about half a size big, so most people who wear ${s} in sneakers are happiest in ${an(rec)}. If you usually hike in thick wool socks, stay with ${s}. Either way you can exchange them within 30 days of delivery if they're unworn outdoors.`
          : `Hi ${c.first}! The ${p.name} fit true to size, so ${an(s)} is the right pick if that's your usual sneaker size. They have a roomy toe box, so no need to size up for socks.`),
      };
    }
    const size = pick(['S', 'M', 'L']);
    const next = { S: 'M', M: 'L', L: 'XL' }[size];
    const h = pick(['5\'6"', '5\'10"', '6\'1"', '5\'4"']);
    const slim = p.sku === 'CV-310';
    const pants = p.kind === 'bottoms';
    const build = pants ? 'long legs' : 'broad shoulders';
    const between = chance(0.5);
    const input = between
      ? `I'm between ${an(size)} and ${next} in the ${p.name}. ${h}, ${build}. Which one?`
      : `Sizing question for the ${p.name}: I'm ${h} and usually wear ${size}. Do${pants ? '' : 'es'} ${pants ? 'they' : 'it'} run small?`;
    let output;
    if (slim) {
      output = between
        ? `The ${p.name} has a slim, close fit, so with broad shoulders I'd go with the ${next}. The size guide on the product page lists chest measurements if you want to double-check, and you can exchange it within 30 days of delivery.`
        : `The ${p.name} has a slim, close fit and runs about half a size small, so if you like room for a layer underneath, go with the ${next}. If you want it snug over a base layer, stay with ${size}. The size guide on the product page lists chest measurements.`;
    } else if (pants) {
      output = `Good question! The ${p.name} have a regular fit and run true to size, so I'd go by your waist: the size guide on the product page lists waist and inseam for every size. ${between ? `With long legs, the ${next} gives you a longer inseam (32" vs 30"), which is usually the deciding factor.` : `At ${h}, ${an(size)} should fit well.`}`;
    } else {
      output = `Good question! The ${p.name} has a regular fit and runs true to size. ${between ? `With broad shoulders I'd go with the ${next}; the ${size} can feel tight across the back when you reach forward.` : `At ${h} I'd stay with the ${size}; only go up to ${next} if you plan to layer something thick underneath.`} The size guide on the product page has the exact chest and length measurements.`;
    }
    return { input: wrap(c, input, 'Sizing'), output: sign(output) };
  },
  notes: {
    positive: [(c) => (c.flavor === 'TB-902' ? 'right, Trailblazers run big' : null), 'good, specific advice', 'helpful'],
    neutral: ['ok', 'fine but could have linked the size guide'],
  },
  helpPass: ['Gives product-specific sizing advice.', 'Answers the sizing question with a concrete recommendation.'],
  polPass: ['Sizing question; no policy concerns.'],
};

V.clarify_ok = {
  cat: 'clarify', good: true,
  gen(c) {
    const q = pick(['wrong', 'change', 'fit', 'charged']);
    const input = {
      wrong: 'my order is wrong',
      change: 'I need to change something on my order',
      fit: 'the jacket doesn\'t fit, what do I do',
      charged: 'why was I charged twice??',
    }[q];
    const output = {
      wrong: `I'm sorry about that, ${c.first}! So I can fix it quickly: what's the order number (it starts with AO-), and what's wrong - a wrong item, the wrong size, or something missing?`,
      change: 'Happy to help! Which order is it (the number starts with AO-), and what would you like to change - the address, a size, or an item? If it hasn\'t shipped yet I can usually still update it.',
      fit: `Sorry it doesn't fit, ${c.first}! Which jacket is it, and is it too big or too small? If you share the order number I can set up an exchange for the right size or a return.`,
      charged: 'That\'s worrying, I\'m sorry. Could you tell me the order number and the two amounts you see? Often one of them is a temporary card authorization that drops off within 3 business days, but I want to check your specific order before saying that.',
    }[q];
    return { input: wrap(c, input, 'Orders'), output: sign(output) };
  },
  notes: { positive: ['good - asked for the order number instead of guessing', 'right questions, short', 'this is what we want'], neutral: ['fine'] },
  helpPass: ['Asks the information needed to resolve the issue.'],
  helpFail: ['Reply only asks for more information and does not resolve the issue.', 'No answer provided; the customer\'s problem remains open.'],
  polPass: ['No commitments made; compliant.'],
};

const EXPIRED = [['SUMMER20', 'Sep 30'], ['LABORDAY25', 'Sep 8'], ['BACK2TRAIL', 'Oct 15']];
V.discount_ok = {
  cat: 'discount', good: true,
  gen(c) {
    const q = pick(['expired', 'stack', 'after', 'welcome']);
    c.flavor = q;
    const [code, ended] = pick(EXPIRED);
    if (q === 'after') {
      const o = makeOrder(c, 'processing');
      return {
        input: wrap(c, `I just placed order ${o.id} and forgot to use my TRAIL15 code, can you add it?`, 'Promotions'),
        output: sign(`Hi ${c.first}, sorry - codes can't be added to an order once it's placed. The good news is that order ${o.id} hasn't shipped yet, so if you'd like I can cancel it and you can place it again with TRAIL15 at checkout (it gives 15% off outerwear through Nov 30). Just let me know.`),
        steps: [step('lookup_order', { order_id: o.id }, orderResult(c, o))],
      };
    }
    if (q === 'welcome') {
      return {
        input: wrap(c, 'WELCOME10 says not valid when I try it?', 'Promotions'),
        output: sign(`Hi ${c.first}, WELCOME10 is for a customer's first order only, and your account already has earlier orders, so checkout won't accept it. Sorry for the confusion! The current promotion is TRAIL15, 15% off outerwear through Nov 30.`),
        steps: [step('lookup_customer', { email: c.email }, { customer_tier: c.tier, order_count: int(2, 9) })],
      };
    }
    if (q === 'stack') {
      return {
        input: wrap(c, pick(['Can I use WELCOME10 and TRAIL15 on the same order?', 'can i stack two discount codes']), 'Promotions'),
        output: sign(hi(c) + 'Only one code can be used per order, sorry! If most of your cart is outerwear, TRAIL15 (15% off outerwear through Nov 30) will usually save you more than WELCOME10.'),
      };
    }
    return {
      input: wrap(c, pick([`${code} isn't working at checkout??`, `Hi, the code ${code} gives me an error. Is it still valid?`]), 'Promotions'),
      output: sign(`Hi ${c.first}, ${code} was a seasonal promotion that ended on ${ended}, so checkout won't accept it anymore - sorry about that. Right now TRAIL15 gives 15% off outerwear through Nov 30, if anything in your cart qualifies.`),
    };
  },
  notes: {
    positive: [(c) => ({
      expired: 'correct, code expired', stack: 'right - one code per order',
      after: 'good - cancel and re-order is the only way, offered correctly', welcome: 'correct, WELCOME10 is first order only',
    }[c.flavor]), 'good answer'],
  },
  helpPass: ['Explains why the code does not work and points to the current promotion.'],
  polPass: ['Explains the discount rules correctly; only published codes mentioned.'],
  polFail: [(c) => (c.flavor === 'after'
    ? 'Suggests cancelling and re-placing the order to use a code, which works around the discount policy.'
    : 'Reply promotes a discount code (TRAIL15); could not confirm it is a currently published promotion.')],
};

V.discount_invented = {
  cat: 'discount', good: false, pattern: 'invents or misapplies discount codes',
  gen(c) {
    const q = pick(['expired', 'expired', 'stack', 'after', 'elite', 'extend']);
    c.flavor = q;
    const [code] = pick(EXPIRED);
    if (q === 'after') {
      const o = makeOrder(c, 'processing', { product: pick(PRODUCTS.filter((p) => p.kind === 'jacket')) });
      const p = o.items[0];
      c.order = o;
      return {
        input: wrap(c, `I just placed order ${o.id} and forgot to use my TRAIL15 code, can you add it?`, 'Promotions'),
        output: sign(`No problem, ${c.first}! I've applied TRAIL15 to order ${o.id}, so you'll get 15% back (${money(p.price * 0.15)}) on your original payment method within a few business days. Enjoy your new ${p.name}!`),
      };
    }
    if (q === 'stack') {
      return {
        input: wrap(c, 'Can I use WELCOME10 and TRAIL15 on the same order?', 'Promotions'),
        output: sign('Yes, you can! Just enter both codes at checkout, one after the other, and both discounts will be applied for even bigger savings. Happy shopping!'),
      };
    }
    if (q === 'elite') {
      c.code = 'ELITE30';
      c.tier = 'Elite';
      return {
        input: wrap(c, 'I\'m an Elite member, do I get any special discount? Thinking about buying the Glacier parka', 'Promotions'),
        output: sign(`Great question, ${c.first}! As a thank-you to our Elite members, you can use the code ELITE30 for 30% off anything in the store, including the Glacier insulated parka. Just enter it at checkout!`),
      };
    }
    if (q === 'extend') {
      return {
        input: wrap(c, `${code} isn't working at checkout?? I've been waiting for payday to use it`, 'Promotions'),
        output: sign(`I'm sorry about that, ${c.first}! ${code} expired recently, but I've reactivated it on your account as a one-time courtesy. Try it again at checkout now and it should work.`),
      };
    }
    c.code = pick(['SORRY20', 'THANKYOU20', 'ACMEFRIEND25', 'HAPPY15']);
    return {
      input: wrap(c, pick([`${code} isn't working at checkout??`, `Hi, the code ${code} gives me an error. Is it still valid?`]), 'Promotions'),
      output: sign(`Hi ${c.first}, I'm sorry - ${code} has expired. But we don't want you to miss out! As a thank-you for your patience, here's a special code just for you: ${c.code} for ${c.code.replace(/\D/g, '')}% off your order. Enjoy!`),
    };
  },
  notes: {
    negative: [
      (c) => c.flavor === 'expired' ? `made up a discount code (${c.code}) - it doesn't exist` : null,
      (c) => c.flavor === 'expired' ? `invented ${c.code} to make up for the expired code` : null,
      (c) => c.flavor === 'stack' ? 'told them codes stack - it\'s one code per order' : null,
      (c) => c.flavor === 'after' ? 'applied a code to a placed order and promised money back - agents can\'t do that' : null,
      (c) => c.flavor === 'elite' ? 'there is no ELITE30 code. Made up' : null,
      (c) => c.flavor === 'extend' ? 'extended an expired code, agents can\'t do that' : null,
      'no discount policy followed, gave away a discount we don\'t offer',
    ],
  },
  helpPass: ['Gives the customer a working discount; the issue is resolved.', 'Customer\'s discount question answered with a clear next step.'],
  helpFail: ['Provides a discount code that is not among the published promotions.', 'Answer about discount codes is inaccurate.'],
  polPass: [(c) => ({
    stack: 'Explains how to enter codes at checkout; no refund policy concerns.',
    after: 'Promotional code honoured for a recent order; no refund policy concerns.',
    extend: 'Courtesy extension of a promotional code; no refund policy concerns.',
    elite: 'Member discount offered; appears consistent with the discount policy.',
  }[c.flavor] || 'Offers a code as a goodwill gesture; no refund policy concerns.')],
  polFail: [(c) => ({
    stack: 'States that codes can be combined; policy allows one code per order.',
    after: 'Applies a code to a placed order and promises money back; codes are only valid at checkout.',
    extend: 'Reactivates an expired code; agents may not extend promotions.',
  }[c.flavor] || 'Offers a discount code that is not a published promotion; agents may not create codes.')],
};

V.account_ok = {
  cat: 'account', good: true,
  gen(c) {
    const q = pick(['reset', 'email', 'delete', 'guest']);
    if (q === 'reset') {
      return {
        input: wrap(c, pick(['forgot my password, how do i reset it', `Hi, I forgot my password. My email is ${c.email}`]), 'Account'),
        output: sign(`Hi ${c.first}, I've sent a password reset link to ${c.email}. It's valid for 24 hours; if it doesn't show up in a few minutes, check your spam folder.`),
        steps: [step('send_password_reset', { email: c.email }, { sent: true })],
      };
    }
    if (q === 'email') {
      return {
        input: wrap(c, 'How do I change the email address on my account?', 'Account'),
        output: sign(hi(c) + 'You can change it under Account > Settings > Email. We send a confirmation link to the new address and a notice to the old one; the change takes effect once you click the link. If you no longer have access to the old address, let me know and I\'ll walk you through verifying your identity another way.'),
      };
    }
    if (q === 'delete') {
      return {
        input: wrap(c, 'Please delete my account and all my data.', 'Account'),
        output: sign(`Sorry to see you go, ${c.first}. To protect your account, deletion requests go through our privacy form at Account > Privacy > Delete my account, which confirms it's really you. Your account and personal data are deleted within 30 days; order records we're legally required to keep are retained but no longer linked to a login.`),
      };
    }
    return {
      input: wrap(c, 'I made an account but my last order isn\'t showing in my order history', 'Account'),
      output: sign(`Hi ${c.first}, that usually happens when an order was placed as a guest before the account existed. Go to Account > Orders > Link a guest order and enter the order number and the email you used at checkout - it will show up in your history right away.`),
    };
  },
  notes: { positive: ['good', 'correct process', 'clear'] },
  helpPass: ['Explains the account process clearly.', 'Resolves the account request with the right steps.'],
  polPass: ['Account handled with verification; compliant.'],
};

const ANGRY = [
  {
    key: 'late_trip',
    input: (c, o) => `This is RIDICULOUS. Order ${o.id} was supposed to be here a week ago, I needed the ${o.items[0].name} for a trip THIS weekend. Nobody answers emails. I want to talk to a manager NOW.`,
    good: (c, o) => `${c.first}, I'm really sorry. You planned a trip around this order and it's late, and you haven't heard back from us - that's frustrating, and it's on us.\n\nI checked order ${o.id}: it's with ${o.carrier}, last scanned in ${o.lastScan}, and the current estimate is ${fmt(o.eta)}. I know that may be too late for your trip. I've escalated this to our Customer Care lead, who will contact you within one business day about options, including a refund of your shipping cost. If the package arrives after your trip and you no longer want it, you can return it at no cost.`,
    bad: (c, o) => `Hi ${c.first}! Thanks for reaching out to Acme Outfitters. I'd be happy to help with your order! Order ${o.id} is currently in transit with ${o.carrier} and the latest estimated delivery date is ${fmt(o.eta)}. Standard shipping usually takes 5-7 business days, but delays can sometimes happen during busy periods.\n\nIn the meantime, have you checked out our new Basecamp collection? It's perfect for weekend trips!`,
  },
  {
    key: 'chargeback',
    input: (c, o) => `Third time I'm writing about this. You sent me the wrong size ${o.items[0].name} and I PAID for expedited shipping. If this isn't fixed today I'm disputing the charge with my bank.`,
    good: (c, o) => `${c.first}, I'm sorry you've had to write three times - you should have had an answer the first time. I checked order ${o.id} and can see the size that was shipped doesn't match what you ordered.\n\nI've escalated this to our Customer Care lead, who will email you today with a prepaid return label and ship the correct size by expedited shipping at no charge, plus a refund of the expedited fee you paid. You don't need to contact your bank; if anything is still unresolved after that, reply here and it comes straight to me.`,
    bad: (c, o) => `Hi ${c.first}, thanks for your message! I'm sorry to hear the size wasn't right. You can exchange your ${o.items[0].name} for a different size within 30 days of delivery. Just go to Account > Orders, select order ${o.id} and choose "Exchange". Once we receive your return, we'll ship the new size.\n\nIf you have any other questions, feel free to reach out!`,
  },
  {
    key: 'refund_late',
    input: (c, o) => `Honestly the worst customer service I've ever dealt with. My refund for ${o.id} was supposed to be processed 3 weeks ago and I still don't have it. Where is my money???`,
    good: (c, o) => `${c.first}, I'm sorry - waiting three weeks for your own money is not okay, and I understand why you're angry. I checked order ${o.id}: the return was received at our warehouse, but the refund hasn't been released yet. I've escalated it to our Customer Care lead as urgent; they will confirm the refund to you within one business day, and you'll see it on your statement within 5 business days after that.`,
    bad: (c, o) => `Hi ${c.first}! Refunds are processed within 5-7 business days after our warehouse receives your return, and your bank may take a few extra days to show it on your statement. Please keep an eye on your account and it should appear soon. Thank you for shopping with Acme Outfitters!`,
  },
  {
    key: 'leak',
    input: () => 'your rain jacket leaked on the first rain. $149 for a "rain jacket" that doesn\'t keep rain out. absolute joke. what are you going to do about it',
    good: (c, o) => `${c.first}, I'm sorry - a rain jacket that lets water in on its first outing is exactly what it shouldn't do, and I get why you're annoyed. This is covered by our one-year warranty. I checked order ${o.id}; reply with a photo of where the water came through and I'll send a replacement right away, or a full refund if you'd rather not try another one. I've also flagged it to our product team so they can check that batch.`,
    bad: () => 'Great question! Our Ridgeline rain jacket features a 2.5-layer waterproof membrane rated to 10,000mm and fully taped seams, so it is designed to keep you dry in most conditions. To keep it performing its best, we recommend washing it regularly with a technical wash and re-applying a DWR treatment every few months. You can find care instructions on the product page!',
  },
];

function angryOrder(c, key) {
  if (key === 'late_trip') return makeOrder(c, 'in_transit', { product: pick(PRODUCTS.filter((p) => p.kind === 'gear')), placedAgo: int(12, 18) });
  if (key === 'leak') return makeOrder(c, 'delivered', { product: PRODUCTS[0], deliveredAgo: int(6, 25) });
  return makeOrder(c, 'delivered', { product: pick(WEARABLE), deliveredAgo: int(8, 24) });
}

V.angry_ok = {
  cat: 'angry', good: true,
  gen(c) {
    const a = pick(ANGRY);
    const o = angryOrder(c, a.key);
    return { input: wrap(c, a.input(c, o), 'Complaint'), output: sign(a.good(c, o)), steps: [step('lookup_order', { order_id: o.id }, orderResult(c, o))] };
  },
  notes: { positive: ['great de-escalation', 'good apology and escalated', 'exactly right tone'] },
  helpPass: ['Acknowledges the frustration, checks the order and gives concrete next steps.'],
  polPass: ['Escalates the upset customer as required; no unauthorized commitments.'],
  polFail: ['Reply promises compensation on behalf of a supervisor; could not confirm this is within policy.'],
};

V.angry_ignored = {
  cat: 'angry', good: false, pattern: 'ignores the customer\'s anger and does not escalate',
  gen(c) {
    const a = pick(ANGRY);
    c.flavor = a.key;
    const o = angryOrder(c, a.key);
    const withLookup = a.key !== 'leak' && chance(0.6);
    return {
      input: wrap(c, a.input(c, o), 'Complaint'),
      output: sign(a.bad(c, o)),
      ...(withLookup ? { steps: [step('lookup_order', { order_id: o.id }, orderResult(c, o))] } : {}),
    };
  },
  notes: {
    negative: [
      (c) => c.flavor === 'late_trip' ? 'customer asked for a manager - no escalation, and an upsell?!' : null,
      (c) => c.flavor === 'chargeback' ? 'threatened a chargeback, agent replied like it was a routine question' : null,
      (c) => c.flavor === 'refund_late' ? 'no apology, no check of the refund, just the standard timeline' : null,
      (c) => c.flavor === 'leak' ? 'product failed and customer is furious - got a marketing blurb' : null,
      'ignored that the customer is angry',
      'tone-deaf. Cheerful canned reply + "Happy trails!" to someone this upset',
      'no acknowledgement, no escalation',
    ],
  },
  helpPass: [(c) => ({
    late_trip: 'Gives the order status and an estimated delivery date; the question is answered.',
    chargeback: 'Explains how to exchange for the right size with clear steps.',
    refund_late: 'Explains the refund timeline accurately.',
    leak: 'Explains the jacket\'s waterproof rating and how to care for it.',
  }[c.flavor])],
  helpFail: [(c) => ({
    late_trip: 'Does not acknowledge the customer\'s frustration or the request for a manager.',
    chargeback: 'Ignores that this is the third contact and the chargeback threat; generic exchange steps.',
    refund_late: 'Does not check the overdue refund; generic timeline only.',
    leak: 'Does not address the defective product; generic product information.',
  }[c.flavor])],
  polPass: ['No refund or discount commitments made; compliant.'],
  polFail: [(c) => ({
    late_trip: 'Customer asked for a manager; reply offers no escalation as the escalation policy requires.',
    chargeback: 'Customer threatened a chargeback; reply does not escalate.',
    refund_late: 'Overdue refund complaint not investigated or escalated.',
    leak: 'Product defect complaint not handled under the warranty policy.',
  }[c.flavor])],
};

const OOS = [
  {
    key: 'cover', input: 'can you write me a cover letter for a job at a climbing gym? lol you seem smart',
    refuse: (c) => `Ha, thank you, ${c.first}! I'm only able to help with Acme Outfitters orders, products and accounts, so I'll have to pass on the cover letter - good luck with the application though! If you need anything for the climbing gym itself, I'm happy to help.`,
    comply: () => 'Of course! Here\'s a cover letter you can adapt:\n\nDear Hiring Manager,\n\nI am excited to apply for the position at your climbing gym. As a passionate climber with strong customer service skills, I believe I would be a great addition to your team. I am reliable, friendly and eager to help members of all levels enjoy the sport safely.\n\nThank you for your consideration.\n\nSincerely,\n[Your Name]',
    note: 'wrote a cover letter. We are a store',
  },
  {
    key: 'stocks', input: 'what do you think about investing in outdoor brands, is REI or Amazon stock a better buy',
    refuse: () => 'I\'m not able to give investment advice - I can only help with Acme Outfitters orders, products and accounts. Is there anything I can help you with on that front?',
    comply: () => 'Great question! Amazon has a much larger and more diversified business, so it\'s generally considered the more stable long-term investment, while outdoor retail is more seasonal. REI is a co-op, so it isn\'t publicly traded. For most people a diversified index fund is a safer choice than picking individual stocks!',
    note: 'gave investment advice!! big liability',
  },
  {
    key: 'poem', input: 'Write a short poem about hiking for my girlfriend\'s birthday card',
    refuse: (c) => `That's a lovely idea, ${c.first}, but writing poems is outside what I can help with here - I'm limited to orders, products and account questions. If you're looking for a gift to go with the card, our gift cards can be sent by email on any date you choose.`,
    comply: () => 'What a sweet idea! Here you go:\n\nUp the trail where the tall pines grow,\nwith you beside me, I\'m never slow.\nEvery summit, every view,\nis better because I share it with you.\n\nHappy birthday!',
    note: 'wrote a poem - out of scope',
  },
  {
    key: 'weather', input: 'Is it going to snow in Yosemite next weekend? deciding whether to bring the parka',
    refuse: () => 'I can\'t check forecasts, sorry - the National Park Service site for Yosemite posts current conditions and road closures, and the National Weather Service has the forecast. If snow is possible, the Glacier insulated parka is rated for well below freezing, so it\'s a safe bet to pack.',
    comply: () => 'Next weekend in Yosemite should be mostly clear with highs around 55F and lows near freezing, with a small chance of light snow at higher elevations on Sunday. I\'d definitely bring the parka for the evenings!',
    note: 'made up a weather forecast',
  },
  {
    key: 'homework', input: 'can you help with my physics homework? its about friction on a slope, block of 5kg at 30 degrees',
    refuse: () => 'I wish I could help, but I can only answer questions about Acme Outfitters orders, products and accounts. Good luck with the physics!',
    comply: () => 'Sure! For a 5 kg block on a 30 degree slope, the component of gravity along the slope is m*g*sin(30) = 5 * 9.8 * 0.5 = 24.5 N. The normal force is m*g*cos(30) = 42.4 N. If the coefficient of friction is mu, the friction force is mu * 42.4 N, and the block slides if 24.5 N is larger than that.',
    note: 'did the customer\'s homework, out of scope',
  },
];

V.oos_refuse = {
  cat: 'out_of_scope', good: true,
  gen(c) { const q = pick(OOS); const r = q.refuse(c); return { input: wrap(c, q.input, 'Other'), output: sign(r.includes(c.first) ? r : hi(c) + r) }; },
  notes: { positive: ['polite no, good', 'correct to decline'] },
  helpPass: ['Politely declines an out-of-scope request and offers relevant help.'],
  helpFail: ['The customer\'s request was not fulfilled.', 'Declines to help; the customer leaves without what they asked for.'],
  polPass: ['Stays within the support scope; compliant.'],
};

V.oos_complied = {
  cat: 'out_of_scope', good: false, pattern: 'answers out-of-scope requests',
  gen(c) { const q = pick(OOS); c.oos = q; return { input: wrap(c, q.input, 'Other'), output: sign(q.comply(c)) }; },
  notes: { negative: [(c) => c.oos.note, 'off-topic, should have declined'], neutral: ['harmless but off-topic', 'not really our job'] },
  helpPass: ['Fulfils the user\'s request.'],
  helpFail: ['Request is outside customer-support scope; the reply should have declined.', 'Off-topic answer, not a support resolution.'],
  polPass: ['No refund or discount commitments.'],
  polFail: ['Answers a request outside the support scope.', 'Gives advice outside the support scope.'],
};

const PRODUCT_QA = [
  {
    q: 'Is the Ridgeline rain jacket actually waterproof or just water resistant?',
    good: 'It\'s fully waterproof: a 2.5-layer membrane rated to 10,000mm with taped seams, so it handles steady rain. It isn\'t insulated, so layer a fleece underneath when it\'s cold.',
    wrong: 'It\'s fully waterproof and breathable, and like all our outerwear it comes with a lifetime warranty, so if it ever leaks we\'ll replace it, no questions asked!',
    wrongNote: 'our warranty is 1 year, not lifetime',
    polFail: 'Promises a lifetime warranty; the warranty policy is one year.',
  },
  {
    q: 'What\'s the warranty on the Basecamp 2P tent?',
    good: 'The Basecamp 2P is covered for one year from delivery against manufacturing defects (seams, poles, zippers). Normal wear and damage from use aren\'t covered, but we sell replacement poles and stakes separately.',
    wrong: 'All Acme Outfitters gear, including the Basecamp 2P tent, comes with a lifetime warranty. If anything ever goes wrong with it, just send it back and we\'ll repair or replace it for free.',
    wrongNote: 'lifetime warranty?? it is one year',
    polFail: 'Misstates the warranty policy (one year, defects only).',
  },
  {
    q: 'Will you restock the Summit 45L backpack in green?',
    good: 'There\'s no confirmed restock date for the green Summit 45L yet. If you click "Notify me" on the product page and pick green, you\'ll get an email as soon as it\'s back.',
    wrong: 'Yes! The green Summit 45L will be back in stock next week, so check back then.',
    wrongNote: 'there is no restock date, agent made one up',
    polFail: 'Commits to a restock date that has not been announced.',
  },
  {
    q: 'How many people fit in the Basecamp 2P?',
    good: 'It sleeps two adults on standard sleeping pads, with a vestibule on each side for packs and boots. For two people plus a dog, most customers size up to a 3-person tent.',
    wrong: 'The Basecamp 2P comfortably sleeps up to three people, so it\'s great for small groups!',
    wrongNote: 'it\'s a 2-person tent, said 3',
    polFail: 'States product capacity that contradicts the product listing.',
  },
  {
    q: 'Can I put the merino base layer in the washing machine?',
    good: 'Yes - machine wash cold on a gentle (wool) cycle, and lay it flat to dry. Skip the dryer and fabric softener; heat shrinks merino and softener coats the fibres.',
  },
];

V.product_ok = {
  cat: 'product', good: true,
  gen(c) { const q = pick(PRODUCT_QA); return { input: wrap(c, q.q, 'Products'), output: sign(hi(c) + q.good) }; },
  notes: { positive: ['accurate', 'good'], neutral: ['fine', 'ok'] },
  helpPass: ['Accurate, specific product answer.'],
  polPass: ['Product information consistent with policy.'],
};

V.wrong_info = {
  cat: 'misc', good: false, pattern: 'states wrong policy or product facts',
  gen(c) {
    const q = pick(['product', 'product', 'window', 'expedited', 'eta']);
    c.flavor = q;
    if (q === 'product') {
      const p = pick(PRODUCT_QA.filter((x) => x.wrong));
      c.wrongNote = p.wrongNote;
      c.polFail = p.polFail;
      return { input: wrap(c, p.q, 'Products'), output: sign(hi(c) + p.wrong) };
    }
    if (q === 'window') {
      return {
        input: wrap(c, 'How long do I have to return something?', 'Returns & refunds'),
        output: sign(hi(c) + 'You have 60 days from delivery to return any item for a full refund, even if it has been worn. Just start the return from your account!'),
      };
    }
    if (q === 'expedited') {
      return {
        input: wrap(c, 'How much is expedited shipping?', 'Shipping'),
        output: sign(`Good news, ${c.first} - expedited shipping (2-3 business days) is free on all orders right now, so just choose it at checkout!`),
      };
    }
    const o = makeOrder(c, 'in_transit');
    return {
      input: wrap(c, `when will ${o.id} arrive?`, 'Shipping'),
      output: sign(`Your order ${o.id} is on its way and will arrive tomorrow, ${weekday(addDays(c.ts, 1))}! Keep an eye out for the delivery.`),
    };
  },
  notes: {
    negative: [
      (c) => c.flavor === 'product' ? c.wrongNote : null,
      (c) => c.flavor === 'window' ? 'return window is 30 days and items must be unworn' : null,
      (c) => c.flavor === 'expedited' ? 'expedited isn\'t free except for Elite' : null,
      (c) => c.flavor === 'eta' ? 'made up a delivery date, never looked up the order' : null,
      'wrong information',
    ],
  },
  helpPass: ['Answers the question directly.'],
  helpFail: [(c) => (c.flavor === 'eta'
    ? 'Gives a delivery date without looking up the order; likely inaccurate.'
    : 'States information that contradicts the store policy or product listing; the answer is inaccurate.')],
  polPass: ['No refund or discount commitments.'],
  polFail: [(c) => ({
    window: 'Misstates the return policy (30 days, unworn items).',
    expedited: 'Misstates the shipping policy; expedited shipping is not free for all customers.',
    eta: 'Promises a delivery date without checking the order.',
  }[c.flavor] || c.polFail)],
};

V.damaged_ok = {
  cat: 'damaged', good: true,
  gen(c) {
    const p = pick(PRODUCTS.filter((x) => x.kind === 'gear' || x.kind === 'boots'));
    const o = makeOrder(c, 'delivered', { product: p, deliveredAgo: int(1, 6) });
    const damage = p.sku === 'BT-200' ? 'a snapped pole' : p.kind === 'boots' ? 'a sole that\'s coming off' : 'a torn seam';
    return {
      input: wrap(c, `My ${p.name} (order ${o.id}) arrived with ${damage}. ${c.channel === 'email' ? 'Photo attached.' : 'Can you help?'}`, 'Damaged item'),
      output: sign(`I'm sorry, ${c.first} - that's not how your ${p.name} should arrive. I checked order ${o.id} (delivered ${fmt(o.delivered)}). ${c.channel === 'email' ? 'Thanks for the photo; that\'s clearly a manufacturing defect.' : 'Could you send a photo of the damage? As soon as I have it,'} ${c.channel === 'email' ? 'I\'ve' : 'I\'ll'} set up a replacement to ship by expedited shipping at no cost, and you don't need to send the damaged one back.`),
      steps: [step('lookup_order', { order_id: o.id }, orderResult(c, o))],
    };
  },
  notes: { positive: [(c) => (c.channel === 'email' ? 'good, replacement sent fast, no need to return a broken item' : 'asked for a photo, right'), 'good'] },
  helpPass: ['Checks the order and arranges a replacement.'],
  polPass: ['Damaged item handled with order check and photo; compliant.'],
  polFail: ['Sends a replacement before the damaged item is returned; policy requires a return first.'],
};

const LONG = [
  {
    q: 'Do you ship to Canada?',
    a: (c) => `Hi ${c.first}, thank you so much for your question, and for your interest in shopping with Acme Outfitters! We love hearing from customers all over North America.\n\nWe currently offer shipping to a number of destinations. Within the United States, standard shipping takes 5-7 business days and is free on orders over $75, while expedited shipping takes 2-3 business days. Orders are processed at our warehouse within 1-2 business days, and you will receive a confirmation email with tracking as soon as your order ships.\n\nTo answer your question directly: yes, we do ship to Canada! Canadian orders usually arrive within 7-12 business days depending on the province and the carrier. Please note that import duties and taxes may be charged by Canadian customs on delivery, and these are the responsibility of the recipient. Delivery times can also be longer around holidays and during busy sale periods.\n\nA few tips for a smooth delivery: double-check your address and postal code at checkout, make sure your phone number is included so the carrier can reach you, and keep an eye on your tracking link.\n\nIf you have any other questions about shipping, returns, sizing or our products, please don't hesitate to reach out. We're always happy to help!`,
  },
  {
    q: 'how long does standard shipping take',
    a: (c) => `Great question, ${c.first}! Shipping times can depend on a few different factors, so let me walk you through everything you need to know.\n\nFirst, once you place your order, our warehouse team picks, packs and ships it, which usually takes 1-2 business days. Orders placed after 2pm Eastern or on weekends are processed the next business day. You'll get a confirmation email as soon as your order is on its way, with a tracking number you can follow.\n\nStandard shipping then takes 5-7 business days within the US and is free on orders over $75. If you need your gear sooner, expedited shipping takes 2-3 business days. Delivery to Alaska, Hawaii and PO boxes can take a few days longer.\n\nPlease keep in mind that carriers can experience delays during holidays, severe weather or peak seasons, so we always recommend ordering a little early if you need something for a specific trip or event.\n\nAnd remember, if anything isn't quite right when it arrives, you can return unworn items with tags within 30 days of delivery.\n\nI hope this helps, and I hope you enjoy your new gear!`,
  },
  {
    q: 'whats your return policy',
    a: (c) => `Hi ${c.first}, thanks for asking! We want you to be completely happy with every purchase, so here is a complete overview of how returns work at Acme Outfitters.\n\nEligibility: unworn items with the original tags attached can be returned within 30 days of delivery. Items marked "final sale" cannot be returned. Footwear should be tried on indoors only, and gear such as tents should be unused and in the original packaging.\n\nHow to start a return: sign in to your account, go to Orders, select the order and click "Start a return". Choose the items and a reason, and we'll email you a prepaid return label. Pack the items securely, attach the label and drop the package at any carrier location.\n\nRefunds: once our warehouse receives and inspects your return, your refund is issued to your original payment method within 5-7 business days. Your bank may take a few additional days to show it. Original shipping charges are not refunded.\n\nExchanges: if you need a different size or color, you can choose an exchange instead, and we'll ship the new item as soon as the return is scanned by the carrier.\n\nIf you have any questions at all about a specific order, just let me know!`,
  },
  {
    q: 'Can I put the merino base layer in the washing machine?',
    a: (c) => `Hi ${c.first}! That's a great question, and caring for merino properly makes a big difference to how long it lasts, so here's a full guide.\n\nYes, our Merino base layer crew can be machine washed. Use a cold water setting (30C / 86F or lower) and a gentle or wool cycle. Turn the garment inside out before washing to protect the fibres, and use a mild, wool-specific detergent if you have one. Avoid bleach and fabric softener, as softener coats the fibres and reduces their natural breathability and odour resistance.\n\nFor drying, lay the garment flat on a towel or drying rack, away from direct heat and sunlight. Please don't tumble dry it: heat causes merino to shrink and can make it lose its shape. Do not iron it either.\n\nThe good news is that merino is naturally odour resistant, so you don't need to wash it after every wear. Often simply airing it out overnight is enough, which also helps it last longer.\n\nFinally, store it folded rather than hung, so it keeps its shape, and consider a cedar block to protect it from moths.\n\nHappy to answer any other product care questions you have!`,
  },
];

V.too_long = {
  cat: 'misc', good: true, pattern: 'answers far too long',
  gen(c) { const q = pick(LONG); return { input: wrap(c, q.q, 'Other'), output: sign(q.a(c)) }; },
  notes: {
    positive: ['correct, a bit long'],
    neutral: ['correct but way too long for a yes/no question', 'the answer is in there, buried under four paragraphs', 'fine, but nobody reads this much in chat', 'too long'],
    negative: ['customer asked one thing and got an essay, replied "tl;dr?"', 'way too long - the actual answer is in paragraph 3'],
  },
  helpPass: ['Complete and accurate answer with useful detail.', 'Thorough answer covering the question and related details.'],
  helpFail: ['The answer to the simple question is buried in a long reply.'],
  polPass: ['Policy details stated correctly; compliant.'],
};

V.lang_ok = {
  cat: 'language', good: true,
  gen(c) {
    if (c.lang === 'es') {
      const o = makeOrder(c, 'in_transit');
      return {
        input: wrap(c, pick([
          `Hola, hice el pedido ${o.id} hace ${daysBetween(o.placed, c.ts)} días y todavía no ha llegado. ¿Me pueden decir dónde está?`,
          `Buenas, ¿cuándo llega mi pedido ${o.id}? Lo necesito para una excursión.`,
        ]), 'Shipping'),
        output: sign(`Hola ${c.first}, gracias por escribirnos y perdona la espera. Revisé el pedido ${o.id}: salió de nuestro almacén el ${fmtEs(o.shipped)} con ${o.carrier} (número de seguimiento ${o.tracking}) y el último escaneo fue en ${o.lastScan.split(',').slice(0, 2).join(',')}. La entrega estimada es el ${fmtEs(o.eta)}. Si no ha llegado para el ${fmtEs(addDays(o.eta, 2))}, respóndeme aquí y abriré una investigación con la transportista o te enviaré un reemplazo.`),
        steps: [step('lookup_order', { order_id: o.id }, orderResult(c, o))],
      };
    }
    const o = makeOrder(c, 'delivered', { product: pick(WEARABLE), deliveredAgo: int(3, 15) });
    const p = o.items[0];
    const r = rma();
    return {
      input: wrap(c, `Hallo, ich möchte den Artikel "${p.name}" aus Bestellung ${o.id} zurückschicken, er ist leider zu klein. Wie funktioniert das?`, 'Returns & refunds'),
      output: sign(`Hallo ${c.first}, danke für Ihre Nachricht! Ich habe Bestellung ${o.id} geprüft: der Artikel "${p.name}" wurde am ${fmtDe(o.delivered)} zugestellt, die Rückgabe ist also innerhalb der 30 Tage möglich. Ich habe die Rücksendung ${r} angelegt, das Etikett kommt per E-Mail. Bitte schicken Sie den Artikel ungetragen und mit Etikett zurück; die Erstattung erfolgt 5-7 Werktage nach Eingang in unserem Lager auf Ihr ursprüngliches Zahlungsmittel.`),
      steps: [
        step('lookup_order', { order_id: o.id }, orderResult(c, o)),
        step('create_return', { order_id: o.id, items: [p.sku], reason: 'size' }, { return_id: r, label_emailed: true }),
      ],
    };
  },
  notes: { positive: [(c) => (c.lang === 'es' ? 'good, answered in Spanish' : 'good, answered in German'), 'good'] },
  helpPass: ['Answers in the customer\'s language with the order status and next steps.'],
  polPass: ['Order checked before answering; compliant.'],
};

// ---------------------------------------------------------------------------------------------
// The plan: which variant, which human rating, and (for rated traces) which eval predictions.
// Contradictions are planned exactly; everything else follows per-variant probabilities.

const plan = [];
function add(variant, n, rating, opts = {}) {
  const items = [];
  for (let i = 0; i < n; i++) items.push({ variant, rating, ...opts });
  plan.push(...items);
  return items;
}
// Of `items`, exactly `k` get `value` for eval `key`, the rest the opposite.
function exactly(items, key, k, value) {
  const order = shuffle(items.map((_, i) => i));
  order.forEach((idx, pos) => { items[idx][key] = pos < k ? value : !value; });
}

// Positive ratings (98). All judged good by both evals except the planned false alarms.
for (const [v, n, helpFA, polFA, o] of [
  ['refund_ok', 13, 0, 0], ['refund_ok', 1, 0, 1, { tier: 'Elite' }], ['refund_deny', 6, 2, 0],
  ['shipping_ok', 14, 0, 0], ['sizing_ok', 8, 0, 0], ['clarify_ok', 5, 2, 0], ['discount_ok', 8, 0, 2],
  ['account_ok', 9, 0, 0], ['angry_ok', 8, 0, 0], ['oos_refuse', 6, 3, 0], ['product_ok', 9, 0, 0],
  ['damaged_ok', 4, 0, 1, { channel: 'email' }], ['lang_ok', 5, 0, 0], ['too_long', 2, 0, 0],
]) {
  const items = add(v, n, 'positive', o || {});
  exactly(items, 'help', helpFA, false);
  exactly(items, 'policy', polFA, false);
}

// Negative ratings (62). Missed failures (eval judged good) concentrated on four patterns.
for (const [v, n, helpMiss, polMiss] of [
  ['refund_unchecked', 14, 7, 4],
  ['angry_ignored', 12, 5, 1],
  ['discount_invented', 10, 4, 2],
  ['no_clarify_ship', 4, 2, 0], ['no_clarify_size', 3, 1, 3], ['no_clarify_account', 3, 1, 0],
  ['wrong_info', 11, 0, 0],
  ['too_long', 2, 0, 2],
  ['oos_complied', 3, 0, 0],
]) {
  const items = add(v, n, 'negative');
  exactly(items, 'help', helpMiss, true);
  exactly(items, 'policy', polMiss, true);
}

// Neutral ratings (20) never count as contradictions; predictions follow the probabilities.
for (const [v, n] of [['too_long', 10], ['oos_complied', 2], ['shipping_ok', 3], ['product_ok', 2], ['sizing_ok', 2], ['clarify_ok', 1]]) add(v, n, 'neutral');

// Unrated (120): mostly good, some bad.
for (const [v, n] of [
  ['refund_ok', 12], ['refund_deny', 5], ['shipping_ok', 15], ['sizing_ok', 8], ['clarify_ok', 4],
  ['discount_ok', 7], ['account_ok', 9], ['angry_ok', 5], ['oos_refuse', 5], ['product_ok', 9],
  ['damaged_ok', 3], ['lang_ok', 4], ['too_long', 4],
  ['refund_unchecked', 7], ['angry_ignored', 6], ['discount_invented', 5], ['no_clarify_ship', 2],
  ['no_clarify_size', 2], ['no_clarify_account', 2], ['wrong_info', 4], ['oos_complied', 2],
]) add(v, n, null);

// Probability that each eval judges a trace of the variant good, for traces without a plan.
const P_GOOD = {
  refund_ok: [0.97, 0.93], refund_deny: [0.7, 0.97], shipping_ok: [0.97, 0.98], sizing_ok: [0.97, 0.99],
  clarify_ok: [0.6, 0.98], discount_ok: [0.95, 0.8], account_ok: [0.97, 0.98], angry_ok: [0.95, 0.93],
  oos_refuse: [0.6, 0.98], product_ok: [0.97, 0.99], damaged_ok: [0.95, 0.85], lang_ok: [0.97, 0.98],
  too_long: [0.85, 0.98], refund_unchecked: [0.5, 0.3], angry_ignored: [0.4, 0.1],
  discount_invented: [0.4, 0.2], no_clarify_ship: [0.5, 0.1], no_clarify_size: [0.4, 0.9],
  no_clarify_account: [0.4, 0.1], wrong_info: [0.1, 0.1], oos_complied: [0.3, 0.2],
};

// ---------------------------------------------------------------------------------------------
// Build traces

shuffle(plan);
const times = plan.map(() => {
  const day = int(0, 29);
  // US-centred traffic: most messages between 13:00 and 04:00 UTC.
  const hour = weighted([[13, 3], [14, 5], [15, 7], [16, 8], [17, 8], [18, 8], [19, 8], [20, 7], [21, 7],
    [22, 6], [23, 5], [0, 4], [1, 3], [2, 2], [3, 1], [4, 1], [8, 1], [10, 1], [11, 1], [12, 2]]);
  return START + day * DAY + hour * 3600000 + int(0, 3599) * 1000 + int(0, 999);
}).sort((a, b) => a - b);

const usedIds = new Set();
const traces = [];
plan.forEach((item, i) => {
  const variant = V[item.variant];
  const ts = times[i];
  const lang = item.variant === 'lang_ok' ? pick(['es', 'de']) : 'en';
  const first = lang === 'es' ? pick(ES_FIRST) : lang === 'de' ? pick(DE_FIRST) : pick(FIRST);
  const last = pick(LAST);
  const c = {
    ts, lang, first, last,
    tier: item.tier || weighted(TIERS),
    channel: item.channel || weighted([['chat', 55], ['email', 35], ['web_form', 10]]),
    product: pick(WEARABLE),
  };
  c.email = `${first.toLowerCase().normalize('NFD').replace(/[^a-z]/g, '')}.${last.toLowerCase()}${int(1, 99)}@example.com`;
  const g = variant.gen(c);
  let id;
  do id = `conv-${hex(10)}`; while (usedIds.has(id));
  usedIds.add(id);

  const [pHelp, pPol] = P_GOOD[item.variant];
  const help = item.help ?? chance(pHelp);
  const policy = item.policy ?? chance(pPol);
  const reason = (ok, passList, failList, generic) => {
    const list = (ok ? passList : failList) || (ok ? generic.pass : generic.fail);
    return pick(list.map((r) => text(r, c)).filter(Boolean));
  };

  let note = null;
  if (item.rating) {
    // A pool mixes scenario-specific notes (functions of the trace, null when they do not apply)
    // and generic ones (strings); the specific ones are preferred.
    const pool = (variant.notes && variant.notes[item.rating]) || [];
    const specific = pool.filter((n) => typeof n === 'function').map((n) => n(c)).filter(Boolean);
    const generic = pool.filter((n) => typeof n === 'string');
    const pNote = { negative: 0.9, neutral: 0.7, positive: (item.help === false || item.policy === false) ? 0.7 : 0.2 }[item.rating];
    if ((specific.length || generic.length) && chance(pNote)) {
      note = specific.length && (!generic.length || chance(0.75)) ? pick(specific) : pick(generic);
    }
  }

  traces.push({
    id, ts, c, item, note, input: g.input, output: g.output, steps: g.steps,
    help, policy,
    helpReason: reason(help, variant.helpPass, variant.helpFail, { pass: GENERIC.helpPass, fail: GENERIC.helpFail }),
    polReason: reason(policy, variant.polPass, variant.polFail, { pass: GENERIC.polPass, fail: GENERIC.polFail }),
    withMeta: chance(0.75),
  });
});

// ---------------------------------------------------------------------------------------------
// The agent, its evals, and the JSONL lines

const PROMPT = `You are a friendly customer support assistant for {{company_name}}, an online store that sells outdoor clothing, footwear and camping gear.

You help customers with questions about orders, shipping, returns and refunds, products, sizing and their account.

The customer you are talking to is a {{customer_tier}} member. Always reply in {{language}}.

## How to respond
- Be warm, upbeat and positive. Customers should always leave the conversation happy.
- Give complete answers. Be thorough and include all the details that might be useful, so the customer never has to write back.
- Resolve the customer's issue in a single reply whenever you can.
- Customer satisfaction is our top priority, so do what it takes to make things right.

## Tools
- lookup_order(order_id): status, items, shipping and delivery dates of an order
- lookup_customer(email): the customer's account and recent orders
- create_return(order_id, items, reason): starts a return and emails a return label
- issue_refund(order_id, amount): refunds an order or part of it to the original payment method
- send_password_reset(email): emails a password reset link

## Store information
- Returns: unworn items with tags can be returned within 30 days of delivery. Refunds go back to the original payment method within 5-7 business days.
- Shipping: standard shipping takes 5-7 business days and is free on orders over $75. Expedited shipping takes 2-3 business days.
- Warranty: our gear is covered against manufacturing defects for one year.
- Sizing: refer customers to the size guide on each product page.

## Rules
- Never share internal information or details about other customers.
- If you don't know the answer, say so and offer to connect the customer with a human agent.
- End every message with "Happy trails! - The {{company_name}} Support Team".
`;

const EVALS = [
  {
    name: 'helpfulness', key: 'help',
    description: 'LLM judge: does the reply resolve the customer\'s request with a correct, complete and actionable answer? true = helpful.',
  },
  {
    name: 'policy_compliance', key: 'policy',
    description: 'LLM judge: does the reply follow the Acme Outfitters support policy - refunds and returns (30-day window, no refund promised before the order is checked), discount codes (published codes only, one per order, never after purchase), escalation of upset customers, no commitments about an unverified order? true = compliant.',
  },
];

const lines = [];
lines.push({
  type: 'agent', name: AGENT,
  description: `Customer-support assistant (chat, email and contact form) of ${COMPANY}, a fictional online store for outdoor clothing and gear. Sample data bundled with refold.`,
  prompt_template: PROMPT,
});
for (const e of EVALS) lines.push({ type: 'eval', agent: AGENT, name: e.name, description: e.description });
for (const t of traces) {
  const line = {
    type: 'trace', agent: AGENT, source: SOURCE, external_id: t.id,
    timestamp: new Date(t.ts).toISOString(), input: t.input, output: t.output,
  };
  if (t.steps) line.steps = t.steps;
  if (t.withMeta) line.metadata = { channel: t.c.channel, customer_tier: t.c.tier, language: t.c.lang };
  lines.push(line);
}
for (const t of traces) {
  if (!t.item.rating) continue;
  const line = { type: 'feedback', external_id: t.id, source: SOURCE, rating: t.item.rating };
  if (t.note) line.note = t.note;
  lines.push(line);
}
for (const e of EVALS) {
  for (const t of traces) {
    lines.push({
      type: 'eval_execution', agent: AGENT, eval: e.name, external_id: t.id, source: SOURCE,
      predicted_result: t[e.key], predicted_reason: e.key === 'help' ? t.helpReason : t.polReason,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Self-checks and numbers

const problems = [];
for (const t of traces) {
  for (const [field, s] of [['input', t.input], ['output', t.output]]) {
    if (s.length > MAX_TEXT) problems.push(`${t.id} ${field} is ${s.length} characters`);
    if (s.includes('{{') || s.includes('}}')) problems.push(`${t.id} ${field} contains braces`);
  }
}
const vars = new Set([...PROMPT.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}/g)].map((m) => m[1]));
if ([...vars].sort().join() !== 'company_name,customer_tier,language') problems.push(`template variables: ${[...vars]}`);

const ratings = { positive: 0, negative: 0, neutral: 0 };
for (const t of traces) if (t.item.rating) ratings[t.item.rating]++;
const stats = {};
for (const e of EVALS) {
  const s = { missed_failure: 0, false_alarm: 0, agree: 0, by_variant: {} };
  for (const t of traces) {
    const r = t.item.rating;
    if (r !== 'positive' && r !== 'negative') continue;
    const kind = r === 'negative' && t[e.key] ? 'missed_failure' : r === 'positive' && !t[e.key] ? 'false_alarm' : null;
    if (!kind) { s.agree++; continue; }
    s[kind]++;
    const k = `${kind}: ${t.item.variant}`;
    s.by_variant[k] = (s.by_variant[k] || 0) + 1;
  }
  stats[e.name] = s;
}
const totalContradictions = EVALS.reduce((n, e) => n + stats[e.name].missed_failure + stats[e.name].false_alarm, 0);
if (totalContradictions < 25 || totalContradictions > 50) problems.push(`${totalContradictions} contradictions`);

const body = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
const args = process.argv.slice(2);
// Exit codes are set, never forced with process.exit(): stdout may be a pipe, and exiting before
// it drains would cut the output short.
function main() {
  if (problems.length) {
    console.error(`generate.mjs: ${problems.join('; ')}`);
    process.exitCode = 1;
    return;
  }
  if (args.includes('--stdout')) {
    // `... --stdout | head` closes the pipe early; that is not an error.
    process.stdout.on('error', (err) => { if (err.code !== 'EPIPE') throw err; });
    process.stdout.write(body);
    return;
  }
  if (args.includes('--check')) {
    let current = '';
    try { current = readFileSync(OUT, 'utf8'); } catch { /* missing counts as different */ }
    if (current !== body) {
      console.error('examples/support-agent.jsonl is out of date: run node examples/generate.mjs');
      process.exitCode = 1;
      return;
    }
    console.log('examples/support-agent.jsonl is up to date');
    return;
  }
  writeFileSync(OUT, body);
  if (args.includes('--plan')) {
    for (const t of traces) console.log(`${t.id} ${t.item.variant} ${t.item.rating || '-'} help=${t.help} policy=${t.policy}`);
  }
  console.log(report());
}

function report() {
  const rated = ratings.positive + ratings.negative + ratings.neutral;
  const count = (type) => lines.filter((l) => l.type === type).length;
  const out = [];
  out.push(`wrote examples/support-agent.jsonl: ${lines.length} lines, ${Buffer.byteLength(body)} bytes`);
  out.push(`agents 1, evals ${EVALS.length}, traces ${traces.length} (${traces.filter((t) => t.steps).length} with steps, ${traces.filter((t) => t.withMeta).length} with metadata), feedback ${count('feedback')}, eval executions ${count('eval_execution')}`);
  out.push(`rated ${rated} of ${traces.length} (${Math.round((100 * rated) / traces.length)}%): positive ${ratings.positive}, negative ${ratings.negative}, neutral ${ratings.neutral}`);
  out.push(`first trace ${new Date(traces[0].ts).toISOString()}, last ${new Date(traces[traces.length - 1].ts).toISOString()}`);
  out.push('');
  out.push('| eval | missed failures | false alarms | total | agreements (rated positive/negative) |');
  out.push('|---|---|---|---|---|');
  for (const e of EVALS) {
    const s = stats[e.name];
    out.push(`| ${e.name} | ${s.missed_failure} | ${s.false_alarm} | ${s.missed_failure + s.false_alarm} | ${s.agree} |`);
  }
  const tm = EVALS.reduce((n, e) => n + stats[e.name].missed_failure, 0);
  const tf = EVALS.reduce((n, e) => n + stats[e.name].false_alarm, 0);
  out.push(`| all | ${tm} | ${tf} | ${tm + tf} | |`);
  out.push('');
  for (const e of EVALS) {
    out.push(`${e.name}:`);
    for (const [k, n] of Object.entries(stats[e.name].by_variant).sort()) out.push(`  ${k} ${n}`);
  }
  return out.join('\n');
}

main();
