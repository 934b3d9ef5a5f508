#!/usr/bin/env bash
# Server CPU per call between processes of the same build (issue 11, session 13): why does one `btcli axon serve`
# process answer unsigned calls at ~21 us of CPU and the next one, same build, same command, at ~30? Starts the real
# `btcli axon serve --model echo` (verification off, lean transport) RUNS times per variant, pinned to core 0, warms
# it WARMUP s at CALLERS callers (as race.sh), then measures one level of SECONDS_PER_LEVEL s at CALLERS callers with
# `axon-load-raw` pinned to core 1 (the generator reads the server's CPU from /proc at the level's own start and end).
# Variants run interleaved (run 1 of each, then run 2 of each, ...), so the machine's load drifts over all of them alike.
# Per process it prints one row: CPU per call, req/s, cores busy, run-queue wait (the machine's load), context switches
# per call, the server's threads and their share of its CPU over the level (engine / pool / other, by thread name),
# its transparent huge pages (AnonHugePages) and RSS; PERF=1 adds a `perf record -e cpu-clock` of the level (software
# clock: this VM exposes no hardware counters, so no IPC or cache misses) and prints the top managed symbols per process.
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`):
#   flock /work/wt/bench.lock benchmarks/cpu-spread.sh
#   RUNS=8 VARIANTS="default;DOTNET_TieredPGO=0;DOTNET_ReadyToRun=0" flock /work/wt/bench.lock benchmarks/cpu-spread.sh
# LEVELS_PER_PROCESS=N measures N levels one after the other in each process (rows "run.level"): a process that is
# slow in every level while another is fast in every level is a per-process cause; speeds that change within a process
# are the machine's. The user / system split of the CPU per call is read from /proc around each level.
# Environment: RUNS (default 8), VARIANTS (';'-separated; each "default", or space-separated VAR=value settings for the
# server's environment, or "neighbour=mem" / "neighbour=spin": the default server with a process of ours on the
# generator's core during the level: mem = `dd if=/dev/zero of=/dev/null bs=32M` (streams 32 MiB buffers: caches and
# memory bandwidth), spin = a shell busy loop (in-cache ALU work); both at normal priority, so with PRIO=rt they run
# in the generator's idle gaps), or "samecore": the default server with the generator pinned to the server's core 0
# (no answer bytes cross between cores; use without PRIO=rt, else the server's SCHED_RR starves the generator), CALLERS (16), SECONDS_PER_LEVEL (6), WARMUP (4), PRIO (rt: SCHED_RR as race.sh), PERF (1/0),
# BTCLI / BENCH (dll paths), SERVER_ARGS. Figures live in benchmarks/results/axon.md, never in tests; the machine may
# be shared: the script prints the load average per row.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-8}
VARIANTS=${VARIANTS:-default}
CALLERS=${CALLERS:-16}
SECONDS_PER_LEVEL=${SECONDS_PER_LEVEL:-6}
WARMUP=${WARMUP:-4}
LEVELS_PER_PROCESS=${LEVELS_PER_PROCESS:-1}
PERF=${PERF:-0}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
SERVER_ARGS=${SERVER_ARGS:-}
PRIO=${PRIO:-}
SERVER_PREFIX=(); LOAD_PREFIX=()
if [[ "$PRIO" == "rt" ]]; then
  chrt -r 1 true 2>/dev/null || { echo "cpu-spread.sh: PRIO=rt needs SCHED_RR (root or CAP_SYS_NICE)" >&2; exit 2; }
  SERVER_PREFIX=(chrt -r 20); LOAD_PREFIX=(chrt -r 10)
elif [[ -n "$PRIO" ]]; then
  echo "cpu-spread.sh: PRIO must be empty or rt (got '$PRIO')" >&2; exit 2
fi
[[ "$LEVELS_PER_PROCESS" =~ ^[0-9]+$ && "$RUNS" =~ ^[0-9]+$ && "$CALLERS" =~ ^[0-9]+$ && "$SECONDS_PER_LEVEL" =~ ^[0-9]+$ && "$WARMUP" =~ ^[0-9]+$ ]] \
  || { echo "cpu-spread.sh: RUNS, CALLERS, SECONDS_PER_LEVEL and WARMUP must be whole numbers" >&2; exit 2; }
for f in "$BTCLI" "$BENCH"; do
  [[ -f "$f" ]] || { echo "cpu-spread.sh: $f not found; build first: dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks" >&2; exit 2; }
done
[[ "$PERF" != "1" ]] || command -v perf >/dev/null || { echo "cpu-spread.sh: PERF=1 needs perf (linux-perf)" >&2; exit 2; }

work=$(mktemp -d)
server_pid=""; perf_pid=""; neighbour_pid=""
cleanup() {
  [[ -n "$neighbour_pid" ]] && kill "$neighbour_pid" 2>/dev/null || true
  [[ -n "$perf_pid" ]] && kill -INT "$perf_pid" 2>/dev/null || true
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Per thread of the process: "name ticks" (utime + stime); the name is /proc's comm (15 characters).
thread_ticks() {
  for t in /proc/"$1"/task/*; do
    [[ -r "$t/stat" ]] || continue
    awk -v name="$(tr ' ' '_' < "$t/comm" 2>/dev/null)" -v tid="${t##*/}" '{ sub(/^.*\) /, ""); print tid, name, $12 + $13 }' "$t/stat" 2>/dev/null || true
  done
}

echo "# cpu-spread: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg), THP $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
echo "# server: [variant env] taskset -c 0 dotnet $BTCLI axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.disable_signature_verification $SERVER_ARGS"
echo "# load:   taskset -c 1 dotnet $BENCH axon-load-raw --concurrency $CALLERS --seconds $SECONDS_PER_LEVEL --unsigned (after ${WARMUP} s unmeasured at the same count)"
echo "# thread shares: the server's CPU over the level by thread name (.NET Long Running / .NET TP Worker / .NET SynchManag ...), top 4"
echo
echo "| variant | run | server CPU µs/call | user / system µs/call | minor faults/call | req/s | cores busy | run-queue wait | ctx switches/call | threads | CPU by thread (share of the level) | AnonHugePages MB | RSS MB | load (1 min) |"
echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
IFS=';' read -ra variants <<< "$VARIANTS"
for run in $(seq 1 "$RUNS"); do
  for variant in "${variants[@]}"; do
    envs=(); neighbour=""; load_core=1
    case "$variant" in
      default) ;;
      samecore) load_core=0 ;;
      neighbour=mem|neighbour=spin) neighbour=${variant#neighbour=} ;;
      neighbour=*) echo "cpu-spread.sh: unknown neighbour '$variant' (mem or spin)" >&2; exit 2 ;;
      *) read -ra envs <<< "$variant" ;;
    esac
    : > "$work/err"
    # shellcheck disable=SC2086
    env "${envs[@]}" DOTNET_PerfMapEnabled="$([[ "$PERF" == "1" ]] && echo 1 || echo 0)" "${SERVER_PREFIX[@]}" taskset -c 0 \
      dotnet "$BTCLI" axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.disable_signature_verification \
      --axon.state_path "$work/state" $SERVER_ARGS > /dev/null 2> "$work/err" &
    server_pid=$!
    port=""
    for _ in $(seq 1 600); do
      port=$(grep -aoE 'serving on [^ ]+:[0-9]+' "$work/err" | grep -oE '[0-9]+$' || true)
      [[ -n "$port" ]] && break
      kill -0 "$server_pid" 2>/dev/null || { echo "cpu-spread.sh: the axon exited:" >&2; cat "$work/err" >&2; exit 1; }
      sleep 0.1
    done
    [[ -n "$port" ]] || { echo "cpu-spread.sh: no port within 60 s" >&2; exit 1; }
    if (( WARMUP > 0 )); then
      "${LOAD_PREFIX[@]}" taskset -c "$load_core" dotnet "$BENCH" axon-load-raw --target "127.0.0.1:$port" --concurrency "$CALLERS" \
        --seconds "$WARMUP" --shape 1,16 --network_dim 1024 --unsigned > /dev/null || true
    fi
    for level in $(seq 1 "$LEVELS_PER_PROCESS"); do
      label=$run; (( LEVELS_PER_PROCESS > 1 )) && label="$run.$level"
      read -r ut0 st0 mf0 < <(awk '{ print $14, $15, $10 }' "/proc/$server_pid/stat")
      thread_ticks "$server_pid" > "$work/t0"
      if [[ "$neighbour" == "mem" ]]; then
        taskset -c 1 dd if=/dev/zero of=/dev/null bs=32M 2>/dev/null & neighbour_pid=$!
      elif [[ "$neighbour" == "spin" ]]; then
        taskset -c 1 sh -c 'while :; do :; done' & neighbour_pid=$!
      fi
      if [[ "$PERF" == "1" ]]; then
        perf record -q -e cpu-clock -F 999 -g -p "$server_pid" -o "$work/perf.data" > /dev/null 2>&1 &
        perf_pid=$!
      fi
      out=$("${LOAD_PREFIX[@]}" taskset -c "$load_core" dotnet "$BENCH" axon-load-raw --target "127.0.0.1:$port" --concurrency "$CALLERS" \
        --seconds "$SECONDS_PER_LEVEL" --shape 1,16 --network_dim 1024 --unsigned --watch_pid "$server_pid" || true)
      thread_ticks "$server_pid" > "$work/t1"
      if [[ -n "$neighbour_pid" ]]; then kill "$neighbour_pid" 2>/dev/null || true; wait "$neighbour_pid" 2>/dev/null || true; neighbour_pid=""; fi
      read -r ut1 st1 mf1 < <(awk '{ print $14, $15, $10 }' "/proc/$server_pid/stat")
      if [[ -n "$perf_pid" ]]; then kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true; perf_pid=""; fi
      huge=$(awk '/^AnonHugePages:/ { printf "%.0f", $2 / 1024 }' "/proc/$server_pid/smaps_rollup" 2>/dev/null || echo "n/a")
      rss=$(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$server_pid/status")
      lvl=$(grep -E '^# server over the level:' <<< "$out" || true)
      row=$(grep -E '^\| [0-9]+ \|' <<< "$out" || true)
      IFS='|' read -r _ _ rps _ <<< "$row"
      cpu=$(grep -oE '[0-9]+ us CPU per call' <<< "$lvl" | grep -oE '^[0-9]+' || echo "n/a")
      busy=$(grep -oE '[0-9.]+ cores busy' <<< "$lvl" | grep -oE '^[0-9.]+' || echo "n/a")
      runq=$(grep -oE 'run-queue wait [0-9.]+' <<< "$lvl" | grep -oE '[0-9.]+$' || echo "n/a")
      cs=$(grep -oE '[0-9.]+ context switches per call' <<< "$lvl" | grep -oE '^[0-9.]+' || echo "n/a")
      calls=$(echo "${row:-}" | awk -F'|' '{ gsub(/ /, "", $8); print $8 + 0 }')
      split=$(awk -v u=$((ut1 - ut0)) -v s=$((st1 - st0)) -v t="$(getconf CLK_TCK)" -v c="$calls" 'BEGIN { if (c > 0) printf "%.0f / %.0f", u / t * 1e6 / c, s / t * 1e6 / c; else print "n/a" }')
      faults=$(awk -v f=$((mf1 - mf0)) -v c="$calls" 'BEGIN { if (c > 0) printf "%.2f", f / c; else print "n/a" }')
      threads=$(grep -oE '[0-9]+ threads' <<< "$lvl" | grep -oE '^[0-9]+' || echo "n/a")
      # Thread CPU over the level, summed by name, as shares of the process's CPU over the level.
      shares=$(awk 'NR == FNR { a[$1] = $3; next } { d = $3 - a[$1]; if (d > 0) { n[$2] += d; t += d; k[$2]++ } }
        END { for (x in n) printf "%s\t%d\t%d\n", x, n[x], k[x]; }' "$work/t0" "$work/t1" \
        | sort -t$'\t' -k2,2nr | head -4 | awk -F'\t' '{ s[NR] = $1; v[NR] = $2; c[NR] = $3; t += $2 }
        END { for (i = 1; i <= NR; i++) printf "%s%s ×%d %.0f%%", (i > 1 ? ", " : ""), s[i], c[i], 100 * v[i] / t }')
      echo "| $variant | $label | $cpu | $split | $faults |${rps:- n/a }| $busy | $runq | $cs | $threads | $shares | $huge | $rss | $(cut -d' ' -f1 /proc/loadavg) |"
      if [[ "$PERF" == "1" && -s "$work/perf.data" ]]; then
        echo "  top symbols (self, cpu-clock): $(perf report -i "$work/perf.data" --no-children --sort sym --stdio 2>/dev/null \
          | grep -E '^ +[0-9.]+%' | head -8 | awk '{ p = $1; $1 = ""; $2 = ""; sub(/^ +/, ""); printf "%s %s; ", p, substr($0, 1, 60) }')" >> "$work/perf.notes"
        echo "    ($variant, run $label)" >> "$work/perf.notes"
        cp "$work/perf.data" "${PERF_KEEP:-$work}/perf.$label.$(tr -c 'A-Za-z0-9' '_' <<< "$variant").data" 2>/dev/null || true
      fi
    done
    kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
    rm -rf "$work/state"
  done
done
echo
[[ -f "$work/perf.notes" ]] && cat "$work/perf.notes"
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
