#!/usr/bin/env bash
# Where the axon's socket-engine thread loses its core inside the 1,024-caller level (issue 11: "shed calls answered in
# < 1 ms"; session 20, h1-shedturn). Runs benchmarks/shed-probe.sh (server core 0, generator core 1, the server's
# ShedProbe on) and, once the level's clock has started (the server busy on its core), records 1 s of the scheduler's
# switches on core 0 (`perf record -k CLOCK_MONOTONIC -e sched:sched_switch,sched:sched_wakeup -C 0`, needs perf and
# root or perf_event_paranoid <= 0) and the server's thread list, then prints benchmarks/python/sched_offcore.py's
# listing: off-core stretches of the engine's thread by what ran instead, and how much of the long read-loop turns
# (the probe's) it was off its core.
# Usage: OUT=/tmp/dir [MODES=on] [BTCLI=...] [BENCH=...] [PRESIGN_RATE=60000] [SERVER_ARGS=...] [SERVER_ENV=...] benchmarks/shed-sched.sh
# (run it under flock /work/wt/bench.lock like any benchmark; one mode per run: the perf second is taken once)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?OUT=/a/folder}
MODE=${MODES:-on}
mkdir -p "$OUT"
command -v perf >/dev/null || { echo "shed-sched.sh: perf not found" >&2; exit 2; }
(
  spid=""
  for _ in $(seq 1 1800); do
    for p in $(pgrep -f "axon serve --model echo" || true); do
      grep -qa "BITTENSOR_SHED_PROBE=$OUT/" "/proc/$p/environ" 2>/dev/null && spid=$p
    done
    [[ -n "$spid" ]] && pgrep -f "concurrency 1024" >/dev/null && break
    sleep 0.1
  done
  [[ -n "$spid" ]] || { echo "shed-sched.sh: no server with the probe found" >&2; exit 1; }
  # The level's clock starts after the generator has presigned its calls: wait until the server is busy (>= 0.72 of a
  # core over 0.25 s at 100 ticks a second), then half a second more.
  prev=$(awk '{print $14+$15}' "/proc/$spid/stat")
  for _ in $(seq 1 300); do
    sleep 0.25
    now=$(awk '{print $14+$15}' "/proc/$spid/stat" 2>/dev/null) || exit 1
    (( now - prev >= 18 )) && break
    prev=$now
  done
  sleep 0.5
  for t in /proc/"$spid"/task/*; do echo "$(basename "$t") $(cat "$t/comm")"; done > "$OUT/tids.txt"
  perf record -q -k CLOCK_MONOTONIC -e sched:sched_switch,sched:sched_wakeup -C 0 -o "$OUT/perf.data" -- sleep 1 >/dev/null 2>&1
  echo "perf at $(date -u +%H:%M:%S.%N), server $spid, load $(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT/perf-when.txt"
) &
watcher=$!
MODES=$MODE OUT=$OUT benchmarks/shed-probe.sh
wait "$watcher" || true
[[ -f "$OUT/perf.data" ]] || { echo "shed-sched.sh: no perf record (the level was not found busy)" >&2; exit 1; }
perf script -i "$OUT/perf.data" > "$OUT/perf.txt" 2>/dev/null
cat "$OUT/perf-when.txt"
python3 benchmarks/python/sched_offcore.py "$OUT/perf.txt" "$OUT/tids.txt" 0.3 "$OUT/server-$MODE.txt"
