#!/usr/bin/env bash
# What a long read-loop turn does on the axon's core (issue 11: "shed calls answered in < 1 ms"; session 21,
# h1-longturn). Runs benchmarks/shed-probe.sh (server core 0, generator core 1, the server's ShedProbe on, its JIT'd
# code named for perf by DOTNET_PerfMapEnabled=1; DOTNET_EnableWriteXorExecute=0, else the code runs from a memfd double
# mapping that perf takes for a file and leaves unnamed) and, once the level's clock has started (the server busy on its core),
# samples the server's threads with their stacks for 1 s (`perf record -g -k CLOCK_MONOTONIC -F $FREQ -p <server>`, needs
# perf and root or perf_event_paranoid <= 0), then prints benchmarks/python/turn_profile.py's listing: the engine
# thread's samples split by the length of the read-loop turn they fell in (the probe's turn stamps, same clock), what
# the turns over 1 ms run against the ordinary ones.
# Usage: OUT=/tmp/dir [MODES=on] [FREQ=4999] [BTCLI=...] [BENCH=...] [PRESIGN_RATE=60000] [SERVER_ARGS=...] [SERVER_ENV=...] benchmarks/shed-perf.sh
# (run it under flock /work/wt/bench.lock like any benchmark; one mode per run: the perf second is taken once)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?OUT=/a/folder}
MODE=${MODES:-on}
FREQ=${FREQ:-4999}
mkdir -p "$OUT"
command -v perf >/dev/null || { echo "shed-perf.sh: perf not found" >&2; exit 2; }
(
  spid=""
  for _ in $(seq 1 1800); do
    for p in $(pgrep -f "axon serve --model echo" || true); do
      grep -qa "BITTENSOR_SHED_PROBE=$OUT/" "/proc/$p/environ" 2>/dev/null && spid=$p
    done
    [[ -n "$spid" ]] && pgrep -f "concurrency 1024" >/dev/null && break
    sleep 0.1
  done
  [[ -n "$spid" ]] || { echo "shed-perf.sh: no server with the probe found" >&2; exit 1; }
  # As shed-sched.sh: wait until the server is busy (>= 0.72 of a core over 0.25 s), then half a second more.
  prev=$(awk '{print $14+$15}' "/proc/$spid/stat")
  for _ in $(seq 1 300); do
    sleep 0.25
    now=$(awk '{print $14+$15}' "/proc/$spid/stat" 2>/dev/null) || exit 1
    (( now - prev >= 18 )) && break
    prev=$now
  done
  sleep 0.5
  for t in /proc/"$spid"/task/*; do echo "$(basename "$t") $(cat "$t/comm")"; done > "$OUT/tids.txt"
  perf record -q -g -k CLOCK_MONOTONIC -F "$FREQ" -p "$spid" -o "$OUT/perf.data" -- sleep 1 >/dev/null 2>&1
  # The perf map of the JIT'd code: copied while the server runs (it removes nothing, but its /tmp file is its own).
  cp "/tmp/perf-$spid.map" "$OUT/" 2>/dev/null || true
  echo "$spid" > "$OUT/server.pid"
  echo "perf at $(date -u +%H:%M:%S.%N), server $spid, load $(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT/perf-when.txt"
) &
watcher=$!
MODES=$MODE OUT=$OUT SERVER_ENV="DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 ${SERVER_ENV:-}" benchmarks/shed-probe.sh
wait "$watcher" || true
[[ -f "$OUT/perf.data" ]] || { echo "shed-perf.sh: no perf record (the level was not found busy)" >&2; exit 1; }
spid=$(cat "$OUT/server.pid")
[[ -f "/tmp/perf-$spid.map" ]] || cp "$OUT/perf-$spid.map" /tmp/ 2>/dev/null || true
perf script -F tid,time,ip,sym,dso -i "$OUT/perf.data" > "$OUT/perf.txt" 2>/dev/null
# The server is gone: its perf map (a copy is in $OUT) leaves /tmp.
rm -f "/tmp/perf-$spid.map"
cat "$OUT/perf-when.txt"
python3 benchmarks/python/turn_profile.py "$OUT/perf.txt" "$OUT/tids.txt" "$OUT/server-$MODE.txt"
