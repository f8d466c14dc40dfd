// The swap card: what a person watches after "Activate". Owns: naming each step of the
// operations that follow the click in plain words (stopping, freeing memory, downloading
// with %/bytes/rate/ETA, starting, loading, ready) with its duration from the server's
// times (`operation.timeline`), a bar that never goes backwards, and the end: "Switched to
// <model> in N s", after which the card collapses and stops collecting log lines.
// Must not: decide anything about the cluster; it reads the state the stream sent.

import { fmtBytes, fmtDuration, secondsBetween } from './format.js';

// A step of a plan in plain words, and which phase of a swap it is.
export function stepWords(step) {
  const a = step || {};
  switch (a.action) {
    case 'stop_model': return { phase: 'stopping', text: a.model ? `Stopping ${a.model}` : 'Stopping what runs' };
    case 'settle_gpu': return { phase: 'freeing', text: 'Freeing memory' };
    case 'download': return { phase: 'downloading', text: `Downloading ${a.model} to ${a.host}` };
    case 'launch_model': return { phase: 'starting', text: `Starting ${(a.spec && a.spec.model) || 'the model'}` };
    case 'wait_ready': return { phase: 'loading', text: `Loading ${a.model} until it answers` };
    case 'stop_service': return { phase: 'other', text: `Stopping ${a.service} on ${a.host}` };
    case 'start_service': return { phase: 'other', text: `Starting ${a.service} on ${a.host}` };
    case 'restart_service': return { phase: 'other', text: `Restarting ${a.service} on ${a.host}` };
    case 'fetch_launcher': return { phase: 'other', text: 'Looking for launcher updates' };
    case 'update_launcher': return { phase: 'other', text: 'Updating the launcher' };
    case 'checkout_launcher': return { phase: 'other', text: `Checking out launcher ${String(a.commit || '').slice(0, 7)}` };
    case 'return_launcher': return { phase: 'other', text: `Following launcher branch ${a.branch}` };
    default: return { phase: 'other', text: 'Working' };
  }
}

function downloadWords(d) {
  if (!d) return '';
  const parts = [];
  if (d.total) parts.push(`${Math.floor((100 * d.bytes) / d.total)} %`, `${fmtBytes(d.bytes)} of ${fmtBytes(d.total)}`);
  else parts.push(`${fmtBytes(d.bytes)} (size unknown)`);
  if (d.rate_bps) parts.push(`${fmtBytes(d.rate_bps)}/s`);
  if (d.total && d.eta_secs !== null && d.eta_secs !== undefined) parts.push(`ETA ${fmtDuration(d.eta_secs)}`);
  return parts.join(' · ');
}

// The rows of the card: every step of `op` with its state and duration, then "Ready".
function phaseRows(op, ready) {
  const ended = op.outcome && op.outcome.state !== 'running';
  const rows = (op.timeline || []).map((t, i) => {
    const w = stepWords(t.step);
    let state = 'pending';
    if (t.finished_at) state = 'done';
    else if (t.started_at) state = ended ? (op.outcome.state === 'succeeded' ? 'done' : op.outcome.state) : 'running';
    const secs = t.started_at ? secondsBetween(t.started_at, t.finished_at || (ended ? op.finished_at : null)) : null;
    const detail = state === 'running' && w.phase === 'downloading' ? downloadWords(op.download) : '';
    return { key: `${op.id}:${i}`, text: w.text, phase: w.phase, state, secs, detail };
  });
  rows.push({ key: `${op.id}:ready`, text: 'Ready', phase: 'ready', state: ready ? 'done' : 'pending', secs: null, detail: '' });
  return rows;
}

// How far the operation is, 0..1: finished steps, plus the download's share of its step.
function fractionOf(op) {
  const n = (op.timeline || []).length + 1;
  let done = 0;
  for (const t of op.timeline || []) {
    if (t.finished_at) done += 1;
    else if (t.started_at && t.step && t.step.action === 'download' && op.download && op.download.total) {
      done += Math.min(1, op.download.bytes / op.download.total);
    }
  }
  return done / n;
}

// The steps that change which model runs: an operation with one of them is the swap's
// (a launcher check or a service restart in between is not).
const MODEL_ACTIONS = new Set(['stop_model', 'settle_gpu', 'download', 'launch_model', 'wait_ready']);
function isSwapOp(op) { return (op.timeline || []).some((t) => t.step && MODEL_ACTIONS.has(t.step.action)); }

// A new watch of a swap to `model`, started after operation `opAfter`.
export function newSwap(model, opAfter) {
  return { model, opAfter, op: null, skip: new Set(), maxFrac: 0, sawDesired: false, final: false };
}

// The server restarted: operation ids began again, so every operation counts anew.
export function forgetRun(sw) {
  sw.opAfter = 0;
  sw.op = null;
  sw.skip.clear();
}

// Whether a log line belongs to the swap.
export function swapLine(sw, line) {
  return typeof line.op === 'number' && line.op > sw.opAfter && !sw.skip.has(line.op);
}

const ICON = { done: '✓', running: '●', pending: '○', failed: '✗', cancelled: '–' };

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function setText(e, t) { if (e && e.textContent !== t) e.textContent = t; }

function renderRows(list, rows) {
  const byKey = new Map(Array.from(list.children).map((li) => [li.dataset.key, li]));
  const keep = new Set(rows.map((r) => r.key));
  for (const [k, li] of byKey) if (!keep.has(k)) li.remove();
  let prev = null;
  for (const r of rows) {
    let li = byKey.get(r.key);
    if (!li) {
      li = el('li', { 'data-key': r.key });
      li.append(el('span', { class: 'icon', 'aria-hidden': 'true' }), el('span', { class: 'what' }), el('span', { class: 'detail num' }), el('span', { class: 'secs num' }));
    }
    if ((prev ? prev.nextSibling : list.firstChild) !== li) list.insertBefore(li, prev ? prev.nextSibling : list.firstChild);
    prev = li;
    li.className = `phase ${r.state}`;
    li.dataset.phase = r.phase;
    li.dataset.state = r.state;
    const [icon, what, detail, secs] = li.children;
    setText(icon, ICON[r.state] || '');
    setText(what, r.text);
    setText(detail, r.detail);
    setText(secs, r.secs === null ? '' : fmtDuration(r.secs));
  }
}

// Renders the card for the swap `sw` ({model, opAfter, ...}, kept by the page) from the
// state `s`; `modelReady` says whether `sw.model` serves now; `tid` finds the card's parts.
// Returns what the page must do: {final: true} once the swap ended (stop its log),
// {skipped: true} when an operation turned out not to be the swap's (filter its lines out).
export function renderSwapCard(s, sw, modelReady, tid) {
  let skipped = false;
  // The recently ended operations first: a snapshot the stream merged away (the swap's
  // end, then at once a launcher check that ended too) is still learnt from them.
  for (const cand of [...(s.recent_operations || []), s.ended_operation, s.operation]) {
    if (!cand || cand.id <= sw.opAfter) continue;
    if (isSwapOp(cand)) { if (!sw.op || cand.id >= sw.op.id) sw.op = cand; }
    else if (!sw.skip.has(cand.id)) { sw.skip.add(cand.id); skipped = true; }
  }
  const op = sw.op;
  const desired = s.desired ? s.desired.active_model : undefined;
  // The file is re-read after the click: until it says the new model, nothing is
  // "superseded" (that flash was the old value seen once more).
  if (desired === sw.model) sw.sawDesired = true;
  if (op && sw.firstStart === undefined) sw.firstStart = op.started_at;
  const state = op && op.outcome ? op.outcome.state : null;
  let badge; let cls; let detail; let title = `Switching to ${sw.model}`;
  let final = false;
  if (sw.sawDesired && desired !== sw.model) {
    badge = 'superseded'; cls = 'warn'; final = true;
    detail = `The active model is now ${desired || 'none'}.`;
  } else if (modelReady && (!op || state === 'succeeded')) {
    const secs = op ? secondsBetween(sw.firstStart || op.started_at, op.finished_at) : null;
    badge = 'ready'; cls = 'ok'; final = true;
    title = secs === null ? `${sw.model} is serving` : `Switched to ${sw.model} in ${fmtDuration(secs)}`;
    detail = `${sw.model} is serving.`;
  } else if (state === 'failed') {
    badge = 'failed'; cls = 'bad';
    detail = op.outcome.detail || 'The operation failed; see the log. It is retried after a pause.';
  } else if (state === 'cancelled') {
    badge = 'cancelled'; cls = 'warn';
    detail = op.outcome.detail || 'The operation was cancelled.';
  } else if (op) {
    const cur = (op.timeline || [])[op.step];
    const w = cur ? stepWords(cur.step) : { phase: 'working', text: 'Working' };
    badge = state === 'succeeded' ? 'loading' : w.phase; cls = 'info';
    detail = state === 'succeeded' ? `Waiting for ${sw.model} to answer.` : `${w.text} (step ${Math.min(op.step + 1, op.steps)} of ${op.steps}).`;
  } else {
    badge = 'queued'; cls = 'muted';
    detail = 'Waiting for the controller to pick up the change…';
  }
  setText(tid('swap-title'), title);
  const st = tid('swap-state');
  st.className = `badge ${cls}`;
  setText(st, badge);
  setText(tid('swap-detail'), detail);

  // The bar: never backwards within one swap (a retry's new operation starts at 0).
  const frac = badge === 'ready' ? 1 : op ? fractionOf(op) : 0;
  sw.maxFrac = Math.max(sw.maxFrac || 0, frac);
  const bar = tid('swap-bar');
  bar.className = `bar${badge === 'ready' ? ' done' : badge === 'failed' ? ' failed' : ''}`;
  const width = `${(sw.maxFrac * 100).toFixed(1)}%`;
  if (bar.firstElementChild.style.width !== width) bar.firstElementChild.style.width = width;
  bar.setAttribute('aria-valuenow', String(Math.round(sw.maxFrac * 100)));

  if (op) renderRows(tid('swap-phases'), phaseRows(op, badge === 'ready'));
  tid('swap-cancel').hidden = !(op && state === 'running');
  tid('swap-card').dataset.op = op ? String(op.id) : '';
  if (final && !sw.final) {
    sw.final = true;
    tid('swap-more').open = false;
  }
  return { final, skipped };
}
