#!/bin/bash
# perf profile of the verification-off echo axon under the lean generator (issue 11): `btcli axon serve --model echo
# --axon.disable_signature_verification` pinned to core 0 (DOTNET_PerfMapEnabled=1, DOTNET_EnableWriteXorExecute=0 so
# JIT'd frames have names), `axon-load-raw` pinned to core 1 for 24 s; after 12 s, `perf record -F 999 -g` of the
# server for 8 s. Writes OUT.data, OUT.info (load average), OUT.load (the generator's row), OUT.dso / OUT.self /
# OUT.incl (top shared objects, exclusive and inclusive symbols). CPU per call = samples (1 ms each) / (req/s × 8).
# Usage: benchmarks/profile-axon.sh OUT [CALLERS]   (BTCLI / BENCH: other builds' dlls; SERVER_ARGS: extra options)
# VERIFY=on: verification on (nonce store in a temp folder), the generator with `--presign PRESIGN` (default 200000)
# for 40 s; perf starts 4 s after the server got busy (the generator signs before its clock starts). Also writes
# OUT.stat (perf stat: fsync/fdatasync calls and context switches over 8 s).
set -u
cd "$(dirname "$0")/.."
OUT=$1; N=${2:-16}
B=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}; BE=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
command -v perf >/dev/null || { echo "profile-axon.sh: perf is required" >&2; exit 2; }
D=$(mktemp -d)
VERIFY=${VERIFY:-off}
if [[ "$VERIFY" == "on" ]]; then mode=(--axon.state_path "$D/state"); load=(--presign "${PRESIGN:-200000}"); secs=40
else mode=(--axon.disable_signature_verification); load=(--unsigned); secs=24; fi
# shellcheck disable=SC2086
DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 taskset -c 0 dotnet "$B" axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 \
  "${mode[@]}" ${SERVER_ARGS:-} > "$D/out" 2> "$D/err" & sp=$!
for _ in $(seq 300); do grep -saq "serving on" "$D/err" && break; sleep 0.2; done
port=$(grep -aoE 'serving on [^ ]+:[0-9]+' "$D/err" | grep -oE '[0-9]+$')
[[ -n "$port" ]] || { echo "profile-axon.sh: the axon did not start:" >&2; cat "$D/err" >&2; kill "$sp" 2>/dev/null; exit 1; }
taskset -c 1 dotnet "$BE" axon-load-raw --target "127.0.0.1:$port" --concurrency "$N" --seconds "$secs" --shape 1,16 --network_dim 1024 "${load[@]}" > "$OUT.load" 2>&1 & lp=$!
if [[ "$VERIFY" == "on" ]]; then
  # Busy = more than 0.2 core over a second (the signing phase leaves the server idle).
  tk=$(getconf CLK_TCK)
  for _ in $(seq 120); do
    a=$(awk '{ print $14 + $15 }' "/proc/$sp/stat"); sleep 1; b=$(awk '{ print $14 + $15 }' "/proc/$sp/stat")
    (( (b - a) * 5 > tk )) && break
  done
  sleep 4
  perf stat -e 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync,context-switches' -p "$sp" -o "$OUT.stat" -- sleep 8 > /dev/null 2>&1 &
else
  sleep 12
fi
echo "load average before perf: $(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT.info"
perf record -F 999 -g -p "$sp" -o "$OUT.data" -- sleep 8 > /dev/null 2>&1
wait "$lp"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT.info"
kill "$sp"; wait "$sp" 2>/dev/null
perf report -i "$OUT.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -8 > "$OUT.dso"
perf report -i "$OUT.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -40 > "$OUT.self"
perf report -i "$OUT.data" --children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -120 > "$OUT.incl"
echo "samples: $(perf script -i "$OUT.data" -F time 2>/dev/null | wc -l) over 8 s; generator: $(grep -E '^\| [0-9]+ \|' "$OUT.load")" >> "$OUT.info"
cat "$OUT.info"
rm -rf "$D"
