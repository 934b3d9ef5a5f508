#!/bin/bash
# User and kernel CPU per call of the verification-off echo axon (issue 11): server on core 0, `axon-load-raw` on core 1
# (4 s unmeasured warm-up at 16 callers, then CALLERS for SECONDS); utime and stime of the server from /proc. The user
# share is what the server's own code costs; the kernel share (loopback TCP, the 64 KB copy, wake-ups) swells with the
# machine's load. One line per run; alternate builds in a loop to compare them side by side.
# Usage: benchmarks/cpu-split.sh LABEL CALLERS SECONDS [VAR=VALUE ...]   (BTCLI / BENCH: other builds' dlls; the
# VAR=VALUE pairs are the server's environment, e.g. DOTNET_TieredPGO=0)
set -u
cd "$(dirname "$0")/.."
L=$1; N=$2; S=$3; shift 3
B=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}; BE=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
D=$(mktemp -d)
env "$@" taskset -c 0 dotnet "$B" axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.disable_signature_verification \
  ${SERVER_ARGS:-} > "$D/out" 2> "$D/err" & sp=$!
for _ in $(seq 300); do grep -saq "serving on" "$D/err" && break; sleep 0.2; done
port=$(grep -aoE 'serving on [^ ]+:[0-9]+' "$D/err" | grep -oE '[0-9]+$')
[[ -n "$port" ]] || { echo "cpu-split.sh: the axon did not start:" >&2; cat "$D/err" >&2; kill "$sp" 2>/dev/null; exit 1; }
taskset -c 1 dotnet "$BE" axon-load-raw --target "127.0.0.1:$port" --concurrency 16 --seconds 4 --shape 1,16 --network_dim 1024 --unsigned > /dev/null 2>&1
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$sp/stat"); t0=$(date +%s%N); l0=$(cut -d' ' -f1 /proc/loadavg)
out=$(taskset -c 1 dotnet "$BE" axon-load-raw --target "127.0.0.1:$port" --concurrency "$N" --seconds "$S" --shape 1,16 --network_dim 1024 --unsigned 2>&1)
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$sp/stat"); t1=$(date +%s%N); l1=$(cut -d' ' -f1 /proc/loadavg)
row=$(grep -E '^\| [0-9]+ \|' <<< "$out"); IFS='|' read -r _ _ rps _ _ _ _ calls _ <<< "$row"; calls=$(echo "$calls" | tr -dc 0-9)
awk -v L="$L" -v N="$N" -v du=$((u1 - u0)) -v ds=$((s1 - s0)) -v c="${calls:-0}" -v r="$rps" -v w=$((t1 - t0)) -v l0="$l0" -v l1="$l1" -v tk="$(getconf CLK_TCK)" 'BEGIN {
  if (c <= 0) { print L, N, "callers: no calls answered"; exit }
  printf "%-10s %4d callers: %6d req/s  user %5.1f  sys %5.1f  total %5.1f us/call  busy %.2f  load %s-%s\n", L, N, r, du*1e6/tk/c, ds*1e6/tk/c, (du+ds)*1e6/tk/c, (du+ds)/tk/(w/1e9), l0, l1 }'
kill "$sp"; wait "$sp" 2>/dev/null; rm -rf "$D"
