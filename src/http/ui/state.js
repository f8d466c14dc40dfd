// The page's one source of state: GET /api/state/stream (server-sent events). Each `state`
// event is {epoch, state}; `state` is what GET /api/state answers. Owns: the EventSource,
// reconnecting after an error (0.25 s, doubling to 5 s, reset by the next event), telling
// the page when the server's epoch changed (the server restarted: operation ids and log
// sequence numbers began again, so the page resyncs everything it holds), whether the
// server is reachable, and when it needs the admin token (the stream answered 401).
// Must not: poll /api/state, or render anything itself.

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5000;

// `on.state(state)` for every event; `on.epoch(epoch, previous)` when the epoch changed
// (previous is null for the first one); `on.conn(ok, message)`; `on.auth()` when the
// server needs the admin token before it shows anything. Returns {restart()}.
export function connectState(on) {
  let es = null;
  let epoch = null;
  let retryMs = FIRST_RETRY_MS;
  let timer = null;

  const open = () => {
    clearTimeout(timer);
    timer = null;
    if (es) es.close();
    const source = new EventSource('/api/state/stream');
    es = source;
    source.addEventListener('state', (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (_) { return; }
      if (!msg || typeof msg.epoch !== 'string' || !msg.state) return;
      retryMs = FIRST_RETRY_MS;
      if (msg.epoch !== epoch) {
        const previous = epoch;
        epoch = msg.epoch;
        on.epoch(epoch, previous);
      }
      on.conn(true);
      on.state(msg.state);
    });
    source.addEventListener('error', () => {
      if (source !== es) return;
      // Reconnect on our own schedule (the browser's own retry gives up on a non-200).
      source.close();
      es = null;
      whyClosed().then((why) => {
        if (why === 'auth') { on.conn(true); on.auth(); return; }
        on.conn(false, why === 'offline' ? 'the server does not answer' : 'the state stream was interrupted; reconnecting');
        timer = setTimeout(open, retryMs);
        retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
      });
    });
  };
  open();
  return { restart: open };
}

// Why the stream ended: 'auth' (reads need the token and this page is not signed in),
// 'offline' (nothing answers) or 'other'. /api/session answers without a token.
async function whyClosed() {
  try {
    const r = await fetch('/api/session', { cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) return 'other';
    const s = await r.json();
    return s && s.auth_required && !s.signed_in ? 'auth' : 'other';
  } catch (_) {
    return 'offline';
  }
}
