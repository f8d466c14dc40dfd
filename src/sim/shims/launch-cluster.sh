#!/bin/bash
# spark-control simulator: a fake spark-vllm-docker `launch-cluster.sh`, generation @GEN@.
#
# It models the public launcher's contract (DESIGN §4), behaviour by behaviour, for the
# generation written above at install time:
#   A (early 2026, Ray only): no --solo; any unknown word starts the exec command; `exec`
#     joins its words and `bash -c` re-parses them; the EXIT/INT/TERM/HUP trap always
#     stops the cluster after exec (also with -d), so the model lives as long as this
#     process; vLLM's output goes to this script's stdout, not `docker logs`.
#   B (mid/late 2026): --solo, --ray, -e VAR=val; `-d exec` runs
#     `docker exec -d … bash -c "<cmd %q-quoted> >> /proc/1/fd/1 2>&1"` and returns (output
#     in `docker logs`, no trap); containers idle, so a container outlives a crashed vLLM;
#     multi-node no-Ray passes --nnodes/--node-rank/--master-addr itself (--headless on
#     workers).
# Both: `stop` without -n "autodiscovers" and (no peers answer in the simulation) stops
# the head only; the local IP is the host's interconnect address ($SPARK_SIM_CX7_IP) and a
# node list without it is refused; a running cluster is not launched again ("Skipping
# launch") but exec still runs in it; peers are reached as over SSH (a peer whose
# simulated host is missing fails "Passwordless SSH"). Start-up (Ray/cluster checks)
# takes $SPARK_SIM_ROOT/knobs/launcher-startup-ms (default 1500) before the exec;
# knobs/prompt makes it ask `Continue? [Y/n]` on stdin first. Never touches anything
# outside the simulation's base directory.
set -u
GEN=@GEN@
: "${SPARK_SIM_ROOT:?SPARK_SIM_ROOT is not set: not a simulated Spark}"
: "${SPARK_SIM_IP:?SPARK_SIM_IP is not set}"
: "${SPARK_SIM_CX7_IP:?SPARK_SIM_CX7_IP is not set}"
BASE=${SPARK_SIM_ROOT%/*}
LOCAL_IP=$SPARK_SIM_CX7_IP
mkdir -p "$SPARK_SIM_ROOT/run"

usage() {
	if [[ $GEN == A ]]; then
		echo "Usage: $0 [-n <node_ips>] [-t <image_name>] [--name <container_name>] [--eth-if <if_name>] [--ib-if <if_name>] [--nccl-debug <level>] [--check-config] [-d] [action] [command]"
		echo "  -n, --nodes     Comma-separated node IPs (auto-detected if omitted)"
		echo "  -d              Daemon mode (only for 'start' action)"
		echo "  action          start | stop | status | exec (Default: start)"
	else
		echo "Usage: $0 [-n <node_ips>] [-t <image_name>] [--name <container_name>] [--solo] [--ray] [-e VAR=val] [--setup] [--discover] [-d] [action] [command]"
		echo "  -n, --nodes     Comma-separated node IPs (or CLUSTER_NODES in .env)"
		echo "  --solo          Run on this node only"
		echo "  --ray           Use Ray for multi-node (default: no Ray)"
		echo "  -e VAR=val      Environment variable for the container"
		echo "  -d              Daemon mode"
		echo "  action          start | stop | status | exec (Default: start)"
	fi
	exit 1
}

NODES=''
NAME=vllm_node
DAEMON=false
ACTION=start
SOLO=false
RAY=false
[[ $GEN == A ]] && RAY=true
while [[ $# -gt 0 ]]; do
	case $1 in
	-n | --nodes) NODES=$2; shift ;;
	-t | --eth-if | --ib-if | --apply-mod) shift ;;
	--name) NAME=$2; shift ;;
	--nccl-debug) [[ ${2:-} =~ ^(VERSION|WARN|INFO|TRACE)$ ]] && shift ;;
	--check-config) ;;
	-d) DAEMON=true ;;
	-h | --help) usage ;;
	start | stop | status) ACTION=$1 ;;
	exec) ACTION=exec; shift; break ;;
	--solo | --ray | -e | --setup | --discover)
		if [[ $GEN == A ]]; then
			ACTION=exec # generation A: an unknown word starts the command
			break
		fi
		case $1 in
		--solo) SOLO=true ;;
		--ray) RAY=true ;;
		-e) shift ;;
		esac
		;;
	*) ACTION=exec; break ;;
	esac
	shift
done
if [[ $GEN == A ]]; then
	COMMAND_TO_RUN="$*"
else
	COMMAND_TO_RUN=$(printf '%q ' "$@")
fi

# peer_dir IP: the simulated host whose interconnect address is IP.
peer_dir() { readlink -f "$BASE/by-cx7/$1" 2>/dev/null; }
# on_peer IP CMD...: run a command on a peer, as the launcher does over ssh.
on_peer() {
	local ip=$1 dir
	shift
	dir=$(peer_dir "$ip")
	if [[ -z $dir || ! -d $dir ]]; then
		return 255
	fi
	SPARK_SIM_ROOT="$dir" SPARK_SIM_IP="${dir##*/}" SPARK_SIM_CX7_IP="$ip" HF_HOME="$dir/hf" "$@"
}

if [[ -z $NODES && $SOLO == false ]]; then
	echo "Auto-detecting nodes on the interconnect subnet..."
	NODES=$LOCAL_IP # the simulation's subnet has no other live host
	echo "  Found: $NODES"
fi
[[ -n $NODES ]] || NODES=$LOCAL_IP
IFS=',' read -r -a ALL_NODES <<<"$NODES"
FOUND=false
PEERS=()
for ip in "${ALL_NODES[@]}"; do
	if [[ $ip == "$LOCAL_IP" ]]; then FOUND=true; else PEERS+=("$ip"); fi
done
if [[ $FOUND == false ]]; then
	echo "Error: Local IP ($LOCAL_IP) is not in the list of nodes ($NODES)."
	exit 1
fi
[[ $SOLO == true ]] && PEERS=()
echo "Head Node: $LOCAL_IP"
echo "Worker Nodes: ${PEERS[*]}"

if [[ $ACTION == exec || $ACTION == start ]]; then
	for w in "${PEERS[@]}"; do
		if ! on_peer "$w" true; then
			echo "Error: Passwordless SSH to $w failed."
			exit 1
		fi
	done
fi

WAS_RUNNING=false
cleanup() {
	trap - EXIT INT TERM HUP
	if [[ $WAS_RUNNING == true ]]; then
		echo "Cluster was already running when script started. Skipping cleanup."
		return
	fi
	echo "Stopping cluster..."
	docker stop "$NAME" >/dev/null 2>&1 || true
	for w in "${PEERS[@]}"; do
		on_peer "$w" docker stop "$NAME" >/dev/null 2>&1 || true
	done
	echo "Cluster stopped."
}

case $ACTION in
stop) cleanup; exit 0 ;;
status)
	st=$(docker inspect -f '{{.State.Status}}' "$NAME" 2>/dev/null || echo absent)
	echo "[HEAD] $LOCAL_IP: $NAME $st"
	exit 0
	;;
esac

if [[ $DAEMON == false || $ACTION == exec ]] && [[ $GEN == A || $DAEMON == false ]]; then
	trap cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
fi

if [[ -e $SPARK_SIM_ROOT/knobs/prompt ]]; then
	printf 'Continue? [Y/n] '
	read -r ans || ans=''
	case $ans in n | N | no | No) echo "Aborted."; exit 1 ;; esac
	echo
fi

# define NAME on host dir D with an idle main process (Ray node / sleep infinity)
define() {
	local d="$1/containers/$NAME"
	mkdir -p "$d"
	rm -f "$d/stopped_at" "$d/execs"
	echo vllm-node >"$d/image"
	printf 'echo "%s node of %s: idle"\nexec sleep 2147483647\n' "$2" "$LOCAL_IP" >"$d/cmd"
	: >"$d/log"
}

start_cluster() {
	local running=false
	if docker ps --format '{{.Names}}' | grep -qx "$NAME"; then running=true; fi
	for w in "${PEERS[@]}"; do
		if on_peer "$w" docker ps --format '{{.Names}}' | grep -qx "$NAME"; then running=true; fi
	done
	if [[ $running == true ]]; then
		echo "Cluster containers are already running. Skipping launch."
		WAS_RUNNING=true
		return
	fi
	echo "Starting Head Node on $LOCAL_IP..."
	define "$SPARK_SIM_ROOT" head
	docker start "$NAME" >/dev/null
	for w in "${PEERS[@]}"; do
		echo "Starting Worker Node on $w..."
		define "$(peer_dir "$w")" worker
		on_peer "$w" docker start "$NAME" >/dev/null
	done
	echo "Waiting for cluster to be ready..."
	ms=$(cat "$SPARK_SIM_ROOT/knobs/launcher-startup-ms" 2>/dev/null || echo 1500)
	sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
	echo "Cluster head is responsive."
}

if [[ $ACTION == start ]]; then
	start_cluster
	[[ $DAEMON == true ]] && { echo "Cluster started in background (Daemon mode)."; trap - EXIT; exit 0; }
	docker logs -f "$NAME"
	exit 0
fi

start_cluster
echo "Executing command on head node: $COMMAND_TO_RUN"
if [[ $GEN == A ]]; then
	# Re-parsed by bash, in the foreground: vLLM's output is ours.
	docker exec -i "$NAME" bash -c "$COMMAND_TO_RUN"
	exit $?
fi
EXTRA=''
if [[ $RAY == false && ${#PEERS[@]} -gt 0 ]]; then
	n=$((${#PEERS[@]} + 1))
	EXTRA="--nnodes $n --node-rank 0 --master-addr $LOCAL_IP --master-port 29501"
	rank=1
	for w in "${PEERS[@]}"; do
		on_peer "$w" docker exec -d "$NAME" bash -c "$COMMAND_TO_RUN --nnodes $n --node-rank $rank --master-addr $LOCAL_IP --master-port 29501 --headless >> \"\$SIM_PID1_STDOUT\" 2>&1"
		rank=$((rank + 1))
	done
fi
if [[ $DAEMON == true ]]; then
	# SIM_PID1_STDOUT stands for /proc/1/fd/1: the container's log.
	docker exec -d "$NAME" bash -c "$COMMAND_TO_RUN $EXTRA >> \"\$SIM_PID1_STDOUT\" 2>&1"
	echo "Command started in daemon mode. Follow the logs with: docker logs -f $NAME"
	exit 0
fi
docker exec -i "$NAME" bash -c "$COMMAND_TO_RUN $EXTRA"
exit $?
