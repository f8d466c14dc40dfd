// @ts-check
// Line diffs and the editor's 3-way merge (pure: text in, text out; no DOM).
//
// merge3(base, mine, theirs): base is the text the editor loaded, mine what the person
// typed since, theirs the file on disk now. Lines kept by both sides anchor the merge;
// between two anchors, a change on one side only is taken, the same change on both is
// taken once, and different changes are a conflict, returned with both versions so the
// UI can show them side by side and let the person choose. Small files: O(n·m) LCS.

/** @typedef {{ base: string[], mine: string[], theirs: string[] }} Conflict */
/** @typedef {{ kind: 'text', lines: string[] } | { kind: 'conflict', conflict: Conflict }} Chunk */

const MAX_CELLS = 4e6;

/**
 * For each line of `a`, the index of the line of `b` it is matched to by a longest
 * common subsequence, or -1.
 * @param {string[]} a
 * @param {string[]} b
 * @returns {Int32Array}
 */
function matches(a, b) {
  const n = a.length; const m = b.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = new Int32Array(n).fill(-1);
  let i = 0; let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out[i] = j; i++; j++; }
    else if (L[i + 1][j] >= L[i][j + 1]) i++;
    else j++;
  }
  return out;
}

/** @param {string[]} a @param {string[]} b */
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The 3-way merge as chunks: merged text, and conflicts with both versions.
 * @param {string} base @param {string} mine @param {string} theirs
 * @returns {Chunk[] | null} null when the files are too large to compare here
 */
export function merge3(base, mine, theirs) {
  const O = base.split('\n'); const A = mine.split('\n'); const B = theirs.split('\n');
  if (O.length * Math.max(A.length, B.length) > MAX_CELLS) return null;
  const ma = matches(O, A); const mb = matches(O, B);
  /** @type {Chunk[]} */
  const out = [];
  const text = (/** @type {string[]} */ lines) => {
    if (!lines.length) return;
    const last = out[out.length - 1];
    if (last && last.kind === 'text') last.lines.push(...lines);
    else out.push({ kind: 'text', lines: [...lines] });
  };
  let o = 0; let a = 0; let b = 0;
  const gap = (/** @type {number} */ o1, /** @type {number} */ a1, /** @type {number} */ b1) => {
    const so = O.slice(o, o1); const sa = A.slice(a, a1); const sb = B.slice(b, b1);
    if (same(sa, so)) text(sb);
    else if (same(sb, so)) text(sa);
    else if (same(sa, sb)) text(sa);
    else out.push({ kind: 'conflict', conflict: { base: so, mine: sa, theirs: sb } });
  };
  for (let i = 0; i < O.length; i++) {
    if (ma[i] < a || mb[i] < b) continue;
    // Base line i is kept by both sides: an anchor.
    gap(i, ma[i], mb[i]);
    text([O[i]]);
    o = i + 1; a = ma[i] + 1; b = mb[i] + 1;
  }
  gap(O.length, A.length, B.length);
  return out;
}

/**
 * The chunks as text, each conflict resolved by `choose(conflict, index)`.
 * @param {Chunk[]} chunks
 * @param {(c: Conflict, i: number) => string[]} choose
 */
export function assemble(chunks, choose) {
  let n = 0;
  return chunks.flatMap((c) => (c.kind === 'text' ? c.lines : choose(c.conflict, n++))).join('\n');
}

/**
 * Line diff of `a` against `b` (LCS), unchanged runs trimmed to two lines of context.
 * @param {string} a @param {string} b
 * @returns {[('ctx'|'add'|'del'), string][]}
 */
export function lineDiff(a, b) {
  const A = a.split('\n'); const B = b.split('\n');
  if (A.length * B.length > MAX_CELLS) return [['ctx', '(files too large to compare here)']];
  const n = A.length; const m = B.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = A[i] === B[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  /** @type {[('ctx'|'add'|'del'), string][]} */
  const out = []; let i = 0; let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && A[i] === B[j]) { out.push(['ctx', A[i]]); i++; j++; }
    else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) { out.push(['add', B[j]]); j++; }
    else { out.push(['del', A[i]]); i++; }
  }
  const keep = out.map(() => false);
  out.forEach(([k], idx) => { if (k !== 'ctx') for (let d = -2; d <= 2; d++) if (out[idx + d]) keep[idx + d] = true; });
  /** @type {[('ctx'|'add'|'del'), string][]} */
  const res = []; let skipped = 0;
  out.forEach((x, idx) => { if (keep[idx]) { if (skipped) res.push(['ctx', `⋯ ${skipped} unchanged line(s)`]); skipped = 0; res.push(x); } else skipped++; });
  if (!res.length) return [['ctx', 'No difference in content.']];
  return res;
}
