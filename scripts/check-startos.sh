#!/usr/bin/env bash
# Type-check the StartOS package code (startos/). Needs node and npm only
# (Node 18+); npm ci installs the pinned SDK, TypeScript and @types/node from
# startos/package-lock.json. Does not need start-cli or docker.
set -euo pipefail
cd "$(dirname "$0")/../startos"
# Files `start-cli s9pk pack` reads from the package root; list every one missing.
missing=()
for f in instructions.md icon.svg ../LICENSE manifest/index.ts package.json package-lock.json tsconfig.json; do
  [ -s "$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "startos: missing from the package root: ${missing[*]}" >&2
  exit 1
fi
npm ci --no-audit --no-fund
npx tsc --noEmit
echo "startos: files present, type check passed"
