// The desired.yaml editor view. Owns: the text being edited, the ETag it was loaded with,
// the error gutter, saving with If-Match, and a 409's 3-way merge (merge.js) — changes
// that do not overlap are merged into the editor, overlapping ones shown side by side.
// Must not: write without If-Match, or save anything the person has not pressed Save for.

import { tid, h, setText, show, fmtTime } from './dom.js';
import { assemble, lineDiff, merge3 } from './merge.js';

/**
 * What the editor needs from the page.
 * @typedef {object} EditorCtx
 * @property {(method: string, path: string, body?: any, opts?: any) => Promise<any>} api
 * @property {(msg: string, kind?: string) => void} toast
 * @property {(title: string, body: any, ok?: string) => Promise<boolean>} confirm
 * @property {() => any} state
 * @property {() => string} view
 * @property {(body: any) => any[]} diagnosticsOf
 * @property {(data: any, res: any) => string} errorMessage
 */

/** @type {EditorCtx} */
let cx;

// Conflict-checked: every save sends If-Match with the ETag it was loaded from. A 409 shows
// what changed on disk against the person's text, and they choose: load theirs, or save
// theirs-aware (a new If-Match with the ETag of what they just saw). Never a blind write.
const ed = { etag: null, base: null, loaded: false, diags: [], conflict: null, timer: null };

function readDesired(r) {
  const et = r.headers.get('etag');
  if (r.data && typeof r.data === 'object') return { text: r.data.text ?? r.data.content ?? '', etag: r.data.etag || et };
  return { text: r.data || '', etag: et };
}
export async function loadDesired(force) {
  clearTimeout(ed.timer);
  const ta = tid('desired-text');
  try {
    const r = await cx.api('GET', '/api/desired', undefined, { noAuthRetry: true });
    const { text, etag } = readDesired(r);
    const dirty = ta.value !== ed.base;
    if (force || !ed.loaded || !dirty) {
      ed.base = text; ed.etag = etag; ed.loaded = true; ta.value = text; ed.diags = [];
      show(tid('desired-changed'), false);
      if (force) { ed.conflict = null; show(tid('desired-conflict'), false); }
    } else if (etag !== ed.etag) show(tid('desired-changed'), true);
    setText(tid('desired-info'), `${cx.state() ? cx.state().desired_file : 'desired.yaml'} · loaded ${fmtTime(new Date().toISOString())}`);
  } catch (e) {
    setText(tid('desired-info'), `Could not load desired.yaml: ${e.message}`);
  }
  renderEditor();
  if (cx.view() === 'desired') ed.timer = setTimeout(() => loadDesired(false), 5000);
}

async function saveDesired(etagOverride) {
  const ta = tid('desired-text');
  const text = ta.value;
  const etag = etagOverride || ed.etag;
  const btn = tid('desired-save');
  btn.disabled = true;
  try {
    const r = await cx.api('PUT', '/api/desired', text, { headers: etag ? { 'If-Match': etag } : {}, accept: [409, 412, 422] });
    if (r.status === 409 || r.status === 412) {
      const b = r.data && typeof r.data === 'object' ? r.data : {};
      const err = b.error && typeof b.error === 'object' ? b.error : {};
      let current = err.current_text ?? b.current ?? b.text;
      let cetag = r.headers.get('etag') || err.current_etag || b.etag;
      if (current === undefined || !cetag) {
        const g = readDesired(await cx.api('GET', '/api/desired', undefined, { noAuthRetry: true }));
        current = g.text; cetag = g.etag;
      }
      onConflict(text, current, cetag);
      return;
    }
    if (r.status === 422) {
      ed.diags = cx.diagnosticsOf(r.data);
      if (!ed.diags.length) ed.diags = [{ line: 0, col: 0, message: cx.errorMessage(r.data, { status: 422, statusText: 'invalid' }) }];
      renderEditor();
      cx.toast('Not saved: the file has errors (listed under the editor).', 'bad');
      tid('desired-diags').querySelector('button')?.focus();
      return;
    }
    const g = r.data && typeof r.data === 'object' ? r.data : {};
    ed.etag = g.etag || r.headers.get('etag') || null;
    ed.base = text; ed.diags = []; ed.conflict = null;
    show(tid('desired-conflict'), false); show(tid('desired-changed'), false); show(tid('desired-merged'), false);
    if (!ed.etag) loadDesired(true);
    renderEditor();
    cx.toast('Saved desired.yaml.', 'ok');
  } catch (e) {
    cx.toast(`Not saved: ${e.message}`, 'bad');
  } finally { btn.disabled = false; }
}

// A 409: the file changed on disk since the editor loaded it (`ed.base`). A 3-way merge
// of base, mine and theirs: with no overlap, the merge goes into the editor (theirs is
// now the base, so Save sends their ETag) and nothing is written until Save; overlapping
// changes are shown side by side, each kept as mine or theirs before the merge is used.
function onConflict(mine, current, cetag) {
  const chunks = ed.base === null ? null : merge3(ed.base, mine, current);
  const conflicts = chunks ? chunks.filter((c) => c.kind === 'conflict').length : -1;
  if (chunks && conflicts === 0) {
    const ta = tid('desired-text');
    ta.value = assemble(chunks, () => []);
    ed.base = current; ed.etag = cetag; ed.conflict = null;
    show(tid('desired-conflict'), false); show(tid('desired-changed'), false);
    show(tid('desired-merged'), true);
    renderEditor();
    cx.toast('desired.yaml changed on disk: your changes were merged into it. Review, then Save.', 'warn');
    tid('desired-save').focus();
    return;
  }
  ed.conflict = { current, etag: cetag, mine, chunks, picks: [] };
  renderConflict(mine);
}

function renderConflict(mine) {
  const box = tid('desired-conflict');
  show(box, true); show(tid('desired-merged'), false);
  const diff = lineDiff(ed.conflict.current, mine);
  tid('desired-diff').replaceChildren(...diff.map(([k, l]) => h('span', { class: `l ${k}` }, `${k === 'add' ? '+ ' : k === 'del' ? '− ' : '  '}${l}`)));
  renderHunks();
  tid('conflict-reload').focus();
}

// The overlapping changes, yours and theirs side by side, each with its choice.
function renderHunks() {
  const c = ed.conflict;
  const wrap = tid('desired-hunks');
  const chunks = c.chunks || [];
  const hunks = chunks.filter((x) => x.kind === 'conflict');
  show(wrap, hunks.length > 0); show(tid('desired-hunks-intro'), hunks.length > 0);
  const side = (title, lines) => h('div', { class: 'hunk-side' }, h('div', { class: 'small muted' }, title),
    h('pre', { class: 'mono' }, lines.length ? lines.join('\n') : '(nothing)'));
  wrap.replaceChildren(...hunks.map((x, i) => {
    const pick = c.picks[i];
    const choose = (which) => { c.picks[i] = which; renderHunks(); };
    return h('div', { class: 'hunk', 'data-testid': `hunk-${i}`, 'data-pick': pick || '' },
      h('div', { class: 'small' }, `Overlapping change ${i + 1} of ${hunks.length}${x.conflict.base.length ? ` (was: ${x.conflict.base.length} line(s))` : ''}`),
      h('div', { class: 'hunk-sides' }, side('Yours', x.conflict.mine), side('On disk now', x.conflict.theirs)),
      h('div', { class: 'row' },
        h('button', { type: 'button', class: pick === 'mine' ? 'small primary' : 'small', 'aria-pressed': String(pick === 'mine'), 'data-testid': `hunk-${i}-mine`, onclick: () => choose('mine') }, 'Keep yours'),
        h('button', { type: 'button', class: pick === 'theirs' ? 'small primary' : 'small', 'aria-pressed': String(pick === 'theirs'), 'data-testid': `hunk-${i}-theirs`, onclick: () => choose('theirs') }, 'Keep theirs'),
        h('button', { type: 'button', class: pick === 'both' ? 'small primary' : 'small', 'aria-pressed': String(pick === 'both'), 'data-testid': `hunk-${i}-both`, onclick: () => choose('both') }, 'Keep both')));
  }));
  const use = tid('conflict-merge');
  show(use, hunks.length > 0);
  const left = hunks.length - hunks.filter((_, i) => c.picks[i]).length;
  use.disabled = left > 0;
  setText(use, left > 0 ? `Use the merge (${left} to choose)` : 'Use the merge');
}

// The merge with the person's choices goes into the editor; Save then sends their ETag.
function useMerge() {
  const c = ed.conflict;
  if (!c || !c.chunks) return;
  const text = assemble(c.chunks, (x, i) => (c.picks[i] === 'mine' ? x.mine : c.picks[i] === 'theirs' ? x.theirs : [...x.mine, ...x.theirs]));
  tid('desired-text').value = text;
  ed.base = c.current; ed.etag = c.etag; ed.conflict = null;
  show(tid('desired-conflict'), false); show(tid('desired-changed'), false); show(tid('desired-merged'), true);
  renderEditor();
  tid('desired-save').focus();
}

export function renderEditor() {
  const ta = tid('desired-text');
  const diags = ed.diags.length ? ed.diags : ((cx.state() && cx.state().desired_diagnostics) || []).filter(() => ta.value === ed.base);
  const errLines = new Set(diags.map((d) => d.line));
  const lines = ta.value.split('\n').length;
  const g = tid('desired-gutter');
  const key = `${lines}|${[...errLines].join(',')}`;
  if (g.dataset.key !== key) {
    g.dataset.key = key;
    const frag = [];
    for (let i = 1; i <= lines; i++) frag.push(errLines.has(i) ? h('span', { class: 'err', title: 'error on this line' }, `● ${i}\n`) : `${i}\n`);
    g.replaceChildren(...frag);
  }
  const list = tid('desired-diags');
  const dkey = JSON.stringify(diags);
  if (list.dataset.key !== dkey) {
    list.dataset.key = dkey;
    list.replaceChildren(...diags.map((d) => h('li', {}, h('button', { type: 'button', class: 'small', onclick: () => gotoLine(d.line, d.col) },
      h('span', { class: d.severity === 'warning' ? 'badge warn' : 'badge bad' }, d.severity || 'error'), ` line ${d.line}${d.col ? ':' + d.col : ''} `, d.path ? h('code', {}, d.path) : null, ` ${d.message}`))));
  }
  const dirty = ed.loaded && ta.value !== ed.base;
  setText(tid('desired-save'), dirty ? 'Save' : 'Saved');
  tid('desired-save').disabled = !dirty && !ed.conflict;
}
function gotoLine(line, col) {
  const ta = tid('desired-text');
  const lines = ta.value.split('\n');
  let pos = 0;
  for (let i = 0; i < Math.max(0, line - 1) && i < lines.length; i++) pos += lines[i].length + 1;
  const end = pos + (lines[line - 1] || '').length;
  ta.focus();
  ta.setSelectionRange(pos + Math.max(0, (col || 1) - 1), end);
  ta.scrollTop = Math.max(0, (line - 5) * 19);
}

/**
 * Wires the editor's controls; call once at start.
 * @param {EditorCtx} ctx
 */
export function wireEditor(ctx) {
  cx = ctx;
  const ta = tid('desired-text');
  ta.addEventListener('input', renderEditor);
  ta.addEventListener('scroll', () => { tid('desired-gutter').scrollTop = ta.scrollTop; });
  ta.addEventListener('keydown', (ev) => {
    if (ev.key === 's' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); saveDesired(); }
  });
  tid('desired-save').addEventListener('click', () => saveDesired());
  tid('desired-reload').addEventListener('click', async () => {
    if (ta.value !== ed.base && !(await cx.confirm('Discard your changes?', 'The editor is reloaded with the file as it is on disk now.', 'Discard and reload'))) return;
    loadDesired(true);
  });
  tid('conflict-reload').addEventListener('click', () => {
    ta.value = ed.conflict.current; ed.base = ed.conflict.current; ed.etag = ed.conflict.etag; ed.conflict = null; ed.diags = [];
    show(tid('desired-conflict'), false); show(tid('desired-changed'), false); renderEditor(); cx.toast('Loaded the file as it is on disk now.');
  });
  tid('conflict-retry').addEventListener('click', () => { const et = ed.conflict.etag; tid('desired-text').value = ed.conflict.mine; saveDesired(et); });
  tid('conflict-merge').addEventListener('click', () => useMerge());
}
