#!/usr/bin/env bash
# The OpenAPI document as API users' tools see it: `openapi-spec-validator` validates
# the document a running demo serves, `openapi-python-client` generates a typed Python
# client from it, and that client calls GET /api/state of the demo and gets typed
# models (StateView, ObservedState, ...) with the fields the server sent.
#
# Needs python3 with venv, and curl. Installs the two PyPI packages into a venv
# ($OPENAPI_VENV, default ~/.cache/spark-control/openapi-venv), with ruff (the
# generator's formatter). Writes the result to
# docs/openapi-client-check.txt when run with --record.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/demo-lib.sh

venv="${OPENAPI_VENV:-$HOME/.cache/spark-control/openapi-venv}"
if [ ! -x "$venv/bin/ruff" ]; then
  python3 -m venv "$venv"
  # ruff: the generator formats the client with it.
  "$venv/bin/pip" install -q openapi-spec-validator openapi-python-client ruff
fi
export PATH="$venv/bin:$PATH"

start_demo --startup-delay-ms 500
work="$DEMO_DIR/openapi"
mkdir -p "$work"
curl -fsS "$DEMO_URL/api/openapi.json" -o "$work/openapi.json"
"$venv/bin/openapi-spec-validator" "$work/openapi.json"

# YAML (the desired file) and JSON lines (an operation's log) are text the generator has
# no type for: the client hands them over as bytes.
cat >"$work/config.json" <<'JSON'
{ "content_type_overrides": { "application/yaml": "application/octet-stream",
                              "application/x-ndjson": "application/octet-stream" } }
JSON
"$venv/bin/openapi-python-client" generate --path "$work/openapi.json" \
  --config "$work/config.json" --output-path "$work/client" --overwrite >"$work/generate.log" 2>&1 \
  || { cat "$work/generate.log" >&2; exit 1; }
# Every schema became a named model; the generator warns about what it could not type.
if grep -qi "warning\|error" "$work/generate.log"; then
  cat "$work/generate.log" >&2
  echo "openapi-python-client warned (above)" >&2
  exit 1
fi
wait_model_ready 60

out="$work/result.txt"
PYTHONPATH="$work/client" "$venv/bin/python" - "$DEMO_URL" "$work/client" >"$out" <<'PY'
import importlib, pathlib, sys

url, client_dir = sys.argv[1], pathlib.Path(sys.argv[2])
pkg = next(p.name for p in client_dir.iterdir() if (p / "client.py").exists())
client_mod = importlib.import_module(f"{pkg}.client")
get_state = importlib.import_module(f"{pkg}.api.state.get_state")
models = importlib.import_module(f"{pkg}.models")

# The anonymous variants generators used to invent are gone: each edit is a named type.
names = [n for n in dir(models) if n.startswith("DesiredEdit")]
assert "DesiredEditActivate" in names and not any(n[-1].isdigit() for n in names), names

client = client_mod.Client(base_url=url, raise_on_unexpected_status=True)
state = get_state.sync(client=client)
assert type(state).__name__ == "StateView", type(state)
assert isinstance(state.desired_file, str) and state.desired_file.endswith("desired.yaml")
assert isinstance(state.busy, bool) and isinstance(state.ready, bool)
gen = state.observed.generation
assert isinstance(gen, int) and gen > 0, gen
resources = state.resources
assert resources and all(type(r).__name__ == "Resource" for r in resources), resources
# A tagged enum arrives as its named variant: a host's reachability is a known fact.
reach = state.observed.hosts["spark1"].reachable
assert type(reach).__name__ == "FactOfBooleanKnown" and reach.known.value is True, reach
print(f"client package: {pkg}")
print(f"GET /api/state -> {type(state).__name__}")
print(f"  desired_file: {type(state.desired_file).__name__} = {state.desired_file.rsplit('/', 1)[-1]!r}")
print(f"  observed: {type(state.observed).__name__}, generation: int = {gen}")
print(f"  resources: list[{type(resources[0]).__name__}], {len(resources)} items, first {resources[0].kind}/{resources[0].name}: {resources[0].health}")
print(f"  observed.hosts['spark1'].reachable: {type(reach).__name__}, known.value: bool = {reach.known.value}")
print(f"  busy: bool = {state.busy}, ready: bool = {state.ready}")
print(f"DesiredEdit variants: {', '.join(sorted(n for n in names if n != 'DesiredEdit'))}")
PY
cat "$out"
echo "openapi: valid (openapi-spec-validator); Python client typed (openapi-python-client)"
if [ "${1:-}" = "--record" ]; then
  {
    echo "# scripts/openapi-client-check.sh, $(date -u +%Y-%m-%d)"
    echo "# openapi-spec-validator $("$venv/bin/pip" show openapi-spec-validator | sed -n 's/^Version: //p'), openapi-python-client $("$venv/bin/pip" show openapi-python-client | sed -n 's/^Version: //p')"
    cat "$out"
  } > docs/openapi-client-check.txt
fi
