#!/usr/bin/env bash
# Hostile-caller flood (issue 13 A): the real `btcli axon serve --model echo` (signature verification on) pinned to one
# core; the project's `axon-flood` generator pinned to the other runs one legitimate caller (live-signed, one call at
# a time, [1,16] tokens -> [1,16,1024] floats) alone, then next to a flood of unsigned calls, then next to a flood of
# well-formed calls with a bad signature (one sr25519 verify each). For each phase: the legitimate caller's p50/p99,
# the flood's calls and codes, and the server's CPU per call read from /proc/<pid>/stat (utime + stime). "CPU per
# flood call" subtracts the legitimate calls at the CPU per call of the unloaded phase.
#
# SPLIT=1 (the fair setup for "the legitimate caller's p99 under flood"): the legitimate caller runs in its own process
# at normal priority from 127.0.0.1, paced to LEGIT_RATE calls/s; the flood runs in another process at `nice -n 19`
# from 127.0.0.2 (both on LOAD_CORE), so the flood cannot take the legitimate caller's core from it, and the axon's
# per-address limits see the flood apart from it. The axon then runs with loopback not exempt from per-address limits
# (SERVER_ARGS default in this mode: --axon.limits.per_ip.exempt_loopback false; the defaults 500 calls/s, burst 1000).
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
SPLIT=${SPLIT:-0}
LEGIT_RATE=${LEGIT_RATE:-100}
if [[ "$SPLIT" == "1" ]]; then SERVER_ARGS=${SERVER_ARGS:---axon.limits.per_ip.exempt_loopback false}; else SERVER_ARGS=${SERVER_ARGS:-}; fi

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
if [[ "$SPLIT" == "1" ]]; then
  echo "# flood:  taskset -c $LOAD_CORE nice -n 19 dotnet $BENCH axon-flood --target 127.0.0.1:PORT --kind K --seconds $((SECONDS_PER_PHASE + 5)) --flooders $FLOODERS --source 127.0.0.2 --no_legit"
  echo "# legit:  taskset -c $LOAD_CORE dotnet $BENCH axon-flood --target 127.0.0.1:PORT --kind none --seconds $SECONDS_PER_PHASE --legit_source 127.0.0.1 --legit_rate $LEGIT_RATE   (3 s after the flood starts)"
else
  echo "# load:   taskset -c $LOAD_CORE dotnet $BENCH axon-flood --target 127.0.0.1:PORT --kind K --seconds $SECONDS_PER_PHASE --flooders $FLOODERS"
fi
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
  if [[ "$SPLIT" == "1" ]]; then
    # The flood starts first and ends last (its process needs ~2 s to start); the legitimate caller runs in between.
    fpid=""
    if [[ "$kind" != "none" ]]; then
      taskset -c "$LOAD_CORE" nice -n 19 dotnet "$BENCH" axon-flood --target "127.0.0.1:$port" --kind "$kind" --seconds $((SECONDS_PER_PHASE + 5)) \
        --flooders "$FLOODERS" --source 127.0.0.2 --no_legit >"$work/flood.out" 2>&1 &
      fpid=$!
      sleep 3
    fi
    lrow=$(taskset -c "$LOAD_CORE" dotnet "$BENCH" axon-flood --target "127.0.0.1:$port" --kind none --seconds "$SECONDS_PER_PHASE" \
      --legit_source 127.0.0.1 --legit_rate "$LEGIT_RATE" | grep -E '^\| ' || true)
    frow="| - | 0 | - | - | - | 0 | 0 | - | 0 |"
    if [[ -n "$fpid" ]]; then wait "$fpid" || true; frow=$(grep -E '^\| ' "$work/flood.out" || echo "$frow"); fi
    IFS='|' read -r _ _ legit p50 p99 lerr _ _ _ ltotal _ <<< "$lrow"
    IFS='|' read -r _ _ _ _ _ _ flood frate fcodes ftotal _ <<< "$frow"
    total=$(( $(echo "$ltotal" | tr -dc '0-9') + $(echo "$ftotal" | tr -dc '0-9') ))
  else
  row=$(taskset -c "$LOAD_CORE" dotnet "$BENCH" axon-flood --target "127.0.0.1:$port" --kind "$kind" --seconds "$SECONDS_PER_PHASE" \
    --flooders "$FLOODERS" | grep -E '^\| ' || true)
  IFS='|' read -r _ k legit p50 p99 lerr flood frate fcodes total _ <<< "$row"
  fi
  cpu1=$(cpu_ticks "$server_pid"); t1=$(date +%s%N)
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
