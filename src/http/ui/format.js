// Numbers and times as people read them: sizes, durations, rates. Pure; no DOM.

export function fmtBytes(n) {
  if (n === null || n === undefined || isNaN(n)) return '—';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0; let v = Number(n);
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${u[i]}`;
}

export function fmtDuration(secs) {
  if (secs === null || secs === undefined || !isFinite(secs)) return '—';
  secs = Math.max(0, Math.round(secs));
  const hh = Math.floor(secs / 3600); const mm = Math.floor((secs % 3600) / 60); const ss = secs % 60;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min ${ss} s`;
  return `${ss} s`;
}

// Seconds between two RFC 3339 times (`to` absent: now).
export function secondsBetween(from, to) {
  const a = Date.parse(from);
  const b = to ? Date.parse(to) : Date.now();
  return isFinite(a) && isFinite(b) ? Math.max(0, (b - a) / 1000) : null;
}
