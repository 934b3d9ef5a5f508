#!/usr/bin/env bash
# A timeline of fan-out rounds (issue 11): where one round's time goes, first request -> last answer, and how many thread
# switches and wake-ups the client takes per round. The axons in one process (the harness's `axon-farm`, as
# `FARM=1 benchmarks/fanout.sh`) pinned to SERVER_CORE, one `fanout` client (our dendrite) pinned to LOAD_CORE running
# many rounds; after WARM_SECONDS, `perf record` takes the sched_switch / sched_wakeup tracepoints and the client's
# send, receive, epoll_wait and futex system calls on every core for TRACE_SECONDS; then
# benchmarks/python/round_timeline.py cuts the trace into rounds (each connection sends one request per round) and
# prints per-round counts and the client core's time split (client threads by name, other processes, idle), and the
# gap from a round's last answer to the next round's first request. FLOOR=1 does the same for the kernel's floor
# (`socket-floor server` and `socket-floor client --mode $FLOOR_MODE`, benchmarks/socket-floor.sh's bare TCP shape).
# The tracepoints cost time themselves (a few µs per round's event): compare timelines with each other, not with
# fanout.sh's untraced round times.
# Pacing: rounds of 16 axons take under 1 ms, and each needs nonces >= 1 ms above the last per axon, so back-to-back
# rounds run the nonces ahead of the clock; ~1 s ahead (after ~1 s of rounds) the dendrite holds each round for the
# clock (SharedRequestSignatures.MaxAhead): what is profiled after WARM_SECONDS is 1 round per ms with idle gaps,
# unlike fanout.sh's short runs (benchmarks/results/axon.md "Session 20, h2-fanwork"). Read per-answer costs, not wake-ups.
# Usage (after building btcli and the benchmark harness; perf needs root or perf_event_paranoid <= 1):
#   benchmarks/timeline-fanout.sh OUT                          # 16 axons, the built harness
#   COUNT=64 BENCH=<other build's Bittensor.Benchmarks.dll> benchmarks/timeline-fanout.sh OUT
#   FLOOR=1 FLOOR_MODE=async benchmarks/timeline-fanout.sh OUT
# Environment: COUNT (axons, default 16), BENCH (the client's harness dll; the farm and the floor server always run
# FARM_BENCH, default the built one), WARM_SECONDS (default 12), TRACE_SECONDS (default 1), SHOW (rounds printed event by
# event, default 1), GAPS (gaps printed, default 2), SERVER_CORE (0), LOAD_CORE (1), CLIENT_ENV (as fanout.sh), FANOUT_ARGS
# (extra options of our client, e.g. "--sign_ahead 0").
# Writes OUT/perf.data, OUT/script.txt and OUT/timeline.md; prints timeline.md. Run it under the bench lock.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: benchmarks/timeline-fanout.sh OUT}
COUNT=${COUNT:-16}
FARM_BENCH=${FARM_BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
BENCH=${BENCH:-$FARM_BENCH}
WARM_SECONDS=${WARM_SECONDS:-12}
TRACE_SECONDS=${TRACE_SECONDS:-1}
SHOW=${SHOW:-1}
GAPS=${GAPS:-2}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
FLOOR=${FLOOR:-0}
FLOOR_MODE=${FLOOR_MODE:-async}
FANOUT_ARGS=${FANOUT_ARGS:-}
CLIENT_ENV=${CLIENT_ENV-DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_TC_QuickJit=0}
for f in "$FARM_BENCH" "$BENCH"; do [[ -f "$f" ]] || { echo "timeline-fanout.sh: $f not found; build benchmarks/Bittensor.Benchmarks first" >&2; exit 2; }; done
command -v perf >/dev/null || { echo "timeline-fanout.sh: perf (linux-perf) is required" >&2; exit 2; }
[[ "$COUNT" =~ ^[0-9]+$ && "$COUNT" -ge 1 ]] || { echo "timeline-fanout.sh: COUNT must be a positive integer" >&2; exit 2; }
mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

if [[ "$FLOOR" == 1 ]]; then
  DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 taskset -c "$SERVER_CORE" dotnet "$FARM_BENCH" socket-floor server --request 512 --answer 65536 2>"$work/server.err" &
  pids+=($!)
  pattern='serving on [^ ]+:[0-9]+'
else
  DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_TC_QuickJit=0 taskset -c "$SERVER_CORE" dotnet "$FARM_BENCH" axon-farm --count "$COUNT" --network_dim 1024 \
    --state_path "$work/farm" --disable_signature_verification >/dev/null 2>"$work/server.err" &
  pids+=($!)
  pattern='serving on [^ ]+:[0-9]+'
fi
want=$([[ "$FLOOR" == 1 ]] && echo 1 || echo "$COUNT")
for _ in $(seq 1 3000); do
  [[ $(grep -cE "$pattern" "$work/server.err" || true) -ge "$want" ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "timeline-fanout.sh: the server exited:" >&2; cat "$work/server.err" >&2; exit 1; }
  sleep 0.1
done
grep -oE "$pattern" "$work/server.err" | grep -oE '[0-9]+$' | sed 's/^/127.0.0.1:/' > "$work/targets"
[[ $(wc -l < "$work/targets") -ge "$want" ]] || { echo "timeline-fanout.sh: the server did not report its ports" >&2; exit 1; }

if [[ "$FLOOR" == 1 ]]; then
  # shellcheck disable=SC2086
  env $CLIENT_ENV taskset -c "$LOAD_CORE" dotnet "$BENCH" socket-floor client --target "$(head -1 "$work/targets")" --connections "$COUNT" \
    --rounds 1000000 --warmup 300 --request 512 --answer 65536 --mode "$FLOOR_MODE" >"$work/client.out" 2>&1 &
else
  # shellcheck disable=SC2086
  env $CLIENT_ENV taskset -c "$LOAD_CORE" dotnet "$BENCH" fanout --targets "@$work/targets" --axons "$COUNT" --rounds 1000000 --warmup 300 \
    --shape 1,16 --network_dim 1024 $FANOUT_ARGS >"$work/client.out" 2>&1 &
fi
client=$!
pids+=("$client")
sleep "$WARM_SECONDS"
kill -0 "$client" 2>/dev/null || { echo "timeline-fanout.sh: the client exited:" >&2; cat "$work/client.out" >&2; exit 1; }
before=$(loadavg)
perf record -q -o "$OUT/perf.data" -a -e sched:sched_switch,sched:sched_wakeup,syscalls:sys_enter_sendto,syscalls:sys_exit_sendto,syscalls:sys_enter_recvmsg,syscalls:sys_exit_recvmsg,syscalls:sys_enter_recvfrom,syscalls:sys_exit_recvfrom,syscalls:sys_enter_epoll_wait,syscalls:sys_exit_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_exit_futex \
  -- sleep "$TRACE_SECONDS" 2>"$work/perf.err" || { cat "$work/perf.err" >&2; exit 1; }
after=$(loadavg)
perf script -i "$OUT/perf.data" -F comm,pid,tid,cpu,time,event,trace > "$OUT/script.txt" 2>/dev/null
{
  echo "# timeline-fanout: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $([[ "$FLOOR" == 1 ]] && echo "floor ($FLOOR_MODE client)" || echo "our dendrite ($BENCH)"), $COUNT connections, ${TRACE_SECONDS} s traced after ${WARM_SECONDS} s; load average $before -> $after"
  python3 benchmarks/python/round_timeline.py "$OUT/script.txt" "$client" --cpu "$LOAD_CORE" --show "$SHOW" --gaps "$GAPS"
} > "$OUT/timeline.md"
cat "$OUT/timeline.md"
