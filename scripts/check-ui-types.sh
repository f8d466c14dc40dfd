#!/usr/bin/env bash
# Type-checks the browser UI (src/http/ui/*.js, ES modules) with `tsc --checkJs` against
# src/http/ui/wire.d.ts, the wire shapes generated from the server's OpenAPI components
# (the Rust types; `cargo test --lib wire_types` fails when the file is stale).
#
# Uses the TypeScript pinned in package-lock.json (npm ci, as scripts/check-startos.sh
# does). So that a check that cannot fail is noticed, it first checks a copy of the UI
# with a planted wire-type error and must see tsc refuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/.bin/tsc ] || npm ci --silent
tsc=node_modules/.bin/tsc

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r src/http/ui "$scratch/ui"
cat >"$scratch/ui/planted.js" <<'JS'
/** @param {import('./wire.js').StateEvent} ev */
export function planted(ev) { return ev.epoch.toFixed(2); }
JS
if "$tsc" -p "$scratch/ui/tsconfig.json" >"$scratch/out" 2>&1; then
  echo "check-ui-types: tsc accepted a planted type error (epoch is a string); the check is broken" >&2
  exit 1
fi
grep -q "planted.js" "$scratch/out" || { cat "$scratch/out" >&2; echo "check-ui-types: tsc failed, but not on the planted error" >&2; exit 1; }

"$tsc" -p src/http/ui/tsconfig.json
echo "check-ui-types: $(ls src/http/ui/*.js src/http/ui/**/*.js 2>/dev/null | sort -u | wc -l) UI modules type-check against wire.d.ts"
