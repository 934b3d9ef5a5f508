#!/usr/bin/env bash
# The kernel's floor for the dendrite fan-out's client CPU per answer (issue 11: "≤ 30 µs CPU per answered request").
# A bare TCP server (`Bittensor.Benchmarks socket-floor server`: one thread per connection, reads a 512-byte request,
# answers with one send of 64 KiB) pinned to core 0, and bare clients (`socket-floor client`: N connections, each round
# one request per connection, then the 64 KiB answer of each read into that connection's own preallocated array)
# pinned to core 1 — the shape of `benchmarks/fanout.sh` (FARM=1) without HTTP/2, protobuf, signing or actors. For each
# variant (what a real client controls: read size, one recv(MSG_WAITALL) per answer, SO_RCVBUF, TCP_QUICKACK,
# TCP_NODELAY, .NET's async socket engine inline or on the pool; since session 18 `epoll`: a client-owned event loop, one
# thread with its own epoll and non-blocking send/recv, and `epoll_handoff`: that loop on a thread of its own with the
# rounds handed to it from the caller's thread, Linux x86-64 only, not in the default list) and each connection count it prints one markdown row:
# round p50/p99, the client's CPU per answer from /proc/self/stat (utime + stime, and the split), its context switches
# per answer, the server's CPU per answer. Then a user-space memcpy of 64 KiB (hot and cold) as an anchor. PERF=1 also
# attaches `perf stat` and `perf record -g` to one long client run per PERF_VARIANTS entry and lists where the client's
# CPU goes (the receive copy, tcp_recvmsg, the softirq work of the loopback that runs in the client's own syscalls, the
# server's data transmitted from the client's ACK).
#
# Usage (after `dotnet build -c Release benchmarks/Bittensor.Benchmarks/Bittensor.Benchmarks.csproj`):
#   benchmarks/socket-floor.sh                                   # every variant, 16 and 64 connections
#   COUNTS=64 VARIANTS="blocking async" ROUNDS=5000 benchmarks/socket-floor.sh
#   PERF=1 PERF_VARIANTS="blocking async" benchmarks/socket-floor.sh
# Environment: COUNTS (comma list), ROUNDS, WARMUP, VARIANTS (names below), ANSWER (bytes, default 65536), REQUEST
# (default 512), SERVER_CORE (0), LOAD_CORE (1), SERVER_ARGS (extra `socket-floor server` options, e.g. "--sndbuf
# 4194304"), BENCH (the harness dll), PERF, PERF_VARIANTS, PERF_COUNT (connections profiled, default 64), PERF_SECONDS
# (default 8), OUT (directory for perf files, default a temporary one, removed).
# The machine may be shared: every row carries the load average before / after; quote it next to any figure.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNTS=${COUNTS:-16,64}
ROUNDS=${ROUNDS:-2000}
WARMUP=${WARMUP:-300}
ANSWER=${ANSWER:-65536}
REQUEST=${REQUEST:-512}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
SERVER_ARGS=${SERVER_ARGS:-}
BENCH=${BENCH:-benchmarks/Bittensor.Benchmarks/bin/Release/net10.0/Bittensor.Benchmarks.dll}
VARIANTS=${VARIANTS:-blocking read16k waitall rcvbuf128k rcvbuf4m quickack nodelay0 async async_pool}
PERF=${PERF:-0}
PERF_VARIANTS=${PERF_VARIANTS:-blocking async}
PERF_COUNT=${PERF_COUNT:-64}
PERF_SECONDS=${PERF_SECONDS:-8}

[[ -f "$BENCH" ]] || { echo "socket-floor.sh: $BENCH not found; build first: dotnet build -c Release benchmarks/Bittensor.Benchmarks/Bittensor.Benchmarks.csproj" >&2; exit 2; }
command -v taskset >/dev/null || { echo "socket-floor.sh: taskset (util-linux) is required" >&2; exit 2; }
[[ "$PERF" != 1 ]] || command -v perf >/dev/null || { echo "socket-floor.sh: PERF=1 needs perf (linux-perf)" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 ]] || { echo "socket-floor.sh: ROUNDS must be a positive integer" >&2; exit 2; }

# The client options and environment of each variant.
INLINE="DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1"
POOL="DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0"
variant() {
  case "$1" in
    blocking) echo "$INLINE|--mode blocking" ;;                    # one thread, recv() of up to 64 KiB until the answer is in
    read16k) echo "$INLINE|--mode blocking --read 16384" ;;        # recv() of at most 16 KiB at a time
    waitall) echo "$INLINE|--mode blocking --waitall" ;;           # one recv(MSG_WAITALL) per answer
    rcvbuf128k) echo "$INLINE|--mode blocking --rcvbuf 131072" ;;  # SO_RCVBUF set before connect
    rcvbuf4m) echo "$INLINE|--mode blocking --rcvbuf 4194304" ;;
    sndbuf4m) echo "$INLINE|--mode blocking --sndbuf 4194304" ;;
    quickack) echo "$INLINE|--mode blocking --quickack" ;;         # TCP_QUICKACK before every recv
    nodelay0) echo "$INLINE|--mode blocking --nodelay 0" ;;        # Nagle on for the requests
    async) echo "$INLINE|--mode async" ;;                          # Socket.ReceiveAsync, completions inline (as btcli runs)
    async_pool) echo "$POOL|--mode async" ;;                       # Socket.ReceiveAsync, completions on the thread pool
    async_rcvbuf4m) echo "$INLINE|--mode async --rcvbuf 4194304" ;;
    epoll) echo "$INLINE|--mode epoll" ;;                          # one thread, its own epoll, non-blocking send/recv (session 18)
    epoll_handoff) echo "$INLINE|--mode epoll_handoff" ;;          # the same loop on a thread of its own; the caller hands rounds over (eventfd)
    epoll_reader) echo "$INLINE|--mode epoll_reader" ;;            # the caller sends, the loop thread only receives (the lean client's shape)
    async_reader) echo "$INLINE|--mode async_reader" ;;            # the caller sends, .NET's socket engine receives (inline): today's shape
    *) return 1 ;;
  esac
}
for v in $VARIANTS $([[ "$PERF" == 1 ]] && echo "$PERF_VARIANTS"); do
  variant "$v" >/dev/null || { echo "socket-floor.sh: unknown variant '$v' (blocking read16k waitall rcvbuf128k rcvbuf4m sndbuf4m quickack nodelay0 async async_pool async_rcvbuf4m epoll epoll_handoff epoll_reader async_reader)" >&2; exit 2; }
done

work=$(mktemp -d)
server=""
client=""
cleanup() {
  [[ -n "$client" ]] && kill "$client" 2>/dev/null || true
  [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
  [[ -n "$server" ]] && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# shellcheck disable=SC2086
taskset -c "$SERVER_CORE" dotnet "$BENCH" socket-floor server --request "$REQUEST" --answer "$ANSWER" $SERVER_ARGS 2>"$work/server.err" &
server=$!
port=""
for _ in $(seq 1 600); do
  port=$(grep -oE 'serving on [^ ]+:[0-9]+' "$work/server.err" | grep -oE '[0-9]+$' || true)
  [[ -n "$port" ]] && break
  kill -0 "$server" 2>/dev/null || { echo "socket-floor.sh: the server exited:" >&2; cat "$work/server.err" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { echo "socket-floor.sh: the server did not report its port within 60 s" >&2; exit 1; }

echo "# socket-floor: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cpus ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), kernel $(uname -r), load average $(loadavg)"
echo "# server: taskset -c $SERVER_CORE dotnet $BENCH socket-floor server --request $REQUEST --answer $ANSWER $SERVER_ARGS"
echo "# clients: <variant env> taskset -c $LOAD_CORE dotnet $BENCH socket-floor client --target 127.0.0.1:<port> --connections $COUNTS --rounds $ROUNDS --warmup $WARMUP --request $REQUEST --answer $ANSWER <variant options> --pids <server>"
echo "# tcp_rmem $(cat /proc/sys/net/ipv4/tcp_rmem | xargs), tcp_wmem $(cat /proc/sys/net/ipv4/tcp_wmem | xargs), lo mtu $(cat /sys/class/net/lo/mtu)"
echo
header_done=0
for v in $VARIANTS; do
  spec=$(variant "$v")
  env_part=${spec%%|*}; opts=${spec#*|}
  # shellcheck disable=SC2086
  out=$(env $env_part taskset -c "$LOAD_CORE" dotnet "$BENCH" socket-floor client --target "127.0.0.1:$port" --connections "$COUNTS" \
    --rounds "$ROUNDS" --warmup "$WARMUP" --request "$REQUEST" --answer "$ANSWER" $opts --pids "$server" --label "$v") \
    || { echo "socket-floor.sh: the $v client failed:" >&2; echo "$out" >&2; exit 1; }
  if [[ $header_done == 0 ]]; then grep -E '^\| client|^\|---' <<< "$out"; header_done=1; fi
  grep -E '^\| [a-z]' <<< "$out" | grep -v '^| client' || { echo "socket-floor.sh: no row from $v:" >&2; echo "$out" >&2; exit 1; }
done
echo
echo "| anchor | hot | cold | load |"
echo "|---|---|---|---|"
taskset -c "$LOAD_CORE" dotnet "$BENCH" socket-floor memcpy --size "$ANSWER"

if [[ "$PERF" == 1 ]]; then
  OUTDIR=${OUT:-$work}
  mkdir -p "$OUTDIR"
  for v in $PERF_VARIANTS; do
    spec=$(variant "$v")
    env_part=${spec%%|*}; opts=${spec#*|}
    # shellcheck disable=SC2086
    env $env_part DOTNET_PerfMapEnabled=1 taskset -c "$LOAD_CORE" dotnet "$BENCH" socket-floor client --target "127.0.0.1:$port" \
      --connections "$PERF_COUNT" --rounds 10000000 --warmup 500 --request "$REQUEST" --answer "$ANSWER" $opts --label "$v" > "$work/perf-$v.out" 2>&1 &
    client=$!
    sleep 4
    kill -0 "$client" 2>/dev/null || { echo "socket-floor.sh: the $v client exited:" >&2; cat "$work/perf-$v.out" >&2; exit 1; }
    before=$(loadavg)
    perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p "$client" -o "$OUTDIR/floor-$v.stat" -- sleep "$PERF_SECONDS" >/dev/null 2>&1 || true
    perf record -F 999 -g -p "$client" -o "$OUTDIR/floor-$v.perf" -- sleep "$PERF_SECONDS" > "$work/perf-$v.collect" 2>&1 || true
    after=$(loadavg)
    kill "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    client=""
    echo
    echo "## perf, $v, $PERF_COUNT connections ($(date -u '+%H:%M:%S') UTC, load average $before -> $after)"
    echo '```'
    grep -E 'task-clock|context-switches|cpu-migrations|page-faults|seconds time elapsed' "$OUTDIR/floor-$v.stat" || true
    echo "# shared objects (exclusive)"
    perf report -i "$OUTDIR/floor-$v.perf" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -8 || true
    echo "# symbols (exclusive)"
    perf report -i "$OUTDIR/floor-$v.perf" --no-children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -20 || true
    echo "# kernel paths (inclusive: the share of samples with the symbol on the stack)"
    perf report -i "$OUTDIR/floor-$v.perf" --children --sort sym --stdio -g none 2>/dev/null \
      | grep -E '\] (__x64_sys_recvfrom|__x64_sys_recvmsg|__x64_sys_sendto|__x64_sys_epoll_wait|tcp_recvmsg|_copy_to_iter|tcp_sendmsg|tcp_cleanup_rbuf|__tcp_send_ack|tcp_write_xmit|__tcp_push_pending_frames|tcp_ack|tcp_data_snd_check|__do_softirq|handle_softirqs|net_rx_action|do_softirq|__local_bh_enable_ip|tcp_v4_rcv|tcp_rcv_established|loopback_xmit|schedule|__schedule)$' | head -30 || true
    echo "samples: $(perf script -i "$OUTDIR/floor-$v.perf" -F time 2>/dev/null | wc -l || true)"
    echo '```'
  done
fi
echo
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(loadavg)"
