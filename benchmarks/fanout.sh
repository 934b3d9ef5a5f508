#!/usr/bin/env bash
# Process-separated dendrite fan-out (issue 11): N real `btcli axon serve --model echo` processes (one axon each, port 0,
# the port read from each one's "serving on" line) pinned to one core, the `fanout` harness (our dendrite: endpoint
# actors, Akka.Streams fan-out, every request signed live with //Alice) pinned to the other core with
# `--targets @file`. `[1,16]` token ids -> `[1,16,1024]` float32 answers. For every verification mode and axon count it
# prints one markdown row: round time p50/p99 from the harness; the client's CPU per answered request over the measured
# rounds (the harness reads /proc/self/stat), and over its whole run per call made (start-up, JIT and warm-up rounds
# included: an upper bound, from /usr/bin/time); bytes allocated and gen-0 GCs (and, on stderr, the GC pause, the context switches of all its threads per answer, and per round by thread name, the CPU per answer split into user and kernel time, and the CPU of the harness's own readings before the rounds, which the figure leaves out since session 27); the queried axons' CPU per call
# (utime + stime summed over their processes from /proc/<pid>/stat by the harness, over the measured rounds) and the
# summed RSS of all axon processes.
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli/Bittensor.Cli.csproj benchmarks/Bittensor.Benchmarks/Bittensor.Benchmarks.csproj`):
#   benchmarks/fanout.sh                         # verification on and off, 16 and 64 axons, 50 rounds each
#   COUNTS=16 MODES=off ROUNDS=20 benchmarks/fanout.sh
# Environment: COUNTS (comma list; max(COUNTS) axon processes are started), MODES ("on off": the axons verify the
# sr25519 signature and keep a nonce store, as a validator meets them, or run with --axon.disable_signature_verification;
# the dendrite signs in both), ROUNDS, WARMUP (unmeasured rounds first), SERVER_CORE, LOAD_CORE, BTCLI / BENCH (paths of
# the built dlls), SERVER_ARGS (extra `axon serve` options), CLIENT_ENV (environment for the harness only; default
# DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_TC_QuickJit=0: the
# settings btcli's runtimeconfig carries (UnfairSemaphoreSpinLimit 0, TieredCompilation.QuickJit false: no tier-0 code)
# and the one btcli's Program.cs sets for itself, so the dendrite runs as it does inside `btcli run validator`; before
# session 12 QuickJit was left on here, and a short run measured tier-0 code; CLIENT_ENV= runs the .NET default; the
# axon farm runs with QuickJit off too, as `btcli axon serve`), ENV_<label> (more environment for one client of CLIENTS,
# after CLIENT_ENV, e.g. ENV_pool=DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0), FANOUT_ARGS (extra harness options), PY2021_SRC (a bittensor 1.5.0 checkout: in mode off the
# real 2021 dendrite, benchmarks/python/dendrite2021.py with its signing stubbed out, queries the same axons after ours,
# pinned to the same core; needs Debian's python3-torch python3-grpcio python3-msgpack-numpy python3-loguru),
# FARM_ENV (environment for the axon farm; default DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0, the setting btcli's
# runtimeconfig carries and the benchmarks' does not: before session 21 the farm's idle pool workers spun in
# sched_yield on the axons' one core, ~3 % of its samples at 16 axons; FARM_ENV= runs the farm as sessions 18-20 did),
# FARM=1 (all axons in one process, the harness's `axon-farm`, instead of one `btcli axon serve` process each: on
# the network every axon has its own machine, so a round's server side runs in parallel; N processes time-sharing one
# core make every call pay a process wake-up with cold caches and bound the round at N times that, whatever the client
# does; one process serving N axons runs the same per-call server code without that; the queried axons' CPU is the
# farm's), STARTUP_BATCH (axon processes started together, default 8), CLIENTS (space-separated label=path-to-Bittensor.Benchmarks.dll: several builds of our dendrite, one after the other
# against the same axons, e.g. "before=<main build> after=<branch build>"; ARGS_<label> adds harness options to one).
# IDLE_CHECK (default "warn"): before the sitting the script watches the axons' core (SERVER_CORE) for IDLE_SECONDS
# (default 2) with nothing of its own running: its busy share from /proc/stat, and every process allowed on that core
# alone (a `taskset -c 0 yes` left behind by a busy-core test run is the usual one) with the share of the core it used.
# It prints both; with the core busier than IDLE_MAX percent (default 20) or a pinned process using more than 10 % of it,
# "warn" prints a WARNING line above the rows and goes on (an unattended sitting still gets its rows, marked), "refuse"
# stops with code 3 before starting anything, "off" skips the check.
# The same reading is printed once more at the end (information only).
# Timings live here and in benchmarks/results/axon.md, never in tests. The machine may be shared: the script prints
# the load average before and after each row; say it next to any figure you quote.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNTS=${COUNTS:-16,64}
MODES=${MODES:-on off}
ROUNDS=${ROUNDS:-50}
WARMUP=${WARMUP:-5}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
SERVER_ARGS=${SERVER_ARGS:-}
CLIENT_ENV=${CLIENT_ENV-DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_TC_QuickJit=0}
FANOUT_ARGS=${FANOUT_ARGS:-}
FARM=${FARM:-0}
FARM_ENV=${FARM_ENV-DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0}
PY2021_SRC=${PY2021_SRC:-}
CLIENTS=${CLIENTS:-ours=$BENCH}
STARTUP_BATCH=${STARTUP_BATCH:-8}
IDLE_CHECK=${IDLE_CHECK:-warn}
IDLE_SECONDS=${IDLE_SECONDS:-2}
IDLE_MAX=${IDLE_MAX:-20}

for c in $CLIENTS; do
  [[ "$c" == *=* ]] || { echo "fanout.sh: CLIENTS entries are label=path, got '$c'" >&2; exit 2; }
  [[ -f "${c#*=}" ]] || { echo "fanout.sh: ${c#*=} not found" >&2; exit 2; }
done
for f in "$BTCLI"; do
  [[ -f "$f" ]] || { echo "fanout.sh: $f not found; build first: dotnet build -c Release src/Bittensor.Cli/Bittensor.Cli.csproj benchmarks/Bittensor.Benchmarks/Bittensor.Benchmarks.csproj" >&2; exit 2; }
done
command -v taskset >/dev/null || { echo "fanout.sh: taskset (util-linux) is required" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "fanout.sh: /usr/bin/time (Debian package time) is required" >&2; exit 2; }
IFS=',' read -ra counts <<< "$COUNTS"
max=0
for n in "${counts[@]}"; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 ]] || { echo "fanout.sh: COUNTS must be positive integers, got '$n'" >&2; exit 2; }
  (( n > max )) && max=$n
done
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || { echo "fanout.sh: ROUNDS must be a positive integer" >&2; exit 2; }
[[ "$IDLE_CHECK" =~ ^(refuse|warn|off)$ ]] || { echo "fanout.sh: IDLE_CHECK is refuse, warn or off, got '$IDLE_CHECK'" >&2; exit 2; }
[[ "$IDLE_MAX" =~ ^[0-9]+$ && "$IDLE_SECONDS" =~ ^[0-9]+$ && "$IDLE_SECONDS" -ge 1 ]] || { echo "fanout.sh: IDLE_MAX and IDLE_SECONDS must be integers (IDLE_SECONDS >= 1)" >&2; exit 2; }
[[ -r "/proc/stat" ]] && grep -q "^cpu$SERVER_CORE " /proc/stat || { echo "fanout.sh: no cpu$SERVER_CORE in /proc/stat (SERVER_CORE=$SERVER_CORE)" >&2; exit 2; }

# How busy the axons' core is over IDLE_SECONDS, and which processes allowed on that core alone used it. Sets
# core_busy (percent) and core_pinned ("pid comm percent; ..." for those above 10 %), and prints one line.
core_reading() {
  local a b p ticks=() pids_on=() i busy=0 total=0 hz line
  hz=$(getconf CLK_TCK)
  for p in /proc/[0-9]*; do
    [[ "$(awk '/^Cpus_allowed_list:/ { print $2 }' "$p/status" 2>/dev/null)" == "$SERVER_CORE" ]] || continue
    line=$(cat "$p/stat" 2>/dev/null) || continue
    line=${line##*) }; read -r -a f <<< "$line"
    pids_on+=("${p#/proc/}"); ticks+=($(( f[11] + f[12] )))
  done
  read -r -a a <<< "$(grep "^cpu$SERVER_CORE " /proc/stat)"
  sleep "$IDLE_SECONDS"
  read -r -a b <<< "$(grep "^cpu$SERVER_CORE " /proc/stat)"
  for i in 1 2 3 6 7 8; do busy=$(( busy + b[i] - a[i] )); done
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  core_busy=$(( total > 0 ? busy * 100 / total : 0 ))
  core_pinned=""
  for i in "${!pids_on[@]}"; do
    p=${pids_on[$i]}
    line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    local comm=${line#*(}; comm=${comm%%)*}
    line=${line##*) }; read -r -a f <<< "$line"
    local used=$(( (f[11] + f[12] - ticks[i]) * 100 / (hz * IDLE_SECONDS) ))
    (( used > 10 )) && core_pinned+="${core_pinned:+; }$p $comm $used %"
  done
  echo "# core $SERVER_CORE (the axons'): $core_busy % busy over ${IDLE_SECONDS} s$([[ -n "$core_pinned" ]] && echo ", processes allowed on it alone: $core_pinned")"
}
if [[ "$IDLE_CHECK" != off ]]; then
  core_reading
  if (( core_busy > IDLE_MAX )) || [[ -n "$core_pinned" ]]; then
    if [[ "$IDLE_CHECK" == refuse ]]; then
      echo "fanout.sh: core $SERVER_CORE is not idle ($core_busy % busy, more than IDLE_MAX=$IDLE_MAX %${core_pinned:+; pinned there: $core_pinned}): the axons' side would be measured against that; nothing started (IDLE_CHECK=warn measures anyway and says so)" >&2
      exit 3
    fi
    echo "# WARNING: core $SERVER_CORE is not idle before the sitting ($core_busy % busy${core_pinned:+; pinned there: $core_pinned}); the rows below were measured against that (IDLE_CHECK=warn)"
  fi
fi

work=$(mktemp -d)
pids=()
stop_servers() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_servers
  rm -rf "$work"
}
trap cleanup EXIT

servers_rss_mb() { local p s=0; for p in "${pids[@]}"; do s=$((s + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status"))); done; echo $((s / 1024)); }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

echo "# fanout: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cpus, load average $(loadavg)"
echo "# axons:  taskset -c $SERVER_CORE dotnet $BTCLI axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.state_path <tmp>/axon-i $SERVER_ARGS [--axon.disable_signature_verification]  (x $max processes)"
echo "# clients ($CLIENTS): $CLIENT_ENV [\$ENV_<label>] taskset -c $LOAD_CORE dotnet <dll> fanout --targets @<ports file> --axons N --rounds $ROUNDS --warmup $WARMUP --shape 1,16 --network_dim 1024 $FANOUT_ARGS"
echo
echo "| verification | axons | p50 round ms | p99 round ms | rounds/s | answers ok | client CPU µs/answer (rounds) | client CPU µs/answer (whole run) | client KB alloc/answer | client gen0 per 100 answers | axons' CPU µs/call | axons' RSS MB (sum) | load average before / after |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"

for mode in $MODES; do
  extra=()
  case "$mode" in
    on) ;;
    off) extra=(--axon.disable_signature_verification) ;;
    *) echo "fanout.sh: MODES takes on and off, got '$mode'" >&2; exit 2 ;;
  esac
  : > "$work/targets"
  if [[ "$FARM" == "1" ]]; then
    # One process hosting all the axons (the benchmark harness's axon-farm: the same AxonActor, echo model and default
    # transport as `btcli axon serve --model echo`, btcli's inline socket completions and, by FARM_ENV, its pool spin
    # limit), pinned to the server core.
    farm_extra=()
    [[ "$mode" == "off" ]] && farm_extra=(--disable_signature_verification)
    # shellcheck disable=SC2086
    env $FARM_ENV DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 DOTNET_TC_QuickJit=0 taskset -c "$SERVER_CORE" dotnet "$BENCH" axon-farm --count "$max" --network_dim 1024 \
      --state_path "$work/farm-$mode" "${farm_extra[@]}" >"$work/out-farm" 2>"$work/err-farm" &
    pids+=($!)
    for _ in $(seq 1 3000); do
      [[ $(grep -cE 'serving on [^ ]+:[0-9]+' "$work/err-farm" || true) -ge "$max" ]] && break
      kill -0 "${pids[0]}" 2>/dev/null || { echo "fanout.sh: the axon farm exited:" >&2; cat "$work/err-farm" >&2; exit 1; }
      sleep 0.1
    done
    grep -oE 'serving on [^ ]+:[0-9]+' "$work/err-farm" | grep -oE '[0-9]+$' | sed 's/^/127.0.0.1:/' > "$work/targets"
    [[ $(wc -l < "$work/targets") -ge "$max" ]] || { echo "fanout.sh: the axon farm did not report $max ports within 300 s" >&2; cat "$work/err-farm" >&2; exit 1; }
    echo "# axon farm (one process, $max axons) up at $(date -u '+%H:%M:%S') UTC, load average $(loadavg), RSS $(servers_rss_mb) MB, FARM_ENV=$FARM_ENV, farm $BENCH" >&2
  fi
  # Started STARTUP_BATCH at a time, each batch's ports read before the next starts: 64 processes starting at once on
  # one core (each JITs Akka, Kestrel, libsodium) ran past the axon's own 30 s bind deadline at load 160-270.
  for i in $(seq 1 "$max"); do
    [[ "$FARM" == "1" ]] && break
    # shellcheck disable=SC2086
    taskset -c "$SERVER_CORE" dotnet "$BTCLI" axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 \
      --axon.state_path "$work/state-$mode-$i" "${extra[@]}" $SERVER_ARGS >"$work/out-$i" 2>"$work/err-$i" &
    pids+=($!)
    if (( i % STARTUP_BATCH == 0 || i == max )); then
      for j in $(seq $(( (i - 1) / STARTUP_BATCH * STARTUP_BATCH + 1 )) "$i"); do
        port=""
        for _ in $(seq 1 3000); do
          port=$(grep -oE 'serving on [^ ]+:[0-9]+' "$work/err-$j" | grep -oE '[0-9]+$' || true)
          [[ -n "$port" ]] && break
          kill -0 "${pids[$((j - 1))]}" 2>/dev/null || { echo "fanout.sh: axon $j exited:" >&2; cat "$work/err-$j" >&2; exit 1; }
          sleep 0.1
        done
        [[ -n "$port" ]] || { echo "fanout.sh: axon $j did not report its port within 300 s" >&2; cat "$work/err-$j" >&2; exit 1; }
        echo "127.0.0.1:$port" >> "$work/targets"
      done
    fi
  done
  [[ "$FARM" == "1" ]] || echo "# $max axon processes up at $(date -u '+%H:%M:%S') UTC, load average $(loadavg), RSS $(servers_rss_mb) MB in all" >&2

  for n in "${counts[@]}"; do
    queried=$(IFS=,; echo "${pids[*]:0:$n}")
    clients=($CLIENTS)
    [[ "$mode" == "off" && -n "$PY2021_SRC" ]] && clients+=(py2021)
    for client in "${clients[@]}"; do
      before=$(loadavg)
      if [[ "$client" != "py2021" ]]; then
        label=${client%%=*}; dll=${client#*=}; extra_var="ARGS_$label"; env_var="ENV_$label"
        # shellcheck disable=SC2086
        out=$(env $CLIENT_ENV ${!env_var:-} /usr/bin/time -f "%U %S" -o "$work/clientcpu" taskset -c "$LOAD_CORE" dotnet "$dll" fanout --targets "@$work/targets" \
          --axons "$n" --rounds "$ROUNDS" --warmup "$WARMUP" --shape 1,16 --network_dim 1024 --pids "$queried" $FANOUT_ARGS ${!extra_var:-}) \
          || { echo "fanout.sh: the fanout harness failed:" >&2; echo "$out" >&2; exit 1; }
      else
        out=$(/usr/bin/time -f "%U %S" -o "$work/clientcpu" taskset -c "$LOAD_CORE" /usr/bin/python3 benchmarks/python/dendrite2021.py \
          --src "$PY2021_SRC" --targets "$work/targets" --axons "$n" --rounds "$ROUNDS" --warmup "$WARMUP" --shape 1,16 --network_dim 1024 \
          --pids "$queried") \
          || { echo "fanout.sh: the 2021 dendrite failed:" >&2; echo "$out" >&2; exit 1; }
      fi
      row=$(grep -E '^\| [0-9]+ \|' <<< "$out" || true)
      [[ -n "$row" ]] || { echo "fanout.sh: no result row from the $client client:" >&2; echo "$out" >&2; exit 1; }
      grep -E '^# .*not Success' <<< "$out" >&2 || true
      grep -E '^# .*signed request header' <<< "$out" >&2 || true
      grep -E '^# .*(GC: (pause|answer arrays)|context switches( per round by thread)?:|I/O loop per round:|CPU split:|readings before the rounds:)' <<< "$out" | sed "s/^# /# ${client%%=*}, /" >&2 || true
      # The row: | axons | p50 | p99 | rounds/s | ok | CPU µs/answer | KB/answer | gen0/100 | axons' CPU µs/call | (2021: KB, gen0 n/a)
      IFS='|' read -r _ _ p50 p99 rps ok cpu kb gen0 server_us _ <<< "$row"
      calls=$(( (ROUNDS + WARMUP) * n ))
      whole=$(awk -v c="$calls" '{ if (c > 0) printf "%.0f", ($1 + $2) * 1e6 / c; else print "n/a" }' "$work/clientcpu")
      if [[ "$client" == "py2021" ]]; then label="$mode, 2021 dendrite"; else label="$mode, ${client%%=*}"; fi
      echo "| $label | $n |${p50}|${p99}|${rps}|${ok}|${cpu}| $whole |${kb}|${gen0}|${server_us}| $(servers_rss_mb) | $before / $(loadavg) |"
    done
  done
  stop_servers
done
echo
[[ "$IDLE_CHECK" == off ]] || core_reading
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(loadavg)"
