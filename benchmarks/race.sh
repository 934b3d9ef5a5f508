#!/usr/bin/env bash
# Process-separated axon race (issue 11): the real `btcli axon serve --model echo` pinned to one core, the
# project's own `axon-load` generator pinned to the other, `[1,16]` token ids → `[1,16,1024]` float32 answers.
# For every verification mode and caller count it prints one markdown row: throughput and latency from the
# generator, and the server's CPU per call read from /proc/<pid>/stat (utime + stime) over every call the generator
# got an answer to in that level (its last column: warm-up second and errors included, i.e. what the server
# handled while the CPU was counted), plus its RSS.
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`):
#   benchmarks/race.sh                          # verification on and off, 1/16/128 callers, 8 s per level
#   LEVELS=16 MODES=off SECONDS_PER_LEVEL=4 benchmarks/race.sh
# Environment: PRIO (rt: see below), LEVELS (comma list), MODES ("on off"; "on1" = verification on with batch verification off,
# --axon.batch_verification false; add "py2021" for the real 2021 axon from PY2021_SRC, a bittensor
# 1.5.0 checkout, run by benchmarks/python/axon2021.py with its signature check stubbed out; "floor" for the
# `floor-server` harness: a minimal h2c responder without checks, the per-call floor of any server here), SECONDS_PER_LEVEL, WARMUP (seconds of unmeasured load at 16
# callers before the first level of each server, default 4), PRESIGN (signed requests prepared per
# level before its clock starts, so the generator's core is not busy signing; RAW=1: at least PRESIGN_RATE (default
# 40000) per second of the level, spread over its callers, so none runs out before the level ends; the generator warns
# when one did), SERVER_CORE, LOAD_CORE, KEEP_OUTPUT (a path prefix: each level's generator output is kept there),
# BTCLI / BENCH (paths of the built dlls), SERVER_ARGS (extra `axon serve` options), SERVER_ENV (extra
# environment for the server only, e.g. "DOTNET_gcServer=1"), LOAD_ENV (environment for the generator only; default
# "DOTNET_TC_CallCountingDelayMs=0": the generator is a fresh .NET process per level pinned to one CPU, where the
# runtime's call-counting delay is 100 ms x 10, so without it the generator's own tier-1 compile burst lands 1-2 s into
# every level, and session 26's shed probe saw its stall in some windows' worst calls; three interleaved pairs at load
# 6-18 in session 27 showed no difference in the verified shed p99 either way; LOAD_ENV= turns it off), COUNTERS=1 (GC collections and bytes allocated per
# call from `dotnet-counters`, installed as a dotnet tool, attached to the server during each unsigned level), RAW=1
# (every level uses `axon-load-raw`, pre-encoded h2c frames over raw sockets, instead of Grpc.Net.Client; signed
# levels with its --presign).
# Overload (LEVELS=1024): req/s and the latencies count admitted calls (full answers) only; calls answered without
# the answer (NucleusFull, RESOURCE_EXHAUSTED, resets) are counted under errors and listed under the table with how
# fast they were answered, and with every call's figures (admitted and shed together); the RSS column shows the
# server's RSS before and after each level. How the generator treats a shed call (RAW=1): that caller's next call
# waits a pause drawn uniformly in [0, SHED_PAUSE] ms (default 200), as real clients do: the 2021 receptor and our
# dendrite hand NucleusFull back to their validator and never retry it; the validator asks that server again in a
# later round (after its other peers answered and its training step ran); 200 ms is our dendrite's backoff.min.
# LOAD_ARGS: extra options for the generator's measured levels, e.g. LOAD_ARGS="--channels 64" (axon-load-raw's
# connections, default 4: the read-fairness probe of session 12 compares 4 / 16 / 64 at 1,024 callers).
# MODEL: the model the axon serves (default echo; "server" is the TorchSharp ServerTextModel that `btcli run server`
# hosts, bittensor.model defaults: the hosted-model path, its calls batched by the model host's actor, whose queue and
# the axon's calls_in_flight bound what waits; session 18 measured admission by waiting against it).
# SHED_PAUSE=0 re-sends at once (a client that ignores the answer: every shed costs the server again at once).
# A fully answered call is followed at once (closed loop) either way.
# At 1,024 callers the generator's core is the bottleneck on a 2-core box (session 11: the whole of core 1 at 19-21 us
# per call for ~51k calls/s, the axon 0.87-0.88 busy; axon-load-raw already drops large DATA payloads uncopied with
# recv(MSG_TRUNC)): a shed answer then waits in the generator's socket behind the admitted 64 KiB answers sent before it
# (TCP keeps a connection's bytes in order), so the shed p99 listed under the table is mostly the generator's queue;
# the server's own part (its read of the HEADERS -> the send of the answer) was p99 0.21-0.70 ms when traced
# (benchmarks/results/axon.md "Overload, session 11").
# PRIO=rt (root or CAP_SYS_NICE): the server runs SCHED_RR (chrt -r SERVER_RT, default 20) and the generator SCHED_RR
# (chrt -r LOAD_RT, default 10), as flood.sh's PRIO=rt: on a shared machine other processes' builds then no longer take
# the server's core in time slices (session 11: at normal priority and load 4-12, 128 callers gave 22-632 % of 16 as the
# server got 0.09-0.88 of its core; with SCHED_RR 73-100 % at 0.87-0.89 busy, p99 2-4 ms). Both stay under the kernel's RT throttle
# (950 ms per second per core) at these loads; check `dmesg | grep -i throttl` after a run.
# LOAD_PRIO=high (with PRIO=rt): the generator runs at normal policy in a session of its own at nice -20 (its autogroup
# outweighs each other session of the machine ~87:1) instead of SCHED_RR (session 12: at load 17-36 it did not get
# its core either). Whatever the priority, read the generator's "# per connection" line (admitted calls per
# connection, min / median / max) next to its percentiles: a connection the server starves has its callers' later
# calls never answered, and those are in no percentile (session 12, benchmarks/results/axon.md "Read turns").
# Timings live here and in benchmarks/results/axon.md, never in tests. The machine may be shared: the script
# prints the load average before and after; say it next to any figure you quote.
set -euo pipefail
cd "$(dirname "$0")/.."

LEVELS=${LEVELS:-1,16,128}
MODES=${MODES:-on off}
SECONDS_PER_LEVEL=${SECONDS_PER_LEVEL:-8}
PRESIGN=${PRESIGN:-60000}
PRESIGN_RATE=${PRESIGN_RATE:-40000}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
SERVER_ARGS=${SERVER_ARGS:-}
MODEL=${MODEL:-echo}
SERVER_ENV=${SERVER_ENV:-}
LOAD_ENV=${LOAD_ENV-DOTNET_TC_CallCountingDelayMs=0}
COUNTERS=${COUNTERS:-0}
RAW=${RAW:-0}
COUNTERS_BIN=${COUNTERS_BIN:-$(command -v dotnet-counters || echo "$HOME/.dotnet/tools/dotnet-counters")}
WARMUP=${WARMUP:-4}
SHED_PAUSE=${SHED_PAUSE:-200}
LOAD_ARGS=${LOAD_ARGS:-}
PRIO=${PRIO:-}
SERVER_PREFIX=(); LOAD_PREFIX=()
if [[ "$PRIO" == "rt" ]]; then
  chrt -r 1 true 2>/dev/null || { echo "race.sh: PRIO=rt needs SCHED_RR (root or CAP_SYS_NICE): chrt -r 1 true failed" >&2; exit 2; }
  SERVER_PREFIX=(chrt -r "${SERVER_RT:-20}"); LOAD_PREFIX=(chrt -r "${LOAD_RT:-10}")
  case "${LOAD_PRIO:-rt}" in
    rt) ;;
    high) LOAD_PREFIX=(setsid nice -n -20) ;;
    *) echo "race.sh: LOAD_PRIO must be rt or high (got '$LOAD_PRIO')" >&2; exit 2 ;;
  esac
elif [[ -n "$PRIO" ]]; then
  echo "race.sh: PRIO must be empty or rt (got '$PRIO')" >&2; exit 2
fi

for f in "$BTCLI" "$BENCH"; do
  [[ -f "$f" ]] || { echo "race.sh: $f not found; build first: dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks" >&2; exit 2; }
done
command -v taskset >/dev/null || { echo "race.sh: taskset (util-linux) is required" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "race.sh: /usr/bin/time (Debian package time) is required" >&2; exit 2; }

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
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime of the whole process
# Context switches (voluntary + involuntary) summed over the process's live threads: hops between threads show here.
ctx_switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'; }
# Time the process's threads spent runnable but waiting for a core (/proc/<pid>/task/*/schedstat, 2nd field, ns):
# divided by the level's wall time it is the average number of its threads kept off a core by other processes. Near
# 0 on a quiet machine; when it is large, "cores busy" below 1 is the machine's load, not the server waiting.
runq_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ n += $2 } END { printf "%.0f", n }'; }
rss_mb() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
now_ns() { date +%s%N; }

echo "# race: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg)"
[[ "$PRIO" == "rt" ]] && echo "# PRIO=rt: server ${SERVER_PREFIX[*]}, generator ${LOAD_PREFIX[*]}"
echo "# server: $SERVER_ENV taskset -c $SERVER_CORE dotnet $BTCLI axon serve --model $MODEL --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 $SERVER_ARGS [--axon.disable_signature_verification]"
echo "# warm-up: ${WARMUP} s at 16 callers per server, not measured"
echo "# server RSS MB: before the level -> after it; run-queue wait: the server's threads runnable but kept off a core (average threads), i.e. the machine's load"
[[ "$RAW" == "1" ]] && echo "# shed calls: the caller's next call after a pause uniform in [0, $SHED_PAUSE] ms (SHED_PAUSE)"
echo "# load:   $LOAD_ENV taskset -c $LOAD_CORE dotnet $BENCH axon-load --target 127.0.0.1:PORT --shape 1,16 --network_dim 1024 --seconds $SECONDS_PER_LEVEL --concurrency N (--presign $PRESIGN | --unsigned) $LOAD_ARGS"
echo
if [[ "$COUNTERS" == "1" ]]; then
  echo "| verification | callers | req/s | p50 ms | p99 ms | errors | calls answered | server CPU µs/call | server cores busy | server run-queue wait | server RSS MB | server context switches per call | generator CPU µs/call (raw: whole run (level only)) | gen0/1/2 GCs per 100 calls | KB allocated per call |"
  echo "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
else
  echo "| verification | callers | req/s | p50 ms | p99 ms | errors | calls answered | server CPU µs/call | server cores busy | server run-queue wait | server RSS MB | server context switches per call | generator CPU µs/call (raw: whole run (level only)) |"
  echo "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
fi
# GC figures from a dotnet-counters CSV (per-interval increments, summed over the level): collections per generation
# per 100 calls and bytes allocated in KB per call.
gc_columns() {
  awk -F, -v c="$2" '
    /dotnet.gc.collections/ { g = $0; sub(/.*gc.heap.generation=/, "", g); g = substr(g, 1, 4); n[g] += $NF }
    /dotnet.gc.heap.total_allocated/ { a += $NF }
    END {
      if (c <= 0) { print "n/a | n/a"; exit }
      printf "%.2f / %.2f / %.2f | %.1f\n", n["gen0"] * 100 / c, n["gen1"] * 100 / c, n["gen2"] * 100 / c, a / 1024 / c }' "$1"
}

notes=()
for mode in $MODES; do
  extra=()
  load_mode=(--presign "$PRESIGN")
  if [[ "$mode" == "off" ]]; then
    extra=(--axon.disable_signature_verification)
    load_mode=(--unsigned)
  elif [[ "$mode" == "on1" ]]; then
    extra=(--axon.batch_verification false)
  fi
  : > "$work/out" ; : > "$work/err"
  if [[ "$mode" == "floor" ]]; then
    # The floor: a minimal h2c responder (benchmarks/Bittensor.Benchmarks/Axon/FloorServer.cs, no checks, answers
    # encoded once): what any server pays per call here for the same request and answer over loopback.
    load_mode=(--unsigned)
    "${SERVER_PREFIX[@]}" taskset -c "$SERVER_CORE" dotnet "$BENCH" floor-server --ip 127.0.0.1 --port 0 --network_dim 1024 >"$work/out" 2>"$work/err" &
  elif [[ "$mode" == "py2021" ]]; then
    # The real 2021 axon (bittensor 1.5.0 from PY2021_SRC, signature check stubbed: an upper bound), same echo model.
    [[ -n "${PY2021_SRC:-}" ]] || { echo "race.sh: mode py2021 needs PY2021_SRC (a bittensor 1.5.0 checkout; see benchmarks/python/axon2021.py)" >&2; exit 2; }
    load_mode=(--unsigned)
    "${SERVER_PREFIX[@]}" taskset -c "$SERVER_CORE" /usr/bin/python3 benchmarks/python/axon2021.py --src "$PY2021_SRC" --ip 127.0.0.1 --port 0 \
      --network_dim 1024 >"$work/out" 2>"$work/err" &
  else
    # shellcheck disable=SC2086
    env $SERVER_ENV "${SERVER_PREFIX[@]}" taskset -c "$SERVER_CORE" dotnet "$BTCLI" axon serve --model "$MODEL" --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 \
      "${extra[@]}" $SERVER_ARGS >"$work/out" 2>"$work/err" &
  fi
  server_pid=$!
  port=""
  for _ in $(seq 1 600); do
    port=$(grep -oE 'serving on [^ ]+:[0-9]+' "$work/err" | grep -oE '[0-9]+$' || true)
    [[ -n "$port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "race.sh: the axon exited:" >&2; cat "$work/err" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n "$port" ]] || { echo "race.sh: the axon did not report its port within 60 s" >&2; cat "$work/err" >&2; exit 1; }

  # Warm-up, not measured: the JIT's tier-1 code (and the thread pool's size) settle before the first level, so a
  # level measures the steady state rather than the first seconds of a fresh process.
  if (( WARMUP > 0 )); then
    wharness=axon-load; [[ "$RAW" == "1" ]] && wharness=axon-load-raw
    env $LOAD_ENV "${LOAD_PREFIX[@]}" taskset -c "$LOAD_CORE" dotnet "$BENCH" "$wharness" --target "127.0.0.1:$port" --concurrency 16 \
      --seconds "$WARMUP" --shape 1,16 --network_dim 1024 "${load_mode[@]}" > /dev/null || true
  fi

  harness=axon-load
  shed_args=()
  raw_args=()
  if [[ "$RAW" == "1" ]]; then
    harness=axon-load-raw; shed_args=(--shed_pause "$SHED_PAUSE")
    # The generator reads the server's CPU, RSS and switches from /proc at the level's own start and end (after its
    # presigning and connecting), so cores busy and CPU per call cover the level alone.
    raw_args=(--watch_pid "$server_pid")
    [[ "${load_mode[0]}" == "--presign" ]] && raw_args+=(--presign_rate "$PRESIGN_RATE")
  fi
  IFS=',' read -ra levels <<< "$LEVELS"
  for n in "${levels[@]}"; do
    counters_pid=""
    # Not for presigned levels: their signing phase (before the clock starts) outlasts the counters' fixed window.
    if [[ "$COUNTERS" == "1" && ( "$mode" == "off" || "$mode" == "floor" ) ]]; then
      rm -f "$work/counters.csv"
      taskset -c "$LOAD_CORE" "$COUNTERS_BIN" collect -p "$server_pid" --format csv -o "$work/counters.csv" --refresh-interval 1 \
        --duration "$(s=$((SECONDS_PER_LEVEL + 5)); printf '00:%02d:%02d:%02d' $((s / 3600)) $((s % 3600 / 60)) $((s % 60)))" \
        --counters 'System.Runtime[dotnet.gc.collections,dotnet.gc.heap.total_allocated]' > /dev/null 2>&1 &
      counters_pid=$!
      sleep 2
    fi
    cpu0=$(cpu_ticks "$server_pid"); t0=$(now_ns); cs0=$(ctx_switches "$server_pid"); rq0=$(runq_ns "$server_pid"); rss0=$(rss_mb "$server_pid")
    loadout=$(/usr/bin/time -f "%U %S" -o "$work/loadcpu" env $LOAD_ENV "${LOAD_PREFIX[@]}" taskset -c "$LOAD_CORE" dotnet "$BENCH" "$harness" --target "127.0.0.1:$port" --concurrency "$n" \
      --seconds "$SECONDS_PER_LEVEL" --shape 1,16 --network_dim 1024 "${load_mode[@]}" "${shed_args[@]}" "${raw_args[@]}" $LOAD_ARGS || true)
    echo "$loadout" > "$work/level-$mode-$n.out"
    [[ -n "${KEEP_OUTPUT:-}" ]] && cp "$work/level-$mode-$n.out" "$KEEP_OUTPUT.$mode.$n"
    row=$(grep -E '^\| [0-9]+ \|' <<< "$loadout" || true)
    # axon-load-raw also reports its CPU over the level alone (no start-up): shown as "whole run (level only)".
    level_us=$(grep -oE 'generator CPU per call over the level: [0-9.]+' <<< "$loadout" | grep -oE '[0-9.]+$' || true)
    cpu1=$(cpu_ticks "$server_pid"); t1=$(now_ns); cs1=$(ctx_switches "$server_pid"); rq1=$(runq_ns "$server_pid")
    # Calls the server answered without the full answer (shed / refused), with how fast: printed under the table.
    shed=$(grep -E '^# not admitted:' <<< "$loadout" || true)
    [[ -n "$shed" ]] && notes+=("$mode, $n callers: ${shed#\# }")
    every=$(grep -E '^# all calls:' <<< "$loadout" || true)
    [[ -n "$every" ]] && notes+=("$mode, $n callers: ${every#\# }")
    perconn=$(grep -E '^# per connection' <<< "$loadout" || true)
    [[ -n "$perconn" ]] && notes+=("$mode, $n callers: ${perconn#\# }")
    # The generator's row: | callers | req/s | p50 | p99 | ok | errors | calls |
    IFS='|' read -r _ _ rps p50 p99 ok errors answered _ <<< "$row"
    calls=$(echo "$answered" | tr -dc '0-9'); calls=${calls:-0}
    cpu_us=$(awk -v d=$((cpu1 - cpu0)) -v t="$ticks" -v c="$calls" 'BEGIN { if (c > 0) printf "%.0f", d / t * 1e6 / c; else print "n/a" }')
    # The generator's CPU over its whole run (start-up and JIT included, so an upper bound) per answered call.
    gen_us=$(awk -v c="$calls" '{ if (c > 0) printf "%.0f", ($1 + $2) * 1e6 / c; else print "n/a" }' "$work/loadcpu")
    [[ -n "$level_us" ]] && gen_us="$gen_us ($(printf '%.0f' "$level_us"))"
    cs=$(awk -v d=$((cs1 - cs0)) -v c="$calls" 'BEGIN { if (c > 0) printf "%.1f", d / c; else print "n/a" }')
    busy=$(awk -v d=$((cpu1 - cpu0)) -v t="$ticks" -v w=$((t1 - t0)) 'BEGIN { printf "%.2f", d / t / (w / 1e9) }')
    runq=$(awk -v d=$((rq1 - rq0)) -v w=$((t1 - t0)) 'BEGIN { printf "%.2f", d / w }')
    rss="$rss0 → $(rss_mb "$server_pid")"
    # RAW=1: the server's figures over the level alone, as the generator read them (the level's start is after its
    # presigning: until session 11 a signed level's cores busy was diluted by the seconds it spent signing).
    lvl=$(grep -E '^# server over the level:' <<< "$loadout" || true)
    if [[ -n "$lvl" ]]; then
      busy=$(grep -oE '[0-9.]+ cores busy' <<< "$lvl" | grep -oE '^[0-9.]+')
      cpu_us=$(grep -oE '[0-9]+ us CPU per call' <<< "$lvl" | grep -oE '^[0-9]+')
      runq=$(grep -oE 'run-queue wait [0-9.]+' <<< "$lvl" | grep -oE '[0-9.]+$')
      rss=$(grep -oE 'RSS [0-9]+ -> [0-9]+' <<< "$lvl" | sed -E 's/RSS ([0-9]+) -> ([0-9]+)/\1 → \2/')
      cs=$(grep -oE '[0-9.]+ context switches per call' <<< "$lvl" | grep -oE '^[0-9.]+')
    fi
    ranout=$(grep -E '^# WARNING:' <<< "$loadout" || true)
    [[ -n "$ranout" ]] && notes+=("$mode, $n callers: ${ranout#\# }")
    if [[ "$COUNTERS" == "1" && -z "$counters_pid" ]]; then
      echo "| $mode | $n |${rps}|${p50}|${p99}|${errors}| $calls | $cpu_us | $busy | $runq | $rss | $cs | $gen_us | n/a | n/a |"
    elif [[ -n "$counters_pid" ]]; then
      wait "$counters_pid" 2>/dev/null || true
      echo "| $mode | $n |${rps}|${p50}|${p99}|${errors}| $calls | $cpu_us | $busy | $runq | $rss | $cs | $gen_us | $(gc_columns "$work/counters.csv" "$calls") |"
    else
      echo "| $mode | $n |${rps}|${p50}|${p99}|${errors}| $calls | $cpu_us | $busy | $runq | $rss | $cs | $gen_us |"
    fi
  done

  kill -TERM "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
done
echo
for line in "${notes[@]}"; do echo "- $line"; done
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
