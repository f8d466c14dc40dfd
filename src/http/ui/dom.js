// Small DOM helpers and formatting shared by every view of the UI: pure functions, no
// page state. Split out of app.js (the first step of splitting it per view).

// ---------------------------------------------------------------- small DOM helpers
export const $ = (sel, root) => (root || document).querySelector(sel);
export const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
export const tid = (id, root) => $(`[data-testid="${id}"]`, root);

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'style') el.style.cssText = v; // CSSOM, allowed by the CSP (a style attribute is not)
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
export function setText(el, t) {
  t = t === undefined || t === null ? '' : String(t);
  if (el && el.textContent !== t) el.textContent = t;
}
export function setAttr(el, k, v) {
  if (!el) return;
  if (v === null || v === undefined || v === false) { if (el.hasAttribute(k)) el.removeAttribute(k); }
  else if (el.getAttribute(k) !== String(v)) el.setAttribute(k, String(v));
}
export function show(el, on) { if (el && el.hidden === !!on) el.hidden = !on; }
export function setClass(el, cls) { if (el && el.className !== cls) el.className = cls; }

// Keyed list: one element per key, created once, updated in place, moved only when the
// order changes. This is what keeps SSE/poll ticks from re-laying out the page.
export function syncList(parent, items, keyOf, create, update) {
  const old = new Map();
  for (const el of Array.from(parent.children)) old.set(el.dataset.key, el);
  let prev = null;
  for (const item of items) {
    const key = String(keyOf(item));
    let el = old.get(key);
    if (el) old.delete(key);
    else { el = create(item); el.dataset.key = key; }
    update(el, item);
    const want = prev ? prev.nextSibling : parent.firstChild;
    if (want !== el) parent.insertBefore(el, want);
    prev = el;
  }
  for (const el of old.values()) el.remove();
}

// ---------------------------------------------------------------- formatting
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
export function fmtDateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return isNaN(d.getTime()) ? String(iso) : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
export function pct(x) { return `${Math.round(x * 100)} %`; }

// Fact<T>: {known:{value,at}} | {unknown:{why}}
export const known = (f) => (f && f.known ? f.known.value : undefined);
export const why = (f) => (f && f.unknown ? f.unknown.why : undefined);
