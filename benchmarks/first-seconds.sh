#!/usr/bin/env bash
# A fresh axon's first seconds under load (session 18, h3-warm): `btcli axon serve --model echo` (verification on)
# pinned to core 0 is started, and as soon as it prints its serving line race.sh's raw generator (`axon-load-raw`, core 1,
# 16 callers, presigned requests) loads it for DURATION; prints the full answers in each second from the first call on
# (the generator presigns before its clock starts, so the server is still untouched then), and the level's table.
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`): benchmarks/first-seconds.sh
#   BTCLI / BENCH (dll paths), DURATION (seconds, default 10), CALLERS (default 16), SERVER_ARGS (extra serve options, e.g.
#   "--axon.warm_up false"), SERVER_ENV (extra environment for the server only, e.g. "DOTNET_TieredPGO=0").
# Figures live in benchmarks/results/axon.md ("Session 18, h3-warm"), never in tests; note the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
DURATION=${DURATION:-10} # not SECONDS: bash counts its own run time in that one
CALLERS=${CALLERS:-16}
SERVER_ENV=${SERVER_ENV:-}
for f in "$BTCLI" "$BENCH"; do [[ -f "$f" ]] || { echo "first-seconds.sh: $f not found; build first" >&2; exit 2; }; done
W=$(mktemp -d)
server=
cleanup() {
  [[ -n "$server" ]] && { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
  rm -rf "$W"
}
trap cleanup EXIT
# shellcheck disable=SC2086
env HOME="$W" $SERVER_ENV taskset -c 0 dotnet "$BTCLI" axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 \
  --axon.state_path "$W/state" ${SERVER_ARGS:-} > "$W/server.log" 2>&1 &
server=$!
for _ in $(seq 1 2400); do
  grep -q "serving on 127" "$W/server.log" && break
  kill -0 "$server" 2>/dev/null || { echo "first-seconds.sh: the server exited:" >&2; cat "$W/server.log" >&2; exit 1; }
  sleep 0.05
done
port=$(grep -o "serving on 127.0.0.1:[0-9]*" "$W/server.log" | tail -1 | cut -d: -f2)
[[ -n "$port" ]] || { echo "first-seconds.sh: no serving line" >&2; cat "$W/server.log" >&2; exit 1; }
echo "# ${SERVER_ENV:-} ${SERVER_ARGS:-} $CALLERS callers, $DURATION s from the first call"
taskset -c 1 dotnet "$BENCH" axon-load-raw --target "127.0.0.1:$port" --concurrency "$CALLERS" --seconds "$DURATION" --shape 1,16 \
  --network_dim 1024 --presign 60000 --presign_rate 40000 --watch_pid "$server" --per_second | grep -E "^# per second|^\| [0-9]"
