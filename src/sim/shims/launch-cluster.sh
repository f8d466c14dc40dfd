#!/bin/sh
# spark-control simulator: a fake spark-vllm-docker `launch-cluster.sh` (same CLI).
#
#   ./launch-cluster.sh stop
#   ./launch-cluster.sh [--solo] -n HEAD[,WORKER...] [-d] exec vllm serve REPO \
#       --host 0.0.0.0 --port P [-tp 2] [flags...]
#
# Runs the fake vLLM as container `vllm_node` through the `docker` shim on this host;
# for cluster launches (not --solo, workers in -n) it also starts a `vllm_node`
# placeholder container on each worker (<base>/<worker-ip>/containers/vllm_node), the
# way the real launcher drives workers over SSH. `stop` stops the head's container and
# every worker it launched. Without -d it stays in the foreground streaming the log and,
# like the real one (EXIT trap), stops the cluster when it dies: run it under nohup.
# Knobs: $SPARK_SIM_ROOT/knobs/prompt makes it ask `Continue? [Y/n]` on stdin first.
set -eu
: "${SPARK_SIM_ROOT:?SPARK_SIM_ROOT is not set: not a simulated Spark}"
: "${SPARK_SIM_IP:?SPARK_SIM_IP is not set}"
: "${HF_HOME:?HF_HOME is not set}"
BASE=${SPARK_SIM_ROOT%/*}
mkdir -p "$SPARK_SIM_ROOT/run" "$SPARK_SIM_ROOT/containers"
ARGV_TMP="$SPARK_SIM_ROOT/run/launch-argv.$$"
for a in "$@"; do printf '%s\n' "$a"; done >"$ARGV_TMP"
trap 'rm -f "$ARGV_TMP"' EXIT

usage() {
	echo "Usage: $0 [-n <node_ips>] [--name <container_name>] [--solo] [-d] [action] [command]"
	echo "  action          start | stop | status | exec (Default: start)"
}

NAME=vllm_node
NODES=''
SOLO=false
DAEMON=false
ACTION=start
while [ $# -gt 0 ]; do
	case $1 in
	-n | --nodes) NODES=$2; shift ;;
	--name) NAME=$2; shift ;;
	-t | --eth-if | --ib-if | -e | --env | -j | --master-port | --head-port | -p | --publish | \
		-v | --volume | --config | --apply-mod | --apply-vllm-pr | --launch-script | \
		--mem-limit-gb | --mem-swap-limit-gb | --pids-limit | --shm-size-gb | --earlyoom-args) shift ;;
	--nccl-debug) case ${2:-} in VERSION | WARN | INFO | TRACE) shift ;; esac ;;
	--solo) SOLO=true ;;
	-d) DAEMON=true ;;
	--ray | --no-ray | --check-config | --no-cache-dirs | --keep-entrypoint | --non-privileged | \
		--earlyoom | --setup | --discover) ;;
	-h | --help) usage; exit 1 ;;
	start | stop | status) ACTION=$1 ;;
	exec) ACTION=exec; shift; break ;;
	*) echo "Error: Unknown argument or action: $1"; usage; exit 1 ;;
	esac
	shift
done

# on_host IP CMD...: run a shim as if over SSH on the simulated host IP.
on_host() {
	ip=$1
	shift
	if [ ! -d "$BASE/$ip" ]; then
		echo "ssh: connect to host $ip port 22: Connection refused" >&2
		return 255
	fi
	SPARK_SIM_ROOT="$BASE/$ip" SPARK_SIM_IP="$ip" HF_HOME="$BASE/$ip/hf" "$@"
}

WORKERS=''
if [ -n "$NODES" ]; then
	for ip in $(printf '%s' "$NODES" | tr ',' ' '); do
		[ "$ip" = "$SPARK_SIM_IP" ] || WORKERS="$WORKERS $ip"
	done
fi

stop_cluster() {
	d="$SPARK_SIM_ROOT/containers/$NAME"
	echo "Stopping cluster..."
	if [ -d "$d" ]; then
		docker stop "$NAME" >/dev/null
		echo "Stopped container $NAME on $SPARK_SIM_IP"
	fi
	for ip in $(cat "$d/workers" 2>/dev/null || true) $WORKERS; do
		if [ -d "$BASE/$ip/containers/$NAME" ]; then
			on_host "$ip" docker stop "$NAME" >/dev/null
			echo "Stopped container $NAME on $ip"
		fi
	done
	echo "Cluster stopped."
}

case $ACTION in
stop)
	stop_cluster
	exit 0
	;;
status)
	st=$(docker ps -a --format '{{.Names}} {{.State}}' | awk -v n="$NAME" '$1 == n { print $2 }')
	echo "Container $NAME on $SPARK_SIM_IP: ${st:-absent}"
	exit 0
	;;
start)
	echo "Error: the simulator only supports 'exec vllm serve ...', 'stop' and 'status'."
	exit 1
	;;
esac

if [ -z "$NODES" ] && [ "$SOLO" = false ]; then
	echo "Error: no -n given: the real launcher would now scan the LAN for SSH peers" \
		"(autodiscovery). Pass -n <head-ip>,<worker-ip> or --solo."
	exit 1
fi
if [ -n "$NODES" ]; then
	case ",$NODES," in
	*",$SPARK_SIM_IP,"*) ;;
	*) echo "Error: none of the nodes ($NODES) is this host ($SPARK_SIM_IP)."; exit 1 ;;
	esac
fi
[ "$SOLO" = false ] || WORKERS=''

# The command: vllm serve REPO [flags]
[ "${1:-}" = vllm ] && [ "${2:-}" = serve ] && [ -n "${3:-}" ] || {
	echo "Error: the simulator can only exec 'vllm serve <repo> ...' (got: $*)"
	exit 1
}
REPO=$3
shift 3
PORT=8000
SERVED=''
MAXLEN=''
TP=1
while [ $# -gt 0 ]; do
	case $1 in
	--port) PORT=$2; shift ;;
	--port=*) PORT=${1#*=} ;;
	--served-model-name) SERVED=$2; shift ;;
	--served-model-name=*) SERVED=${1#*=} ;;
	--max-model-len) MAXLEN=$2; shift ;;
	--max-model-len=*) MAXLEN=${1#*=} ;;
	-tp | --tensor-parallel-size) TP=$2; shift ;;
	--tensor-parallel-size=*) TP=${1#*=} ;;
	esac
	shift
done

if [ -e "$SPARK_SIM_ROOT/knobs/prompt" ]; then
	printf 'Continue? [Y/n] '
	if read -r ans; then :; else ans=''; fi
	case $ans in n | N | no | No) echo "Aborted."; exit 1 ;; esac
	echo
fi

if docker ps --format '{{.Names}}' | grep -qx "$NAME"; then
	echo "Cluster is already running. Skipping launch."
	exit 0
fi

for ip in $WORKERS; do
	[ -d "$BASE/$ip" ] || { on_host "$ip" true || exit 255; }
done

cache_dir() { printf '%s/hub/models--%s' "$1" "$(printf '%s' "$REPO" | sed 's|/|--|g')"; }
# model_ready HF_HOME: a snapshot with weights and no partial files.
model_ready() {
	dir=$(cache_dir "$1")
	ls "$dir"/snapshots/*/*.safetensors >/dev/null 2>&1 || return 1
	! ls "$dir"/snapshots/*/*.incomplete >/dev/null 2>&1
}
for ip in "$SPARK_SIM_IP" $WORKERS; do
	if [ "$ip" = "$SPARK_SIM_IP" ]; then hf_home=$HF_HOME; else hf_home="$BASE/$ip/hf"; fi
	if ! model_ready "$hf_home"; then
		echo "Error: model $REPO is not in the Hugging Face cache on $ip ($(cache_dir "$hf_home"))."
		echo "       The simulated node has no internet access: run 'hf download $REPO' there first."
		exit 1
	fi
done

quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
d="$SPARK_SIM_ROOT/containers/$NAME"
mkdir -p "$d"
rm -f "$d/stopped_at"
: >"$d/log"
mv "$ARGV_TMP" "$d/argv"
echo vllm-node >"$d/image"
{
	echo "# launch-cluster.sh argv: see ./argv (one argument per line)"
	printf 'exec "$SPARK_SIM_BIN" sim vllm --host %s --port %s --model %s' \
		"$(quote "$SPARK_SIM_IP")" "$(quote "$PORT")" "$(quote "$REPO")"
	[ -z "$SERVED" ] || printf ' --served-name %s' "$(quote "$SERVED")"
	[ -z "$MAXLEN" ] || printf ' --max-model-len %s' "$(quote "$MAXLEN")"
	echo
} >"$d/cmd"
printf '%s\n' $WORKERS >"$d/workers"

for ip in $WORKERS; do
	echo "Starting Worker Node on $ip..."
	wd="$BASE/$ip/containers/$NAME"
	mkdir -p "$wd"
	rm -f "$wd/stopped_at"
	echo vllm-node >"$wd/image"
	printf 'echo "worker of %s (tp=%s): vllm headless node for %s"\nexec sleep 2147483647\n' \
		"$SPARK_SIM_IP" "$TP" "$REPO" >"$wd/cmd"
	: >"$wd/log"
	on_host "$ip" docker start "$NAME" >/dev/null
done
echo "Starting Head Node on $SPARK_SIM_IP..."
docker start "$NAME" >/dev/null
echo "Executing command on head node: vllm serve $REPO --port $PORT (tp=$TP)"

if [ "$DAEMON" = true ]; then
	echo "Cluster launched in daemon mode. Follow the logs with: docker logs -f $NAME"
	exit 0
fi

# Foreground: stream the log; when the stream breaks (SSH session gone) or a signal
# arrives, stop the cluster like the real launcher's EXIT trap. Under nohup, SIGHUP is
# ignored and output goes to a file, so the model survives the session.
echo $$ >"$SPARK_SIM_ROOT/run/launcher-$$.pid"
tail -n +1 -f "$d/log" &
TP_PID=$!
cleanup() {
	kill "$TP_PID" 2>/dev/null || true
	echo "launch-cluster.sh (pid $$) exiting (${WHY:-signal}) at $(date +%s%3N): stopping the cluster" >>"$d/log"
	stop_cluster >/dev/null 2>&1 || true
	rm -f "$SPARK_SIM_ROOT/run/launcher-$$.pid"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 143' INT TERM
while docker ps --format '{{.Names}}' | grep -qx "$NAME" && kill -0 "$TP_PID" 2>/dev/null; do
	sleep 0.5
done
if kill -0 "$TP_PID" 2>/dev/null; then WHY='container exited'; else WHY='log stream broke'; fi
sleep 0.3
exit 0
