#!/bin/bash
# Server CPU per refused call (issue 13 A), no legitimate caller: `btcli axon serve --model echo` pinned to core 0, the
# project's axon-flood (64 tasks, --no_legit) pinned to core 1 for SECONDS; CPU = utime + stime of the server from
# /proc over the whole flood (its start included), divided by the flood's calls. Environment passes to the server
# (e.g. DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=70 for the runtime's default spinning); the generator runs without
# those knobs. With a third argument `perf`: `perf record -F 999 -g` of the server into /tmp/refused-KIND.data (set
# DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 DOTNET_ReadyToRun=0 to name JIT'd frames).
# KIND impersonate: bad signatures under a hotkey the axon knows (the generator makes one good call with it first;
# auth.failed_signature_hold is what keeps these from costing a verify each). SERVER_ARGS: extra `axon serve` options
# (e.g. "--axon.transport kestrel", "--axon.failed_signature_hold 0").
# Usage: benchmarks/refused-cpu.sh unsigned|badsig|impersonate SECONDS [perf]   (BTCLI / BENCH: paths of other builds' dlls)
cd "$(dirname "$0")/.."
B=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}; BE=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
D=$(mktemp -d)
taskset -c 0 dotnet $B axon serve --model echo --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.state_path $D/state ${SERVER_ARGS:-} > $D/out 2>$D/err & sp=$!
for i in $(seq 300); do grep -aq "serving on" $D/err 2>/dev/null && break; sleep 0.2; done
port=$(grep -aoE 'serving on [^ ]+:[0-9]+' $D/err | grep -oE '[0-9]+$')
env -u DOTNET_ThreadPool_UnfairSemaphoreSpinLimit -u DOTNET_ReadyToRun -u DOTNET_PerfMapEnabled taskset -c 1 dotnet $BE axon-flood --target 127.0.0.1:$port --kind badsig --seconds 4 --flooders 16 --no_legit >/dev/null 2>&1
c0=$(awk '{print $14+$15}' /proc/$sp/stat); t0=$(date +%s%N)
env -u DOTNET_ThreadPool_UnfairSemaphoreSpinLimit -u DOTNET_ReadyToRun -u DOTNET_PerfMapEnabled taskset -c 1 dotnet $BE axon-flood --target 127.0.0.1:$port --kind $1 --seconds $2 --flooders 64 --no_legit > $D/flood.out 2>&1 &
fp=$!
if [[ "$3" == "perf" ]]; then sleep 3; perf record -F 999 -g -p $sp -o /tmp/refused-$1.data -- sleep $(( $2 - 4 )) >/dev/null 2>&1; fi
wait $fp
c1=$(awk '{print $14+$15}' /proc/$sp/stat); t1=$(date +%s%N)
calls=$(grep -E '^\| ' $D/flood.out | awk -F'|' '{gsub(/ /,"",$7); print $7}')
echo "$1 ${SERVER_ARGS:+[$SERVER_ARGS] }${DOTNET_ThreadPool_UnfairSemaphoreSpinLimit:+spin=$DOTNET_ThreadPool_UnfairSemaphoreSpinLimit} calls=$calls cpu_us_per_call=$(awk -v d=$((c1-c0)) -v c=$calls 'BEGIN{printf "%.1f", d/100*1e6/c}') busy=$(awk -v d=$((c1-c0)) -v w=$((t1-t0)) 'BEGIN{printf "%.2f", d/100/(w/1e9)}') load=$(cut -d' ' -f1 /proc/loadavg)"
kill $sp; wait $sp 2>/dev/null; rm -rf $D
