// spark-control browser UI. ES modules (this one and those under ui/), no framework, no
// build step, no network access beyond the server that embeds it. Owns: rendering the
// state, the live log stream, and turning clicks into /api edits (which the server writes into desired.yaml). Must not:
// keep its own idea of the desired state (the file is the truth), or rebuild DOM on every
// tick (updates are keyed and in place so nothing jumps while people read or type).
import { connectState } from './state.js';
import { fmtBytes, fmtDuration } from './format.js';
import { watchLayout } from './phone.js';
import { forgetRun, newSwap, renderSwapCard, stepWords, swapLine } from './swap.js';
import { renderDeployments } from './deployments.js';
import { loadDesired, renderEditor, wireEditor } from './editor.js';
import { $, $$, tid, h, setText, setAttr, show, setClass, syncList, fmtTime, fmtDateTime, pct, known, why } from './dom.js';

// ---------------------------------------------------------------- app state
const app = {
  state: null,          // last /api/state
  connected: false,
  lastOk: 0,
  // Auth as the server says (GET /api/session): the token itself never reaches script —
  // signing in sets an HttpOnly cookie.
  session: { auth_required: false, signed_in: false, known: false },
  view: 'cluster',
  logs: [],             // LogLine ring (all operations)
  lastSeq: 0,
  logListeners: new Set(),
  lastGeneration: -1,
  telemetry: undefined, // undefined: not loaded yet; else GET /api/telemetry
  downloads: undefined, // undefined: not loaded yet; else GET /api/downloads, normalised
  setup: undefined,
  swap: null,           // the swap card's watch ({model, opAfter, …}: ui/swap.js)
  updateOp: null,
};

// ---------------------------------------------------------------- API
class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

async function api(method, path, body, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string') { payload = body; headers['Content-Type'] = headers['Content-Type'] || 'text/plain; charset=utf-8'; }
    else { payload = JSON.stringify(body); headers['Content-Type'] = 'application/json'; }
  }
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), opts.timeout || 15000);
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, signal: ctl.signal, cache: 'no-store', credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, e.name === 'AbortError' ? `${method} ${path} timed out` : `cannot reach spark-control (${e.message})`);
  } finally { clearTimeout(timer); }
  const ct = res.headers.get('content-type') || '';
  const data = ct.includes('json') ? await res.json().catch(() => null) : await res.text();
  if (res.status === 401) { app.session.signed_in = false; renderAuth(); }
  if (res.status === 401 && !opts.noAuthRetry) {
    const ok = await askToken('The server needs the admin token for this change.');
    if (ok) return api(method, path, body, Object.assign({}, opts, { noAuthRetry: true }));
  }
  if (!res.ok && !(opts.accept || []).includes(res.status)) {
    throw new ApiError(res.status, errorMessage(data, res), data);
  }
  return { status: res.status, data, headers: res.headers };
}

function errorMessage(data, res) {
  if (data && typeof data === 'object') {
    if (data.error && data.error.message) return data.error.message;
    if (typeof data.error === 'string') return data.error;
    if (data.message) return data.message;
  }
  if (typeof data === 'string' && data.trim()) return data.trim().slice(0, 300);
  return `${res.status} ${res.statusText}`;
}

// Diagnostics from a 422: accept {errors:[...]}, {diagnostics:[...]}, {error:{diagnostics|errors}}.
function diagnosticsOf(body) {
  if (!body || typeof body !== 'object') return [];
  for (const c of [body.errors, body.diagnostics, body.error && body.error.diagnostics, body.error && body.error.errors]) {
    if (Array.isArray(c)) return c;
  }
  return [];
}

// One edit of desired.yaml through the API. Returns true when it landed.
async function edit(op, formEl) {
  clearFormErrors(formEl);
  try {
    await api('POST', '/api/desired/edit', op);
    return true;
  } catch (e) {
    const diags = diagnosticsOf(e.body);
    if (formEl && (diags.length || e.status)) showFormErrors(formEl, diags, e.message);
    else toast(e.message, 'bad');
    return false;
  }
}

function clearFormErrors(form) {
  if (!form) return;
  for (const m of $$('[data-msg]', form)) setText(m, '');
  for (const i of $$('[aria-invalid]', form)) i.removeAttribute('aria-invalid');
}
// Puts each diagnostic under the field its path ends with; the rest under the form.
function showFormErrors(form, diags, fallback) {
  const rest = [];
  for (const d of diags) {
    const last = String(d.path || '').split('.').pop().replace(/\[\d+\]$/, '');
    const slot = last && $(`[data-msg="${CSS.escape(last)}"]`, form);
    if (slot) {
      setText(slot, d.message);
      const input = form.elements[last];
      if (input && input.setAttribute) input.setAttribute('aria-invalid', 'true');
    } else rest.push(d.line ? `line ${d.line}: ${d.path ? d.path + ': ' : ''}${d.message}` : `${d.path ? d.path + ': ' : ''}${d.message}`);
  }
  if (!diags.length && fallback) rest.push(fallback);
  setText($('[data-msg="form"]', form), rest.join('\n'));
}
function fieldError(form, name, msg) {
  const slot = $(`[data-msg="${name}"]`, form);
  setText(slot, msg);
  const input = form.elements[name];
  if (input && input.setAttribute) input.setAttribute('aria-invalid', 'true');
}

function toast(msg, kind) {
  const t = h('div', { class: `toast ${kind || ''}`, role: kind === 'bad' ? 'alert' : 'status' }, msg);
  tid('toasts').append(t);
  setTimeout(() => t.remove(), kind === 'bad' ? 8000 : 4000);
}

// ---------------------------------------------------------------- dialogs
function confirmDialog(title, body, okLabel) {
  const d = tid('confirm-dialog');
  setText(tid('confirm-title'), title);
  const b = tid('confirm-body'); b.replaceChildren(...(Array.isArray(body) ? body : [h('p', {}, body)]));
  setText(tid('confirm-ok'), okLabel || 'OK');
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = '';
    d.showModal();
    tid('confirm-ok').focus();
  });
}

// What the server says about auth; `signed_in` is true only after it accepted the token.
async function loadSession() {
  try {
    const r = await api('GET', '/api/session', undefined, { noAuthRetry: true });
    app.session = Object.assign({ known: true }, r.data);
  } catch (_) { /* offline: the state stream says so */ }
  renderAuth();
}

// Asks for the admin token and signs in with it (POST /api/session). The dialog stays open
// on a wrong token, saying so; nothing is stored in the page. Resolves true once signed in.
let tokenPrompt = null;
function askToken(reason) {
  if (tokenPrompt) return tokenPrompt;
  const d = tid('token-dialog');
  const form = tid('token-form');
  const input = $('#td-token');
  const msg = $('[data-msg="token"]', form);
  input.value = '';
  setText(msg, reason || '');
  tokenPrompt = new Promise((resolve) => {
    const onSubmit = async (ev) => {
      if (ev.submitter && ev.submitter.value === 'cancel') return; // closes the dialog
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) { setText(msg, 'Enter the token.'); return; }
      try {
        await api('POST', '/api/session', { token }, { noAuthRetry: true, accept: [] });
        app.session = { auth_required: true, signed_in: true, known: true };
        input.value = '';
        d.close('ok');
      } catch (e) {
        setText(msg, e.status === 401 ? 'That is not the admin token; try again.' : e.message);
        input.select();
      }
    };
    form.addEventListener('submit', onSubmit);
    d.addEventListener('close', () => {
      form.removeEventListener('submit', onSubmit);
      tokenPrompt = null;
      renderAuth();
      if (app.session.signed_in) { stateConn.restart(); startLogs(); }
      resolve(app.session.signed_in);
    }, { once: true });
    d.returnValue = '';
    d.showModal();
    input.focus();
  });
  return tokenPrompt;
}

// ---------------------------------------------------------------- state stream
// The state arrives over /api/state/stream (`state.js`); renderAll() runs only when
// something arrived. No polling of /api/state.
let stateConn = null;
function startState() {
  stateConn = connectState({
    state: onState,
    conn: setConn,
    epoch: (epoch, previous) => {
      // On the root element for people and tests reading the page: which server run it shows.
      document.documentElement.dataset.epoch = epoch;
      if (previous !== null) resync();
    },
    auth: () => {
      app.session = { auth_required: true, signed_in: false, known: true };
      renderAuth();
      if (!tokenPrompt) askToken('This server needs the admin token to show the cluster.');
    },
  });
}

// The server restarted (a new epoch): operation ids and log sequence numbers began again,
// so nothing this page holds from the previous run may be matched against the new one.
// Logs are dropped and streamed afresh; every other view reloads.
function resync() {
  app.logs = [];
  app.lastSeq = 0;
  for (const l of app.logListeners) if (l.reset) l.reset();
  if (app.swap) forgetRun(app.swap);
  startLogs();
  loadSession();
  loadSetup();
  app.downloads = undefined;
  hist.loadedAt = 0;
  if (app.view === 'cluster') loadTelemetry(true);
  const enter = ENTER[app.view];
  if (enter) enter();
}

function setConn(ok, msg) {
  app.connected = ok;
  const chip = tid('header-conn');
  setClass($('.dot', chip), `dot ${ok ? 'ok' : 'bad'}`);
  setText($('.t', chip), ok ? 'live' : 'offline');
  const b = tid('conn-banner');
  show(b, !ok);
  if (!ok) setText(b, `Cannot reach spark-control: ${msg}. Retrying on its own; check that the server runs and this device is on the same network.`);
}

function onState(s) {
  if (!s || typeof s !== 'object') return;
  app.state = s;
  app.lastOk = Date.now();
  document.documentElement.dataset.generation = String((s.observed || {}).generation ?? '');
  setConn(true);
  renderAll();
}

// ---------------------------------------------------------------- log stream (all operations)
let logSource = null;
function startLogs() {
  if (logSource && logSource.readyState !== EventSource.CLOSED) logSource.close();
  const es = new EventSource('/api/logs');
  logSource = es;
  const onLine = (ev) => {
    let l; try { l = JSON.parse(ev.data); } catch (_) { return; }
    if (typeof l.seq === 'number') { if (l.seq <= app.lastSeq) return; app.lastSeq = l.seq; }
    app.logs.push(l);
    if (app.logs.length > 4000) app.logs.splice(0, app.logs.length - 4000);
    for (const f of app.logListeners) f(l);
  };
  es.addEventListener('message', onLine);
  es.addEventListener('log', onLine);
  es.addEventListener('skipped', (ev) => {
    let n = ev.data; try { n = JSON.parse(ev.data).skipped ?? JSON.parse(ev.data); } catch (_) { /* plain number */ }
    const l = { seq: app.lastSeq, stream: 'control', text: `… ${n} lines skipped (the reader fell behind)` };
    for (const f of app.logListeners) f(l);
  });
}

// A log panel showing the lines that `filter` accepts, auto-scrolling when at the bottom.
function attachLog(el, filter, onEach) {
  const maxLines = 1500;
  const add = (l) => {
    if (!filter(l)) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 30;
    const ready = /Application startup complete\./.test(l.text || '');
    const line = h('span', { class: `l ${l.stream || ''}${ready ? ' ready' : ''}` },
      l.host ? h('span', { class: 'host' }, `${l.host} `) : null, l.text || '');
    el.append(line);
    while (el.childElementCount > maxLines) el.firstElementChild.remove();
    if (atBottom) el.scrollTop = el.scrollHeight;
    if (onEach) onEach(l);
  };
  add.reset = () => el.replaceChildren();
  el.replaceChildren();
  for (const l of app.logs) add(l);
  app.logListeners.add(add);
  return () => app.logListeners.delete(add);
}

// ---------------------------------------------------------------- derived facts
/**
 * The server's effective catalog (bundled and custom entries, merged settings), sorted
 * by name; empty without a valid desired file.
 * @param {import('./wire').StateView} s
 */
function catalogOf(s) {
  return (s.catalog || []).map((e) => ({ name: e.name, repo: e.repo, mode: e.mode || 'solo', description: e.description, bundled: !!e.bundled, settings: e.settings || {}, aliases: e.aliases || [] }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function resource(s, kind, name) {
  return (s.resources || []).find((r) => r.kind === kind && (name === undefined || r.name === name));
}
function healthClass(hl) {
  return { Healthy: 'ok', Progressing: 'info', Degraded: 'bad', Missing: 'muted' }[hl] || 'muted';
}
function syncClass(sy) { return { InSync: 'ok', OutOfSync: 'warn', Unknown: 'muted' }[sy] || 'muted'; }
const SYNC_LABEL = { InSync: 'in sync', OutOfSync: 'out of sync', Unknown: 'unknown' };
const HEALTH_LABEL = { Healthy: 'healthy', Progressing: 'progressing', Degraded: 'degraded', Missing: 'missing' };

// The model's readiness in words and a class.
function modelStatus(s) {
  const d = s.desired || {};
  const r = resource(s, 'model');
  const vllm = known((s.observed || {}).vllm);
  const served = vllm ? vllm.models || [] : [];
  if (!d.active_model) {
    return { name: 'none', cls: served.length ? 'info' : 'muted', label: served.length ? 'stopping' : 'nothing active', ready: false, detail: r ? r.detail : 'No model is set active.' };
  }
  if (!r) return { name: d.active_model, cls: 'muted', label: 'unknown', ready: false, detail: 'Waiting for the first observation…' };
  const ready = r.health === 'Healthy';
  const label = ready ? 'ready' : r.health === 'Progressing' ? 'loading' : r.sync === 'Unknown' ? 'unknown' : r.health === 'Degraded' ? 'not serving' : 'missing';
  return { name: d.active_model, cls: healthClass(r.health), label, ready, detail: r.detail };
}

function opRunning(s) { return !!(s.operation && s.operation.outcome && s.operation.outcome.state === 'running'); }

// ---------------------------------------------------------------- router
const VIEWS = ['cluster', 'deployments', 'models', 'downloads', 'services', 'updates', 'events', 'plan', 'desired', 'history', 'setup'];
function route() {
  const v = (location.hash.match(/^#\/([\w-]+)/) || [])[1];
  app.view = VIEWS.includes(v) ? v : 'cluster';
  for (const name of VIEWS) show($(`#view-${name}`), name === app.view);
  for (const a of $$('nav.tabs a')) setAttr(a, 'aria-current', a.dataset.view === app.view ? 'page' : null);
  const enter = ENTER[app.view];
  if (enter) enter();
  renderAll();
}

function renderAll() {
  const s = app.state;
  if (!s) return;
  renderHeader(s);
  const r = RENDER[app.view];
  if (r) {
    try { r(s); } catch (e) { console.error(e); }
  }
}

// ---------------------------------------------------------------- header and banners
function renderHeader(s) {
  const m = modelStatus(s);
  const mc = tid('header-model');
  setClass($('.dot', mc), `dot ${m.cls}`);
  setText($('.t', mc), `${m.name} · ${m.label}`);
  const oc = tid('header-op');
  const op = s.operation;
  if (op && opRunning(s)) {
    setClass($('.dot', oc), 'dot info');
    const current = (op.timeline || [])[op.step];
    setText($('.t', oc), `${current ? stepWords(current.step).text : 'working'} (${Math.min(op.step + 1, op.steps)}/${op.steps})`);
  } else if (s.held) {
    setClass($('.dot', oc), 'dot warn');
    setText($('.t', oc), 'cancelled; waiting for a change or retry');
  } else if (s.backoff) {
    setClass($('.dot', oc), 'dot bad');
    setText($('.t', oc), `failed ${s.backoff.failures}×, ${s.backoff.next_attempt ? 'retrying ' + fmtTime(s.backoff.next_attempt) : 'waiting for a change or retry'}`);
  } else if (s.plan && s.plan.steps && s.plan.steps.length) {
    setClass($('.dot', oc), 'dot warn');
    setText($('.t', oc), `${s.plan.steps.length} pending`);
  } else {
    setClass($('.dot', oc), 'dot ok');
    setText($('.t', oc), 'in sync');
  }
  // Diagnostics of the file on disk.
  const errs = (s.desired_diagnostics || []).filter((d) => d.severity === 'error');
  const db = tid('diag-banner');
  show(db, errs.length > 0);
  if (errs.length) {
    const key = JSON.stringify(errs);
    if (db.dataset.key !== key) {
      db.dataset.key = key;
      db.replaceChildren(h('div', { class: 'grow' },
        h('strong', {}, 'desired.yaml has errors — the last valid version stays in force.'),
        h('ul', {}, errs.slice(0, 5).map((d) => h('li', { class: 'mono small' }, `line ${d.line}:${d.col} ${d.path ? d.path + ': ' : ''}${d.message}`)))),
      h('a', { class: 'button', href: '#/desired' }, 'Fix in editor'));
    }
  }
  const eb = tid('error-banner');
  const lastErr = s.last_error && !errs.length ? s.last_error : null;
  show(eb, !!lastErr);
  if (lastErr && eb.dataset.key !== lastErr) {
    eb.dataset.key = lastErr;
    eb.replaceChildren(h('div', { class: 'grow' }, h('strong', {}, 'Problem: '), lastErr),
      h('button', { type: 'button', onclick: () => post('/api/retry', 'Retry requested') }, 'Retry now'));
  }
  renderUpdateBanner(s);
  renderAuth();
  const owui = tid('openwebui-link');
  const url = openWebuiUrl(s);
  show(owui, !!url);
  if (url) setAttr(owui, 'href', url);
}

function openWebuiUrl(s) {
  return s.open_webui_url || (s.links && s.links.open_webui) || (app.setup && app.setup.open_webui_url) || null;
}

function launcherInfo(s) {
  const d = s.desired || {};
  const head = d.cluster && d.cluster.head;
  const h0 = head && (s.observed.hosts || {})[head];
  return { head, info: h0 ? known(h0.launcher) : undefined, why: h0 ? why(h0.launcher) : 'no cluster head configured' };
}

// The addresses the launcher is given in -n: each host's interconnect (ConnectX-7) address,
// else its LAN address — the launcher refuses a list without its own CX7 address.
function launcherNodes(s) {
  const d = s.desired || {};
  const c = d.cluster;
  if (!c) return '—';
  return [c.head].concat(c.workers || []).map((n) => {
    const h0 = (d.hosts || {})[n] || {};
    return h0.interconnect ? `${n}: ${h0.interconnect}` : `${n}: ${h0.address || '?'} (no interconnect address set: the LAN address is used)`;
  }).join(', ');
}

function renderUpdateBanner(s) {
  const { info } = launcherInfo(s);
  const b = tid('update-banner');
  const behind = info && info.behind;
  show(b, !!behind);
  if (!behind) return;
  // Dismissed for these commits: it shows again when upstream moves on.
  const key = `${info.head || ''}:${behind}:${(info.subjects || []).join('|')}`;
  show(b, dismissedUpdate() !== key);
  if (b.dataset.key === key) return;
  b.dataset.key = key;
  b.replaceChildren(h('div', { class: 'grow' },
    h('strong', { testid: 'behind-count' }, `${behind} commit${behind === 1 ? '' : 's'} behind upstream`),
    ' — the launcher (spark-vllm-docker) has updates.',
    h('ul', { class: 'small hide-phone' }, (info.subjects || []).slice(0, 5).map((x) => h('li', {}, x)))),
  h('div', { class: 'row' },
    h('a', { class: 'button', href: '#/updates' }, 'Review and apply'),
    h('button', { type: 'button', testid: 'update-dismiss', 'aria-label': 'Dismiss the update notice', onclick: () => { dismissUpdate(key); show(b, false); } }, 'Dismiss')));
}
function dismissedUpdate() {
  try { return localStorage.getItem('spark-control.update-dismissed'); } catch (_) { return null; }
}
function dismissUpdate(key) {
  try { localStorage.setItem('spark-control.update-dismissed', key); } catch (_) { /* storage disabled: for this page only */ }
}

function renderAuth() {
  const s = app.state;
  const need = app.session.auth_required || !!(s && s.auth && s.auth.admin_token);
  const ok = app.session.signed_in;
  show(tid('token-button'), need);
  setText(tid('token-button'), ok ? 'Signed in ✓' : 'Sign in');
  const b = tid('auth-banner');
  show(b, need && !ok);
  if (need && !ok && !b.childElementCount) {
    b.append(h('div', { class: 'grow' }, 'This server needs the admin token to show and change the cluster.'),
      h('button', { type: 'button', onclick: () => askToken() }, 'Sign in'));
  }
  setText(tid('auth-info'), !app.session.known && !s ? '—' : need
    ? (ok ? 'Auth is on; this browser is signed in until it is closed (the token is not kept in the page).' : 'Auth is on; sign in with the token to see and change the cluster.')
    : 'Auth is off: anyone on the network can make changes (set an admin token on the server to require one).');
}

async function post(path, okMsg, body) {
  try {
    const r = await api('POST', path, body);
    if (okMsg) toast(okMsg, 'ok');
    return r;
  } catch (e) {
    toast(e.message, 'bad');
    return null;
  }
}

// ---------------------------------------------------------------- plots (inline SVG)
const SVGNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}
// A plot card, created once per key; `series` = [{label, points:[{t(ms), v}]}].
function plotCard(key, title) {
  const s = svg('svg', { class: 'plot', viewBox: '0 0 300 120', preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
  for (let i = 0; i <= 4; i++) s.append(svg('line', { class: 'grid-line', x1: 0, x2: 300, y1: 10 + i * 25, y2: 10 + i * 25, 'vector-effect': 'non-scaling-stroke' }));
  return h('div', { class: 'plot-card' },
    h('div', { class: 'row spread small' }, h('strong', {}, title), h('span', { class: 'muted num', 'data-role': 'now' }, '—')),
    s, h('div', { class: 'row spread small muted' }, h('span', {}, '−60 min'), h('div', { class: 'legend', 'data-role': 'legend' }), h('span', { 'data-role': 'max' }, '')));
}
function updatePlot(card, series, opts) {
  const s = $('svg', card);
  const now = Date.now(); const span = 3600e3;
  let max = opts.max || 0;
  if (!opts.max) for (const se of series) for (const p of se.points) max = Math.max(max, p.v);
  max = max > 0 ? max * (opts.max ? 1 : 1.15) : 1;
  series.forEach((se, i) => {
    let path = $(`path.s${i}`, s);
    if (!path) { path = svg('path', { class: `s${i}`, 'vector-effect': 'non-scaling-stroke' }); s.append(path); }
    const pts = se.points.filter((p) => p.t >= now - span);
    const d = pts.map((p, j) => `${j ? 'L' : 'M'}${(300 * (1 - (now - p.t) / span)).toFixed(1)},${(110 - 100 * Math.min(p.v, max) / max).toFixed(1)}`).join('');
    if (path.getAttribute('d') !== d) path.setAttribute('d', d);
  });
  for (const p of $$('path', s)) if (Number(p.getAttribute('class').slice(1)) >= series.length) p.remove();
  const last = series.map((se) => se.points.length ? se.points[se.points.length - 1].v : null);
  setText($('[data-role="now"]', card), last.every((v) => v === null) ? 'no data yet' : last.map((v) => v === null ? '—' : opts.fmt(v)).join(' / '));
  setText($('[data-role="max"]', card), series.some((se) => se.points.length) || opts.max ? `max ${opts.fmt(max)}` : '');
  const lg = $('[data-role="legend"]', card);
  const key = series.map((x) => x.label).join('|');
  if (lg.dataset.key !== key) { lg.dataset.key = key; lg.replaceChildren(...series.map((x, i) => h('span', {}, h('i', { class: `s${i}` }), x.label))); }
}
function pointsOf(arr) {
  return (arr || []).map((p) => Array.isArray(p) ? { t: typeof p[0] === 'number' ? p[0] : Date.parse(p[0]), v: p[1] }
    : { t: p.t !== undefined ? p.t : Date.parse(p.at), v: p.v !== undefined ? p.v : p.value }).filter((p) => isFinite(p.t) && isFinite(p.v));
}

let telemetryAt = 0;
async function loadTelemetry(force) {
  if (!force && Date.now() - telemetryAt < 5000) return;
  telemetryAt = Date.now();
  try {
    app.telemetry = (await api('GET', '/api/telemetry', undefined, { noAuthRetry: true })).data;
  } catch (_) { /* keep the last one */ }
  if (app.view === 'cluster' && app.state) renderCluster(app.state);
}

// ---------------------------------------------------------------- view: cluster
function renderCluster(s) {
  const d = s.desired || {};
  const hosts = Object.keys(d.hosts || {});
  const onb = tid('cluster-onboarding');
  show(onb, hosts.length === 0);
  if (!hosts.length && !onb.childElementCount) {
    onb.append(h('div', { class: 'card onboarding' }, h('h3', {}, 'Nothing is configured yet'),
      h('p', {}, 'spark-control does not know any Sparks. Add their addresses and copy its SSH key to them, then pick a model.'),
      h('a', { class: 'button primary', href: '#/setup' }, 'Start setup')));
  }
  const m = modelStatus(s);
  const cat = catalogOf(s).find((e) => e.name === d.active_model);
  setText(tid('model-name'), m.name);
  const badge = tid('model-ready');
  setClass(badge, `badge ${m.cls}`);
  setText(badge, m.label);
  setAttr(badge, 'data-ready', m.ready ? 'true' : 'false');
  setText(tid('model-detail'), cat && !String(m.detail).includes(cat.repo) ? `${cat.repo} — ${m.detail}` : m.detail);
  renderOp(tid('op-body'), s);
  // Hosts.
  const rows = tid('hosts-rows');
  show(tid('hosts-empty'), hosts.length === 0);
  syncList(rows, hosts, (n) => n, () => h('tr', {}, h('td', {}, h('strong', {})), h('td', {}, h('span', { class: 'badge' })), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'hide-phone muted small' })),
    (tr, name) => {
      const o = (s.observed.hosts || {})[name] || {};
      const reach = known(o.reachable);
      const [c0, c1, c2, c3, c4] = tr.children;
      setText(c0.firstChild, name);
      setClass(c1.firstChild, `badge ${reach === true ? 'ok' : reach === false ? 'bad' : 'muted'}`);
      setText(c1.firstChild, reach === true ? 'reachable' : reach === false ? 'unreachable' : 'unknown');
      setText(c2, o.rtt_ms !== undefined && o.rtt_ms !== null ? `${o.rtt_ms.toFixed(1)} ms` : '—');
      const gpus = known(o.gpus);
      setText(c3, gpus && gpus.length ? gpus.map((g) => `${Math.round(g.util_pct)} % · ${(g.mem_used_mib / 1024).toFixed(1)}${g.mem_total_mib ? '/' + (g.mem_total_mib / 1024).toFixed(0) : ''} GiB`).join(', ') : '—');
      const r = resource(s, 'host', name);
      setText(c4, r ? r.detail : (why(o.reachable) || ''));
    });
  // Plots.
  loadTelemetry(false);
  const t = app.telemetry;
  setText(tid('telemetry-source'), t ? 'the server\'s last hour' : 'loading…');
  const plots = tid('plots');
  syncList(plots, plotItems(t, hosts), (i) => i.key, (i) => plotCard(i.key, i.title), (card, i) => updatePlot(card, i.series, i.opts));
}

/**
 * Every series of GET /api/telemetry as plots: per vLLM deployment tokens/s (generated
 * and prompt), requests (running and waiting) and KV cache use; per host GPU use, GPU
 * memory, temperature, power and the SSH round trip.
 * @param {any} t the telemetry, or undefined before it loaded
 * @param {string[]} hosts
 */
function plotItems(t, hosts) {
  const items = [];
  const num = (/** @type {number} */ d) => (/** @type {number} */ v) => v.toFixed(d);
  const deps = t && t.deployments && Object.keys(t.deployments).length > 1 ? Object.entries(t.deployments) : [['', t ? t.vllm : undefined]];
  for (const [name, v] of deps) {
    const at = name ? ` — ${name}` : '';
    items.push({ key: `tps:${name}`, title: `Tokens/s${at}`, series: [{ label: 'generated', points: pointsOf(v && v.gen_tps) }, { label: 'prompt', points: pointsOf(v && v.prompt_tps) }], opts: { fmt: (/** @type {number} */ x) => `${x.toFixed(0)} tok/s` } });
    items.push({ key: `reqs:${name}`, title: `Requests${at}`, series: [{ label: 'running', points: pointsOf(v && v.running) }, { label: 'waiting', points: pointsOf(v && v.waiting) }], opts: { fmt: num(0) } });
    items.push({ key: `kv:${name}`, title: `KV cache${at}`, series: [{ label: 'used', points: pointsOf(v && v.kv_cache).map((p) => ({ t: p.t, v: p.v * 100 })) }], opts: { max: 100, fmt: (/** @type {number} */ x) => `${Math.round(x)} %` } });
  }
  for (const n of hosts) {
    const th = t && t.hosts && t.hosts[n];
    const total = th && typeof th.mem_total_mib === 'number' ? th.mem_total_mib : 0;
    items.push({ key: `util:${n}`, title: `GPU utilisation — ${n}`, series: [{ label: 'util %', points: pointsOf(th && th.gpu_util) }], opts: { max: 100, fmt: (/** @type {number} */ x) => `${Math.round(x)} %` } });
    items.push({ key: `mem:${n}`, title: `GPU memory — ${n}`, series: [{ label: 'used', points: pointsOf(th && th.mem_used_mib).map((p) => ({ t: p.t, v: p.v / 1024 })) }], opts: { max: total / 1024, fmt: (/** @type {number} */ x) => `${x.toFixed(1)} GiB` } });
    items.push({ key: `temp:${n}`, title: `GPU temperature — ${n}`, series: [{ label: '°C', points: pointsOf(th && th.temp_c) }], opts: { fmt: (/** @type {number} */ x) => `${Math.round(x)} °C` } });
    items.push({ key: `power:${n}`, title: `Power — ${n}`, series: [{ label: 'W', points: pointsOf(th && th.power_w) }], opts: { fmt: (/** @type {number} */ x) => `${Math.round(x)} W` } });
    items.push({ key: `rtt:${n}`, title: `SSH round trip — ${n}`, series: [{ label: 'ms', points: pointsOf(th && th.rtt_ms) }], opts: { fmt: (/** @type {number} */ x) => `${x.toFixed(1)} ms` } });
  }
  return items;
}

// The operation card body (shared by Cluster and Downloads).
function renderOp(el, s) {
  const op = s.operation;
  if (!el.dataset.built) {
    el.dataset.built = '1';
    el.append(
      h('div', { class: 'row spread' }, h('span', { 'data-role': 'phase', class: 'big', testid: 'op-phase' }), h('span', { class: 'badge', 'data-role': 'state', testid: 'op-state' })),
      h('div', { class: 'muted small num', 'data-role': 'meta' }),
      h('div', { class: 'bar', 'data-role': 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-label': 'Operation progress' }, h('div', {})),
      h('div', { class: 'progress-line num', 'data-role': 'pline' }),
      h('div', { class: 'row', style: 'margin-top:8px' },
        h('button', { type: 'button', class: 'danger', 'data-role': 'cancel', testid: 'op-cancel', onclick: () => cancelOp(el) }, 'Cancel'),
        h('button', { type: 'button', 'data-role': 'retry', onclick: () => post('/api/retry', 'Retry requested') }, 'Retry now'),
        h('button', { type: 'button', 'data-role': 'showlog', 'aria-expanded': 'false', onclick: (e) => toggleOpLog(el, e.currentTarget) }, 'Show log')),
      h('div', { class: 'log', 'data-role': 'log', role: 'log', tabindex: 0, hidden: true }));
  }
  const phase = $('[data-role="phase"]', el); const st = $('[data-role="state"]', el);
  const meta = $('[data-role="meta"]', el); const bar = $('[data-role="bar"]', el); const pline = $('[data-role="pline"]', el);
  show($('[data-role="retry"]', el), !!(s.backoff || s.held));
  show($('[data-role="cancel"]', el), !!(op && opRunning(s)));
  el.dataset.op = op ? String(op.id) : '';
  if (!op) {
    setText(phase, s.plan && s.plan.steps && s.plan.steps.length ? 'waiting to start' : 'idle');
    setClass(st, 'badge muted'); setText(st, 'none');
    setText(meta, s.plan && s.plan.steps && s.plan.steps.length ? `${s.plan.steps.length} step(s) pending` : 'Nothing has run since the server started.');
    show(bar, false); setText(pline, '');
    return;
  }
  const state = op.outcome ? op.outcome.state : 'running';
  const running = state === 'running';
  const current = (op.timeline || [])[op.step];
  setText(phase, running ? (current ? stepWords(current.step).text : 'working') : (state === 'succeeded' ? 'done' : state));
  setClass(st, `badge ${{ running: 'info', succeeded: 'ok', failed: 'bad', cancelled: 'warn' }[state] || 'muted'}`);
  setText(st, state);
  const elapsed = ((op.finished_at ? Date.parse(op.finished_at) : Date.now()) - Date.parse(op.started_at)) / 1000;
  setText(meta, `#${op.id} · step ${Math.min(op.step + 1, op.steps)} of ${op.steps} · started ${fmtTime(op.started_at)} · ${fmtDuration(elapsed)}${op.outcome && op.outcome.detail ? ' · ' + op.outcome.detail : ''}${s.backoff ? ` · failed ${s.backoff.failures}× (${s.backoff.error})` : ''}${s.held ? ` · ${s.held}` : ''}`);
  const frac = running ? (op.steps ? (op.step + (op.progress || 0)) / op.steps : 0) : (state === 'succeeded' ? 1 : op.steps ? op.step / op.steps : 0);
  show(bar, true);
  setClass(bar, `bar${state === 'succeeded' ? ' done' : state === 'failed' ? ' failed' : ''}`);
  const w = `${(frac * 100).toFixed(1)}%`;
  if (bar.firstChild.style.width !== w) bar.firstChild.style.width = w;
  setAttr(bar, 'aria-valuenow', Math.round(frac * 100));
  setText(pline, running && op.progress !== null && op.progress !== undefined ? `this step: ${pct(op.progress)}` : '');
  const logEl = $('[data-role="log"]', el);
  if (!logEl.hidden && logEl.dataset.op !== String(op.id)) attachOpLog(logEl, op.id);
}
// Cancel the operation the card shows (it stops at its current wait).
async function cancelOp(el) {
  const id = el.dataset.op;
  if (!id) return;
  if (!(await confirmDialog(`Cancel operation #${id}?`, 'It stops at once, at the step it is in (a stop or launch command already sent runs to its end). The plan then waits until the desired state changes or you press Retry.', 'Cancel operation'))) return;
  // Not `post`: its 404 text is for routes this build lacks; here a 404/409 says why.
  try {
    await api('POST', `/api/operations/${id}/cancel`);
    toast(`Operation #${id} cancelled.`, 'ok');
  } catch (e) { toast(e.message, 'bad'); }
}
function attachOpLog(logEl, id) {
  if (logEl._detach) logEl._detach();
  logEl.dataset.op = String(id);
  logEl._detach = attachLog(logEl, (l) => l.op === id);
}
function toggleOpLog(el, btn) {
  const logEl = $('[data-role="log"]', el);
  const open = logEl.hidden;
  logEl.hidden = !open;
  setAttr(btn, 'aria-expanded', open ? 'true' : 'false');
  setText(btn, open ? 'Hide log' : 'Show log');
  const op = app.state && app.state.operation;
  if (open && op) attachOpLog(logEl, op.id);
  if (!open && logEl._detach) { logEl._detach(); logEl._detach = null; logEl.dataset.op = ''; }
}

// ---------------------------------------------------------------- view: models
// The server's rule for names of hosts, models and services (`model::semantic::valid_name`):
// lower-case letters, digits, `.`, `_`, `-`, starting with a letter or digit, at most 63.
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const NAME_RULE = 'Lower-case letters, digits, dot, dash or underscore; starts with a letter or digit; at most 63 characters.';
const REPO_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
// Each toggle has three states: default (the key is absent: no flag, vLLM's own default),
// on and off, mapped to the flags of DESIGN §4. `vllm` is vLLM's default when no flag is
// given: prefix caching is on in current vLLM (off = `--no-enable-prefix-caching`).
/** @type {[string, string, {vllm: boolean, on: string, off: string}][]} */
const BOOL_FIELDS = [
  ['fastsafetensors', 'fastsafetensors', { vllm: false, on: '--load-format fastsafetensors', off: 'no flag' }],
  ['prefix_caching', 'Prefix caching', { vllm: true, on: '--enable-prefix-caching', off: '--no-enable-prefix-caching' }],
  ['fp8_kv_cache', 'FP8 KV cache', { vllm: false, on: '--kv-cache-dtype fp8', off: 'no flag' }],
];
// vLLM's own default of --gpu-memory-utilization (a fraction of the GPU's memory).
const VLLM_GPU_MEMORY = 0.9;

function splitArgs(text) {
  const out = []; let cur = ''; let q = null; let any = false;
  for (const ch of text) {
    if (q) { if (ch === q) q = null; else cur += ch; continue; }
    if (ch === '"' || ch === "'") { q = ch; any = true; continue; }
    if (/\s/.test(ch)) { if (any || cur) out.push(cur); cur = ''; any = false; continue; }
    cur += ch;
  }
  if (q) throw new Error('unclosed quote');
  if (any || cur) out.push(cur);
  return out;
}
const joinArgs = (a) => (a || []).map((x) => (/[\s"']/.test(x) || x === '' ? `"${x}"` : x)).join(' ');

function modelCard(e) {
  const id = `m-${e.name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const f = (name, label, input, hint) => h('div', { class: 'field' }, h('label', { for: `${id}-${name}` }, label), input, hint ? h('div', { class: 'hint' }, hint) : null, h('div', { class: 'msg', 'data-msg': name }));
  const boolSel = (name) => h('select', { id: `${id}-${name}`, name }, h('option', { value: '' }, 'default'), h('option', { value: 'true' }, 'on'), h('option', { value: 'false' }, 'off'));
  const form = h('form', { testid: `settings-form-${e.name}`, novalidate: true, onsubmit: (ev) => { ev.preventDefault(); saveSettings(e.name, form); } },
    h('div', { class: 'form-grid' },
      f('max_context', 'Max context (tokens)', h('input', { id: `${id}-max_context`, name: 'max_context', inputmode: 'numeric', autocomplete: 'off' }), '--max-model-len'),
      f('gpu_memory', 'GPU memory (fraction)', h('input', { id: `${id}-gpu_memory`, name: 'gpu_memory', inputmode: 'decimal', autocomplete: 'off' }), h('span', { 'data-role': 'gpu-hint' }, '--gpu-memory-utilization, a fraction in (0, 1]')),
      ...BOOL_FIELDS.map(([n, l, flags]) => f(n, l, boolSel(n), `on: ${flags.on} · off: ${flags.off}`))),
    f('extra_args', 'Extra arguments', h('input', { id: `${id}-extra_args`, name: 'extra_args', class: 'mono', autocomplete: 'off', style: 'width:100%' }), 'passed to vllm serve verbatim, separated by spaces; quote an argument with spaces'),
    h('div', { class: 'msg error-text', 'data-msg': 'form' }),
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Save settings'), h('button', { type: 'button', onclick: () => fillSettings(e.name, form, true) }, 'Undo changes')));
  for (const el of form.elements) el.addEventListener('input', () => { form.dataset.dirty = '1'; });
  form.elements.gpu_memory.addEventListener('input', () => gpuHint(form));
  return h('div', { class: 'card model', testid: `model-${e.name}` },
    h('div', { class: 'row spread' }, h('span', { class: 'name' }, e.name), h('span', { class: 'row', 'data-role': 'badges' })),
    h('div', { class: 'repo mono', 'data-role': 'repo' }),
    h('div', { class: 'small muted', 'data-role': 'desc' }),
    h('div', { class: 'row small', 'data-role': 'cache', testid: `cache-${e.name}` }),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'primary', testid: `activate-${e.name}`, 'data-role': 'activate', onclick: () => activate(e.name) }, 'Activate'),
      h('button', { type: 'button', testid: `unload-${e.name}`, 'data-role': 'unload', onclick: () => unload(e.name) }, 'Unload'),
      h('button', { type: 'button', class: 'danger', testid: `remove-${e.name}`, 'data-role': 'remove', onclick: () => removeModel(e.name) }, 'Remove')),
    h('details', { testid: `settings-${e.name}` }, h('summary', {}, 'Advanced settings'), form));
}

function updateModelCard(card, e, s) {
  const d = s.desired || {};
  const active = d.active_model === e.name;
  const m = modelStatus(s);
  card.classList.toggle('active', active);
  const badges = [e.mode, e.bundled ? 'bundled' : 'custom'];
  if (active) badges.unshift(m.ready ? 'serving' : m.label);
  const bkey = badges.join('|');
  const bEl = $('[data-role="badges"]', card);
  if (bEl.dataset.key !== bkey) {
    bEl.dataset.key = bkey;
    bEl.replaceChildren(...badges.map((b, i) => h('span', { class: `badge ${i === 0 && active ? m.cls : 'muted'}` }, b)));
  }
  setText($('[data-role="repo"]', card), e.repo);
  setText($('[data-role="desc"]', card), e.description || '');
  renderCacheBadges($('[data-role="cache"]', card), e, s);
  const act = $('[data-role="activate"]', card);
  act.disabled = active;
  setText(act, active ? 'Active' : 'Activate');
  show($('[data-role="remove"]', card), !e.bundled);
  show($('[data-role="unload"]', card), active);
  const form = $('form', card);
  form._entry = e;
  if (!form.dataset.dirty) fillSettings(e.name, form, false);
}

// Per host of the file: whether the model's repo is in that host's Hugging Face cache (as
// last observed), or that it is not known (host not reachable or not polled yet).
function renderCacheBadges(el, e, s) {
  const hosts = Object.keys((s.desired || {}).hosts || {});
  const per = hosts.map((host) => {
    const cache = known((((s.observed || {}).hosts || {})[host] || {}).hf_cache);
    const has = Array.isArray(cache) ? cache.includes(e.repo) : undefined;
    return { host, has };
  });
  const key = JSON.stringify(per);
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  el.replaceChildren(...per.map(({ host, has }) => h('span', {
    class: `badge ${has === true ? 'ok' : 'muted'}`,
    'data-host': host,
    'data-downloaded': has === undefined ? 'unknown' : String(has),
  }, has === true ? `downloaded on ${host}` : has === false ? `not on ${host}` : `${host}: cache not known`)));
}

// Fill the form from the file's overrides (values) and the effective settings (placeholders).
function fillSettings(name, form, reset) {
  const s = app.state; if (!s) return;
  const ov = ((s.desired || {}).overrides || {})[name] || {};
  const eff = (form._entry && form._entry.settings) || {};
  const key = JSON.stringify([ov, eff]);
  if (!reset && form.dataset.filled === key) return;
  form.dataset.filled = key;
  delete form.dataset.dirty;
  clearFormErrors(form);
  const el = form.elements;
  el.max_context.value = ov.max_context ?? '';
  el.max_context.placeholder = eff.max_context ? `default ${eff.max_context}` : 'vLLM default';
  // The file's unit: a fraction (0.5 in the field is `gpu_memory: 0.5`), a % as a hint.
  el.gpu_memory.value = ov.gpu_memory !== undefined && ov.gpu_memory !== null ? String(ov.gpu_memory) : '';
  const gDefault = typeof eff.gpu_memory === 'number' ? eff.gpu_memory : VLLM_GPU_MEMORY;
  el.gpu_memory.placeholder = `${gDefault} (default)`;
  gpuHint(form);
  for (const [n, , flags] of BOOL_FIELDS) {
    el[n].value = ov[n] === true ? 'true' : ov[n] === false ? 'false' : '';
    const base = typeof eff[n] === 'boolean' ? eff[n] : flags.vllm;
    el[n].options[0].textContent = `default (${base ? 'on' : 'off'})`;
  }
  el.extra_args.value = joinArgs(ov.extra_args);
}

// "= 50 % of the GPU's memory" under the GPU memory field, for what is typed or the default.
function gpuHint(form) {
  const v = form.elements.gpu_memory.value.trim().replace(',', '.');
  const x = v === '' ? Number(form.elements.gpu_memory.placeholder.split(' ')[0]) : Number(v);
  setText($('[data-role="gpu-hint"]', form), `--gpu-memory-utilization, a fraction in (0, 1]${isFinite(x) && x > 0 && x <= 1 ? ` · = ${Math.round(x * 1000) / 10} % of the GPU's memory` : ''}`);
}

async function saveSettings(name, form) {
  clearFormErrors(form);
  const ov = ((app.state.desired || {}).overrides || {})[name] || {};
  const el = form.elements; const patch = {}; let bad = false;
  const mc = el.max_context.value.trim();
  if (mc === '') { if (ov.max_context !== undefined) patch.max_context = null; }
  else if (!/^\d+$/.test(mc) || Number(mc) < 1) { fieldError(form, 'max_context', 'A whole number of tokens, e.g. 32768.'); bad = true; }
  else if (Number(mc) !== ov.max_context) patch.max_context = Number(mc);
  const gm = el.gpu_memory.value.trim().replace(',', '.');
  if (gm === '') { if (ov.gpu_memory !== undefined) patch.gpu_memory = null; }
  else if (!/^\d*(\.\d+)?$/.test(gm) || !(Number(gm) > 0) || Number(gm) > 1) { fieldError(form, 'gpu_memory', 'A fraction between 0 and 1, e.g. 0.85 for 85 %.'); bad = true; }
  else if (Number(gm) !== ov.gpu_memory) patch.gpu_memory = Number(gm);
  for (const [n] of BOOL_FIELDS) {
    const v = el[n].value === '' ? null : el[n].value === 'true';
    if (v !== (ov[n] ?? null)) patch[n] = v;
  }
  try {
    const args = splitArgs(el.extra_args.value.trim());
    if (JSON.stringify(args) !== JSON.stringify(ov.extra_args || [])) patch.extra_args = args.length ? args : null;
  } catch (e) { fieldError(form, 'extra_args', 'An opening quote has no closing quote.'); bad = true; }
  if (bad) return;
  if (!Object.keys(patch).length) { toast('No changes to save.'); return; }
  const ok = await edit({ op: 'set_overrides', model: name, overrides: patch }, form);
  if (ok) {
    delete form.dataset.dirty;
    toast(`Saved ${name}'s settings to desired.yaml${(app.state.desired || {}).active_model === name ? ' — the model relaunches with them' : ''}.`, 'ok');
  }
}

// Unload: no model active (`active_model: null`); the reconciler stops it and frees the GPUs.
async function unload(name) {
  const body = [h('p', {}, 'Stop ', h('strong', {}, name), ' and leave no model loaded?'),
    h('p', {}, 'Clients get errors until a model is activated again.')];
  if (!(await confirmDialog(`Unload ${name}?`, body, `Unload ${name}`))) return;
  if (await edit({ op: 'activate', model: null })) toast(`No model is active in desired.yaml; ${name} stops.`, 'ok');
}

async function activate(name) {
  const s = app.state;
  const cur = (s.desired || {}).active_model;
  const e = catalogOf(s).find((x) => x.name === name) || { repo: '?', mode: '?' };
  const body = [h('p', {}, 'Activate ', h('strong', {}, name), ` (${e.repo}, ${e.mode})?`),
    h('p', {}, cur ? `This stops ${cur} first. Clients get errors until ${name} is ready, which can take several minutes.` : 'Clients can use it once it is ready, which can take several minutes.')];
  if (!(s.desired && s.desired.cluster)) body.push(h('p', { class: 'error-text' }, 'No cluster is configured yet: the server will refuse this until Setup names a head host.'));
  if (!(await confirmDialog(`Switch to ${name}?`, body, `Activate ${name}`))) return;
  const before = s.operation ? s.operation.id : 0;
  app.swap = newSwap(name, before);
  if (await edit({ op: 'activate', model: name })) {
    toast(`${name} is now the active model in desired.yaml.`, 'ok');
    startSwapLog();
    renderAll();
  } else app.swap = null;
}

async function removeModel(name) {
  if (!(await confirmDialog(`Remove ${name}?`, `This removes the custom entry ${name} and its settings from desired.yaml.`, 'Remove'))) return;
  if (await edit({ op: 'remove_model', name })) toast(`Removed ${name}.`, 'ok');
}

// The swap card's log: the lines of the operations after the click, until the swap ends.
function startSwapLog() {
  stopSwapLog();
  const logEl = tid('swap-log');
  const sw = app.swap;
  logEl._detach = attachLog(logEl, (l) => swapLine(sw, l));
}
function stopSwapLog() {
  const logEl = tid('swap-log');
  if (logEl._detach) logEl._detach();
  logEl._detach = null;
}

function renderSwap(s) {
  const sw = app.swap;
  show(tid('swap-card'), !!sw);
  if (!sw || !s) return;
  const m = modelStatus(s);
  const { final, skipped } = renderSwapCard(s, sw, m.ready && m.name === sw.model, tid);
  // The swap ended: later operations' lines are not this swap's.
  if (final) stopSwapLog();
  else if (skipped) startSwapLog();
}

function renderModels(s) {
  const cat = catalogOf(s);
  syncList(tid('catalog'), cat, (e) => e.name, (e) => modelCard(e), (card, e) => updateModelCard(card, e, s));
  renderSwap(s);
}

// ---------------------------------------------------------------- view: downloads
// API: GET /api/downloads -> [{id, repo, mode, state: queued|running|stalled|failed|done|
// cancelled, total (per host, null when the Hub gave no size), note, suggestion, hosts:
// [{host, state, bytes, total, rate_bps, eta_secs, error, warning}]}]; POST /api/downloads
// {repo, mode}; DELETE /api/downloads/{id} cancels. `normaliseDownload` folds the hosts
// into one row. A 404 means this build has no downloads API: the view says so.
let dlTimer = null;
const dlOffered = new Set();
const dlSeenRunning = new Set();
async function loadDownloads() {
  clearTimeout(dlTimer);
  try {
    const r = await api('GET', '/api/downloads', undefined, { accept: [404], noAuthRetry: true });
    const raw = r.status === 404 ? null : (Array.isArray(r.data) ? r.data : (r.data && r.data.downloads) || []);
    app.downloads = raw && raw.map(normaliseDownload);
  } catch (e) { app.downloadsError = e.message; }
  if (app.state && app.view === 'downloads') renderDownloads(app.state);
  if (app.view === 'downloads' && app.downloads !== null) {
    const busy = (app.downloads || []).some((d) => d.state === 'running' || d.state === 'queued' || d.state === 'stalled');
    dlTimer = setTimeout(loadDownloads, busy ? 1000 : 5000);
  }
}

function normaliseDownload(d) {
  const hosts = Array.isArray(d.hosts) ? d.hosts : [];
  const per = hosts.filter((x) => typeof x === 'object');
  const sum = (k) => per.reduce((a, x) => a + (x[k] || 0), 0);
  const totals = per.map((x) => x.total ?? d.total);
  const total = totals.length && totals.every((t) => t) ? totals.reduce((a, t) => a + t, 0) : (d.total_bytes || null);
  return {
    ...d,
    hosts: per.length ? per.map((x) => x.host) : hosts,
    bytes: per.length ? sum('bytes') : (d.bytes || 0),
    total_bytes: total,
    rate_bps: per.length ? sum('rate_bps') : d.rate_bps,
    eta_secs: per.length ? Math.max(0, ...per.map((x) => x.eta_secs || 0)) : d.eta_secs,
    error: d.error || per.map((x) => x.error || x.warning).filter(Boolean).join('; ') || d.note || '',
  };
}

function normaliseRepo(v) {
  v = v.trim().replace(/^https?:\/\/(www\.)?huggingface\.co\//, '').replace(/\/(tree|blob|resolve)\/.*$/, '').replace(/\/+$/, '');
  return v;
}
function suggestName(repo) {
  return (repo.split('/').pop() || 'model').toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-.]+/, '').slice(0, 48) || 'model';
}

function downloadRow(dl) {
  return h('div', { class: 'card', testid: `download-${dl.id}` },
    h('div', { class: 'row spread' }, h('strong', { class: 'mono', 'data-role': 'repo' }), h('span', { class: 'badge', 'data-role': 'state', testid: 'download-state' })),
    h('div', { class: 'muted small', 'data-role': 'where' }),
    h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-label': `Download of ${dl.repo}`, testid: 'download-bar' }, h('div', {})),
    h('div', { class: 'progress-line num' },
      h('span', { 'data-role': 'pct', testid: 'download-pct' }), h('span', { 'data-role': 'bytes' }), h('span', { 'data-role': 'rate' }), h('span', { 'data-role': 'eta' })),
    h('div', { class: 'error-text small', 'data-role': 'err' }),
    h('div', { class: 'row', style: 'margin-top:6px' },
      h('button', { type: 'button', class: 'danger', 'data-role': 'cancel', testid: 'download-cancel', onclick: () => cancelDownload(dl.id) }, 'Cancel'),
      h('button', { type: 'button', 'data-role': 'add', testid: 'download-add', onclick: () => offerCatalog(dl) }, 'Add to catalog')));
}
function updateDownloadRow(row, dl, cat) {
  const frac = dl.total_bytes ? Math.min(1, (dl.bytes || 0) / dl.total_bytes) : (dl.state === 'done' ? 1 : 0);
  setText($('[data-role="repo"]', row), dl.repo);
  const st = $('[data-role="state"]', row);
  setClass(st, `badge ${{ running: 'info', queued: 'muted', stalled: 'warn', done: 'ok', failed: 'bad', cancelled: 'warn' }[dl.state] || 'muted'}`);
  setText(st, dl.state);
  setText($('[data-role="where"]', row), `${dl.mode || 'solo'}${dl.hosts && dl.hosts.length ? ' · ' + dl.hosts.join(', ') : ''}`);
  const bar = $('.bar', row);
  setClass(bar, `bar${dl.state === 'done' ? ' done' : dl.state === 'failed' ? ' failed' : ''}`);
  const w = `${(frac * 100).toFixed(1)}%`;
  if (bar.firstChild.style.width !== w) bar.firstChild.style.width = w;
  setAttr(bar, 'aria-valuenow', Math.round(frac * 100));
  setText($('[data-role="pct"]', row), `${Math.floor(frac * 100)} %`);
  setText($('[data-role="bytes"]', row), `${fmtBytes(dl.bytes)} of ${dl.total_bytes ? fmtBytes(dl.total_bytes) : '?'}`);
  setText($('[data-role="rate"]', row), dl.state === 'running' && dl.rate_bps ? `${fmtBytes(dl.rate_bps)}/s` : '');
  setText($('[data-role="eta"]', row), dl.state === 'running' ? `ETA ${fmtDuration(dl.eta_secs)}` : '');
  setText($('[data-role="err"]', row), dl.error || '');
  show($('[data-role="cancel"]', row), dl.state === 'running' || dl.state === 'queued' || dl.state === 'stalled');
  const inCat = cat.some((e) => e.repo === dl.repo);
  show($('[data-role="add"]', row), dl.state === 'done' && !inCat);
}

function renderDownloads(s) {
  const un = tid('download-unavailable');
  const na = app.downloads === null;
  show(un, na);
  show(tid('download-form-card'), !na);
  if (na && !un.childElementCount) {
    un.append(h('h3', {}, 'Downloads are not available in this build of spark-control'),
      h('p', {}, 'A model is still downloaded automatically when you activate it and it is not in the Sparks\' Hugging Face cache; the progress shows below and on the Cluster page.'));
  }
  const cat = catalogOf(s);
  const list = app.downloads || [];
  // Newest first: a download just started is at the top, where the form is.
  const newest = list.slice().sort((a, b) => String(b.started_at || '').localeCompare(String(a.started_at || '')) || String(b.id).localeCompare(String(a.id)));
  syncList(tid('downloads-list'), newest, (d) => d.id, downloadRow, (row, d) => updateDownloadRow(row, d, cat));
  // Offer "Add to catalog" once for a download this page saw running and that then finished.
  for (const d of list) {
    if (d.state === 'running' || d.state === 'queued' || d.state === 'stalled') dlSeenRunning.add(d.id);
    else if (d.state === 'done' && dlSeenRunning.has(d.id) && !dlOffered.has(d.id) && !cat.some((e) => e.repo === d.repo)) { dlOffered.add(d.id); offerCatalog(d); }
  }
  // The operation's own download step (activation of an uncached model).
  const card = tid('op-download');
  const op = s.operation;
  const current = op && (op.timeline || [])[op.step];
  const isDl = !!(op && opRunning(s) && current && current.step.action === 'download');
  show(card, isDl);
  if (isDl) {
    if (!card.childElementCount) card.append(h('h3', {}, 'Downloading for the current operation'), h('div', {}));
    renderOp(card.lastChild, s);
  }
}

async function startDownload(form) {
  clearFormErrors(form);
  const repo = normaliseRepo(form.elements.repo.value);
  if (!REPO_RE.test(repo)) { fieldError(form, 'repo', 'Use the Hugging Face repo id, org/name (e.g. Qwen/Qwen3-8B).'); return; }
  const mode = form.elements.mode.value;
  try {
    await api('POST', '/api/downloads', { repo, mode });
    form.elements.repo.value = '';
    toast(`Download of ${repo} started.`, 'ok');
    loadDownloads();
  } catch (e) {
    if (e.status === 404) { app.downloads = null; renderDownloads(app.state); return; }
    showFormErrors(form, diagnosticsOf(e.body), e.message);
  }
}
async function cancelDownload(id) {
  if (!(await confirmDialog('Cancel this download?', 'The partial files stay in the cache and a later download resumes from them.', 'Cancel download'))) return;
  try { await api('DELETE', `/api/downloads/${encodeURIComponent(id)}`); loadDownloads(); } catch (e) { toast(e.message, 'bad'); }
}

function offerCatalog(dl) {
  const d = tid('catalog-dialog'); const form = tid('catalog-form');
  clearFormErrors(form);
  const sg = dl.suggestion || {};
  form.elements.name.value = sg.name || suggestName(dl.repo);
  form.elements.repo.value = sg.repo || dl.repo;
  form.elements.mode.value = (sg.mode || dl.mode) === 'cluster' ? 'cluster' : 'solo';
  if (!d.open) d.showModal();
  form.elements.name.focus();
}
async function submitCatalog(ev) {
  const form = tid('catalog-form'); const d = tid('catalog-dialog');
  if (ev.submitter && ev.submitter.value !== 'ok') return;
  ev.preventDefault();
  const name = form.elements.name.value.trim(); const repo = normaliseRepo(form.elements.repo.value);
  clearFormErrors(form);
  if (!NAME_RE.test(name)) { fieldError(form, 'name', NAME_RULE); return; }
  if (!REPO_RE.test(repo)) { fieldError(form, 'repo', 'org/name'); return; }
  if (await edit({ op: 'add_model', name, repo, mode: form.elements.mode.value }, form)) {
    d.close('done');
    toast(`${name} added to the catalog.`, 'ok');
  }
}

// ---------------------------------------------------------------- view: services
function renderServices(s) {
  const d = s.desired || {};
  const names = Object.keys(d.services || {});
  show(tid('services-empty'), names.length === 0);
  const hosts = Object.keys(d.hosts || {});
  syncList(tid('services-rows'), names, (n) => n, (n) => {
    const sel = h('select', { 'aria-label': `Host of ${n}`, testid: `service-host-${n}`, onchange: (e) => moveService(n, e.target) });
    return h('tr', { testid: `service-${n}` },
      h('td', {}, h('strong', {}, n), h('div', { class: 'muted small', 'data-role': 'kind' })),
      h('td', {}, h('span', { class: 'badge', 'data-role': 'health', testid: `service-health-${n}` }), h('div', { class: 'muted small', 'data-role': 'detail' })),
      h('td', {}, sel),
      h('td', { class: 'num', 'data-role': 'port' }),
      h('td', { 'data-role': 'want' }),
      h('td', {}, h('div', { class: 'row' },
        h('button', { type: 'button', class: 'small', 'data-role': 'start', testid: `service-start-${n}`, onclick: () => setRunning(n, true) }, 'Start'),
        h('button', { type: 'button', class: 'small', 'data-role': 'stop', testid: `service-stop-${n}`, onclick: () => setRunning(n, false) }, 'Stop'),
        h('button', { type: 'button', class: 'small', 'data-role': 'restart', testid: `service-restart-${n}`, onclick: () => restartService(n) }, 'Restart'))));
  }, (tr, n) => {
    const svc = d.services[n];
    const r = resource(s, 'service', n);
    setText($('[data-role="kind"]', tr), { stt: 'speech-to-text', tts: 'text-to-speech' }[svc.kind] || svc.kind || '');
    const hb = $('[data-role="health"]', tr);
    setClass(hb, `badge ${r ? healthClass(r.health) : 'muted'}`);
    setText(hb, r ? HEALTH_LABEL[r.health] || r.health : 'unknown');
    setText($('[data-role="detail"]', tr), r ? r.detail : '');
    const sel = $('select', tr);
    const opts = hosts.includes(svc.host) ? hosts : [svc.host, ...hosts];
    if (sel.dataset.key !== opts.join('|')) { sel.dataset.key = opts.join('|'); sel.replaceChildren(...opts.map((x) => h('option', { value: x }, x))); }
    if (document.activeElement !== sel) sel.value = svc.host;
    setText($('[data-role="port"]', tr), svc.port);
    setText($('[data-role="want"]', tr), svc.running === false ? 'stopped' : 'running');
    $('[data-role="start"]', tr).disabled = svc.running !== false;
    $('[data-role="stop"]', tr).disabled = svc.running === false;
  });
}
async function setRunning(name, running) {
  if (!running && !(await confirmDialog(`Stop ${name}?`, `${name} stays stopped (desired.yaml says running: false) until you start it again.`, 'Stop'))) return;
  if (await edit({ op: 'place_service', service: name, host: null, port: null, running })) toast(`${name}: running: ${running} written to desired.yaml.`, 'ok');
}
async function moveService(name, sel) {
  const host = sel.value;
  if (!(await confirmDialog(`Move ${name} to ${host}?`, `${name} is stopped where it runs now and started on ${host}. Its container must exist there.`, 'Move'))) { renderAll(); return; }
  if (await edit({ op: 'place_service', service: name, host, port: null, running: null })) toast(`${name} moves to ${host}.`, 'ok');
}
async function restartService(name) {
  if (!(await confirmDialog(`Restart ${name}?`, `Its container is restarted where it runs; requests fail for a few seconds.`, 'Restart'))) return;
  await post(`/api/services/${encodeURIComponent(name)}/restart`, `Restart of ${name} requested.`);
}

// ---------------------------------------------------------------- view: updates
function renderUpdates(s) {
  const { head, info, why: w } = launcherInfo(s);
  const body = tid('updates-body');
  const key = JSON.stringify([head, info, w]);
  if (body.dataset.key !== key) {
    body.dataset.key = key;
    if (!info) body.replaceChildren(h('p', { class: 'muted' }, head ? `Not known yet: ${w || 'not polled yet'}.` : 'Configure a cluster head in Setup first.'));
    else {
      body.replaceChildren(h('dl', { class: 'kv' },
        h('dt', {}, 'Head'), h('dd', {}, head),
        h('dt', {}, 'Commit'), h('dd', { class: 'mono' }, (info.head || '').slice(0, 12)),
        h('dt', {}, 'Generation'), h('dd', { testid: 'launcher-generation' }, info.generation === 'A'
          ? 'A (early 2026: Ray only, no --solo)' : info.generation === 'B'
            ? 'B (mid/late 2026: --solo, no-Ray default)' : `unknown${info.generation_error ? ` (${info.generation_error})` : ''}`),
        h('dt', {}, 'Nodes (-n)'), h('dd', { class: 'mono', testid: 'launcher-nodes' }, launcherNodes(s)),
        h('dt', {}, 'Upstream'), h('dd', { testid: 'updates-behind' }, info.behind === undefined || info.behind === null ? 'not checked yet' : info.behind === 0 ? 'up to date' : `${info.behind} commit${info.behind === 1 ? '' : 's'} behind`)),
      // (replaceChildren turns a null argument into the text "null": pass nodes only.)
      ...(info.subjects && info.subjects.length ? [h('ul', { class: 'small', testid: 'updates-subjects' }, info.subjects.map((x) => h('li', {}, x)))] : []));
    }
  }
  tid('updates-apply').disabled = !(info && info.behind);
  const pol = (s.desired && s.desired.updates && s.desired.updates.launcher) || 'notify';
  const form = tid('policy-form');
  if (!form.dataset.dirty) {
    const v = typeof pol === 'object' && pol.pin ? 'pin' : String(pol);
    form.elements.policy.value = v;
    form.elements.pin.value = typeof pol === 'object' && pol.pin ? pol.pin : '';
    show(tid('pin-field'), v === 'pin');
  }
  const logEl = tid('updates-log');
  if (app.updateOp && !logEl._detach) {
    logEl.hidden = false;
    const after = app.updateOp.after;
    logEl._detach = attachLog(logEl, (l) => typeof l.op === 'number' && l.op > after);
  }
}
async function applyUpdate() {
  const { info } = launcherInfo(app.state);
  if (!(await confirmDialog('Apply the launcher update?', `git pull and ./build-and-copy.sh -c <workers> run on the head (${info && info.behind} commits). This takes a while; the model keeps serving until it is relaunched.`, 'Apply'))) return;
  app.updateOp = { after: app.state.operation ? app.state.operation.id : 0 };
  const r = await post('/api/updates/apply', 'Update started.');
  if (!r) app.updateOp = null;
  renderAll();
}
async function savePolicy(ev) {
  ev.preventDefault();
  const form = tid('policy-form');
  clearFormErrors(form);
  const policy = form.elements.policy.value; const pin = form.elements.pin.value.trim();
  if (policy === 'pin' && !/^[0-9a-f]{7,40}$/i.test(pin)) { fieldError(form, 'pin', 'A commit hash: 7 to 40 hex digits.'); return; }
  if (await edit({ op: 'set_update_policy', policy, pin: policy === 'pin' ? pin : null }, form)) {
    delete form.dataset.dirty;
    toast(`Update policy: ${policy}${policy === 'pin' ? ' ' + pin : ''}.`, 'ok');
  }
}

// ---------------------------------------------------------------- view: connectivity log
let evTimer = null;
async function loadEvents() {
  clearTimeout(evTimer);
  const f = tid('events-filter');
  const q = new URLSearchParams({ limit: '500' });
  if (f.elements.service.value) q.set('service', f.elements.service.value);
  if (f.elements.kind.value) q.set('kind', f.elements.kind.value);
  try {
    const r = await api('GET', `/api/events?${q}`, undefined, { noAuthRetry: true });
    app.events = Array.isArray(r.data) ? r.data : (r.data && r.data.events) || [];
    app.eventsError = null;
  } catch (e) { app.eventsError = e.message; }
  if (app.state) renderEvents(app.state);
  if (app.view === 'events') evTimer = setTimeout(loadEvents, 5000);
}
function renderEvents(s) {
  const f = tid('events-filter');
  const sel = f.elements.service;
  const names = new Set([...Object.keys((s.desired || {}).hosts || {}), ...Object.keys((s.desired || {}).services || {}), 'vllm', ...(app.events || []).map((e) => e.service)]);
  const list = Array.from(names).sort();
  if (sel.dataset.key !== list.join('|')) {
    sel.dataset.key = list.join('|');
    const cur = sel.value;
    sel.replaceChildren(h('option', { value: '' }, 'all services and hosts'), ...list.map((n) => h('option', { value: n }, n)));
    sel.value = cur;
  }
  const okF = f.elements.ok.value; const text = f.elements.text.value.trim().toLowerCase();
  const evs = (app.events || []).filter((e) => (okF === '' || String(e.ok) === okF)
    && (!text || JSON.stringify(e).toLowerCase().includes(text))).slice().sort((a, b) => (a.at < b.at ? 1 : -1));
  const empty = tid('events-empty');
  show(empty, !evs.length);
  setText(empty, app.eventsError ? `Could not load the log: ${app.eventsError}` : app.events === undefined ? 'Loading…' : (app.events.length ? 'No event matches the filter.' : 'No events yet: transitions appear when a host or service goes up or down, and when apps push health events.'));
  syncList(tid('events-rows'), evs.slice(0, 500), (e) => `${e.at}|${e.kind}|${e.service}|${e.source}|${e.ok}`,
    (e) => h('tr', {},
      h('td', { class: 'num small' }, fmtDateTime(e.at)),
      h('td', { class: 'small' }, { transition: 'poll', report: 'pushed', action: 'action', result: 'result' }[e.kind] || e.kind),
      h('td', {}, e.service),
      h('td', {}, h('span', { class: `badge ${e.ok ? 'ok' : 'bad'}` }, e.kind === 'transition' ? (e.ok ? 'up' : 'down') : (e.ok ? 'ok' : 'failed'))),
      h('td', { class: 'small' }, e.source),
      h('td', { class: 'small' }, [e.error, e.ms !== undefined && e.ms !== null ? `${Math.round(e.ms)} ms` : null].filter(Boolean).join(' · '))),
    () => {});
}

// ---------------------------------------------------------------- view: plan
function describeStep(st) {
  switch (st.action) {
    case 'stop_model': return `stop the model on ${st.host}${st.model ? ` (${st.model})` : ''}`;
    case 'settle_gpu': return `wait for GPU memory on ${(st.hosts || []).join(', ')} to drop below ${st.below_mib} MiB (unified memory: until ${Math.round((st.free_share || 0.9) * 100)} % is free)`;
    case 'download': return `download ${st.repo} to ${st.host}`;
    case 'launch_model': return `launch ${st.spec ? st.spec.model : ''} on ${st.host}`;
    case 'wait_ready': return `wait until ${st.model} answers on ${st.host}:${st.port}`;
    case 'stop_service': return `stop ${st.service} on ${st.host}`;
    case 'start_service': return `start ${st.service} on ${st.host}:${st.port}`;
    case 'restart_service': return `restart ${st.service} on ${st.host}`;
    case 'fetch_launcher': return `check for launcher updates on ${st.host}`;
    case 'update_launcher': return `update the launcher on ${st.host} (${st.behind} commits)`;
    case 'checkout_launcher': return `check out the pinned launcher commit on ${st.host}`;
    default: return String(st.action || '?').replace(/_/g, ' ');
  }
}
function renderPlan(s) {
  const res = s.resources || [];
  show(tid('resources-empty'), res.length === 0);
  syncList(tid('resources-rows'), res, (r) => `${r.kind}/${r.name}`,
    () => h('tr', {}, h('td', { class: 'muted' }), h('td', {}, h('strong', {})), h('td', {}, h('span', { class: 'badge' })), h('td', {}, h('span', { class: 'badge' })), h('td', { class: 'small' })),
    (tr, r) => {
      const [k, n, sy, he, de] = tr.children;
      setText(k, r.kind); setText(n.firstChild, r.name);
      setClass(sy.firstChild, `badge ${syncClass(r.sync)}`); setText(sy.firstChild, SYNC_LABEL[r.sync] || r.sync);
      setClass(he.firstChild, `badge ${healthClass(r.health)}`); setText(he.firstChild, HEALTH_LABEL[r.health] || r.health);
      setText(de, r.detail);
    });
  const steps = (s.plan && s.plan.steps) || [];
  show(tid('plan-empty'), steps.length === 0);
  setText(tid('plan-empty'), s.plan && s.plan.complete === false ? 'Nothing can be decided yet: see what could not be seen.' : 'In sync: nothing to do.');
  syncList(tid('plan-steps'), steps, (st) => JSON.stringify(st), (st) => h('li', {}, h('span', {}, describeStep(st)), h('div', { class: 'muted small' }, st.why)), () => {});
  const unk = (s.plan && s.plan.unknown) || [];
  show(tid('plan-unknown-empty'), unk.length === 0);
  syncList(tid('plan-unknown'), unk, (u) => u, (u) => h('li', { class: 'small' }, u), () => {});
  setText(tid('plan-text'), s.plan_text || '(empty plan)');
}

// ---------------------------------------------------------------- view: setup
// GET /api/setup -> {public_key, host_keys: {host: {fingerprint, source}}, open_webui_url}. A 404 leaves the key and fingerprints as "not available in this build".
async function loadSetup() {
  try {
    const r = await api('GET', '/api/setup', undefined, { accept: [404], noAuthRetry: true });
    app.setup = r.status === 404 ? null : r.data || {};
  } catch (_) { /* keep the last */ }
  if (app.state) renderAll();
}
function renderSetup(s) {
  const d = s.desired || {};
  const hosts = Object.entries(d.hosts || {});
  show(tid('onboarding'), hosts.length === 0);
  show(tid('setup-hosts-empty'), hosts.length === 0);
  const keys = (app.setup && app.setup.host_keys) || {};
  syncList(tid('setup-hosts'), hosts, ([n]) => n, ([n]) => h('tr', { testid: `host-${n}` },
    h('td', {}, h('strong', {}, n)), h('td', { class: 'mono', 'data-role': 'addr' }), h('td', { 'data-role': 'user' }), h('td', { class: 'num', 'data-role': 'port' }),
    h('td', { class: 'mono small', 'data-role': 'key' }), h('td', {}, h('span', { class: 'badge', 'data-role': 'reach' })),
    h('td', {}, h('div', { class: 'row' },
      h('button', { type: 'button', class: 'small', onclick: () => editHost(n) }, 'Edit'),
      h('button', { type: 'button', class: 'small danger', onclick: () => removeHost(n) }, 'Remove')))),
  (tr, [n, hst]) => {
    setText($('[data-role="addr"]', tr), hst.address);
    setText($('[data-role="user"]', tr), hst.user || 'nvidia');
    setText($('[data-role="port"]', tr), hst.port || 22);
    const keyEl = $('[data-role="key"]', tr);
    const k = keys[n];
    const fp = k && (typeof k === 'string' ? k : k.fingerprint);
    setText(keyEl, fp || hst.host_key || (app.setup === null ? '—' : 'learned on first contact'));
    setAttr(keyEl, 'title', app.setup === null ? 'Fingerprints are not available in this build' : null);
    const o = (s.observed.hosts || {})[n] || {};
    const reach = known(o.reachable);
    const b = $('[data-role="reach"]', tr);
    setClass(b, `badge ${reach === true ? 'ok' : reach === false ? 'bad' : 'muted'}`);
    setText(b, reach === true ? `yes${o.rtt_ms ? `, ${o.rtt_ms.toFixed(0)} ms` : ''}` : reach === false ? 'no' : 'unknown');
    setAttr(b, 'title', why(o.reachable) || (reach === false ? (why(o.containers) || '') : ''));
  });
  // Cluster form.
  const cf = tid('cluster-form');
  const names = hosts.map(([n]) => n);
  const c = d.cluster || {};
  const head = cf.elements.head;
  const hkey = names.join('|');
  if (head.dataset.key !== hkey) {
    head.dataset.key = hkey;
    head.replaceChildren(h('option', { value: '' }, names.length ? '— choose —' : 'add a host first'), ...names.map((n) => h('option', { value: n }, n)));
    delete cf.dataset.dirty;
  }
  const wbox = tid('cluster-workers');
  syncList(wbox, names, (n) => n, (n) => h('label', { class: 'radio' }, h('input', { type: 'checkbox', name: 'workers', value: n }), ` ${n}`), () => {});
  if (!cf.dataset.dirty) {
    head.value = c.head || '';
    for (const cb of $$('input[name="workers"]', wbox)) cb.checked = (c.workers || []).includes(cb.value);
  }
  const pk = app.setup ? app.setup.public_key : null;
  setText(tid('public-key'), pk || (app.setup === null ? 'Not available in this build: the key is in the data directory as id_ed25519.pub.' : 'Loading…'));
  tid('copy-key').disabled = !pk;
}
function editHost(n) {
  const hst = app.state.desired.hosts[n];
  const f = tid('host-form');
  clearFormErrors(f);
  f.elements.name.value = n; f.elements.address.value = hst.address; f.elements.user.value = hst.user || ''; f.elements.port.value = hst.port && hst.port !== 22 ? hst.port : '';
  setText(tid('host-form-title'), `Edit ${n}`);
  f.elements.address.focus();
}
async function removeHost(n) {
  const d = app.state.desired;
  const used = [d.cluster && d.cluster.head === n ? 'the cluster head' : null, d.cluster && (d.cluster.workers || []).includes(n) ? 'a cluster worker' : null,
    ...Object.entries(d.services || {}).filter(([, s]) => s.host === n).map(([k]) => `the host of ${k}`)].filter(Boolean);
  const body = used.length ? `${n} is ${used.join(', ')}: the server refuses this until they point elsewhere.` : `spark-control stops managing ${n}. Nothing on it is stopped.`;
  if (!(await confirmDialog(`Remove ${n}?`, body, 'Remove host'))) return;
  if (await edit({ op: 'remove_host', name: n }, tid('host-form'))) toast(`${n} removed.`, 'ok');
}
async function saveHost(ev) {
  ev.preventDefault();
  const f = ev.target; clearFormErrors(f);
  const name = f.elements.name.value.trim(); const address = f.elements.address.value.trim();
  const user = f.elements.user.value.trim(); const port = f.elements.port.value.trim();
  let bad = false;
  if (!NAME_RE.test(name)) { fieldError(f, 'name', `A short name such as spark1. ${NAME_RULE}`); bad = true; }
  if (!address) { fieldError(f, 'address', 'The Spark\'s IPv4 address, e.g. 192.168.1.101.'); bad = true; }
  else if (/\.local$/i.test(address)) { fieldError(f, 'address', 'Use the IPv4 address: .local names resolve to IPv6 first and vLLM binds IPv4 only.'); bad = true; }
  if (port && (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)) { fieldError(f, 'port', 'A port between 1 and 65535.'); bad = true; }
  if (bad) return;
  if (await edit({ op: 'set_host', name, address, user: user || null, port: port ? Number(port) : null }, f)) {
    toast(`Saved host ${name}.`, 'ok');
    f.reset(); setText(tid('host-form-title'), 'Add a host');
  }
}
async function saveCluster(ev) {
  ev.preventDefault();
  const f = ev.target; clearFormErrors(f);
  const head = f.elements.head.value;
  const workers = $$('input[name="workers"]:checked', f).map((c) => c.value).filter((w) => w !== head);
  if (!head) { setText($('[data-msg="form"]', f), 'Choose the head host.'); return; }
  if (await edit({ op: 'set_cluster', head, workers }, f)) { delete f.dataset.dirty; toast('Cluster saved.', 'ok'); }
}
async function copyKey() {
  const text = tid('public-key').textContent;
  try { await navigator.clipboard.writeText(text); toast('Public key copied.', 'ok'); } catch (_) {
    // Plain-HTTP LAN pages have no clipboard API: select the text for a manual copy.
    const r = document.createRange(); r.selectNodeContents(tid('public-key'));
    const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r);
    toast('Selected — press Ctrl+C (or long-press → Copy).');
  }
}


// ---------------------------------------------------------------- view: history (git-ops)
// GET /api/history -> {mode, reason, commits:[{id, short, subject, author, by, time, diff,
// in_force, converged}], uncommitted:{diff, changes}|null, sync:{...diverged...}}. Every
// change here is a commit made by the server; rollback is a new commit, shown first as the
// plan it would cause.
const hist = { data: null, loadedAt: 0, loading: false };

async function loadHistory() {
  if (hist.loading) return;
  hist.loading = true;
  try {
    const r = await api('GET', '/api/history', undefined, { noAuthRetry: true, timeout: 20000 });
    hist.data = r.data; hist.loadedAt = Date.now();
  } catch (e) {
    hist.data = { mode: 'off', reason: `Could not load the history: ${e.message}`, commits: [] };
  } finally { hist.loading = false; }
  if (app.state && app.view === 'history') renderAll();
}

function diffNodes(text) {
  return String(text || '').split('\n')
    .filter((l) => !/^(diff --git|index |--- |\+\+\+ |new file mode|deleted file mode)/.test(l))
    .map((l) => h('span', { class: `l ${l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : l.startsWith('@@') ? 'ctx' : ''}` }, l || ' '));
}

function renderHistory() {
  if (Date.now() - hist.loadedAt > 3000) loadHistory();
  const d = hist.data;
  if (!d) { setText(tid('history-info'), 'Loading…'); return; }
  const off = d.mode === 'off';
  show(tid('history-off'), off || !!d.reason);
  setText(tid('history-off'), off ? `Git-ops is off: ${d.reason || ''}` : d.reason || '');
  setText(tid('history-info'), off ? '' : `${d.path} in ${d.repo}${d.branch ? ` · branch ${d.branch}` : ''} · ${d.mode === 'pull' ? 'pull mode' : 'local history'}`);
  const u = d.uncommitted;
  show(tid('uncommitted'), !!u);
  if (u) {
    setText(tid('uncommitted-summary'), (u.changes || []).join('; ') || 'comments or formatting');
    const key = u.diff;
    const box = tid('uncommitted-diff');
    if (box.dataset.key !== key) { box.dataset.key = key; box.replaceChildren(...diffNodes(u.diff)); }
  }
  const sync = d.sync || {};
  show(tid('sync-card'), d.mode === 'pull');
  if (d.mode === 'pull') {
    const parts = sync.mode === 'pull' ? [`${sync.remote} · ${sync.branch}`, `every ${sync.interval_secs} s`, `last fetch ${fmtTime(sync.last_fetch)}`] : ['not fetched yet'];
    if (sync.ahead) parts.push(`${sync.ahead} to push`);
    if (sync.behind) parts.push(`${sync.behind} behind`);
    if (sync.last_pull) parts.push(`pulled ${String(sync.last_pull[1]).slice(0, 7)} at ${fmtTime(sync.last_pull[0])}`);
    setText(tid('sync-detail'), parts.join(' · '));
    show(tid('push-error'), !!sync.push_error);
    setText(tid('push-error'), sync.push_error ? `Push failed (${sync.push_failures} in a row; retried every ${sync.interval_secs} s): ${sync.push_error}` : '');
    show(tid('fetch-error'), !!sync.fetch_error);
    setText(tid('fetch-error'), sync.fetch_error ? `Fetch failed: ${sync.fetch_error}` : '');
  }
  const dv = sync.diverged;
  show(tid('diverged'), !!dv);
  if (dv) {
    setText(tid('diverged-reason'), dv.reason);
    for (const [id, text] of [['diverged-remote-diff', dv.remote_diff], ['diverged-local-diff', dv.uncommitted && u ? u.diff : dv.local_diff]]) {
      const box = tid(id);
      if (box.dataset.key !== text) { box.dataset.key = text; box.replaceChildren(...diffNodes(text)); }
    }
    tid('resolve-mine').disabled = !!dv.uncommitted;
    tid('resolve-theirs').disabled = !!dv.uncommitted;
  }
  const commits = d.commits || [];
  show(tid('commits-empty'), !off && commits.length === 0);
  syncList(tid('commits'), commits, (c) => c.id, (c) => h('li', { testid: `commit-${c.short}` },
    h('div', { class: 'row spread' },
      h('span', { class: 'subject', 'data-role': 'subject' }, c.subject),
      h('span', { class: 'badges' },
        h('span', { class: 'badge ok', 'data-role': 'force', testid: `in-force-${c.short}` }, 'in force'),
        h('span', { class: 'badge info', 'data-role': 'conv', testid: `converged-${c.short}` }, 'hosts converged'))),
    h('div', { class: 'meta', 'data-role': 'meta' }),
    h('details', {}, h('summary', {}, 'Diff'), h('div', { class: 'diff mono', 'data-role': 'diff' })),
    h('div', { class: 'row' }, h('button', { type: 'button', class: 'small', testid: `rollback-${c.short}`, onclick: () => rollback(c) }, 'Roll back to this'))),
  (li, c) => {
    show($('[data-role="force"]', li), c.in_force);
    show($('[data-role="conv"]', li), c.converged);
    setText($('[data-role="meta"]', li), `${c.short} · ${fmtDateTime(c.time)} · ${c.by} · ${c.author}`);
    const box = $('[data-role="diff"]', li);
    if (!box.dataset.done) { box.dataset.done = '1'; box.replaceChildren(...diffNodes(c.diff)); }
  });
}

async function rollback(c) {
  let preview;
  try {
    preview = (await api('GET', `/api/history/${c.id}/plan`)).data;
  } catch (e) { toast(e.message, 'bad'); return; }
  if (preview.same_as_now) { toast('The file is already this version.'); return; }
  const plan = preview.plan || {};
  const body = [
    h('p', {}, `A new commit restores the file as it was in ${c.short} (“${c.subject}”). History is kept.`),
    h('p', { testid: 'rollback-changes' }, (preview.changes || []).join('; ') || 'comments or formatting only'),
    h('p', { class: 'muted small' }, plan.complete === false ? 'The plan is incomplete: some facts could not be seen.' : 'The plan it would cause:'),
    h('pre', { class: 'log log-auto', testid: 'rollback-plan' }, plan.text || '(nothing to do)'),
  ];
  if (!(await confirmDialog(`Roll back to ${c.short}?`, body, 'Roll back'))) return;
  try {
    const r = await api('POST', `/api/history/${c.id}/rollback`);
    toast(r.data.changed ? `Rolled back: ${r.data.subject}` : 'Already that version.', 'ok');
  } catch (e) { toast(e.message, 'bad'); }
  hist.loadedAt = 0; loadHistory();
}

async function historyPost(path, body, done) {
  try {
    const r = await api('POST', path, body);
    toast(done(r.data), 'ok');
  } catch (e) { toast(e.message, 'bad'); }
  hist.loadedAt = 0; setTimeout(loadHistory, 300);
}

// ---------------------------------------------------------------- wiring
const deploymentsCtx = { api, toast, confirm: confirmDialog, catalog: catalogOf, changed: () => renderAll() };
// What the editor module needs from the page.
const editorCtx = {
  api: (method, path, body, opts) => api(method, path, body, opts),
  toast: (msg, kind) => toast(msg, kind),
  confirm: (title, body, ok) => confirmDialog(title, body, ok),
  state: () => app.state,
  view: () => app.view,
  diagnosticsOf: (body) => diagnosticsOf(body),
  errorMessage: (data, res) => errorMessage(data, res),
};

const RENDER = { cluster: renderCluster, deployments: (s) => renderDeployments(s, deploymentsCtx), models: renderModels, downloads: renderDownloads, services: renderServices, updates: renderUpdates, events: renderEvents, plan: renderPlan, desired: () => renderEditor(), history: renderHistory, setup: renderSetup };
const ENTER = {
  cluster: () => loadTelemetry(true),
  downloads: () => loadDownloads(),
  events: () => loadEvents(),
  desired: () => loadDesired(false),
  history: () => loadHistory(),
  setup: () => loadSetup(),
};

function init() {
  window.addEventListener('hashchange', route);
  tid('add-model-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target; clearFormErrors(f);
    const name = f.elements.name.value.trim(); const repo = normaliseRepo(f.elements.repo.value);
    let bad = false;
    if (!NAME_RE.test(name)) { fieldError(f, 'name', NAME_RULE); bad = true; }
    if (!REPO_RE.test(repo)) { fieldError(f, 'repo', 'The Hugging Face repo id, org/name.'); bad = true; }
    if (bad) return;
    if (await edit({ op: 'add_model', name, repo, mode: f.elements.mode.value }, f)) { f.reset(); toast(`${name} added to the catalog.`, 'ok'); }
  });
  tid('swap-dismiss').addEventListener('click', () => { stopSwapLog(); app.swap = null; renderAll(); });
  tid('swap-cancel').addEventListener('click', () => cancelOp(tid('swap-card')));
  tid('download-form').addEventListener('submit', (ev) => { ev.preventDefault(); startDownload(ev.target); });
  tid('catalog-form').addEventListener('submit', submitCatalog);
  tid('updates-check').addEventListener('click', () => post('/api/updates/check', 'Checking for launcher updates…'));
  tid('updates-apply').addEventListener('click', applyUpdate);
  tid('policy-form').addEventListener('submit', savePolicy);
  tid('policy-form').addEventListener('input', () => { tid('policy-form').dataset.dirty = '1'; show(tid('pin-field'), tid('policy-select').value === 'pin'); });
  tid('events-filter').addEventListener('input', (ev) => { if (ev.target.name === 'service' || ev.target.name === 'kind') loadEvents(); else if (app.state) renderEvents(app.state); });
  tid('events-filter').addEventListener('submit', (ev) => ev.preventDefault());
  tid('reconcile-now').addEventListener('click', () => post('/api/reconcile', 'Reconciling now.'));
  wireEditor(editorCtx);
  tid('host-form').addEventListener('submit', saveHost);
  tid('host-form').addEventListener('reset', () => { clearFormErrors(tid('host-form')); setText(tid('host-form-title'), 'Add a host'); });
  tid('cluster-form').addEventListener('submit', saveCluster);
  tid('cluster-form').addEventListener('input', () => { tid('cluster-form').dataset.dirty = '1'; });
  tid('copy-key').addEventListener('click', copyKey);
  tid('commit-button').addEventListener('click', () => historyPost('/api/history/commit', undefined, (d) => (d.changed ? `Committed ${String(d.commit).slice(0, 7)}.` : 'Nothing to commit.')));
  tid('sync-now').addEventListener('click', () => historyPost('/api/git/sync', undefined, () => 'Fetching the remote…'));
  tid('resolve-mine').addEventListener('click', () => historyPost('/api/git/resolve', { prefer: 'mine' }, (d) => `Merged: ${d.subject}`));
  tid('resolve-theirs').addEventListener('click', () => historyPost('/api/git/resolve', { prefer: 'theirs' }, (d) => `Merged: ${d.subject}`));
  tid('token-button').addEventListener('click', () => askToken());
  tid('token-set').addEventListener('click', () => askToken());
  tid('token-forget').addEventListener('click', async () => {
    try { await api('DELETE', '/api/session', undefined, { noAuthRetry: true }); } catch (_) { /* the state stream says so */ }
    app.session.signed_in = false; renderAuth(); toast('Signed out.');
  });
  // Older versions kept the token in localStorage: never again, and not left behind.
  try { localStorage.removeItem('spark-control.token'); } catch (_) { /* storage disabled */ }
  watchLayout($('main'), $('header.top'));
  route();
  loadSession();
  startState();
  startLogs();
  loadSetup();
}
init();
