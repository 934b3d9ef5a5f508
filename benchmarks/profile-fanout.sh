#!/usr/bin/env bash
# dotnet-trace CPU profile of the dendrite fan-out (issue 11): N real `btcli axon serve --model echo
# --axon.disable_signature_verification` processes pinned to core 0 (started 8 at a time, ports from their "serving on"
# lines, as benchmarks/fanout.sh does), then for each client build and each count the `fanout` harness pinned to core 1
# with many rounds; after WARM_SECONDS `dotnet-trace collect --profile dotnet-sampled-thread-time` attaches to it for
# TRACE_SECONDS, then the harness is stopped. Writes OUT-<label>-<count>.nettrace and OUT-<label>-<count>.top (the top
# frames by exclusive and by inclusive samples, from `dotnet-trace report … topN`; the sampler takes every managed
# thread's stack ~100 times a second whether it runs or waits, so threads parked in a wait show up too: read past them;
# `cpu-sampling` is collect-linux only in dotnet-trace 10). PERF=1 samples on-CPU time instead: the client runs with
# DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 and `perf record -F 999 -g` takes it for TRACE_SECONDS;
# OUT-<label>-<count>.top then lists the top shared objects and symbols (exclusive) from `perf report`. STAT=1 counts
# instead (`perf stat` for TRACE_SECONDS): system calls by kind, context switches and task-clock, each also per sendto
# (one per request), in OUT-<label>-<count>.top; STAT_EVENTS replaces the list.
# FARM=1 serves the N axons from one process instead (the harness's `axon-farm`, inline socket completions, pinned to
# core 0, as `FARM=1 benchmarks/fanout.sh` does), so the profile is of the client, not of 64 axon processes' wake-ups.
# Pacing: rounds of 16 axons take under 1 ms, and each needs nonces >= 1 ms above the last per axon, so back-to-back
# rounds run the nonces ahead of the clock; ~1 s ahead (after ~1 s of rounds) the dendrite holds each round for the
# clock (SharedRequestSignatures.MaxAhead): what is profiled after WARM_SECONDS is 1 round per ms with idle gaps,
# unlike fanout.sh's short runs (benchmarks/results/axon.md "Session 20, h2-fanwork"). Read per-answer costs, not wake-ups.
# Usage (after building btcli and the benchmark harness):
#   benchmarks/profile-fanout.sh OUT                        # 16 axons, the built harness
#   COUNTS=16,64 CLIENTS="before=<dll> after=<dll>" benchmarks/profile-fanout.sh /tmp/prof
# Environment: COUNTS, CLIENTS (label=path-to-Bittensor.Benchmarks.dll ...), WARM_SECONDS (default 25), TRACE_SECONDS
# (default 10), TOP (frames listed, default 25), PROFILE (default dotnet-sampled-thread-time), BTCLI, BENCH (the axon farm's harness), CLIENT_ENV and ENV_<label> (as fanout.sh), DOTNET_TRACE (default
# ~/.dotnet/tools/dotnet-trace). The machine may be shared: the load average is written next to each profile.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: benchmarks/profile-fanout.sh OUT}
COUNTS=${COUNTS:-16}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
CLIENTS=${CLIENTS:-ours=$BENCH}
WARM_SECONDS=${WARM_SECONDS:-25}
TRACE_SECONDS=${TRACE_SECONDS:-10}
TOP=${TOP:-25}
PROFILE=${PROFILE:-dotnet-sampled-thread-time}
CLIENT_ENV=${CLIENT_ENV-DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_TC_QuickJit=0}
DOTNET_TRACE=${DOTNET_TRACE:-$HOME/.dotnet/tools/dotnet-trace}
STAT_EVENTS=${STAT_EVENTS:-syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_recvfrom,syscalls:sys_enter_recvmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_write,syscalls:sys_enter_read,context-switches,task-clock}
[[ "${STAT:-0}" == 1 || "${PERF:-0}" == 1 || -x "$DOTNET_TRACE" ]] || { echo "profile-fanout.sh: $DOTNET_TRACE not found (dotnet tool install -g dotnet-trace)" >&2; exit 2; }
[[ -f "$BTCLI" ]] || { echo "profile-fanout.sh: $BTCLI not found; build src/Bittensor.Cli first" >&2; exit 2; }
for c in $CLIENTS; do
  [[ "$c" == *=* && -f "${c#*=}" ]] || { echo "profile-fanout.sh: CLIENTS entries are label=path to an existing dll, got '$c'" >&2; exit 2; }
done
IFS=',' read -ra counts <<< "$COUNTS"
max=0
for n in "${counts[@]}"; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 ]] || { echo "profile-fanout.sh: COUNTS must be positive integers, got '$n'" >&2; exit 2; }
  (( n > max )) && max=$n
done

work=$(mktemp -d)
pids=()
client=""
cleanup() {
  [[ -n "$client" ]] && kill "$client" 2>/dev/null || true
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

: > "$work/targets"
if [[ "${FARM:-0}" == 1 ]]; then
  DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_TC_QuickJit=0 taskset -c 0 dotnet "$BENCH" axon-farm --count "$max" --network_dim 1024 \
    --state_path "$work/farm" --disable_signature_verification >"$work/out-farm" 2>"$work/err-farm" &
  pids+=($!)
  for _ in $(seq 1 3000); do
    [[ $(grep -cE 'serving on [^ ]+:[0-9]+' "$work/err-farm" || true) -ge "$max" ]] && break
    kill -0 "${pids[0]}" 2>/dev/null || { echo "profile-fanout.sh: the axon farm exited:" >&2; cat "$work/err-farm" >&2; exit 1; }
    sleep 0.1
  done
  grep -oE 'serving on [^ ]+:[0-9]+' "$work/err-farm" | grep -oE '[0-9]+$' | sed 's/^/127.0.0.1:/' > "$work/targets"
  [[ $(wc -l < "$work/targets") -ge "$max" ]] || { echo "profile-fanout.sh: the axon farm did not report $max ports" >&2; exit 1; }
fi
for i in $(seq 1 "$max"); do
  [[ "${FARM:-0}" == 1 ]] && break
  taskset -c 0 dotnet "$BTCLI" axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 \
    --axon.state_path "$work/state-$i" --axon.disable_signature_verification >"$work/out-$i" 2>"$work/err-$i" &
  pids+=($!)
  if (( i % 8 == 0 || i == max )); then
    for j in $(seq $(( (i - 1) / 8 * 8 + 1 )) "$i"); do
      port=""
      for _ in $(seq 1 3000); do
        port=$(grep -oE 'serving on [^ ]+:[0-9]+' "$work/err-$j" | grep -oE '[0-9]+$' || true)
        [[ -n "$port" ]] && break
        kill -0 "${pids[$((j - 1))]}" 2>/dev/null || { echo "profile-fanout.sh: axon $j exited:" >&2; cat "$work/err-$j" >&2; exit 1; }
        sleep 0.1
      done
      [[ -n "$port" ]] || { echo "profile-fanout.sh: axon $j did not report its port" >&2; exit 1; }
      echo "127.0.0.1:$port" >> "$work/targets"
    done
  fi
done
echo "# $max axons up ($([[ "${FARM:-0}" == 1 ]] && echo "one farm process" || echo "one process each")) at $(date -u '+%H:%M:%S') UTC, load average $(loadavg)"

for n in "${counts[@]}"; do
  for c in $CLIENTS; do
    label=${c%%=*}; dll=${c#*=}; base="$OUT-$label-$n"; env_var="ENV_$label"
    perf_env=()
    [[ "${PERF:-0}" == 1 ]] && perf_env=(DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0)
    # shellcheck disable=SC2086
    env $CLIENT_ENV ${!env_var:-} "${perf_env[@]}" taskset -c 1 dotnet "$dll" fanout --targets "@$work/targets" --axons "$n" --rounds 1000000 --warmup 0 \
      --shape 1,16 --network_dim 1024 > "$base.out" 2>&1 &
    client=$!
    sleep "$WARM_SECONDS"
    kill -0 "$client" 2>/dev/null || { echo "profile-fanout.sh: the $label client exited:" >&2; cat "$base.out" >&2; exit 1; }
    before=$(loadavg)
    if [[ "${STAT:-0}" == 1 ]]; then
      perf stat -x, -e "$STAT_EVENTS" -p "$client" -o "$base.stat" -- sleep "$TRACE_SECONDS" > "$base.collect" 2>&1
    elif [[ "${PERF:-0}" == 1 ]]; then
      perf record -F 999 -g -p "$client" -o "$base.perf" -- sleep "$TRACE_SECONDS" > "$base.collect" 2>&1
    else
      "$DOTNET_TRACE" collect -p "$client" --profile "$PROFILE" --duration "00:00:$(printf '%02d' "$TRACE_SECONDS")" -o "$base.nettrace" > "$base.collect" 2>&1
    fi
    after=$(loadavg)
    kill "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    client=""
    if [[ "${STAT:-0}" == 1 ]]; then
      # Per request: each count divided by the sendto calls (one per request; control frames are rare: SETTINGS ACK,
      # keep-alive PINGs).
      {
        echo "# $label, $n axons, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), perf stat ${TRACE_SECONDS} s after ${WARM_SECONDS} s of rounds; load average $before -> $after"
        awk -F, '$1 ~ /^[0-9.]+$/ { e = $3; if (e == "task-clock") { e = "task-clock (CPU µs)"; $1 = $1 * 1000 } n[e] = $1; order[++k] = e }
          END { s = n["syscalls:sys_enter_sendto"]; printf "| event | count | per sendto (request) |\n|---|---:|---:|\n";
                for (i = 1; i <= k; i++) printf "| %s | %.0f | %s |\n", order[i], n[order[i]], (s > 0 ? sprintf("%.2f", n[order[i]] / s) : "n/a") }' "$base.stat"
      } > "$base.top"
      echo "# $base.top written (load average $before -> $after)"
      continue
    fi
    if [[ "${PERF:-0}" == 1 ]]; then
      {
        echo "# $label, $n axons, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), perf ${TRACE_SECONDS} s after ${WARM_SECONDS} s of rounds; load average $before -> $after"
        echo "## shared objects"
        perf report -i "$base.perf" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -10 || true
        echo "## symbols (exclusive)"
        perf report -i "$base.perf" --no-children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -"$TOP" || true
        echo "samples: $(perf script -i "$base.perf" -F time 2>/dev/null | wc -l || true)"
      } > "$base.top"
      echo "# $base.top written (load average $before -> $after)"
      continue
    fi
    {
      echo "# $label, $n axons, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), traced ${TRACE_SECONDS} s after ${WARM_SECONDS} s of rounds; load average $before -> $after"
      echo "## exclusive"
      "$DOTNET_TRACE" report "$base.nettrace" topN -n "$TOP" 2>&1 || true
      echo "## inclusive"
      "$DOTNET_TRACE" report "$base.nettrace" topN -n "$TOP" --inclusive 2>&1 || true
    } > "$base.top"
    echo "# $base.top written (load average $before -> $after)"
  done
done
