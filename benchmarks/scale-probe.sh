#!/usr/bin/env bash
# What grows per call from 16 to 128 callers (issue 11: "128 callers >= 95 % of 16", session 14): the real
# `btcli axon serve --model echo --axon.disable_signature_verification` pinned to core 0 (one process for every level,
# warmed WARMUP s at 16 callers as race.sh does), `axon-load-raw` pinned to core 1, three runs of SECONDS_PER_LEVEL s
# per level (the first second of each unmeasured):
#   1. counts: the server's and the generator's user / system CPU from /proc and `perf stat` of their syscalls
#      (sendto, recvfrom, epoll_wait, futex, ioctl, ...) and context switches over the same window, per call answered;
#   2. sizes: `perf record` of the server's syscall exits (sendto / recvfrom / sendmsg / recvmsg) for 2 s: calls, bytes
#      per call of each, the share that came back EAGAIN (a read that found nothing, a send into a full socket);
#   3. profile: `perf record -F 999 -g` of the server (DOTNET_PerfMapEnabled=1, so JIT'd frames have names): the top
#      self symbols and shared objects, written to OUT.<level>.self / .dso / .data when OUT is set.
# Per call = over the window, divided by the generator's req/s (measured over the same run) × the window's length.
# The generator's own CPU over the window says whether a level measures the server or the generator (cores busy ~1.0
# on core 1 = the generator is saturated).
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`; root or perf_event_paranoid <= 1):
#   flock /work/wt/bench.lock benchmarks/scale-probe.sh
#   LEVELS=16,128 SECONDS_PER_LEVEL=8 OUT=/tmp/probe BTCLI=<another build's btcli.dll> benchmarks/scale-probe.sh
# Environment: LEVELS (16,128), SECONDS_PER_LEVEL (9; window = this - 4 s), WARMUP (4), BTCLI / BENCH, SERVER_ARGS,
# SERVER_ENV, LOAD_ARGS, OUT (keep the perf data and reports), PROFILE (1/0), PRIO (rt: SCHED_RR as race.sh's PRIO=rt). Figures live in benchmarks/results/axon.md,
# never in tests; the machine may be shared: the load average is printed per level.
set -euo pipefail
cd "$(dirname "$0")/.."
LEVELS=${LEVELS:-16,128}
SECONDS_PER_LEVEL=${SECONDS_PER_LEVEL:-9}
WARMUP=${WARMUP:-4}
PROFILE=${PROFILE:-1}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
SERVER_ARGS=${SERVER_ARGS:-}
SERVER_ENV=${SERVER_ENV:-}
LOAD_ARGS=${LOAD_ARGS:-}
OUT=${OUT:-}
PRIO=${PRIO:-}
SERVER_PREFIX=(); LOAD_PREFIX=()
if [[ "$PRIO" == "rt" ]]; then
  chrt -r 1 true 2>/dev/null || { echo "scale-probe.sh: PRIO=rt needs SCHED_RR (root or CAP_SYS_NICE)" >&2; exit 2; }
  SERVER_PREFIX=(chrt -r 20); LOAD_PREFIX=(chrt -r 10)
elif [[ -n "$PRIO" ]]; then
  echo "scale-probe.sh: PRIO must be empty or rt (got '$PRIO')" >&2; exit 2
fi
(( SECONDS_PER_LEVEL >= 6 )) || { echo "scale-probe.sh: SECONDS_PER_LEVEL must be at least 6" >&2; exit 2; }
for f in "$BTCLI" "$BENCH"; do [[ -f "$f" ]] || { echo "scale-probe.sh: $f not found (build first)" >&2; exit 2; }; done
command -v perf >/dev/null || { echo "scale-probe.sh: perf (linux-perf) is required" >&2; exit 2; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
ticks=$(getconf CLK_TCK)
# A process that has ended reads as 0 (the generator outlived the window unless perf took seconds to attach: then its
# figures say so, they are not silently wrong).
utime() { awk '{ print $14 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
stime() { awk '{ print $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
window=$((SECONDS_PER_LEVEL - 4))
events='syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendmsg,syscalls:sys_enter_recvmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_futex,syscalls:sys_enter_ioctl,syscalls:sys_enter_poll,syscalls:sys_enter_ppoll,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_sched_yield,context-switches,sched:sched_waking,timer:hrtimer_start,irq_vectors:local_timer_entry,irq_vectors:reschedule_entry,irq_vectors:call_function_single_entry,net:net_dev_xmit'

# shellcheck disable=SC2086
env $SERVER_ENV DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 "${SERVER_PREFIX[@]}" taskset -c 0 dotnet "$BTCLI" axon serve --model echo --uri //Bob \
  --axon.ip 127.0.0.1 --axon.port 0 --axon.disable_signature_verification $SERVER_ARGS > "$work/out" 2> "$work/err" &
server_pid=$!
port=""
for _ in $(seq 1 600); do
  port=$(grep -aoE 'serving on [^ ]+:[0-9]+' "$work/err" | grep -oE '[0-9]+$' || true)
  [[ -n "$port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "scale-probe.sh: the axon exited:" >&2; cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "scale-probe.sh: the axon did not start" >&2; exit 1; }
gen() { # callers seconds -> generator output in $work/gen.out, its pid in gen_pid
  # shellcheck disable=SC2086
  "${LOAD_PREFIX[@]}" taskset -c 1 dotnet "$BENCH" axon-load-raw --target "127.0.0.1:$port" --concurrency "$1" --seconds "$2" --shape 1,16 --network_dim 1024 \
    --unsigned $LOAD_ARGS > "$work/gen.out" 2>&1 &
  gen_pid=$!
}
rps_of() { grep -E '^\| [0-9]+ \|' "$work/gen.out" | awk -F'|' '{ gsub(/ /, "", $3); print $3 }'; }
(( WARMUP > 0 )) && { gen 16 "$WARMUP"; wait "$gen_pid" || true; }

echo "# scale-probe: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cpus, server $BTCLI (core 0), generator axon-load-raw (core 1) $LOAD_ARGS, ${SECONDS_PER_LEVEL} s per run, window ${window} s"
IFS=',' read -ra levels <<< "$LEVELS"
for n in "${levels[@]}"; do
  echo
  echo "## $n callers (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  # 1. counts (the generator runs 6 s longer than the others: perf stat of two processes' tracepoints can take seconds
  # to attach on a loaded machine, and the window's end must fall inside the generator's run)
  gen "$n" "$((SECONDS_PER_LEVEL + 6))"; sleep 2
  su0=$(utime "$server_pid"); ss0=$(stime "$server_pid"); gu0=$(utime "$gen_pid"); gs0=$(stime "$gen_pid"); w0=$(date +%s%N)
  perf stat -x, -e "$events" -p "$server_pid" -o "$work/stat.server" -- sleep "$window" > /dev/null 2>&1 &
  ps_pid=$!
  perf stat -x, -e "$events" -p "$gen_pid" -o "$work/stat.gen" -- sleep "$window" > /dev/null 2>&1 || true
  wait "$ps_pid" || true
  su1=$(utime "$server_pid"); ss1=$(stime "$server_pid"); gu1=$(utime "$gen_pid"); gs1=$(stime "$gen_pid"); w1=$(date +%s%N)
  wait "$gen_pid" || true
  rps=$(rps_of); calls=$(awk -v r="$rps" -v w="$window" 'BEGIN { printf "%.0f", r * w }')
  echo "- run 1: $(grep -E '^\| [0-9]+ \|' "$work/gen.out"); $(grep -E '^# per connection' "$work/gen.out" || true)"
  # /proc's CPU over the wall time between its two reads (perf's start-up makes it longer than the window).
  wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  awk -v t="$ticks" -v c="$(awk -v r="$rps" -v w="$wall" 'BEGIN { printf "%.0f", r * w }')" -v w="$wall" -v su=$((su1 - su0)) -v ss=$((ss1 - ss0)) -v gu=$((gu1 - gu0)) -v gs=$((gs1 - gs0)) 'BEGIN {
    printf "- CPU per call: server user %.1f + system %.1f = %.1f us (%.2f cores busy); generator user %.1f + system %.1f = %.1f us (%.2f cores busy)\n",
      su / t * 1e6 / c, ss / t * 1e6 / c, (su + ss) / t * 1e6 / c, (su + ss) / t / w, gu / t * 1e6 / c, gs / t * 1e6 / c, (gu + gs) / t * 1e6 / c, (gu + gs) / t / w }'
  for who in server gen; do
    printf -- "- %s per call:" "$who"
    awk -F, -v c="$calls" '$1 ~ /^[0-9]+$/ && $1 > 0 { e = $3; sub(/syscalls:sys_enter_/, "", e); printf " %s %.2f;", e, $1 / c }' "$work/stat.$who"
    echo
  done
  # 2. sizes
  gen "$n" "$SECONDS_PER_LEVEL"; sleep 2
  perf record -q -e 'syscalls:sys_exit_sendto,syscalls:sys_exit_recvfrom,syscalls:sys_exit_sendmsg,syscalls:sys_exit_recvmsg' -p "$server_pid" \
    -o "$work/sizes.data" -- sleep 2 > /dev/null 2>&1 || true
  wait "$gen_pid" || true
  rps2=$(rps_of)
  perf script -i "$work/sizes.data" -F event,trace 2> /dev/null | awk -v r="$rps2" '
    function num(h,   i, v) { if (h !~ /^0x/) return h + 0; if (length(h) > 12) return -1; v = 0
      for (i = 3; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
    { e = $1; sub(/^syscalls:sys_exit_/, "", e); sub(/:$/, "", e); n[e]++
      if ($NF == "0xfffffffffffffff5") again[e]++; else { v = num($NF); if (v > 0) { bytes[e] += v; ok[e]++ } } }
    END { for (e in n) printf "- %s: %.2f per call, %.0f bytes per call that moved bytes, %.0f %% EAGAIN\n", e, n[e] / (r * 2), ok[e] ? bytes[e] / ok[e] : 0, 100 * again[e] / n[e] }' | sort
  # 3. profile
  if [[ "$PROFILE" == "1" ]]; then
    gen "$n" "$SECONDS_PER_LEVEL"; sleep 2
    perf record -q -F 999 -g -p "$server_pid" -o "$work/prof.data" -- sleep "$window" > /dev/null 2>&1 || true
    wait "$gen_pid" || true
    rps3=$(rps_of)
    samples=$(perf script -i "$work/prof.data" -F time 2> /dev/null | wc -l || true)
    echo "- profile: $samples samples (1 ms each) over ${window} s at $rps3 req/s = $(awk -v s="$samples" -v r="$rps3" -v w="$window" 'BEGIN { printf "%.1f", s * 1000 / (r * w) }') us per call; top self symbols:"
    perf report -i "$work/prof.data" --no-children --sort dso,sym --stdio -g none 2> /dev/null | grep -E '^ +[0-9]' | head -25 | sed 's/^/    /' || true
    if [[ -n "$OUT" ]]; then
      cp "$work/prof.data" "$OUT.$n.data"
      perf report -i "$work/prof.data" --no-children --sort dso --stdio -g none 2> /dev/null | grep -E '^ +[0-9]' | head -10 > "$OUT.$n.dso" || true
      perf report -i "$work/prof.data" --no-children --sort dso,sym --stdio -g none 2> /dev/null | grep -E '^ +[0-9]' | head -80 > "$OUT.$n.self" || true
      perf report -i "$work/prof.data" --children --sort sym --stdio -g none 2> /dev/null | grep -E '^ +[0-9]' | head -120 > "$OUT.$n.incl" || true
    fi
  fi
done
echo
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
