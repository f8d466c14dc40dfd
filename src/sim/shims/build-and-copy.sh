#!/bin/sh
# spark-control simulator: a fake spark-vllm-docker `build-and-copy.sh`.
# Prints build-like lines for a few seconds ($SPARK_SIM_ROOT/knobs/build-seconds, default
# 3), records the commit it built in $SPARK_SIM_ROOT/built-rev, and fails (exit 1) when
# $SPARK_SIM_ROOT/knobs/build-fail exists. Never touches anything outside $SPARK_SIM_ROOT.
set -eu
: "${SPARK_SIM_ROOT:?SPARK_SIM_ROOT is not set: not a simulated Spark}"
cd "$(dirname "$0")"
mkdir -p "$SPARK_SIM_ROOT/run"
reg="$SPARK_SIM_ROOT/run/build-$$.pid"
echo $$ >"$reg"
trap 'rm -f "$reg"' EXIT
secs=$(cat "$SPARK_SIM_ROOT/knobs/build-seconds" 2>/dev/null || echo 3)
rev=$(git rev-parse HEAD 2>/dev/null || echo unknown)
copy=false
for a in "$@"; do case $a in -c | --copy | --copy-to) copy=true ;; esac; done
echo "Building image vllm-node from $(pwd) at ${rev}..."
steps=$((secs * 4))
i=1
while [ "$i" -le "$steps" ]; do
	echo "#$((i + 3)) [builder $i/$steps] RUN step $i of the simulated build"
	if [ -e "$SPARK_SIM_ROOT/knobs/build-fail" ] && [ "$i" -ge $((steps / 2)) ]; then
		echo "ERROR: failed to solve: process \"/bin/sh -c pip install -e .\" did not complete successfully: exit code: 1"
		exit 1
	fi
	sleep 0.25
	i=$((i + 1))
done
echo "#$((steps + 4)) naming to docker.io/library/vllm-node:latest done"
if [ "$copy" = true ]; then echo "Copying image vllm-node to the cluster nodes... done"; fi
echo "$rev" >"$SPARK_SIM_ROOT/built-rev"
echo "Build complete."
