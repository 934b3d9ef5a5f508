#!/usr/bin/env bash
# Where an overloaded signed axon's memory goes, and whether it is bounded (issue 11, session 11): the real
# `btcli axon serve --model echo` (verification on, nonce store in a temp folder) pinned to core 0, `axon-load-raw`
# pinned to core 1, signed levels of growing caller counts (each caller its own hotkey //bench/i), one after the other
# on the same server. Before the first level and after each one: the server's RSS, threads, the GC's view of its heap
# (`dotnet-gcdump report`: bytes and counts per type, the 25 largest) and /proc/<pid>/smaps_rollup (anonymous memory).
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`; dotnet-gcdump installed as a
# dotnet tool): LEVELS=16,1024,1024,4096 SECONDS_PER_LEVEL=6 OUT=/tmp/mem benchmarks/overload-memory.sh
# Environment: LEVELS (comma list of caller counts), SECONDS_PER_LEVEL, PRESIGN_RATE (signed calls presigned per second
# of a level, default 40000), SERVER_ARGS (extra `axon serve` options), BTCLI / BENCH (dll paths), OUT (a path prefix:
# OUT.<n>.gcdump / .txt per step, OUT.summary). Calls per connection are capped by the axon's streams per connection,
# so the generator opens one connection per 250 callers. Figures live in benchmarks/results/axon.md, never in tests.
set -euo pipefail
cd "$(dirname "$0")/.."
LEVELS=${LEVELS:-16,1024,1024,4096}
SECONDS_PER_LEVEL=${SECONDS_PER_LEVEL:-6}
PRESIGN_RATE=${PRESIGN_RATE:-40000}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
GCDUMP=${GCDUMP:-$(command -v dotnet-gcdump || echo "$HOME/.dotnet/tools/dotnet-gcdump")}
OUT=${OUT:-$(mktemp -d)/mem}
for f in "$BTCLI" "$BENCH" "$GCDUMP"; do
  [[ -e "$f" ]] || { echo "overload-memory.sh: $f not found (build first; dotnet tool install -g dotnet-gcdump)" >&2; exit 2; }
done
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2086
taskset -c 0 dotnet "$BTCLI" axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.state_path "$work/state" \
  ${SERVER_ARGS:-} > "$work/out" 2> "$work/err" &
server_pid=$!
port=""
for _ in $(seq 1 600); do
  port=$(grep -aoE 'serving on [^ ]+:[0-9]+' "$work/err" | grep -oE '[0-9]+$' || true)
  [[ -n "$port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "overload-memory.sh: the axon exited:" >&2; cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "overload-memory.sh: no port within 60 s" >&2; exit 1; }

step=0
snapshot() {
  local label=$1 f="$OUT.$step" rss0
  rss0=$(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$server_pid/status")
  "$GCDUMP" collect -p "$server_pid" -o "$f.gcdump" > /dev/null 2>&1 || echo "gcdump failed" > "$f.txt"
  {
    echo "## $label"
    grep -E '^(VmRSS|RssAnon|RssFile|Threads):' "/proc/$server_pid/status"
    grep -E '^(Rss|Anonymous):' "/proc/$server_pid/smaps_rollup" | sed 's/^/smaps /'
    "$GCDUMP" report "$f.gcdump" 2>/dev/null | head -32
  } >> "$f.txt"
  local rss threads heap
  rss=$(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$server_pid/status")
  threads=$(awk '/^Threads:/ { print $2 }' "/proc/$server_pid/status")
  heap=$(awk '/Total Size|total/ && /[0-9]/ { print; exit }' "$f.txt" || true)
  echo "| $step | $label | $rss0 → $rss | $threads | ${heap:-see $f.txt} |" >> "$OUT.summary"
  step=$((step + 1))
}

echo "# overload-memory: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), levels $LEVELS x ${SECONDS_PER_LEVEL} s" > "$OUT.summary"
echo "| step | after | RSS MB (before → after the gcdump's full GC) | threads | GC heap (gcdump) |" >> "$OUT.summary"
echo "|---:|---|---:|---:|---|" >> "$OUT.summary"
snapshot "start"
IFS=',' read -ra levels <<< "$LEVELS"
for n in "${levels[@]}"; do
  channels=$(( (n + 249) / 250 )); (( channels < 4 )) && channels=4
  taskset -c 1 dotnet "$BENCH" axon-load-raw --target "127.0.0.1:$port" --concurrency "$n" --channels "$channels" --seconds "$SECONDS_PER_LEVEL" \
    --shape 1,16 --network_dim 1024 --presign 60000 --presign_rate "$PRESIGN_RATE" --watch_pid "$server_pid" > "$OUT.level$step.out" 2>&1 || true
  grep -E '^\| [0-9]+ \||^# (server over|not admitted|all calls|WARNING|presigned)' "$OUT.level$step.out" | sed "s/^/    /" >> "$OUT.summary"
  snapshot "$n callers"
done
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT.summary"
cat "$OUT.summary"
