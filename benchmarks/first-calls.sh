#!/usr/bin/env bash
# A fresh axon's first calls (session 18, h3-warm): the server pinned to one CPU (core 0), the `first-calls` harness on
# core 1 making 100 signed Forwards one after the other over one connection, as a validator's first round to a freshly
# announced axon does. Prints how long the server took from its start to its "serving on" line and the CPU it spent by
# then, then the harness's table: after call 1, 2, 10, 100 that call's latency and the server's CPU since call 1
# (/proc/PID/task/*/schedstat; each window includes the server's idle cost, printed first).
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`): benchmarks/first-calls.sh
#   MODE=axon (default: `btcli axon serve --model echo`, verification on) or MODE=cluster (a front on core 0 and a worker
#   `btcli axon worker --model echo` on core 1; the server CPU column is the front's), BTCLI / BENCH (dll paths),
#   SERVER_ARGS (extra serve options, e.g. "--axon.warm_up false"), SERVER_ENV (extra environment for the server only,
#   e.g. "DOTNET_TieredPGO=0"), SETTLE (seconds after the serving line / the worker's registration, default 3).
# Figures live in benchmarks/results/axon.md ("Session 18, h3-warm"), never in tests; note the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
MODE=${MODE:-axon}
SERVER_ENV=${SERVER_ENV:-}
for f in "$BTCLI" "$BENCH"; do [[ -f "$f" ]] || { echo "first-calls.sh: $f not found; build first" >&2; exit 2; }; done
W=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
wait_for() { # file pattern pid what
  for _ in $(seq 1 2400); do
    if grep -qE "$2" "$1"; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "first-calls.sh: $4 exited:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.05
  done
  echo "first-calls.sh: $4 did not print /$2/ within 120 s" >&2; cat "$1" >&2; exit 1
}
cpu() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END {printf "%d", s/1000000}'; }
front_args=()
[[ "$MODE" == cluster ]] && front_args=(--cluster.role front --cluster.port 0)
: > "$W/server.log"; : > "$W/worker.log"
t0=$(date +%s%N)
# shellcheck disable=SC2086
env HOME="$W" $SERVER_ENV taskset -c 0 dotnet "$BTCLI" axon serve --model echo --uri //Alice --axon.ip 127.0.0.1 --axon.port 0 \
  --axon.state_path "$W/state" "${front_args[@]}" ${SERVER_ARGS:-} > "$W/server.log" 2>&1 &
server=$!; pids+=("$server")
wait_for "$W/server.log" "serving on 127" "$server" "the server"
t1=$(date +%s%N)
echo "# $MODE ${SERVER_ENV:-} ${SERVER_ARGS:-}: serving line $(( (t1 - t0) / 1000000 )) ms after start, server CPU by then $(cpu "$server") ms"
port=$(grep -o "serving on 127.0.0.1:[0-9]*" "$W/server.log" | tail -1 | cut -d: -f2)
if [[ "$MODE" == cluster ]]; then
  cport=$(grep -o "cluster front node akka.tcp://bittensor@127.0.0.1:[0-9]*" "$W/server.log" | head -1 | sed 's/.*://')
  HOME=$W taskset -c 1 dotnet "$BTCLI" axon worker --model echo --cluster.seed_nodes "127.0.0.1:$cport" > "$W/worker.log" 2>&1 &
  worker=$!; pids+=("$worker")
  wait_for "$W/worker.log" "worker registered with the front" "$worker" "the worker"
fi
sleep "${SETTLE:-3}"
taskset -c 1 dotnet "$BENCH" first-calls --target "127.0.0.1:$port" --watch_pid "$server" --calls 100
