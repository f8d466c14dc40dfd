#!/usr/bin/env bash
# Build the container image from CI's release binary and a local Debian base,
# start it, and check it from outside: /healthz answers, a demo swap completes
# through the UI's API, and the process runs as a non-root uid.
#
#   bash scripts/check-container.sh [path/to/spark-control]
#
# Needs root, podman, runc, mmdebstrap, curl (CI installs them). No registry:
# the base is bootstrapped from Debian's mirror with mmdebstrap and cached in
# $SPARK_CONTAINER_CACHE (default ~/.cache/spark-control-container), reused when
# present. The image is container/Dockerfile's `prebuilt` target: the same
# runtime stage as the default build, around the binary given here.
# Network: the container uses the host's network and talks only on loopback
# (the demo's simulated Sparks are 127.0.0.2/127.0.0.3).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=${1:-${CARGO_TARGET_DIR:-target}/release/spark-control}
cache=${SPARK_CONTAINER_CACHE:-$HOME/.cache/spark-control-container}
port=${SPARK_CONTAINER_PORT:-19999}
vllm_port=${SPARK_CONTAINER_VLLM_PORT:-18888}
base=localhost/spark-control-base:bookworm-minbase
image=localhost/spark-control:ci
name=spark-control-ci-$$
export CONTAINERS_CONF=$root/container/ci/containers.conf
pod() { podman --runtime runc "$@"; }
say() { printf 'check-container: %s\n' "$*"; }
fail() { say "FAILED: $*" >&2; pod logs "$name" 2>&1 | tail -n 40 >&2 || true; exit 1; }

[ -x "$bin" ] || { say "no binary at $bin (run cargo build --release first)" >&2; exit 1; }
t0=$(date +%s)

# 1. The base: Debian bookworm minbase, bootstrapped once and cached.
mkdir -p "$cache"
if [ ! -f "$cache/rootfs.tar" ]; then
  say "bootstrapping Debian bookworm minbase into $cache/rootfs.tar"
  mmdebstrap --quiet --variant=minbase --format=tar bookworm "$cache/rootfs.tar.part"
  mv "$cache/rootfs.tar.part" "$cache/rootfs.tar"
fi
if ! pod image exists "$base"; then
  pod import --quiet "$cache/rootfs.tar" "$base" >/dev/null
fi
t1=$(date +%s)

# 2. The image: the Dockerfile's prebuilt target, context = just the binary.
ctx=$(mktemp -d)
trap 'pod rm -f -t 0 "$name" >/dev/null 2>&1 || true; rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/spark-control"
pod build --quiet --format docker --network host -f "$root/container/Dockerfile" --target prebuilt \
  --build-arg RUNTIME_BASE="$base" -t "$image" "$ctx" >/dev/null
[ "$(pod image inspect --format '{{.Config.User}}' "$image")" = spark ] || fail "image USER is not spark"
t2=$(date +%s)

# 3. Run the demo in it (the same image, its own command), on the host's loopback.
pod run -d --name "$name" --network host --entrypoint spark-control "$image" \
  demo --dir /data/demo --listen "127.0.0.1:$port" --vllm-port "$vllm_port" \
  --stt-port $((vllm_port + 1)) --tts-port $((vllm_port + 2)) --startup-delay-ms 1000 >/dev/null
api=http://127.0.0.1:$port

# wait_for WHAT SECONDS COMMAND...: poll every 0.5 s, bounded.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(pod inspect --format '{{.State.Running}}' "$name")" = true ] || fail "container exited while waiting for $what"
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within ${secs}s"
    sleep 0.5
  done
}
# /v1/models lists the catalog by served name (the catalog key), each with a status.
serving() { curl -fsS "$api/v1/models" | grep -q "\"id\":\"$1\",[^}]*\"status\":\"serving\""; }

wait_for "/healthz" 60 curl -fsS "$api/healthz"
say "/healthz answers"
wait_for "the first model served" 120 serving qwen36
say "qwen36 served through /v1/models"

# A swap, through the call the UI's Activate button makes.
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
  -d '{"op":"activate","model":"gemma4"}' "$api/api/desired/edit")
[ "${code:0:1}" = 2 ] || fail "activate gemma4: HTTP $code"
wait_for "gemma4 served after the swap" 120 serving gemma4
say "swap done: gemma4 served through /v1/models"

# Non-root, seen from outside: the uid of the container's main process on the host
# (podman runs rootful here, without a user namespace, so uids are the same).
pid=$(pod inspect --format '{{.State.Pid}}' "$name")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
comm=$(cat "/proc/$pid/comm")
[ "$comm" = spark-control ] || fail "container's main process is $comm, not spark-control"
[ "$uid" != 0 ] || fail "spark-control runs as root in the container"
say "spark-control runs as uid $uid"

# Stops cleanly on SIGTERM (the demo takes its simulated processes with it).
pod stop -t 30 "$name" >/dev/null
status=$(pod inspect --format '{{.State.ExitCode}}' "$name")
[ "$status" = 0 ] || fail "exit status $status after SIGTERM"
t3=$(date +%s)
say "passed: base $((t1 - t0)) s, image $((t2 - t1)) s, run+checks $((t3 - t2)) s, total $((t3 - t0)) s"
