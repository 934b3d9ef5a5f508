#!/usr/bin/env bash
# Idle cost of a clustered miner's nodes (issue 10, "the front's own cost"): the CPU a process burns per second with
# no calls, and where it goes, thread by thread. Starts a direct axon (`btcli axon serve`, no cluster), a front
# (`btcli axon serve --cluster.role front`) and one worker (`btcli axon worker`), all with the echo model on loopback;
# warms each serving process with WARMUP seconds of `axon-load` (so start-up and the JIT of the call path are not
# counted), waits SETTLE seconds, then reads /proc of the three processes over the same IDLE seconds: CPU ms per
# second and context switches per second, per process and per thread name (.NET names its threads: ".NET TP Worker"
# = thread pool, ".NET Timer" = the timer queue, ".NET Long Running Task" = Akka's scheduler loop and dedicated loops,
# DotNetty's event loops, ...); a context switch is a thread going to sleep or being woken: the wake-ups.
#
# Usage (after `dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks`):
#   benchmarks/cluster-idle.sh
#   CONFIG_FRONT=/path/front.conf CONFIG_WORKER=/path/worker.conf benchmarks/cluster-idle.sh   # A/B of settings (--config)
# Environment: IDLE (seconds measured, default 30), WARMUP (seconds of load first, default 3), SETTLE (default 3),
# CONFIG_DIRECT / CONFIG_FRONT / CONFIG_WORKER (a HOCON file given as --config to that process; default none: the
# built-in defaults, i.e. what `btcli axon serve` and `btcli axon worker` run with), SERVER_CPUS / CLIENT_CPUS (taskset
# lists: direct axon and front on SERVER_CPUS, the worker and the load on CLIENT_CPUS), BTCLI, BENCH.
# Figures live here and in benchmarks/results/cluster.md, never in tests; the load average is printed before and after.
set -euo pipefail
cd "$(dirname "$0")/.."

IDLE=${IDLE:-30}
WARMUP=${WARMUP:-3}
SETTLE=${SETTLE:-3}
SERVER_CPUS=${SERVER_CPUS:-}
CLIENT_CPUS=${CLIENT_CPUS:-}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}

for f in "$BTCLI" "$BENCH"; do
  [[ -f "$f" ]] || { echo "cluster-idle.sh: $f not found; build first: dotnet build -c Release src/Bittensor.Cli benchmarks/Bittensor.Benchmarks" >&2; exit 2; }
done
for f in "${CONFIG_DIRECT:-}" "${CONFIG_FRONT:-}" "${CONFIG_WORKER:-}"; do
  [[ -z "$f" || -f "$f" ]] || { echo "cluster-idle.sh: config file $f not found" >&2; exit 2; }
done
direct_cfg=(); front_cfg=(); worker_cfg=()
[[ -n "${CONFIG_DIRECT:-}" ]] && direct_cfg=(--config "$CONFIG_DIRECT")
[[ -n "${CONFIG_FRONT:-}" ]] && front_cfg=(--config "$CONFIG_FRONT")
[[ -n "${CONFIG_WORKER:-}" ]] && worker_cfg=(--config "$CONFIG_WORKER")

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
on_server=(); on_client=()
[[ -n "$SERVER_CPUS" ]] && on_server=(taskset -c "$SERVER_CPUS")
[[ -n "$CLIENT_CPUS" ]] && on_client=(taskset -c "$CLIENT_CPUS")

wait_for() { # file pattern pid what
  for _ in $(seq 1 1200); do
    if grep -qE "$2" "$1"; then return 0; fi
    kill -0 "$3" 2>/dev/null || { echo "cluster-idle.sh: $4 exited:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.1
  done
  echo "cluster-idle.sh: $4 did not print /$2/ within 120 s" >&2; cat "$1" >&2; exit 1
}
port_of() { grep -oE 'serving on [^ ]+:[0-9]+ ' "$1" | grep -oE '[0-9]+ $' | tr -d ' '; }
warm() { "${on_client[@]}" dotnet "$BENCH" axon-load --target "127.0.0.1:$1" --concurrency 8 --seconds "$WARMUP" --shape 1,16 --network_dim 1024 --unsigned >/dev/null || true; }

echo "# cluster-idle: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# configs: direct ${CONFIG_DIRECT:-defaults}, front ${CONFIG_FRONT:-defaults}, worker ${CONFIG_WORKER:-defaults}; IDLE=$IDLE s after WARMUP=$WARMUP s of load"
model=(--model echo --model.delay_ms 0)
"${on_server[@]}" dotnet "$BTCLI" axon serve "${model[@]}" --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.state_path "$work/direct" \
  --axon.disable_signature_verification "${direct_cfg[@]}" >"$work/direct.out" 2>"$work/direct.err" &
direct=$!; pids+=("$direct")
"${on_server[@]}" dotnet "$BTCLI" axon serve --uri //Bob --axon.ip 127.0.0.1 --axon.port 0 --axon.state_path "$work/front" --axon.disable_signature_verification \
  --cluster.role front --cluster.port 0 "${front_cfg[@]}" >"$work/front.out" 2>"$work/front.err" &
front=$!; pids+=("$front")
wait_for "$work/direct.err" 'serving on [^ ]+:[0-9]+ ' "$direct" "the direct axon"
wait_for "$work/front.err" 'cluster front at akka' "$front" "the front"
seed=$(grep -oE 'cluster front at akka\.tcp://[^ ]+' "$work/front.err" | sed 's/cluster front at //')
"${on_client[@]}" dotnet "$BTCLI" axon worker "${model[@]}" --cluster.seed_nodes "$seed" --cluster.port 0 "${worker_cfg[@]}" >"$work/w.out" 2>"$work/w.err" &
worker=$!; pids+=("$worker")
wait_for "$work/front.err" "; 1 workers" "$front" "the front (waiting for its worker)"
warm "$(port_of "$work/direct.err")"
warm "$(port_of "$work/front.err")"
sleep "$SETTLE"

python3 - "$IDLE" "direct axon=$direct" "front=$front" "worker=$worker" <<'EOF'
import collections, os, sys, time
secs = float(sys.argv[1]); procs = [a.split('=') for a in sys.argv[2:]]
tck = os.sysconf('SC_CLK_TCK')
def snap(pid):
    d = {}
    for t in os.listdir(f'/proc/{pid}/task'):
        try:
            comm = open(f'/proc/{pid}/task/{t}/comm').read().strip()
            st = open(f'/proc/{pid}/task/{t}/stat').read()
            f = st[st.rindex(')') + 2:].split()
            sw = sum(int(l.split()[1]) for l in open(f'/proc/{pid}/task/{t}/status') if 'ctxt_switches' in l)
            d[t] = (comm, int(f[11]) + int(f[12]), sw)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return d
before = {pid: snap(pid) for _, pid in procs}; t0 = time.time()
time.sleep(secs)
after = {pid: snap(pid) for _, pid in procs}; el = time.time() - t0
print(f'\n| process | CPU ms/s | context switches/s | threads |\n|---|---:|---:|---:|')
groups = {}
for name, pid in procs:
    g = collections.defaultdict(lambda: [0, 0, 0])
    for t, (comm, cpu, sw) in after[pid].items():
        c0, s0 = before[pid][t][1:] if t in before[pid] else (0, 0)
        g[comm][0] += cpu - c0; g[comm][1] += sw - s0; g[comm][2] += 1
    groups[name] = g
    print(f'| {name} | {sum(v[0] for v in g.values()) / tck * 1e3 / el:.1f} | {sum(v[1] for v in g.values()) / el:.0f} | {len(after[pid])} |')
for name, g in groups.items():
    print(f'\n{name}, by thread name (threads with CPU or wake-ups over {el:.0f} s):\n\n| thread | count | CPU ms/s | context switches/s |\n|---|---:|---:|---:|')
    for comm, (cpu, sw, n) in sorted(g.items(), key=lambda kv: (-kv[1][0], -kv[1][1])):
        if cpu or sw: print(f'| {comm} | {n} | {cpu / tck * 1e3 / el:.1f} | {sw / el:.1f} |')
EOF
echo
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
