# Sourced by the scripts that need a running demo: start_demo starts
# `spark-control demo` on free loopback ports in a scratch dir and waits until it
# answers; stop_demo (run on EXIT) stops it with SIGTERM so it takes its simulated
# processes with it. Sets DEMO_URL and DEMO_DIR.
#
# The binary: $SPARK_CONTROL_BIN, else $CARGO_TARGET_DIR/debug/spark-control, else
# target/debug/spark-control (build it first: `cargo build`).

free_port() { # free_port IP
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"
}

start_demo() { # start_demo [extra demo args...]
  local root bin port vllm stt tts
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  bin="${SPARK_CONTROL_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/spark-control}"
  [ -x "$bin" ] || { echo "no binary at $bin: run cargo build (or set SPARK_CONTROL_BIN)" >&2; exit 1; }
  DEMO_DIR="$(mktemp -d -t spark-demo-XXXXXX)"
  port=$(free_port 127.0.0.1); vllm=$(free_port 127.0.0.2)
  stt=$(free_port 127.0.0.3); tts=$(free_port 127.0.0.3)
  while [ "$tts" = "$stt" ]; do tts=$(free_port 127.0.0.3); done
  "$bin" demo --dir "$DEMO_DIR/demo" --listen "127.0.0.1:$port" --vllm-port "$vllm" \
    --stt-port "$stt" --tts-port "$tts" "$@" 2>"$DEMO_DIR/demo.log" &
  DEMO_PID=$!
  DEMO_URL="http://127.0.0.1:$port"
  trap stop_demo EXIT
  for _ in $(seq 1 200); do
    curl -fsS "$DEMO_URL/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$DEMO_PID" 2>/dev/null || { cat "$DEMO_DIR/demo.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "the demo did not answer within 20 s" >&2; exit 1
}

wait_model_ready() { # wait_model_ready SECONDS
  for _ in $(seq 1 $(( $1 * 5 ))); do
    curl -fsS "$DEMO_URL/api/endpoints" 2>/dev/null | grep -q '"ready":true' && return 0
    sleep 0.2
  done
  echo "the demo's model was not ready within $1 s" >&2; exit 1
}

stop_demo() {
  if [ -n "${DEMO_PID:-}" ] && kill -0 "$DEMO_PID" 2>/dev/null; then
    kill -TERM "$DEMO_PID"
    wait "$DEMO_PID" 2>/dev/null || true
  fi
  [ -n "${DEMO_DIR:-}" ] && rm -rf "$DEMO_DIR"
}
