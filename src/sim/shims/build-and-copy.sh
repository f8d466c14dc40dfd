#!/bin/sh
# spark-control simulator: a fake spark-vllm-docker `build-and-copy.sh`.
#
#   build-and-copy.sh [-c|--copy-to HOST[,HOST…] [HOST…]] [-u USER] [-t TAG] [--no-build] […]
# Prints build-like lines for a few seconds ($SPARK_SIM_ROOT/knobs/build-seconds, default
# 3) and records the commit it built in $SPARK_SIM_ROOT/built-rev. `-c` takes the hosts
# that follow it up to the next flag (comma- or space-separated), like the real script;
# "copying" to a host writes the built commit into that simulated host's `built-rev`
# (`<base>/<address>/built-rev`, what `docker load` there would hold) and fails (exit 1)
# for an address that is no simulated host. `-c` without hosts autodiscovers, like the
# real script: the simulated discovery finds the addresses listed in
# knobs/autodiscover (one per line; none by default, so it ends with "Autodiscovery
# found no other nodes", exit 1, as on a network where the scan finds nobody).
# $SPARK_SIM_ROOT/copied-to lists the hosts of the last run's copy (empty: none).
# knobs/build-fail: the build fails (exit 1) half-way. Unknown options: usage, exit 1.
# Never touches anything outside $SPARK_SIM_ROOT and its sibling host roots.
set -euf
: "${SPARK_SIM_ROOT:?SPARK_SIM_ROOT is not set: not a simulated Spark}"
cd "$(dirname "$0")"
K="$SPARK_SIM_ROOT/knobs"
base=$(dirname "$SPARK_SIM_ROOT")
mkdir -p "$SPARK_SIM_ROOT/run"
reg="$SPARK_SIM_ROOT/run/build-$$.pid"
echo $$ >"$reg"
trap 'rm -f "$reg"' EXIT

usage() {
	echo "Usage: $0 [OPTIONS]"
	echo "  -c, --copy-to <hosts>     : Host(s) to copy the image to (comma or space-delimited)."
	echo "  -u, --user <user>         : Username for ssh (default: \$USER)"
	echo "  --no-build                : Skip building, only copy image (requires --copy-to)"
	exit 1
}

hosts=''
copy=false
no_build=false
user=${USER:-sim}
while [ $# -gt 0 ]; do
	case $1 in
	-c | --copy-to | --copy-to-host | --copy-to-hosts)
		copy=true
		shift
		while [ $# -gt 0 ]; do
			case $1 in -*) break ;; esac
			hosts="$hosts $(printf '%s' "$1" | tr ',' ' ')"
			shift
		done
		if [ -z "$(echo $hosts)" ]; then
			echo "No hosts specified. Using autodiscovery..."
			found=$(grep -v '^[[:space:]]*$' "$K/autodiscover" 2>/dev/null || true)
			if [ -z "$found" ]; then
				echo "Error: Autodiscovery found no other nodes."
				exit 1
			fi
			hosts=$(echo $found)
			echo "Autodiscovered hosts: $hosts"
		fi
		continue
		;;
	-u | --user) user=$2; shift ;;
	-t | --tag | -j | --build-jobs | --triton-ref | --vllm-ref) shift ;;
	--use-wheels) case ${2:-} in nightly | release) shift ;; esac ;;
	--rebuild-deps | --rebuild-vllm | --copy-parallel | --pre-flashinfer | --pre-tf | --pre-transformers) ;;
	--no-build) no_build=true ;;
	-h | --help) usage ;;
	*) echo "Unknown parameter passed: $1"; usage ;;
	esac
	shift
done
if [ "$no_build" = true ] && [ "$copy" = false ]; then
	echo "Error: --no-build requires --copy-to to be specified"
	exit 1
fi

: >"$SPARK_SIM_ROOT/copied-to"
rev=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$no_build" = false ]; then
	secs=$(cat "$K/build-seconds" 2>/dev/null || echo 3)
	echo "Building image vllm-node from $(pwd) at ${rev}..."
	steps=$((secs * 4))
	i=1
	while [ "$i" -le "$steps" ]; do
		echo "#$((i + 3)) [builder $i/$steps] RUN step $i of the simulated build"
		if [ -e "$K/build-fail" ] && [ "$i" -ge $((steps / 2)) ]; then
			echo "ERROR: failed to solve: process \"/bin/sh -c pip install -e .\" did not complete successfully: exit code: 1"
			exit 1
		fi
		sleep 0.25
		i=$((i + 1))
	done
	echo "#$((steps + 4)) naming to docker.io/library/vllm-node:latest done"
	echo "$rev" >"$SPARK_SIM_ROOT/built-rev"
else
	rev=$(cat "$SPARK_SIM_ROOT/built-rev" 2>/dev/null || echo none)
fi
for h in $hosts; do
	echo "Loading image into ${user}@${h}..."
	target="$base/$h"
	# An interconnect (CX7) address reaches the same simulated host.
	[ -d "$target/knobs" ] || [ ! -e "$base/by-cx7/$h" ] || target=$(readlink -f "$base/by-cx7/$h")
	case $h in . | .. | *[!A-Za-z0-9.-]*) target=/nonexistent ;; esac
	if [ "$target" = "$SPARK_SIM_ROOT" ] || [ ! -d "$target/knobs" ]; then
		echo "ssh: connect to host $h port 22: No route to host"
		echo "Copy to $h failed."
		exit 1
	fi
	echo "$rev" >"$target/built-rev"
	echo "$h" >>"$SPARK_SIM_ROOT/copied-to"
	echo "Copy to $h completed in 00:00:00"
done
echo "Build complete."
