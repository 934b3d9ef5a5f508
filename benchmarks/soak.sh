#!/usr/bin/env bash
# Soak (issue 13 C): the real `btcli axon serve` with a model of fixed cost (--model.delay_ms, the model waits as a
# GPU-bound one would) so that its capacity is known: max_workers / delay calls per second. A short closed-loop run
# measures the capacity actually reached, with min(workers + queue, the axon's limits.calls_in_flight) callers: as
# many as the axon admits at once, so no call is shed and the model is always busy (with one caller more than
# calls_in_flight, that caller is shed at every moment and the closed loop re-sends at once: a shed loop of ~9,000
# sheds/s that costs the server CPU and measures nothing; session 10 saw 25,471-180,572 sheds in this step); then
# the project's `axon-load` offers FACTOR x that rate (paced, --rate) for SOAK_SECONDS. Every SAMPLE seconds: the server's RSS, threads and the .NET thread-pool queue length (from its
# /metrics). At the end: the load's codes (only NucleusFull = shed may appear besides Success), the server's log
# searched for warnings (Kestrel logs "heartbeat ... thread pool starvation" at Warning), and RSS after warm-up
# (first WARM seconds) as min / max / spread.
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`):
#   nice -n 10 benchmarks/soak.sh
#   SOAK_SECONDS=120 FACTOR=2 DELAY_MS=5 WORKERS=1 QUEUE=64 CALLERS=256 benchmarks/soak.sh
#   SERVER_ARGS="--axon.transport kestrel" benchmarks/soak.sh   (extra `axon serve` options; a
#   `--axon.limits.calls_in_flight N` there also bounds the capacity step's callers, 0 = no limit)
#   RATE=184 GCDUMPS="60 300 590" OUT=/tmp/soak benchmarks/soak.sh   (fixed offered rate; managed-heap snapshots by
#   type at those seconds, kept in OUT: compare them with `dotnet-gcdump report FILE`; each forces a full GC)
# Timings live here and in benchmarks/results/reliability.md, never in tests.
set -euo pipefail
cd "$(dirname "$0")/.."

SOAK_SECONDS=${SOAK_SECONDS:-600}
FACTOR=${FACTOR:-2}
DELAY_MS=${DELAY_MS:-5}
WORKERS=${WORKERS:-1}
QUEUE=${QUEUE:-64}
CALLERS=${CALLERS:-256}
SAMPLE=${SAMPLE:-15}
WARM=${WARM:-60}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
OUT=${OUT:-}
GCDUMPS=${GCDUMPS:-}
export PATH="$PATH:$HOME/.dotnet/tools"   # dotnet-gcdump (dotnet tool install --global dotnet-gcdump)

for f in "$BTCLI" "$BENCH"; do
  [[ -f "$f" ]] || { echo "soak.sh: $f not found; build first: dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks" >&2; exit 2; }
done

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -n "$OUT" ]]; then mkdir -p "$OUT" && cp "$work"/* "$OUT"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
# RSS by kind of mapping (/proc/PID/smaps): anonymous (the GC heap, malloc arenas, thread stacks), the runtime's
# double-mapped executable memory (/memfd:doublemapper: JIT'd code and stubs), and mapped files (the runtime, assemblies).
rss_parts() { awk '/^[0-9a-f]+-/ { name = $6 } /^Rss:/ { if (name == "" || name ~ /^\[(heap|stack)/) a += $2; else if (name ~ /doublemapper/) j += $2; else if (name !~ /^\[/) f += $2 }
  END { printf "%.1f %.1f %.1f", a / 1024, j / 1024, f / 1024 }' "/proc/$1/smaps"; }
metric_mb() { curl -s "http://127.0.0.1:$mport/metrics" | awk -v n="$1" '$1 ~ "^"n { s += $2 } END { printf "%.1f", s / 1048576 }'; }
metric() { curl -s "http://127.0.0.1:$mport/metrics" | awk -v n="$1" '$1 ~ "^"n { s += $2 } END { printf "%.0f", s }'; }

echo "# soak: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# server: dotnet $BTCLI axon serve --model echo --model.delay_ms $DELAY_MS --axon.max_workers $WORKERS --axon.queue_capacity $QUEUE --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --metrics.port 0 --axon.state_path TMP ${SERVER_ARGS:-}"

dotnet "$BTCLI" axon serve --model echo --model.delay_ms "$DELAY_MS" --axon.max_workers "$WORKERS" --axon.queue_capacity "$QUEUE" \
  --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --metrics.port 0 --axon.state_path "$work/state" ${SERVER_ARGS:-} >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port=""; mport=""
for _ in $(seq 1 600); do
  port=$(grep -oE 'serving on [^ ]+:[0-9]+' "$work/server.err" | grep -oE '[0-9]+$' || true)
  mport=$(grep -oE 'metrics on http://[^ ]+:[0-9]+' "$work/server.err" | grep -oE '[0-9]+$' || true)
  [[ -n "$port" && -n "$mport" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "soak.sh: the axon exited:" >&2; cat "$work/server.err" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" && -n "$mport" ]] || { echo "soak.sh: the axon did not report its ports within 60 s" >&2; cat "$work/server.err" >&2; exit 1; }

# Warm-up, not measured: a cold axon on a loaded box answered its first 65 concurrent calls after their deadline
# (JIT, first connections); 10 s with 8 callers first.
dotnet "$BENCH" axon-load --target "127.0.0.1:$port" --concurrency 8 --seconds 10 >/dev/null 2>&1 || true
# Capacity: closed loop with as many callers as the axon admits at once (workers + queue, and at most its
# limits.calls_in_flight: 64 unless SERVER_ARGS sets it), 20 s: no shedding, the model always busy.
calls_in_flight=$(grep -oE -- '--axon\.limits\.calls_in_flight[ =]+[0-9]+' <<< " ${SERVER_ARGS:-} " | grep -oE '[0-9]+$' | tail -1 || true)
calls_in_flight=${calls_in_flight:-64}
cap_callers=$((WORKERS + QUEUE))
if (( calls_in_flight > 0 && calls_in_flight < cap_callers )); then cap_callers=$calls_in_flight; fi
cap_row=$(dotnet "$BENCH" axon-load --target "127.0.0.1:$port" --concurrency "$cap_callers" --seconds 20 | grep -E '^\| [0-9]' || true)
capacity=$(echo "$cap_row" | awk -F'|' '{ gsub(/ /, "", $3); print $3 }')
[[ -n "$capacity" && "$capacity" != "0" ]] || { echo "soak.sh: capacity run failed: $cap_row" >&2; exit 1; }
rate=$(awk -v c="$capacity" -v f="$FACTOR" 'BEGIN { printf "%.0f", c * f }')
# RATE=N offers N calls/s whatever this run's capacity measure says (on a loaded box it swings 19-92/s between runs,
# and with it "2x capacity"); the measured capacity is still printed.
offered="$FACTOR x measured capacity"
if [[ -n "${RATE:-}" ]]; then rate=$RATE; offered="RATE=$RATE fixed, = $(awk -v r="$RATE" -v c="$capacity" 'BEGIN { printf "%.1f", r / c }') x this run's measured capacity"; fi
echo "# capacity (closed loop, $cap_callers callers = min(workers + queue $((WORKERS + QUEUE)), calls_in_flight $calls_in_flight), 20 s): $cap_row"
echo "#   theoretical: $WORKERS worker(s) / $DELAY_MS ms = $(awk -v w="$WORKERS" -v d="$DELAY_MS" 'BEGIN { printf "%.0f", w * 1000 / d }') calls/s; measured $capacity calls/s served"
echo "# load: dotnet $BENCH axon-load --target 127.0.0.1:PORT --concurrency $CALLERS --rate $rate --seconds $SOAK_SECONDS   ($offered)"

dotnet "$BENCH" axon-load --target "127.0.0.1:$port" --concurrency "$CALLERS" --rate "$rate" --seconds "$SOAK_SECONDS" >"$work/load.out" 2>"$work/load.err" &
load_pid=$!
start=$(date +%s)
echo
echo "| t s | server RSS MB | anon MB | JIT code MB | mapped files MB | GC heap MB | GC committed MB | JIT'd methods | threads | thread-pool queue | axon calls (total) | shed (total) | load average |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
: >"$work/rss"
read -r -a dumps <<< "$GCDUMPS"
while kill -0 "$load_pid" 2>/dev/null; do
  sleep "$SAMPLE"
  kill -0 "$server_pid" 2>/dev/null || { echo "soak.sh: the axon died during the soak" >&2; cat "$work/server.err" >&2; exit 1; }
  t=$(( $(date +%s) - start ))
  r=$(rss_mb "$server_pid")
  parts=$(rss_parts "$server_pid")
  jit=$(metric dotnet_jit_compiled_methods)
  echo "$t $r $jit $parts" >>"$work/rss"
  if (( ${#dumps[@]} > 0 )) && (( t >= dumps[0] )); then
    # a managed-heap snapshot by type (dotnet-gcdump forces a gen2 GC in the server); compare with `dotnet-gcdump report`
    dotnet-gcdump collect -p "$server_pid" -o "$work/heap-$t.gcdump" >/dev/null 2>>"$work/gcdump.err" || echo "soak.sh: gcdump at $t s failed" >&2
    dumps=("${dumps[@]:1}")
  fi
  echo "| $t | $r | ${parts// / | } | $(metric_mb dotnet_gc_last_collection_heap_size) | $(metric_mb dotnet_gc_last_collection_memory_committed) | $jit | $(threads "$server_pid") | $(metric dotnet_thread_pool_queue_length) | $(metric bittensor_axon_calls_total) | $(metric bittensor_axon_shed_total) | $(cut -d' ' -f1-3 /proc/loadavg) |"
done
wait "$load_pid" || { echo "soak.sh: the load generator failed:" >&2; cat "$work/load.err" >&2; exit 1; }
echo
echo "# load result (codes other than Success are listed under errors):"
grep -E '^\|' "$work/load.out"
echo
# RSS after the first WARM seconds, and after warm-up as the run itself shows it: from the first sample after which the
# JIT compiled fewer than 1% more methods until the end (the runtime still compiling new paths is warm-up, not a leak).
awk -v w="$WARM" '{ t[NR] = $1; r[NR] = $2; j[NR] = $3; a[NR] = $4; n = NR }
  function spread(from, what,   i, min, max, c) { min = ""; max = 0; c = 0
    for (i = 1; i <= n; i++) if (t[i] >= from) { if (min == "" || r[i] < min) min = r[i]; if (r[i] > max) max = r[i]; c++ }
    if (c > 0) printf "# RSS %s: min %.1f MB, max %.1f MB, spread %.1f%% of min (%d samples)\n", what, min, max, (max - min) / min * 100, c }
  function aspread(from,   i, min, max) { min = ""; max = 0
    for (i = 1; i <= n; i++) if (t[i] >= from) { if (min == "" || a[i] < min) min = a[i]; if (a[i] > max) max = a[i] }
    printf "#   of which anonymous memory (GC heap, malloc, stacks) %.1f-%.1f MB\n", min, max }
  END { if (n == 0) exit
    spread(w, "after " w " s")
    for (i = 1; i <= n; i++) if (j[n] <= j[i] * 1.01) { settled = t[i]; break }
    printf "# JIT settled at %d s (compiled methods %d then, %d at the end)\n", settled, j[i], j[n]
    spread(settled, "from " settled " s (after warm-up)"); aspread(settled) }' "$work/rss"
echo "# server warnings/errors in its log (stderr + stdout), excluding the per-10 s summary lines:"
grep -iE 'warn|error|fail|starv|heartbeat|exception' "$work/server.err" "$work/server.out" | grep -v 'signature verification' | head -20 || echo "#   none"
echo "# server's last summary line: $(grep -E 'calls' "$work/server.err" "$work/server.out" | tail -1)"
echo "# server's own counters (/metrics, summed over callers):"
curl -s "http://127.0.0.1:$mport/metrics" | awk '/^bittensor_axon_calls_total/ { match($0, /code="[^"]+"/); c[substr($0, RSTART + 6, RLENGTH - 7)] += $NF }
  /^bittensor_axon_refused_total/ { match($0, /reason="[^"]+"/); r[substr($0, RSTART + 8, RLENGTH - 9)] += $NF; any = 1 }
  /^bittensor_axon_shed_total|^dotnet_thread_pool_thread_count|^dotnet_gc_heap_total_allocated/ { sub(/\{.*\}/, ""); print "#   " $0 }
  END { for (k in c) print "#   bittensor_axon_calls_total code=" k " " c[k]
        # transport refusals by reason (idle_timeout, min_request_body_rate, min_response_rate, ...): a legitimate load has none
        if (!any) print "#   bittensor_axon_refused_total: none"; for (k in r) print "#   bittensor_axon_refused_total reason=" k " " r[k] }' || true
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
