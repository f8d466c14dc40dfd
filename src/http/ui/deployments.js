// The Deployments view: which model each deployment (a vLLM on its head host, with its
// workers for cluster models) should serve, what it serves now, and a change of model
// shown as a plan before it runs. Owns: one card per deployment, kept in place between
// state ticks (a choice being made is never reset by a tick), and the preview → apply
// flow: POST /api/desired/preview, then the same edit with the preview's ETag as
// If-Match, so what runs is what was shown (a file changed in between is a 409 and a new
// preview, never a blind write). Must not: decide which deployments a change stops (the
// server's edit does, and its preview says so), or keep its own copy of the file.

import { h, setText, setAttr, setClass, show, syncList, tid, known } from './dom.js';

/** @typedef {import('./wire').StateView} StateView */

/**
 * The deployments of the file in force, normalised: the `deployments:` list, or the older
 * shape's one deployment (`default`).
 * @param {StateView} s
 */
export function deploymentsOf(s) {
  const d = /** @type {any} */ (s && s.desired);
  if (!d) return [];
  if (Array.isArray(d.deployments) && d.deployments.length) {
    return d.deployments.map((/** @type {any} */ x) => ({ name: x.name, head: x.head, workers: x.workers || [], port: x.port, active: x.active_model ?? null, policy: policyWords(x) }));
  }
  if (d.cluster) return [{ name: 'default', head: d.cluster.head, workers: d.cluster.workers || [], port: d.cluster.port, active: d.active_model ?? null, policy: policyWords(d.cluster) }];
  return [];
}

/**
 * The request policies of a deployment in words (`on_request`, `idle_unload_after`).
 * @param {{on_request?: string, idle_unload_after?: string|null}} x
 */
function policyWords(x) {
  const words = [x.on_request === 'swap' ? 'a request for another model swaps it in' : 'requests for other models are refused (404)'];
  if (x.idle_unload_after) words.push(`unloaded after ${x.idle_unload_after} without a request`);
  return words.join(' · ');
}

/**
 * The model resource of deployment `dep` (`coder: qwen36` with several deployments, the
 * bare model name with one).
 * @param {StateView} s
 * @param {{name: string, active: string|null}} dep
 * @param {number} count
 */
function resourceOf(s, dep, count) {
  const models = (s.resources || []).filter((r) => r.kind === 'model');
  if (count > 1) return models.find((r) => r.name.startsWith(`${dep.name}: `));
  return models[0];
}

const HEALTH = { Healthy: ['ok', 'serving'], Progressing: ['warn', 'starting'], Degraded: ['bad', 'failing'], Missing: ['muted', 'not running'] };

/**
 * What deployment `dep` serves now, from the observation of its vLLM.
 * @param {StateView} s
 * @param {string} name
 */
function servingNow(s, name) {
  const o = /** @type {any} */ (s.observed || {});
  const fact = (o.deployments && o.deployments[name]) || (name === 'default' ? o.vllm : undefined);
  const v = known(fact);
  if (!v) return fact && fact.unknown ? `unknown (${fact.unknown.why})` : 'unknown';
  return v.models && v.models.length ? v.models.join(', ') : 'nothing';
}

/**
 * @typedef {object} Ctx
 * @property {(method: string, path: string, body?: any, opts?: any) => Promise<any>} api
 * @property {(msg: string, kind?: string) => void} toast
 * @property {(title: string, body: any, ok?: string) => Promise<boolean>} confirm
 * @property {(s: StateView) => any[]} catalog
 * @property {() => void} changed
 */

/**
 * Renders the Deployments view into `tid('deployments-list')`.
 * @param {StateView} s
 * @param {Ctx} ctx
 */
export function renderDeployments(s, ctx) {
  const deps = deploymentsOf(s);
  const list = tid('deployments-list');
  show(tid('deployments-empty'), deps.length === 0);
  const catalog = ctx.catalog(s);
  syncList(list, deps, (d) => d.name, (d) => card(d, ctx), (el, d) => update(el, d, s, deps, catalog));
}

/**
 * @param {{name: string}} d
 * @param {Ctx} ctx
 */
function card(d, ctx) {
  const select = h('select', { name: 'model', testid: `deployment-model-${d.name}`, 'aria-label': `Model for ${d.name}` });
  const el = h('div', { class: 'card', testid: `deployment-${d.name}` },
    h('div', { class: 'row spread' }, h('h3', { 'data-role': 'name' }), h('span', { class: 'badge muted', 'data-role': 'health' })),
    h('div', { class: 'muted small', 'data-role': 'where' }),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Should serve'), h('dd', { 'data-role': 'desired' }),
      h('dt', {}, 'Serves now'), h('dd', { 'data-role': 'now' }),
      h('dt', {}, 'On request'), h('dd', { 'data-role': 'policy', testid: `deployment-policy-${d.name}` })),
    h('div', { class: 'muted small', 'data-role': 'detail' }),
    h('form', { class: 'row mt8', 'data-role': 'form' },
      h('label', {}, 'Model ', select),
      h('button', { type: 'submit', class: 'primary', testid: `deployment-preview-${d.name}` }, 'Preview change')));
  el.querySelector('form').addEventListener('submit', (ev) => { ev.preventDefault(); choose(el, ctx); });
  select.addEventListener('change', () => { select.dataset.dirty = '1'; });
  return el;
}

/**
 * @param {HTMLElement} el
 * @param {{name: string, head: string, workers: string[], port: number, active: string|null, policy: string}} d
 * @param {StateView} s
 * @param {any[]} deps
 * @param {any[]} catalog
 */
function update(el, d, s, deps, catalog) {
  const role = (/** @type {string} */ r) => /** @type {HTMLElement} */ (el.querySelector(`[data-role="${r}"]`));
  el.dataset.deployment = d.name;
  setText(role('name'), d.name);
  const hosts = d.workers.length ? `${d.head} + ${d.workers.join(' + ')} (cluster models use all; solo ones the head)` : `${d.head} (one host: solo models)`;
  setText(role('where'), `${hosts} · port ${d.port}`);
  setText(role('desired'), d.active || '(none)');
  setText(role('now'), servingNow(s, d.name));
  setText(role('policy'), d.policy);
  const r = resourceOf(s, d, deps.length);
  const [cls, label] = (r && HEALTH[/** @type {keyof HEALTH} */ (r.health)]) || ['muted', 'unknown'];
  const badge = role('health');
  setClass(badge, `badge ${cls}`);
  setText(badge, label);
  setText(role('detail'), r ? r.detail : '');
  const select = /** @type {HTMLSelectElement} */ (el.querySelector('select'));
  const options = [{ value: '', text: '(none)', disabled: false }].concat(catalog.map((e) => {
    const cluster = e.mode === 'cluster';
    const unfit = cluster && d.workers.length === 0;
    return { value: e.name, text: `${e.name}${cluster ? ' — both Sparks' : ''}${unfit ? ' (needs workers)' : ''}`, disabled: unfit };
  }));
  syncList(select, options, (o) => o.value, (o) => h('option', { value: o.value }), (opt, o) => {
    setText(opt, o.text);
    setAttr(opt, 'disabled', o.disabled);
  });
  // A tick keeps the person's choice; the file's value shows until they choose.
  if (!select.dataset.dirty) select.value = d.active || '';
  setAttr(select, 'data-active', d.active || '');
}

/**
 * Preview the chosen model for this card's deployment, then apply it on confirmation.
 * @param {HTMLElement} el
 * @param {Ctx} ctx
 */
async function choose(el, ctx) {
  const name = el.dataset.deployment || '';
  const select = /** @type {HTMLSelectElement} */ (el.querySelector('select'));
  const edit = { op: 'set_deployment_model', deployment: name, model: select.value || null };
  let preview;
  try {
    preview = (await ctx.api('POST', '/api/desired/preview', edit)).data;
  } catch (e) {
    ctx.toast(/** @type {Error} */ (e).message, 'bad');
    return;
  }
  if (preview.unchanged) {
    ctx.toast(`${name} already has ${edit.model || 'no model'} in desired.yaml.`);
    delete select.dataset.dirty;
    return;
  }
  const body = [
    h('p', {}, 'This changes desired.yaml:'),
    h('ul', { testid: 'preview-changes' }, preview.changes.map((/** @type {string} */ c) => h('li', {}, c))),
    h('p', {}, 'and the controller then runs this plan:'),
    h('pre', { class: 'plan', testid: 'preview-plan' }, preview.plan.text),
  ];
  for (const w of preview.warnings || []) body.push(h('p', { class: 'muted small' }, w));
  if (!(await ctx.confirm(`Change ${name}?`, body, 'Apply'))) return;
  try {
    await ctx.api('POST', '/api/desired/edit', edit, { headers: { 'If-Match': preview.etag } });
  } catch (e) {
    const err = /** @type {any} */ (e);
    ctx.toast(err.status === 409 ? 'desired.yaml changed since the preview: nothing was written. Preview again to see the plan as it is now.' : err.message, 'bad');
    return;
  }
  delete select.dataset.dirty;
  ctx.toast(`${name}: ${edit.model || 'no model'} is now in desired.yaml.`, 'ok');
  ctx.changed();
}
