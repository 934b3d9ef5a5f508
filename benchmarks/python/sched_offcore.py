#!/usr/bin/env python3
"""Where the axon's socket-engine thread lost its core (issue 11: "shed calls answered in < 1 ms"; session 20).

Reads `perf script` output of `perf record -k CLOCK_MONOTONIC -e sched:sched_switch,sched:sched_wakeup -C <core>`
taken inside a level of benchmarks/shed-probe.sh, and the server's thread list (lines "tid comm", from
/proc/<pid>/task/*/comm, taken before perf starts). The engine thread is the server's thread that ran most. Prints the
core's time by thread, the engine's switches out (preempted: state R; asleep: state S/D), and every stretch it was off
its core longer than MIN_MS with what ran instead (the server's own threads by name, other processes' by comm, idle).
With SERVER_PROBE (the server's BITTENSOR_SHED_PROBE file of the same run) it also prints the read loops' turns inside
the perf window and, over the time the long ones cover (> 1 ms, > 2 ms; their union: turns of different connections
overlap), how long the engine was off its core: the rest of that time is on-core work (the engine running other loops'
events, a GC, a long call) or a receive that waited.
(Both clocks are CLOCK_MONOTONIC in ns: perf with -k CLOCK_MONOTONIC, the probe's Stopwatch on Linux.)

Usage: sched_offcore.py PERF_SCRIPT_TXT TIDS_TXT [MIN_MS=0.3] [SERVER_PROBE]
"""
import collections
import re
import struct
import sys

SWITCH = re.compile(r'^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:\s+prev_comm=(.*?) prev_pid=(\d+) '
                    r'prev_prio=(\d+) prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)')
MAGIC = b"SHEDPRB1"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    perf_txt, tids_txt = sys.argv[1], sys.argv[2]
    min_ms = float(sys.argv[3]) if len(sys.argv) > 3 else 0.3
    probe = sys.argv[4] if len(sys.argv) > 4 else None
    names = {}
    for line in open(tids_txt):
        tid, _, comm = line.strip().partition(' ')
        if tid.isdigit():
            names[int(tid)] = comm
    events = []  # (ns, prev tid, prev comm, prev state, next tid, next comm)
    for line in open(perf_txt):
        m = SWITCH.match(line)
        if m:
            events.append((int(round(float(m.group(4)) * 1e9)), int(m.group(6)), m.group(5), m.group(8),
                           int(m.group(10)), m.group(9)))
    if len(events) < 2:
        sys.exit("no sched_switch events")
    comm = {}
    ran = collections.Counter()
    current, since = None, events[0][0]
    for t, prev, pcomm, _, nxt, ncomm in events:
        comm[prev], comm[nxt] = pcomm, ncomm
        if current is not None:
            ran[current] += t - since
        current, since = nxt, t
    server = [tid for tid in ran if tid in names]
    if not server:
        sys.exit("none of the server's threads ran on this core")
    engine = max(server, key=lambda tid: ran[tid])

    def label(tid):
        if tid == 0:
            return "idle"
        if tid in names:
            return "server:" + names[tid]
        return "other:" + comm.get(tid, "?")

    span = events[-1][0] - events[0][0]
    print(f"perf window {span / 1e6:.0f} ms; engine thread {engine} ({names[engine]}) ran {ran[engine] / 1e6:.1f} ms")
    by_kind = collections.Counter()
    for tid, ns in ran.items():
        by_kind[label(tid)] += ns
    print("the core's time (ms): " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in by_kind.most_common(12)))

    stretches = []  # (out, back, state, Counter label -> ns)
    out, state, inside, last, last_at = None, None, None, None, None
    for t, prev, _, pstate, nxt, _ in events:
        if out is not None and last is not None:
            inside[label(last)] += t - last_at
        if prev == engine:
            out, state, inside = t, pstate, collections.Counter()
        if nxt == engine and out is not None:
            stretches.append((out, t, state, inside))
            out = None
        last, last_at = nxt, t
    preempted = [s for s in stretches if s[2].startswith('R')]
    asleep = [s for s in stretches if not s[2].startswith('R')]
    print(f"engine switched out {len(stretches)} times: preempted {len(preempted)} "
          f"({sum(b - a for a, b, _, _ in preempted) / 1e6:.1f} ms), asleep {len(asleep)} "
          f"({sum(b - a for a, b, _, _ in asleep) / 1e6:.1f} ms)")
    long = [s for s in stretches if (s[1] - s[0]) / 1e6 > min_ms]
    total = collections.Counter()
    for _, _, _, inside in long:
        total.update(inside)
    print(f"off-core stretches > {min_ms} ms: {len(long)}, {sum(b - a for a, b, _, _ in long) / 1e6:.1f} ms; what ran "
          "instead (ms): " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in total.most_common(12)))
    for a, b, st, inside in sorted(long, key=lambda s: s[0] - s[1])[:15]:
        print(f"  {(b - a) / 1e6:5.2f} ms at +{(a - events[0][0]) / 1e6:6.1f} ms ({st}): "
              + ", ".join(f"{k} {v / 1e6:.2f}" for k, v in inside.most_common(4)))
    if probe:
        turns_against(probe, events[0][0], events[-1][0], stretches)


def turns_against(path, w0, w1, stretches):
    raw = open(path, "rb").read()
    if raw[:8] != MAGIC:
        sys.exit(f"{path}: not a raw ShedProbe file")
    n = (len(raw) - 8) // 80
    recs = struct.unpack_from(f"<{n * 10}q", raw, 8)
    turns = [(recs[i * 10 + 2], recs[i * 10 + 3]) for i in range(n)
             if recs[i * 10] == 20 and w0 <= recs[i * 10 + 2] and recs[i * 10 + 3] <= w1]
    if not turns:
        print("no read-loop turns inside the perf window (perf without -k CLOCK_MONOTONIC?)")
        return
    lengths = sorted((b - a) / 1e6 for a, b in turns)
    print(f"read-loop turns inside the perf window: {len(turns)}, p50 {lengths[len(lengths) // 2]:.2f} "
          f"p99 {lengths[int(len(lengths) * 0.99)]:.2f} max {lengths[-1]:.2f} ms")
    for limit in (1.0, 2.0):
        chosen = [(a, b) for a, b in turns if (b - a) / 1e6 > limit]
        # Turns of different connections overlap (a loop waiting in a receive while others run theirs): their union.
        union = []
        for a, b in sorted(chosen):
            if union and a <= union[-1][1]:
                union[-1][1] = max(union[-1][1], b)
            else:
                union.append([a, b])
        off = 0
        what = collections.Counter()
        for a, b in union:
            for x, y, _, inside in stretches:
                overlap = max(0, min(y, b) - max(x, a))
                if overlap:
                    off += overlap
                    for k, v in inside.items():
                        what[k] += v * overlap / max(1, y - x)
        print(f"  turns > {limit} ms: {len(chosen)} ({100 * len(chosen) / len(turns):.1f} %), "
              f"{sum(b - a for a, b in union) / 1e6:.1f} ms of the window; the engine off its core then {off / 1e6:.1f} ms"
              + (": " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in what.most_common(5)) if what else ""))


if __name__ == "__main__":
    main()
