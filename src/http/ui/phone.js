// Narrow screens: what keeps every action reachable on a phone. Owns: labelling each
// table cell with its column's heading (`data-label`, which the style sheet shows when
// tables become stacked cards under 600 px; none under a heading marked `data-no-label`,
// such as a buttons column named for screen readers only), and the header's height as
// `--header-h` (the tabs stick below the header where the header sticks). Must not: render views.

// Labels every body cell of the tables under `root` with its column heading.
export function labelTables(root) {
  for (const table of root.querySelectorAll('.table-wrap > table')) {
    const head = table.tHead && table.tHead.rows[0];
    const names = head ? Array.from(head.cells).map((th) => ('noLabel' in th.dataset ? '' : th.textContent.trim())) : [];
    for (const body of table.tBodies) {
      for (const tr of body.rows) {
        let col = 0;
        for (const td of tr.cells) {
          const label = td.colSpan > 1 ? '' : names[col] || '';
          if (td.dataset.label !== label) td.dataset.label = label;
          col += td.colSpan || 1;
        }
      }
    }
  }
}

// Keeps the labels right as rows come and go, and `--header-h` as the header's height.
export function watchLayout(main, header) {
  let queued = false;
  new MutationObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; labelTables(main); });
  }).observe(main, { childList: true, subtree: true });
  labelTables(main);
  const setHeight = () => document.documentElement.style.setProperty('--header-h', `${header.offsetHeight}px`);
  new ResizeObserver(setHeight).observe(header);
  setHeight();
}
