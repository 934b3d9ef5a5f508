#!/usr/bin/env bash
# Cluster scaling (issue 10): throughput of a clustered miner with 1, 2 and 4 workers, each serving a model whose
# every call costs a fixed time (`--model.delay_ms`: the model waits without using a core, as a GPU-bound one
# would), against one direct axon serving the same model. All processes on this machine, loopback, the project's
# `axon-load` generator with unsigned requests (benchmark anchor mode: verification off on the front and on the
# direct axon, so signature checks do not hide the routing cost). Prints one markdown row per configuration:
# throughput, latency, errors, and CPU per answered call from /proc of every process: the front (or the direct
# axon) — as measured, its idle cost (CPU per second with no load, over IDLE seconds between the warm-up and the
# measured load: cluster heartbeats, gossip, timers) and net of that idle cost — the workers (sum) and the load generator.
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`):
#   nice -n 10 benchmarks/cluster.sh
#   WORKERS="1 2" DELAY_MS=20 SLOTS=4 CALLERS=64 SECONDS_PER_RUN=8 benchmarks/cluster.sh
#   RATE=100 WORKERS=1 benchmarks/cluster.sh      # same offered load for the direct axon and the front: CPU per call
#   RATE=100 WORKERS=1 DELAY_MS=0 CPU_MS=5 SERVER_CPUS=0 CLIENT_CPUS=1 benchmarks/cluster.sh   # a model that computes (5 ms CPU per call)
#   RATE=50 WORKERS=1 MODEL=server SERVER_CPUS=0 CLIENT_CPUS=1 benchmarks/cluster.sh             # the TorchSharp model of `run server`
#   DATA_PLANE="on off" RATE=200 WORKERS=1 DELAY_MS=0 SERVER_CPUS=0 CLIENT_CPUS=1 benchmarks/cluster.sh   # the hop: data plane vs Akka.Remote
# Environment: WORKERS (worker counts), DELAY_MS (cost of one call), SLOTS (calls a model runs at once:
# --axon.max_workers of each worker and of the direct axon), CALLERS (concurrent callers; enough to keep 4 workers'
# slots full), SECONDS_PER_RUN, WARMUP (seconds of unmeasured load per configuration), IDLE (seconds of the idle
# measurement, default 10), RATE (calls per second offered in all, paced by axon-load --rate; default: closed loop),
# MODEL (echo, default, or server: the TorchSharp ServerTextModel that `btcli run server` hosts, bittensor.model
# defaults; DELAY_MS and SLOTS do not apply), CPU_MS (echo only: each call also burns this much CPU time of its
# thread, --model.cpu_ms), SERVER_CPUS / CLIENT_CPUS (taskset CPU lists: the front or direct axon on SERVER_CPUS,
# the workers and the load generator on CLIENT_CPUS; default: no pinning), PERF (a folder: `perf record -F 999 -g` of
# the front or direct axon over the measured run into PERF/<label>.data — a profiling run, its CPU figures include
# perf's cost; set DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 to name JIT'd frames), DATA_PLANE (the
# front's --cluster.data_plane for each clustered row: "on" (default; calls on one TCP connection per worker), "off"
# (over Akka.Remote), or "on off" for both, side by side), DIRECT (1 = measure the direct axon, default; 0 = skip it),
# FRONT_CONFIG (a HOCON file given to the front as --config, e.g. to compare a setting; default none), BTCLI, BENCH.
# Ideal throughput of N workers = N × SLOTS × 1000 / DELAY_MS. Timings live here and in benchmarks/results/cluster.md,
# never in tests; the machine may be shared: the script prints the load average before and after.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-1 2 4}
DELAY_MS=${DELAY_MS:-50}
SLOTS=${SLOTS:-4}
CALLERS=${CALLERS:-64}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
WARMUP=${WARMUP:-3}
IDLE=${IDLE:-10}
RATE=${RATE:-0}
MODEL=${MODEL:-echo}
CPU_MS=${CPU_MS:-0}
SERVER_CPUS=${SERVER_CPUS:-}
CLIENT_CPUS=${CLIENT_CPUS:-}
PERF=${PERF:-}
DATA_PLANE=${DATA_PLANE:-on}
DIRECT=${DIRECT:-1}
FRONT_CONFIG=${FRONT_CONFIG:-}
front_config=()
if [[ -n "$FRONT_CONFIG" ]]; then
  [[ -f "$FRONT_CONFIG" ]] || { echo "cluster.sh: FRONT_CONFIG $FRONT_CONFIG not found" >&2; exit 2; }
  front_config=(--config "$FRONT_CONFIG")
fi
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}

for f in "$BTCLI" "$BENCH"; do
  [[ -f "$f" ]] || { echo "cluster.sh: $f not found; build first: dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks" >&2; exit 2; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wait_for() { # file pattern pid what
  for _ in $(seq 1 1200); do
    if grep -qE "$2" "$1"; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "cluster.sh: $4 exited:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.1
  done
  echo "cluster.sh: $4 did not print /$2/ within 120 s" >&2; cat "$1" >&2; exit 1
}
if [[ "$MODEL" == server ]]; then
  model=(--model server)
  model_line="server (TorchSharp ServerTextModel, bittensor.model defaults)"
else
  model=(--model echo --model.delay_ms "$DELAY_MS" --model.cpu_ms "$CPU_MS" --axon.max_workers "$SLOTS")
  model_line="echo, ${DELAY_MS} ms wait + ${CPU_MS} ms CPU per call, ${SLOTS} calls at once per model"
fi
on_server=(); on_client=()
[[ -n "$SERVER_CPUS" ]] && on_server=(taskset -c "$SERVER_CPUS")
[[ -n "$CLIENT_CPUS" ]] && on_client=(taskset -c "$CLIENT_CPUS")

echo "# cluster: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg)"
rate_args=()
(( RATE > 0 )) && rate_args=(--rate "$RATE")
echo "# model: $model_line; load: axon-load --unsigned --shape 1,16 --network_dim 1024 --concurrency $CALLERS --seconds $SECONDS_PER_RUN ${rate_args[*]}"
echo "# pinning: front/direct axon on ${SERVER_CPUS:-any cpu}, workers and generator on ${CLIENT_CPUS:-any cpu}"
[[ -n "$FRONT_CONFIG" ]] && echo "# front --config $FRONT_CONFIG: $(grep -v '^ *#' "$FRONT_CONFIG" | tr '\n' ' ')"
echo
echo "| configuration | ideal req/s | req/s | × ideal | p50 ms | p99 ms | errors | calls | front (or axon) CPU µs/call | its idle CPU ms/s | its CPU net of idle µs/call | workers CPU µs/call | generator CPU µs/call |"
echo "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"

sum_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }

measure() { # label port pid ideal [worker pids...]
  local label=$1 port=$2 pid=$3 ideal=$4; shift 4
  local i0 i1 s0 s1
  if (( WARMUP > 0 )); then
    "${on_client[@]}" dotnet "$BENCH" axon-load --target "127.0.0.1:$port" --concurrency "$CALLERS" --seconds "$WARMUP" --shape 1,16 --network_dim 1024 --unsigned "${rate_args[@]}" > /dev/null || true
  fi
  # Idle: the process's own background cost (no calls) over IDLE seconds, after the warm-up (so its start-up and the
  # JIT of the call path are not counted as idle cost).
  i0=$(cpu_ticks "$pid"); s0=$(date +%s.%N); sleep "$IDLE"; i1=$(cpu_ticks "$pid"); s1=$(date +%s.%N)
  local cpu0 cpu1 w0=0 w1=0 row rps p50 p99 ok errors answered calls t0 t1
  cpu0=$(cpu_ticks "$pid"); (( $# > 0 )) && w0=$(sum_ticks "$@")
  t0=$(date +%s.%N)
  local perf_pid=""
  if [[ -n "$PERF" ]]; then
    mkdir -p "$PERF"
    perf record -F 999 -g -p "$pid" -o "$PERF/${label// /_}.data" -- sleep $(( SECONDS_PER_RUN > 3 ? SECONDS_PER_RUN - 2 : 1 )) >/dev/null 2>&1 &
    perf_pid=$!
  fi
  row=$(/usr/bin/time -f '%U %S' -o "$work/gen.time" "${on_client[@]}" dotnet "$BENCH" axon-load --target "127.0.0.1:$port" --concurrency "$CALLERS" --seconds "$SECONDS_PER_RUN" \
    --shape 1,16 --network_dim 1024 --unsigned "${rate_args[@]}" | grep -E '^\| [0-9]+ \|' || true)
  t1=$(date +%s.%N)
  [[ -n "$perf_pid" ]] && wait "$perf_pid" 2>/dev/null || true
  cpu1=$(cpu_ticks "$pid"); (( $# > 0 )) && w1=$(sum_ticks "$@")
  IFS='|' read -r _ _ rps p50 p99 ok errors answered _ <<< "$row"
  calls=$(echo "$answered" | tr -dc '0-9'); calls=${calls:-0}
  local cpu_us idle_ms net_us workers_us gen_us ratio
  cpu_us=$(awk -v d=$((cpu1 - cpu0)) -v t="$ticks" -v c="$calls" 'BEGIN { if (c > 0) printf "%.0f", d / t * 1e6 / c; else print "n/a" }')
  idle_ms=$(awk -v d=$((i1 - i0)) -v t="$ticks" -v a="$s0" -v b="$s1" 'BEGIN { printf "%.1f", d / t * 1e3 / (b - a) }')
  net_us=$(awk -v d=$((cpu1 - cpu0)) -v t="$ticks" -v c="$calls" -v idle="$idle_ms" -v a="$t0" -v b="$t1" \
    'BEGIN { if (c > 0) printf "%.0f", (d / t - idle / 1e3 * (b - a)) * 1e6 / c; else print "n/a" }')
  workers_us=$(awk -v d=$((w1 - w0)) -v t="$ticks" -v c="$calls" -v n=$# 'BEGIN { if (n == 0) print "—"; else if (c > 0) printf "%.0f", d / t * 1e6 / c; else print "n/a" }')
  gen_us=$(awk -v c="$calls" '{ if (c > 0) printf "%.0f", ($1 + $2) * 1e6 / c; else print "n/a" }' "$work/gen.time")
  ratio=$(awk -v r="$(echo "$rps" | tr -dc '0-9.')" -v i="$ideal" 'BEGIN { if (i > 0) printf "%.2f", r / i; else print "—" }')
  echo "| $label | $ideal |${rps}| $ratio |${p50}|${p99}|${errors}| $calls | $cpu_us | $idle_ms | $net_us | $workers_us | $gen_us |"
  p50=$(echo "$p50" | tr -dc '0-9.'); p99=$(echo "$p99" | tr -dc '0-9.')
  if (( $# == 0 )); then
    direct_row=("$p50" "$p99" "$cpu_us" "$net_us")
  elif (( ${#direct_row[@]} == 4 )); then
    # The front against the direct axon of this sitting: the latency it adds per call (front minus direct) and its
    # CPU per call as a share of the direct axon's, gross and net of each one's idle cost.
    summary+=("$(awk -v l="$label" -v a="$p50" -v b="$p99" -v da="${direct_row[0]}" -v db="${direct_row[1]}" \
      -v c="$cpu_us" -v n="$net_us" -v dc="${direct_row[2]}" -v dn="${direct_row[3]}" 'BEGIN {
        rel = "n/a"; if (da > 0) rel = sprintf("%+.0f %%", (a - da) * 100 / da)
        gross = "n/a"; if (dc + 0 > 0 && c + 0 > 0) gross = sprintf("%.1f %%", c * 100 / dc)
        net = "n/a"; if (dn + 0 > 0 && n != "n/a") net = sprintf("%.1f %%", n * 100 / dn)
        printf "%s: adds p50 %+.2f ms (%s), p99 %+.2f ms over the direct axon; its CPU per call is %s of the direct axon'"'"'s gross, %s net of idle\n", l, a - da, rel, b - db, gross, net }')")
  fi
}
direct_row=()
summary=()

ideal_of() { local capacity=$1; if (( RATE > 0 && RATE < capacity )); then echo "$RATE"; else echo "$capacity"; fi; }

# Direct axon: the model in the axon's own process.
"${on_server[@]}" dotnet "$BTCLI" axon serve "${model[@]}" --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.state_path "$work/direct" \
  --axon.disable_signature_verification >"$work/direct.out" 2>"$work/direct.err" &
direct=$!; pids+=("$direct")
wait_for "$work/direct.err" 'serving on [^ ]+:[0-9]+ ' "$direct" "the direct axon"
port=$(grep -oE 'serving on [^ ]+:[0-9]+ ' "$work/direct.err" | grep -oE '[0-9]+ $' | tr -d ' ')
capacity_of() { if [[ "$MODEL" == server ]] || (( DELAY_MS == 0 )); then echo "${RATE:-0}"; else echo $(( $1 * SLOTS * 1000 / DELAY_MS )); fi; }
if (( DIRECT )); then
measure "direct axon" "$port" "$direct" "$(ideal_of "$(capacity_of 1)")"
fi
kill -TERM "$direct"; wait "$direct" 2>/dev/null || true

for n in $WORKERS; do
for dp in $DATA_PLANE; do
  "${on_server[@]}" dotnet "$BTCLI" axon serve --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.state_path "$work/front-$n-$dp" --axon.disable_signature_verification \
    --cluster.role front --cluster.port 0 --cluster.data_plane "$dp" "${front_config[@]}" >"$work/front-$n.out" 2>"$work/front-$n.err" &
  front=$!; pids+=("$front")
  wait_for "$work/front-$n.err" 'cluster front at akka' "$front" "the front"
  port=$(grep -oE 'serving on [^ ]+:[0-9]+ ' "$work/front-$n.err" | grep -oE '[0-9]+ $' | tr -d ' ')
  seed=$(grep -oE 'cluster front at akka\.tcp://[^ ]+' "$work/front-$n.err" | sed 's/cluster front at //')
  workers=()
  for i in $(seq 1 "$n"); do
    "${on_client[@]}" dotnet "$BTCLI" axon worker "${model[@]}" --cluster.seed_nodes "$seed" --cluster.port 0 >"$work/w-$n-$i.out" 2>"$work/w-$n-$i.err" &
    workers+=($!); pids+=($!)
  done
  wait_for "$work/front-$n.err" "; $n workers" "$front" "the front (waiting for $n workers)"
  label="front + $n worker(s)"
  [[ "$DATA_PLANE" != on ]] && label="$label, data plane $dp"
  measure "$label" "$port" "$front" "$(ideal_of "$(capacity_of "$n")")" "${workers[@]}"
  kill -TERM "${workers[@]}" 2>/dev/null || true
  for w in "${workers[@]}"; do wait "$w" 2>/dev/null || true; done
  kill -TERM "$front"; wait "$front" 2>/dev/null || true
done
done
echo
for line in "${summary[@]}"; do echo "# $line"; done
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
