#!/usr/bin/env bash
# The first calls' cost in a fresh cluster (session 17, h3-flakes): a front (`btcli axon serve --cluster.role front`,
# core 0) and one worker hosting the TorchSharp server model (`btcli axon worker --model server`, core 1; the demo's
# small model, MODEL_CONF), then four signed `btcli query` calls through the front, one process each: forward,
# backward, forward, backward. For each call it prints the CPU each serving process spent over the call's window
# (sum of /proc/PID/task/*/schedstat run time; a window is the query process's life, ~1-2 s, so it includes the
# processes' idle cost, printed first over 2 s) and the query's code and latency. The first pair pays first use
# (JIT, TorchSharp kernels, the front's first verified call); the second pair is warm.
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli`): benchmarks/first-call.sh
#   BTCLI=/path/btcli.dll (default the Release build), SETTLE (seconds after the worker registered, default 5),
#   MODEL_CONF (a HOCON file for the worker's bittensor.model; default the demo's server model).
# A/B: copy the build's output folder twice and swap one assembly, then run with BTCLI pointing at each in turn.
# Figures live in benchmarks/results/cluster.md, never in tests; note the load average before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
[[ -f "$BTCLI" ]] || { echo "first-call.sh: $BTCLI not found; build first: dotnet build -c Release src/Bittensor.Cli" >&2; exit 2; }
B=(dotnet "$BTCLI")
W=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
conf=${MODEL_CONF:-$W/model.conf}
[[ -n "${MODEL_CONF:-}" ]] || echo 'bittensor.model { d_model = 64, layers = 1, heads = 2, feed_forward = 128, max_sequence = 64, dropout = 0, threads = 1, max_delay = 2ms, checkpoint.every_steps = 0 }' > "$conf"
wait_for() { # file pattern pid what
  for _ in $(seq 1 1200); do
    if grep -qE "$2" "$1"; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "first-call.sh: $4 exited:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.1
  done
  echo "first-call.sh: $4 did not print /$2/ within 120 s" >&2; cat "$1" >&2; exit 1
}
HOME=$W taskset -c 0 "${B[@]}" axon serve --cluster.role front --cluster.port 0 --axon.port 0 --axon.ip 127.0.0.1 --uri //Alice \
  --axon.state_path "$W/state" > "$W/front.log" 2>&1 &
front=$!; pids+=("$front")
wait_for "$W/front.log" "serving on 127" "$front" "the front"
axon=$(grep -o "serving on 127.0.0.1:[0-9]*" "$W/front.log" | tail -1 | cut -d' ' -f3)
port=$(grep -o "cluster front node akka.tcp://bittensor@127.0.0.1:[0-9]*" "$W/front.log" | head -1 | sed 's/.*://')
HOME=$W taskset -c 1 "${B[@]}" axon worker --model server --cluster.seed_nodes "127.0.0.1:$port" --config "$conf" > "$W/worker.log" 2>&1 &
worker=$!; pids+=("$worker")
wait_for "$W/worker.log" "worker registered with the front" "$worker" "the worker"
sleep "${SETTLE:-5}"
cpu() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s+=$1} END {printf "%d", s/1000000}'; }
w0=$(cpu "$worker"); f0=$(cpu "$front"); sleep 2
echo "idle 2 s: worker $(( $(cpu "$worker") - w0 )) ms, front $(( $(cpu "$front") - f0 )) ms"
w0=$(cpu "$worker"); f0=$(cpu "$front")
for what in forward backward forward backward; do
  flag=(); [[ $what == backward ]] && flag=(--backward)
  HOME=$W taskset -c 0 "${B[@]}" query --endpoint "$axon" --uri //Bob --text "the quick brown fox jumps over the lazy dog" "${flag[@]}" --json > "$W/q.json" 2>&1 || true
  w1=$(cpu "$worker"); f1=$(cpu "$front")
  echo "$what: worker $((w1 - w0)) ms, front $((f1 - f0)) ms; $(tr -d '\n ' < "$W/q.json" | grep -o '"code":"[A-Za-z]*"\|"latency_ms":[0-9.]*' | tr '\n' ' ')"
  w0=$w1; f0=$f1
done
