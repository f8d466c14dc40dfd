#!/usr/bin/env bash
# Type-check the StartOS package code (startos/). Needs node and npm only
# (Node 18+); npm ci installs the pinned SDK, TypeScript and @types/node from
# startos/package-lock.json. Does not need start-cli or docker.
set -euo pipefail
cd "$(dirname "$0")/../startos"
npm ci --no-audit --no-fund
npx tsc --noEmit
echo "startos: type check passed"
