#!/usr/bin/env bash
# Check the StartOS package for everything `start-cli s9pk pack` checks that
# can be checked without start-cli and docker. Needs node/npm (Node 18+), make
# and git; npm ci installs the pinned SDK, TypeScript and ncc from
# package-lock.json. The package root is the repository root (startos/README.md).
#
# 1. the files pack reads from the package root, each missing one listed:
#    instructions.md, exactly one icon.<image type>, exactly one LICENSE*, the
#    assets/ directory, and what the build needs (package.json, lock, tsconfig,
#    Makefile, startos/index.ts, startos/manifest/index.ts);
# 2. the template's own build rule, `make javascript/index.js` from the SDK's
#    s9pk.mk: npm ci, tsc --noEmit, the SDK's lint (lint.mjs), ncc bundle;
# 3. the manifest loads the way pack loads it (node requires
#    javascript/index.js and prints `manifest` as JSON), also with LANG=de_DE;
#    s9pk.mk's PACKAGE_ID (read from the manifest source) is the manifest's id;
# 4. scripts/startos-check.cjs: the manifest against the SDK's Manifest type
#    and start-cli's parsing rules, the bundle's exports, the i18n dictionaries.
#
# Not checked (needs start-cli or docker): the image build, squashfs packing,
# signing with the developer key, the commit hash, installing on StartOS.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- 1. files --------------------------------------------------------------
missing=()
for f in instructions.md package.json package-lock.json tsconfig.json Makefile \
  startos/index.ts startos/manifest/index.ts; do
  [ -s "$f" ] || missing+=("$f")
done
[ -d assets ] || missing+=("assets/ (pack packs it; s9pk.mk passes no --no-assets)")
# pack takes the one file in the package root whose name without extension is
# icon / license (any case); none or several is an error.
stem_entries() { find . -mindepth 1 -maxdepth 1 \( -iname "$1" -o -iname "$1.*" \) ! -iname "$1.*.*"; }
count_stem() { stem_entries "$1" | wc -l; }
icons=$(count_stem icon)
if [ "$icons" -eq 0 ]; then
  missing+=("icon.svg (or icon.png/.jpg/.webp)")
elif [ "$icons" -gt 1 ]; then
  missing+=("exactly one icon.* (found $icons)")
else
  icon=$(stem_entries icon)
  case "${icon##*.}" in
    svg | png | jpg | jpeg | webp | gif | ico | avif) ;;
    *) missing+=("an icon with an image extension (found $icon)") ;;
  esac
fi
licenses=$(count_stem license)
[ "$licenses" -eq 1 ] || missing+=("exactly one LICENSE file (found $licenses)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'startos: missing from the package root: %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "startos: package root has instructions.md, ${icon#./}, LICENSE, assets/ and the build files"

# ---- 2. the template's build rule --------------------------------------------
for tool in node npm make git; do
  command -v "$tool" >/dev/null || { echo "startos: $tool not found (needed by the check)" >&2; exit 1; }
done
rm -rf javascript
make --no-print-directory javascript/index.js
[ -s javascript/index.js ] || { echo "startos: make did not produce javascript/index.js" >&2; exit 1; }

# ---- 3. the manifest loads as pack loads it ------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load='console.log(JSON.stringify(require("./javascript/index.js").manifest))'
node -e "$load" >"$tmp/manifest.json"
LANG=de_DE.UTF-8 node -e "$load" >"$tmp/manifest-de.json"
cmp -s "$tmp/manifest.json" "$tmp/manifest-de.json" \
  || { echo "startos: the manifest differs with LANG=de_DE (it must not depend on the language)" >&2; exit 1; }
id=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).id)' "$tmp/manifest.json")
mk_id=$(make -s --no-print-directory print-PACKAGE_ID)
[ "$mk_id" = "$id" ] \
  || { echo "startos: s9pk.mk reads PACKAGE_ID '$mk_id' from startos/manifest/index.ts, the manifest's id is '$id' (keep one line with id: '...' there)" >&2; exit 1; }

# ---- 4. manifest fields, exports, i18n -----------------------------------------
node scripts/startos-check.cjs "$tmp/manifest.json"
echo "startos: all checks passed (not checked without start-cli/docker: image build, packing, signing)"
