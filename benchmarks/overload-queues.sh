#!/usr/bin/env bash
# Where the calls wait under overload (issue 11's tail): runs one race.sh level (default 1,024 callers, RAW=1) and,
# meanwhile, samples the TCP queues of the axon's connections every INTERVAL seconds with `ss`:
#   server Recv-Q  requests in the axon's sockets it has not read yet (calls_in_flight cannot count them)
#   client Send-Q  requests the generator wrote that are not yet in the axon's socket (TCP: not acknowledged; the axon's
#                  receive window or its socket lock held them back)
#   client Recv-Q  answers in the generator's sockets it has not read yet (a shed answer queued behind admitted ones)
#   server Send-Q  answers the axon wrote that the generator's side has not acknowledged yet
# and prints their mean and max over the measured level (the warm-up's samples are left out: the level is the second
# time the generator is connected), in bytes and, for the requests, in calls at REQ_BYTES bytes per request (default
# 306: an unsigned `[1,16]` Forward as axon-load-raw frames it; 16 callers' requests waiting unread were 4,904 bytes).
# With PRIO=rt the sampler runs SCHED_RR above the server and generator (chrt -r SAMPLER_RT, default 30): at normal
# priority it would only run when both are off their cores, i.e. in the kernel's RT throttle (the last 50 ms of each
# second), and see the queues of that moment only. The sampler costs the axon's core a few ms per second (one `ss`).
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`):
#   PRIO=rt benchmarks/overload-queues.sh
#   PRIO=rt LEVEL=128 MODES=off SERVER_ARGS="--axon.limits.calls_in_flight 16" benchmarks/overload-queues.sh
# Every race.sh variable applies (BTCLI, LOAD_ARGS, SERVER_ARGS, SECONDS_PER_LEVEL, ...); MODES must be one mode.
# Timings live here and in benchmarks/results/axon.md, never in tests; say the load average next to any figure.
set -euo pipefail
cd "$(dirname "$0")/.."

LEVEL=${LEVEL:-1024}
MODES=${MODES:-off}
INTERVAL=${INTERVAL:-0.1}
REQ_BYTES=${REQ_BYTES:-306}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
[[ "$MODES" =~ ^[a-z0-9]+$ ]] || { echo "overload-queues.sh: MODES must be one mode (off, on, ...), got '$MODES'" >&2; exit 2; }
[[ "$LEVEL" =~ ^[0-9]+$ ]] || { echo "overload-queues.sh: LEVEL must be one caller count, got '$LEVEL'" >&2; exit 2; }
command -v ss >/dev/null || { echo "overload-queues.sh: ss (iproute2) is required" >&2; exit 2; }
SAMPLER_PREFIX=()
if [[ "${PRIO:-}" == "rt" ]]; then
  chrt -r 1 true 2>/dev/null || { echo "overload-queues.sh: PRIO=rt needs SCHED_RR (root or CAP_SYS_NICE)" >&2; exit 2; }
  SAMPLER_PREFIX=(chrt -r "${SAMPLER_RT:-30}")
fi

work=$(mktemp -d)
sampler=""
cleanup() {
  [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The sampler: finds the axon this race starts (its dll path on the command line) and its listening port, then
# writes one line per sample: time, then server sockets (count, Recv-Q, Send-Q) and client sockets (count, Recv-Q, Send-Q).
cat > "$work/sample.sh" <<'EOF'
pat="$1"; out="$2"; interval="$3"; port=""
while true; do
  if [[ -z "$port" ]]; then
    pid=$(pgrep -f "$pat" | head -1 || true)
    [[ -n "$pid" ]] && port=$(ss -tlnpH 2>/dev/null | grep "pid=$pid," | awk '{print $4}' | grep -oE '[0-9]+$' | head -1 || true)
  fi
  if [[ -n "$port" ]]; then
    ss -tnH state established "( sport = :$port or dport = :$port )" | awk -v p=":$port" -v t="$(date +%s.%N)" '
      $3 ~ p"$" { sn++; sr += $1; ss += $2 } $4 ~ p"$" { cn++; cr += $1; cs += $2 }
      END { printf "%s %d %d %d %d %d %d\n", t, sn, sr, ss, cn, cr, cs }' >> "$out"
  fi
  sleep "$interval"
done
EOF
: > "$work/samples"
"${SAMPLER_PREFIX[@]}" bash "$work/sample.sh" "^dotnet $BTCLI axon serve" "$work/samples" "$INTERVAL" &
sampler=$!

echo "# overload-queues: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg); LEVEL=$LEVEL MODES=$MODES PRIO=${PRIO:-} SERVER_ARGS=${SERVER_ARGS:-} LOAD_ARGS=${LOAD_ARGS:-}"
RAW=${RAW:-1} LEVELS="$LEVEL" MODES="$MODES" BTCLI="$BTCLI" benchmarks/race.sh
kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; sampler=""

# The measured level: the second stretch of samples with the generator connected (the first is race.sh's warm-up).
awk -v rb="$REQ_BYTES" '
  { connected = ($5 > 0) }
  connected && !was { stretch++ }
  { was = connected }
  connected && stretch == 2 {
    k++; sr += $3; ss += $4; cr += $6; cs += $7; n = $2
    if ($3 > msr) msr = $3; if ($4 > mss) mss = $4; if ($6 > mcr) mcr = $6; if ($7 > mcs) mcs = $7
    if ($3 + $7 > mw) mw = $3 + $7
  }
  END {
    if (k == 0) { print "overload-queues.sh: no sample of the measured level (the sampler did not find the axon)"; exit 1 }
    printf "\n# TCP queues over the level (%d samples, %s connections): mean / max bytes\n", k, n
    printf "- requests unread in the axon (server Recv-Q): %.0f / %d (%.0f / %.0f calls)\n", sr / k, msr, sr / k / rb, msr / rb
    printf "- requests not yet in the axon'"'"'s socket (client Send-Q): %.0f / %d (%.0f / %.0f calls)\n", cs / k, mcs, cs / k / rb, mcs / rb
    printf "- requests waiting before the axon read them (both): %.0f / %d bytes, %.0f / %.0f calls\n", (sr + cs) / k, mw, (sr + cs) / k / rb, mw / rb
    printf "- answers unread by the generator (client Recv-Q): %.0f / %d\n", cr / k, mcr
    printf "- answers not yet acknowledged (server Send-Q): %.0f / %d\n", ss / k, mss
  }' "$work/samples"
