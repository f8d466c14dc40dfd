#!/usr/bin/env bash
# Check the StartOS package for everything `start-cli s9pk pack` checks that
# can be checked without start-cli and docker. Needs node/npm (Node 18+), make
# and git; npm ci installs the pinned SDK, TypeScript and ncc from
# package-lock.json. The package root is the repository root (startos/README.md).
#
# 1. the files pack reads from the package root, each missing one listed:
#    instructions.md, exactly one icon.<image type>, exactly one LICENSE*, the
#    assets/ directory, README.md, and what the build needs (package.json, lock,
#    tsconfig, Makefile, startos/index.ts, startos/manifest/index.ts);
# 2. the template's own build rule, `make javascript/index.js` from the SDK's
#    s9pk.mk: npm ci, tsc --noEmit, the SDK's lint (lint.mjs), ncc bundle;
# 3. the manifest loads the way pack loads it (node requires
#    javascript/index.js and prints `manifest` as JSON), also with LANG=de_DE;
#    s9pk.mk's PACKAGE_ID (read from the manifest source) is the manifest's id;
# 4. scripts/startos-check.cjs: the manifest against the SDK's Manifest type
#    and start-cli's parsing rules, the bundle's exports, the i18n dictionaries.
# Steps 1 and 4 also run on an empty directory and on a broken manifest and
# must fail there, so a check that cannot fail is noticed.
#
# Not checked (needs start-cli or docker): the image build, squashfs packing,
# signing with the developer key, the commit hash, installing on StartOS.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- 1. files --------------------------------------------------------------
# Prints one line per file the package root DIR lacks (nothing when complete).
missing_files() (
  cd "$1"
  for f in instructions.md README.md package.json package-lock.json tsconfig.json \
    Makefile startos/index.ts startos/manifest/index.ts; do
    [ -s "$f" ] || echo "$f"
  done
  [ -d assets ] || echo "assets/ (pack packs it; s9pk.mk passes no --no-assets)"
  # pack takes the one entry of the package root whose name without extension
  # is icon / license (any case); none or several is an error.
  stem() { find . -mindepth 1 -maxdepth 1 \( -iname "$1" -o -iname "$1.*" \) ! -iname "$1.*.*"; }
  icons=$(stem icon | wc -l)
  if [ "$icons" -eq 0 ]; then
    echo "icon.svg (or icon.png/.jpg/.webp)"
  elif [ "$icons" -gt 1 ]; then
    echo "exactly one icon.* (found $icons)"
  else
    case "$(stem icon)" in
      *.svg | *.png | *.jpg | *.jpeg | *.webp | *.gif | *.ico | *.avif) ;;
      *) echo "an icon with an image extension (found $(stem icon))" ;;
    esac
  fi
  licenses=$(stem license | wc -l)
  [ "$licenses" -eq 1 ] || echo "exactly one LICENSE file (found $licenses)"
)
missing=$(missing_files .)
if [ -n "$missing" ]; then
  echo "startos: missing from the package root (the repository root):" >&2
  printf '%s\n' "$missing" | sed 's/^/startos:   /' >&2
  exit 1
fi
# The check itself: an empty package root must list every file above.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/empty"
[ "$(missing_files "$tmp/empty" | wc -l)" -eq 11 ] \
  || { echo "startos: the file check does not list all 11 files missing from an empty directory" >&2; exit 1; }
echo "startos: package root has instructions.md, README.md, $(find . -maxdepth 1 -iname 'icon.*' -printf %f), LICENSE, assets/ and the build files"

# ---- 2. the template's build rule --------------------------------------------
for tool in node npm make git; do
  command -v "$tool" >/dev/null || { echo "startos: $tool not found (needed by the check)" >&2; exit 1; }
done
rm -rf javascript
make --no-print-directory javascript/index.js
[ -s javascript/index.js ] || { echo "startos: make did not produce javascript/index.js" >&2; exit 1; }

# ---- 3. the manifest loads as pack loads it ------------------------------------
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
# The check itself: a manifest with an `alerts` block, no title and a misspelt
# dockerfile key must fail with those three errors.
node -e '
  const m = JSON.parse(require("fs").readFileSync(process.argv[1]))
  m.alerts = { install: null }
  delete m.title
  for (const i of Object.values(m.images)) if (i.source.dockerBuild) i.source.dockerBuild.dockerFile = "Dockerfile"
  require("fs").writeFileSync(process.argv[2], JSON.stringify(m))
' "$tmp/manifest.json" "$tmp/bad.json"
if node scripts/startos-check.cjs "$tmp/bad.json" >/dev/null 2>"$tmp/bad.err" \
  || [ "$(grep -c -e '^startos: alerts: unknown field' -e '^startos: title: required field missing' \
    -e 'dockerBuild.dockerFile: unknown field' "$tmp/bad.err")" -ne 3 ]; then
  echo "startos: the manifest check accepted a broken manifest:" >&2
  cat "$tmp/bad.err" >&2
  exit 1
fi
echo "startos: all checks passed (not checked without start-cli/docker: image build, packing, signing)"
