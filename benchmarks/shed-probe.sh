#!/usr/bin/env bash
# Where a shed answer's time goes (issue 11: "shed calls answered in < 1 ms" at 1,024 callers). Runs race.sh once per
# verification mode with the server's ShedProbe on (BITTENSOR_SHED_PROBE: src/Bittensor.Protocol/Transport/Lean/ShedProbe.cs,
# off in every other run) and the generator's --stamps, then joins the two on (the generator's port, stream id) and
# prints the p50 / p99 of each segment of a shed call on the machine's monotonic clock: the generator's append -> its
# send -> the server's read of the HEADERS -> the shed decision -> the server's send of the answer (start, return) ->
# the answer's arrival in the generator's socket (the kernel's SO_TIMESTAMPNS) -> the generator's parse; and, for the
# worst 1 %, whether a nonce-journal compaction, an fsynced batch or a GC pause fell inside, and where their connection's
# read loop was while they waited in its socket (in its own turn, or parked for its next one / in a receive).
# Usage: OUT=/tmp/dir [MODES="off on"] [LEVELS=1024] [SECONDS_PER_LEVEL=5] [LOAD_ARGS=...] [SERVER_ARGS=...] benchmarks/shed-probe.sh
# (SERVER_ARGS should hold --axon.limits.target_wait 2ms; run it under flock /work/wt/bench.lock like any benchmark.)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?OUT=/a/folder}
mkdir -p "$OUT"
for mode in ${MODES:-off on}; do
  rm -f "$OUT/server-$mode.txt" "$OUT/gen-$mode.txt"
  RAW=1 MODES=$mode LEVELS=${LEVELS:-1024} SECONDS_PER_LEVEL=${SECONDS_PER_LEVEL:-5} \
    SERVER_ENV="BITTENSOR_SHED_PROBE=$OUT/server-$mode.txt ${SERVER_ENV:-}" \
    LOAD_ARGS="--stamps $OUT/gen-$mode.txt ${LOAD_ARGS:-}" \
    SERVER_ARGS="--axon.state_path $(mktemp -d) ${SERVER_ARGS:-}" benchmarks/race.sh | tee "$OUT/race-$mode.txt"
  echo "### verification $mode"
  python3 benchmarks/python/shed_segments.py "$OUT/server-$mode.txt" "$OUT/gen-$mode.txt" | tee "$OUT/segments-$mode.txt"
done
