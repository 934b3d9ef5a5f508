#!/usr/bin/env bash
# What an overloaded signed axon allocates, where, and whether its RSS stays flat (issue 11, session 12): the real
# `btcli axon serve --model echo` (verification on, nonce store in a temp folder) pinned to core 0, `axon-load-raw`
# pinned to core 1, one signed level of LEVEL callers (each its own hotkey) for SECONDS_PER_LEVEL seconds. From the
# level's start (after presigning): the server's RSS every second, GC counts and the GC's heap sizes by generation,
# fragmentation and committed memory after its last collection (`dotnet-counters`, per second);
# TRACE=1 (default) attaches `dotnet-trace` for TRACE_SECONDS from TRACE_AT seconds into the level with the runtime's GC
# events at verbose level (AllocationTick: type, size and stack of the object crossing each ~100 KB allocated) and
# prints the allocating stacks of large objects (>= 85,000 B: the large-object heap) with `Bittensor.Benchmarks
# alloc-stacks`. The trace costs the server CPU: read throughput from a run with TRACE=0.
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`; dotnet-trace and
# dotnet-counters installed as dotnet tools):
#   flock /work/wt/bench.lock benchmarks/overload-alloc.sh
#   LEVEL=1024 SECONDS_PER_LEVEL=40 TRACE=0 PRIO=rt BTCLI=/path/to/other/btcli.dll benchmarks/overload-alloc.sh
# Environment: LEVEL, SECONDS_PER_LEVEL, PRESIGN_RATE (signed calls presigned per second of the level, default 30000),
# TRACE (1/0), TRACE_AT, TRACE_SECONDS, SERVER_ARGS, BTCLI / BENCH (dll paths), PRIO (rt: SCHED_RR as race.sh),
# OUT (a path prefix: OUT.rss, OUT.counters.csv, OUT.nettrace, OUT.level, OUT.stacks). Prints a summary: RSS at
# 10 s, 20 s, ... into the level, gen0/1/2 collections over the level, the generator's table and the stacks.
# Figures live in benchmarks/results/axon.md, never in tests.
set -euo pipefail
cd "$(dirname "$0")/.."
LEVEL=${LEVEL:-1024}
SECONDS_PER_LEVEL=${SECONDS_PER_LEVEL:-30}
PRESIGN_RATE=${PRESIGN_RATE:-30000}
TRACE=${TRACE:-1}
TRACE_AT=${TRACE_AT:-10}
TRACE_SECONDS=${TRACE_SECONDS:-8}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
TRACE_BIN=${TRACE_BIN:-$(command -v dotnet-trace || echo "$HOME/.dotnet/tools/dotnet-trace")}
COUNTERS_BIN=${COUNTERS_BIN:-$(command -v dotnet-counters || echo "$HOME/.dotnet/tools/dotnet-counters")}
OUT=${OUT:-$(mktemp -d)/alloc}
PRIO=${PRIO:-}
SERVER_PREFIX=(); LOAD_PREFIX=()
if [[ "$PRIO" == "rt" ]]; then
  chrt -r 1 true 2>/dev/null || { echo "overload-alloc.sh: PRIO=rt needs SCHED_RR (root or CAP_SYS_NICE)" >&2; exit 2; }
  SERVER_PREFIX=(chrt -r "${SERVER_RT:-20}"); LOAD_PREFIX=(chrt -r "${LOAD_RT:-10}")
elif [[ -n "$PRIO" ]]; then
  echo "overload-alloc.sh: PRIO must be empty or rt (got '$PRIO')" >&2; exit 2
fi
[[ "$LEVEL" =~ ^[0-9]+$ && "$SECONDS_PER_LEVEL" =~ ^[0-9]+$ && "$TRACE_AT" =~ ^[0-9]+$ && "$TRACE_SECONDS" =~ ^[0-9]+$ ]] \
  || { echo "overload-alloc.sh: LEVEL, SECONDS_PER_LEVEL, TRACE_AT and TRACE_SECONDS must be whole numbers" >&2; exit 2; }
for f in "$BTCLI" "$BENCH" "$COUNTERS_BIN"; do
  [[ -e "$f" ]] || { echo "overload-alloc.sh: $f not found (build first; dotnet tool install -g dotnet-counters)" >&2; exit 2; }
done
[[ "$TRACE" != "1" || -e "$TRACE_BIN" ]] || { echo "overload-alloc.sh: $TRACE_BIN not found (dotnet tool install -g dotnet-trace)" >&2; exit 2; }
# dotnet-counters and dotnet-trace take --duration as a TimeSpan, dd:hh:mm:ss with each field in its range: "00:00:00:90"
# does not parse (both tools then print their usage and exit 1), which is why sessions 13's 60 s and 90 s levels got no
# counters CSV while session 12's 40 s levels did.
duration() { printf '%02d:%02d:%02d:%02d' $(( $1 / 86400 )) $(( $1 % 86400 / 3600 )) $(( $1 % 3600 / 60 )) $(( $1 % 60 )); }
work=$(mktemp -d)
server_pid=""; load_pid=""; counters_pid=""; trace_pid=""
cleanup() {
  for p in "$trace_pid" "$counters_pid" "$load_pid"; do
    [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null || true
  done
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2086
"${SERVER_PREFIX[@]}" taskset -c 0 dotnet "$BTCLI" axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 \
  --axon.state_path "$work/state" ${SERVER_ARGS:-} > "$work/out" 2> "$work/err" &
server_pid=$!
port=""
for _ in $(seq 1 600); do
  port=$(grep -aoE 'serving on [^ ]+:[0-9]+' "$work/err" | grep -oE '[0-9]+$' || true)
  [[ -n "$port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "overload-alloc.sh: the axon exited:" >&2; cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "overload-alloc.sh: no port within 60 s" >&2; exit 1; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }
echo "# overload-alloc: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $LEVEL signed callers x ${SECONDS_PER_LEVEL} s, btcli $BTCLI, trace $TRACE" | tee "$OUT.summary"
echo "# server RSS before the level: $(( $(rss_kb) / 1024 )) MB" | tee -a "$OUT.summary"
channels=$(( (LEVEL + 249) / 250 )); (( channels < 4 )) && channels=4
"${LOAD_PREFIX[@]}" taskset -c 1 dotnet "$BENCH" axon-load-raw --target "127.0.0.1:$port" --concurrency "$LEVEL" --channels "$channels" \
  --seconds "$SECONDS_PER_LEVEL" --shape 1,16 --network_dim 1024 --presign 60000 --presign_rate "$PRESIGN_RATE" --watch_pid "$server_pid" \
  > "$OUT.level" 2>&1 &
load_pid=$!
# The level's clock starts once the generator has presigned and says so.
until grep -q '^# presigned' "$OUT.level" 2>/dev/null; do
  kill -0 "$load_pid" 2>/dev/null || { echo "overload-alloc.sh: the generator exited before its level:" >&2; cat "$OUT.level" >&2; exit 1; }
  sleep 0.2
done
taskset -c 1 "$COUNTERS_BIN" collect -p "$server_pid" --format csv -o "$OUT.counters.csv" --refresh-interval 1 \
  --duration "$(duration "$SECONDS_PER_LEVEL")" --counters 'System.Runtime[dotnet.gc.collections,dotnet.gc.heap.total_allocated,dotnet.gc.last_collection.memory.committed_size,dotnet.gc.last_collection.heap.size,dotnet.gc.last_collection.heap.fragmentation.size]' > "$work/counters.out" 2>&1 &
counters_pid=$!
: > "$OUT.rss"
for t in $(seq 1 "$SECONDS_PER_LEVEL"); do
  sleep 1
  kill -0 "$server_pid" 2>/dev/null || break
  echo "$t $(( $(rss_kb) / 1024 ))" >> "$OUT.rss"
  if [[ "$TRACE" == "1" && "$t" == "$TRACE_AT" ]]; then
    taskset -c 1 "$TRACE_BIN" collect -p "$server_pid" --providers 'Microsoft-Windows-DotNETRuntime:0x1:5' \
      --duration "$(duration "$TRACE_SECONDS")" -o "$OUT.nettrace" > "$work/trace.out" 2>&1 &
    trace_pid=$!
  fi
done
wait "$load_pid" || true; load_pid=""
wait "$counters_pid" 2>/dev/null || true; counters_pid=""
if [[ ! -s "$OUT.counters.csv" ]]; then
  # Say why instead of summing nothing (the tool's own words; an empty CSV means it never attached).
  echo "overload-alloc.sh: dotnet-counters wrote no CSV:" >&2; cat "$work/counters.out" >&2
  : > "$OUT.counters.csv"
fi
[[ -n "$trace_pid" ]] && { wait "$trace_pid" 2>/dev/null || true; trace_pid=""; }
{
  grep -E '^\| [0-9]+ \||^# (server over|not admitted|all calls|WARNING|presigned)' "$OUT.level" | sed 's/^/    /'
  echo "# server RSS MB at each 10 s of the level: $(awk '$1 % 10 == 0 { printf "%s s %s; ", $1, $2 }' "$OUT.rss")peak $(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$OUT.rss")"
  awk -F, '
    /dotnet.gc.collections/ { g = $0; sub(/.*gc.heap.generation=/, "", g); g = substr(g, 1, 4); n[g] += $NF }
    /dotnet.gc.heap.total_allocated/ { a += $NF }
    END { printf "# GCs over the level: gen0 %d, gen1 %d, gen2 %d; %.0f MB allocated\n", n["gen0"], n["gen1"], n["gen2"], a / 1e6 }' "$OUT.counters.csv"
  # The GC's view after its last collection, early in the level (its 10th reading) and at its end: what the RSS holds.
  awk -F, '
    /last_collection/ {
      name = $3; sub(/.*last_collection\./, "", name); sub(/\[.*/, "", name); sub(/ \(.*\)$/, "", name); g = $3; gen = ""
      if (g ~ /generation=/) { sub(/.*generation=/, "", g); gen = substr(g, 1, 4); sub(/[^a-z0-9].*/, "", gen) }
      key = name (gen == "" ? "" : "." gen); seen[key]++
      if (seen[key] == 10) early[key] = $NF
      last[key] = $NF; keys[key] = 1 }
    END { printf "# GC after its last collection, MB (10th reading -> end):"; for (k in keys) printf " %s %.1f -> %.1f;", k, early[k] / 1e6, last[k] / 1e6; print "" }' "$OUT.counters.csv"
  echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$OUT.summary"
if [[ "$TRACE" == "1" ]]; then
  if [[ -s "$OUT.nettrace" ]]; then
    taskset -c 1 dotnet "$BENCH" alloc-stacks "$OUT.nettrace" --frames 10 --top 8 | tee "$OUT.stacks"
  else
    echo "overload-alloc.sh: no trace was written:" >&2; cat "$work/trace.out" >&2
  fi
fi
