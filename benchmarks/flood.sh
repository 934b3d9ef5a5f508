#!/usr/bin/env bash
# Hostile-caller flood (issue 13 A): the real `btcli axon serve --model echo` (signature verification on) pinned to one
# core; the project's `axon-flood` generator pinned to the other runs one legitimate caller (live-signed, one call at
# a time, [1,16] tokens -> [1,16,1024] floats) alone, then next to a flood of unsigned calls, then next to a flood of
# well-formed calls with a bad signature (one sr25519 verify each). For each phase: the legitimate caller's p50/p99,
# the flood's calls and codes, and the server's CPU per call read from /proc/<pid>/stat (utime + stime). "CPU per
# flood call" subtracts the legitimate calls at the CPU per call of the unloaded phase.
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`):
#   benchmarks/flood.sh
#   SECONDS_PER_PHASE=10 FLOODERS=64 KINDS="none unsigned badsig" benchmarks/flood.sh
# Environment: SECONDS_PER_PHASE (default 10), FLOODERS (default 64), KINDS, WARMUP (seconds, default 4),
# SERVER_CORE/LOAD_CORE, BTCLI/BENCH (built dlls), SERVER_ARGS (extra `axon serve` options).
# Timings live here and in benchmarks/results/axon.md, never in tests. The machine may be shared: the script prints
# the load average before and after; say it next to any figure you quote.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_PHASE=${SECONDS_PER_PHASE:-10}
FLOODERS=${FLOODERS:-64}
KINDS=${KINDS:-none unsigned badsig}
WARMUP=${WARMUP:-4}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
SERVER_ARGS=${SERVER_ARGS:-}

for f in "$BTCLI" "$BENCH"; do
  [[ -f "$f" ]] || { echo "flood.sh: $f not found; build first: dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks" >&2; exit 2; }
done
command -v taskset >/dev/null || { echo "flood.sh: taskset (util-linux) is required" >&2; exit 2; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_mb() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

echo "# flood: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# server: taskset -c $SERVER_CORE dotnet $BTCLI axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.state_path TMP $SERVER_ARGS"
echo "# load:   taskset -c $LOAD_CORE dotnet $BENCH axon-flood --target 127.0.0.1:PORT --kind K --seconds $SECONDS_PER_PHASE --flooders $FLOODERS"
echo

# shellcheck disable=SC2086
taskset -c "$SERVER_CORE" dotnet "$BTCLI" axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 \
  --axon.state_path "$work/state" $SERVER_ARGS >"$work/out" 2>"$work/err" &
server_pid=$!
port=""
for _ in $(seq 1 600); do
  port=$(grep -oE 'serving on [^ ]+:[0-9]+' "$work/err" | grep -oE '[0-9]+$' || true)
  [[ -n "$port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "flood.sh: the axon exited:" >&2; cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "flood.sh: the axon did not report its port within 60 s" >&2; cat "$work/err" >&2; exit 1; }

if (( WARMUP > 0 )); then
  taskset -c "$LOAD_CORE" dotnet "$BENCH" axon-flood --target "127.0.0.1:$port" --kind badsig --seconds "$WARMUP" --flooders 16 >/dev/null || true
fi

echo "| flood | legit calls | legit p50 ms | legit p99 ms | legit errors | flood calls | flood calls/s | flood codes | server CPU µs/call (all) | server CPU µs/flood call | server cores busy | RSS MB |"
echo "|---|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|"
legit_us=""
for kind in $KINDS; do
  cpu0=$(cpu_ticks "$server_pid"); t0=$(date +%s%N)
  row=$(taskset -c "$LOAD_CORE" dotnet "$BENCH" axon-flood --target "127.0.0.1:$port" --kind "$kind" --seconds "$SECONDS_PER_PHASE" \
    --flooders "$FLOODERS" | grep -E '^\| ' || true)
  cpu1=$(cpu_ticks "$server_pid"); t1=$(date +%s%N)
  IFS='|' read -r _ k legit p50 p99 lerr flood frate fcodes total _ <<< "$row"
  legit=$(echo "$legit" | tr -dc '0-9'); flood=$(echo "$flood" | tr -dc '0-9'); total=$(echo "$total" | tr -dc '0-9')
  d=$((cpu1 - cpu0))
  all_us=$(awk -v d=$d -v t="$ticks" -v c="${total:-0}" 'BEGIN { if (c > 0) printf "%.1f", d / t * 1e6 / c; else print "n/a" }')
  if [[ "$kind" == "none" ]]; then legit_us=$all_us; fi
  flood_us=$(awk -v d=$d -v t="$ticks" -v f="${flood:-0}" -v l="${legit:-0}" -v lu="${legit_us:-0}" \
    'BEGIN { if (f > 0) printf "%.1f", (d / t * 1e6 - l * lu) / f; else print "-" }')
  busy=$(awk -v d=$d -v t="$ticks" -v w=$((t1 - t0)) 'BEGIN { printf "%.2f", d / t / (w / 1e9) }')
  echo "| $kind | $legit |$p50|$p99|$lerr| $flood |$frate|$fcodes| $all_us | $flood_us | $busy | $(rss_mb "$server_pid") |"
done
echo
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
