#!/usr/bin/env bash
# Hostile-caller flood (issue 13 A): the real `btcli axon serve --model echo` (signature verification on) pinned to one
# core; the project's `axon-flood` generator pinned to the other runs one legitimate caller (live-signed, one call at
# a time, [1,16] tokens -> [1,16,1024] floats) alone, then next to a flood of unsigned calls, then next to a flood of
# well-formed calls with a bad signature (one sr25519 verify each; KINDS may add `impersonate`: bad signatures under
# the hotkey of a caller the axon knows, which auth.failed_signature_hold covers). For each phase: the legitimate caller's p50/p99,
# the flood's calls and codes, and the server's CPU per call read from /proc/<pid>/stat (utime + stime). "CPU per
# flood call" subtracts the legitimate calls at the CPU per call of the unloaded phase.
#
# SPLIT=1 (the fair setup for "the legitimate caller's p99 under flood"): the legitimate caller runs in its own process
# at normal priority from 127.0.0.1, paced to LEGIT_RATE calls/s; the flood runs in another process at `nice -n 19`
# from 127.0.0.2 (both on LOAD_CORE), so the flood cannot take the legitimate caller's core from it, and the axon's
# per-address limits see the flood apart from it. The axon then runs with loopback not exempt from per-address limits
# (SERVER_ARGS default in this mode: --axon.limits.per_ip.exempt_loopback false; the defaults 500 calls/s, burst 1000).
#
# PRIO=rt (implies SPLIT=1; root or CAP_SYS_NICE): the measurement for a shared machine. The axon runs SCHED_RR
# (chrt -r SERVER_RT, default 20) on SERVER_CORE, standing in for the dedicated core a server has on its own machine:
# other processes' builds no longer decide its latency, only the work the flood gives it does. The legitimate caller
# runs SCHED_RR at a higher priority (LEGIT_RT, 30) on LOAD_CORE and the flood SCHED_RR below it (FLOOD_RT, 10;
# FLOOD_PRIO=rt, the default): the legitimate caller always gets the core when it has work (as if it sat on its own
# machine), and the flood gets the core's rest whatever else runs. A flood at a normal priority is no full-rate flood
# here: it waits on the server's answers, and each wake-up waits for a slice among the other sessions' tasks (at load
# ~50: 1.5-2.7k calls/s at 0.1 cores, against 15-20k at RT). FLOOD_PRIO=high runs it in its own session whose
# autogroup gets nice -20, FLOOD_PRIO=nice at nice 19.
# An RT flood that wants the whole core runs into the kernel's RT throttle (sched_rt_runtime_us: RT tasks get 950 ms
# of each second per core; dmesg "sched: RT throttling activated"), which then stops every RT task on the core, the
# legitimate caller included, for up to 50 ms: an artefact, not the axon. So PRIO=rt caps the flood at FLOOD_RATE
# (default 14000 calls/s, ~70 % of the generator's full rate of 18-20k on this core) to keep RT demand under the throttle.
# LEGIT_CORE (default: LOAD_CORE, except SERVER_CORE with PRIO=rt): the core the legitimate caller runs on. This
# machine's kernel is PREEMPT_NONE (uname -v; /sys/kernel/debug/sched/preempt cannot be changed here): a task in the
# kernel is not preempted until it returns to user space, whatever its priority. The flood generator's sends over
# loopback run the axon's TCP receive path in the generator's own system calls, so on the flood's core the SCHED_RR 30
# legitimate caller waited up to 1.6-2.3 ms for the SCHED_RR 10 flood's system calls to end (perf sched timehist,
# 2026-12-05: the legitimate caller's woken threads waited behind the flood's thread-pool worker for 1.3-1.6 ms at a
# time). A real legitimate caller does not share a core with the flood's generator, so with PRIO=rt it runs on the
# axon's core (above the axon's priority: its calls take the axon's CPU, not the other way round). Same quiet sitting,
# bad-signature flood, 2 x 2 rounds: legit p99 ratio 7.11-8.78x on the flood's core, 1.45-2.19x on the axon's core
# (benchmarks/results/axon.md "Issue 13, session 10"). LEGIT_CORE=1 gives the old set-up.
# The "flood generator cores busy" column is the flood process's own CPU over its whole run (start-up included) per
# second of it: how much of LOAD_CORE it got. ROUNDS=N repeats none/unsigned/badsig N times against one axon and ends with a summary: per flood kind, the
# ratio flooded p99 / the same round's unloaded p99 for every round, their median, min and max.
# FLOOD_RATE=R caps the flood at R calls/s (0 = full rate; the default, except 14000 with PRIO=rt: see above).
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`):
#   benchmarks/flood.sh
#   SECONDS_PER_PHASE=10 FLOODERS=64 KINDS="none unsigned badsig" benchmarks/flood.sh
#   PRIO=rt ROUNDS=5 SECONDS_PER_PHASE=12 benchmarks/flood.sh                                     # per-address limit on
#   PRIO=rt ROUNDS=5 SERVER_ARGS="--axon.limits.per_ip.exempt_loopback true" benchmarks/flood.sh  # every flood call reaches the checks
# Environment: SECONDS_PER_PHASE (default 10), FLOODERS (default 64), KINDS, WARMUP (seconds, default 4),
# SERVER_CORE/LOAD_CORE/LEGIT_CORE, BTCLI/BENCH (built dlls), SERVER_ARGS (extra `axon serve` options).
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
PRIO=${PRIO:-}
ROUNDS=${ROUNDS:-1}
FLOOD_RATE_SET=${FLOOD_RATE:+1}
FLOOD_RATE=${FLOOD_RATE:-0}
SERVER_PREFIX=""; LEGIT_PREFIX=""; FLOOD_PREFIX="nice -n 19"
if [[ "$PRIO" == "rt" ]]; then
  SPLIT=1
  chrt -r 1 true 2>/dev/null || { echo "flood.sh: PRIO=rt needs SCHED_RR (root or CAP_SYS_NICE): chrt -r 1 true failed" >&2; exit 2; }
  SERVER_PREFIX="chrt -r ${SERVER_RT:-20}"; LEGIT_PREFIX="chrt -r ${LEGIT_RT:-30}"
  [[ "$FLOOD_RATE" == "0" && -z "${FLOOD_RATE_SET:-}" ]] && FLOOD_RATE=14000
  case "${FLOOD_PRIO:-rt}" in
    rt) FLOOD_PREFIX="chrt -r ${FLOOD_RT:-10}" ;;
    high) FLOOD_PREFIX="setsid nice -n -20" ;;
    nice) FLOOD_PREFIX="nice -n 19" ;;
    *) echo "flood.sh: FLOOD_PRIO must be high, rt or nice" >&2; exit 2 ;;
  esac
  LEGIT_CORE=${LEGIT_CORE:-$SERVER_CORE}
elif [[ -n "$PRIO" ]]; then
  echo "flood.sh: PRIO must be empty or rt (got '$PRIO')" >&2; exit 2
fi
LEGIT_CORE=${LEGIT_CORE:-$LOAD_CORE}
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "flood.sh: ROUNDS must be a positive integer (got '$ROUNDS')" >&2; exit 2; }
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
echo "# server: $SERVER_PREFIX taskset -c $SERVER_CORE dotnet $BTCLI axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.state_path TMP $SERVER_ARGS"
if [[ "$SPLIT" == "1" ]]; then
  echo "# flood:  $FLOOD_PREFIX taskset -c $LOAD_CORE dotnet $BENCH axon-flood --target 127.0.0.1:PORT --kind K --seconds $((SECONDS_PER_PHASE + 8)) --flooders $FLOODERS --flood_rate $FLOOD_RATE --source 127.0.0.2 --no_legit"
  echo "# legit:  $LEGIT_PREFIX taskset -c $LEGIT_CORE dotnet $BENCH axon-flood --target 127.0.0.1:PORT --kind none --seconds $SECONDS_PER_PHASE --legit_source 127.0.0.1 --legit_rate $LEGIT_RATE   (3 s after the flood starts)"
else
  echo "# load:   taskset -c $LOAD_CORE dotnet $BENCH axon-flood --target 127.0.0.1:PORT --kind K --seconds $SECONDS_PER_PHASE --flooders $FLOODERS"
fi
echo "# rounds: $ROUNDS x ($KINDS)"
echo

# shellcheck disable=SC2086
$SERVER_PREFIX taskset -c "$SERVER_CORE" dotnet "$BTCLI" axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 \
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
  # shellcheck disable=SC2086
  $FLOOD_PREFIX taskset -c "$LOAD_CORE" dotnet "$BENCH" axon-flood --target "127.0.0.1:$port" --kind badsig --seconds "$WARMUP" --flooders 16 >/dev/null || true
fi

echo "| round | flood | legit calls | legit p50 ms | legit p99 ms | legit errors | flood calls | flood calls/s | flood codes | server CPU µs/call (all) | server CPU µs/flood call | server cores busy | flood generator cores busy | RSS MB | load average |"
echo "|---:|---|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---|"
legit_us=""
declare -A p99s=()
for round in $(seq 1 "$ROUNDS"); do
for kind in $KINDS; do
  cpu0=$(cpu_ticks "$server_pid"); t0=$(date +%s%N)
  if [[ "$SPLIT" == "1" ]]; then
    # The flood starts first and ends last (its process needs ~2 s to start); the legitimate caller runs in between.
    fpid=""
    if [[ "$kind" != "none" ]]; then
      # shellcheck disable=SC2086
      $FLOOD_PREFIX taskset -c "$LOAD_CORE" dotnet "$BENCH" axon-flood --target "127.0.0.1:$port" --kind "$kind" --seconds $((SECONDS_PER_PHASE + 8)) \
        --flooders "$FLOODERS" --flood_rate "$FLOOD_RATE" --source 127.0.0.2 --no_legit >"$work/flood.out" 2>&1 &
      fpid=$!
      # Autogroup scheduling (kernel.sched_autogroup_enabled = 1) shares a core between sessions before nice counts
      # inside one: the flood runs in its own session (setsid) and that session's group gets nice -20.
      if [[ "$FLOOD_PREFIX" == setsid* && -w "/proc/$fpid/autogroup" ]]; then echo -20 > "/proc/$fpid/autogroup" || true; fi
      sleep 3
    fi
    # shellcheck disable=SC2086
    lrow=$($LEGIT_PREFIX taskset -c "$LEGIT_CORE" dotnet "$BENCH" axon-flood --target "127.0.0.1:$port" --kind none --seconds "$SECONDS_PER_PHASE" \
      --legit_source 127.0.0.1 --legit_rate "$LEGIT_RATE" | grep -E '^\| ' || true)
    frow="| - | 0 | - | - | - | 0 | 0 | - | 0 |"
    if [[ -n "$fpid" ]]; then wait "$fpid" || true; frow=$(grep -E '^\| ' "$work/flood.out" || echo "$frow"); fi
    IFS='|' read -r _ _ legit p50 p99 lerr _ _ _ ltotal _ <<< "$lrow"
    IFS='|' read -r _ _ _ _ _ _ flood frate fcodes ftotal gbusy _ <<< "$frow"
    gbusy=$(echo "${gbusy:--}" | tr -d ' ')
    total=$(( $(echo "$ltotal" | tr -dc '0-9') + $(echo "$ftotal" | tr -dc '0-9') ))
  else
  gbusy="-"
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
  p99s[$round,$kind]=$(echo "$p99" | tr -d ' ')
  echo "| $round | $kind | $legit |$p50|$p99|$lerr| $flood |$frate|$fcodes| $all_us | $flood_us | $busy | $gbusy | $(rss_mb "$server_pid") | $(cut -d' ' -f1-3 /proc/loadavg) |"
done
done
echo
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ " $KINDS " == *" none "* ]]; then
  echo
  echo "| flood | legit p99 / same round's unloaded p99, by round | median | min | max | median legit p99 ms (unloaded → flooded) |"
  echo "|---|---|---:|---:|---:|---|"
  for kind in $KINDS; do
    [[ "$kind" == "none" ]] && continue
    ratios=""; base=""; flooded=""
    for round in $(seq 1 "$ROUNDS"); do
      r=$(awk -v a="${p99s[$round,$kind]:-}" -v b="${p99s[$round,none]:-}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }')
      ratios+="$r "; base+="${p99s[$round,none]:-} "; flooded+="${p99s[$round,$kind]:-} "
    done
    stats() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "n/a n/a n/a"; exit } m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f %.2f %.2f\n", m, v[1], v[NR] }'; }
    read -r med lo hi <<< "$(echo "$ratios" | stats)"
    read -r bmed _ _ <<< "$(echo "$base" | stats)"
    read -r fmed _ _ <<< "$(echo "$flooded" | stats)"
    echo "| $kind | ${ratios% } | ${med}× | ${lo}× | ${hi}× | $bmed → $fmed |"
  done
fi
