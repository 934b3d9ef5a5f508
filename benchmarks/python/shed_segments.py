#!/usr/bin/env python3
"""Where a shed answer's time goes (benchmarks/shed-probe.sh): joins the server's ShedProbe records with the load
generator's --stamps records on (the generator's local port, stream id) and prints the p50 / p99 of each segment,
per level. Both files hold Stopwatch timestamps of the machine's CLOCK_MONOTONIC in ns (.NET on Linux).

Usage: shed_segments.py SERVER_FILE GENERATOR_FILE   (SERVER_FILE '-': the generator's shed latencies alone)
Server records (raw int64s after the magic SHEDPRB1; text lines before session 19): kind port stream readAt decidedAt sendStart sendEnd sendBytes gcPauseNs 0 (kinds 1-5: a shed answer sent; 5: by a shed pass)
              kind start end thread ... (10: journal compaction, 11: fsynced batch, 12: batch written without fsync)
              kind port start end ... (20: a read loop's turn, 21: its wait for a send, 22: for its output to drain)
Generator lines: port stream started sent arrived ended receives, after a "# level N" line.
"""
import array
import bisect
import sys

KINDS = {1: "budget", 2: "in_flight", 3: "at_check", 4: "late", 5: "pass"}
MAGIC = b"SHEDPRB1"


def server_records(path):
    """The server's records as lists of 10 ints: raw little-endian int64s after MAGIC (ShedProbe since session 19), or
    text lines (before). A record of kind -1 counts records the probe dropped (its buffer was full)."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC))
        if head == MAGIC:
            data = array.array("q")
            data.frombytes(f.read())
            if sys.byteorder != "little":
                data.byteswap()
            for i in range(0, len(data) - 9, 10):
                yield data[i:i + 10].tolist()
            return
    for line in open(path):
        if not line.startswith("#"):
            yield [int(x) for x in line.split()]


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def totals(gen_path):
    """Without the server's file: the generator's shed latencies per level (append -> parse), more percentiles."""
    level, rows = None, {}
    for line in open(gen_path):
        if line.startswith("# level"):
            level = int(line.split()[2])
            rows.setdefault(level, [])
            continue
        f = [int(x) for x in line.split()]
        rows[level].append((f[5] - f[2]) * 1e-6)
    for level, v in sorted(rows.items()):
        print(f"{level} callers: {len(v)} shed calls, ms p50 {pct(v, .5):.3f} p90 {pct(v, .9):.3f} p95 {pct(v, .95):.3f} "
              f"p98 {pct(v, .98):.3f} p99 {pct(v, .99):.3f} max {max(v) if v else float('nan'):.3f}")


def main():
    server_path, gen_path = sys.argv[1], sys.argv[2]
    if server_path == "-":
        totals(gen_path)
        return
    sheds = {}
    intervals = {10: [], 11: []}
    loops = {}  # (kind, port) -> [(start, end)]: a read loop's turns (20), send waits (21), drain waits (22)
    for f in server_records(server_path):
        if f[0] in KINDS:
            sheds[(f[1], f[2])] = f
        elif f[0] in intervals:
            intervals[f[0]].append((f[1], f[2]))
        elif f[0] in (20, 21, 22):
            loops.setdefault((f[0], f[1]), []).append((f[2], f[3]))
    for k in intervals:
        intervals[k].sort()
    for k in loops:
        loops[k].sort()

    def loop_overlap(kind, port, a, b):
        """How long the read loop of the connection at port was in a turn (20) / a send wait (21) / a drain wait (22) within [a, b]."""
        iv = loops.get((kind, port), [])
        i = max(0, bisect.bisect_left(iv, (a, a)) - 1)
        total = 0
        while i < len(iv) and iv[i][0] < b:
            total += max(0, min(b, iv[i][1]) - max(a, iv[i][0]))
            i += 1
        return total
    levels = {}
    level = None
    for line in open(gen_path):
        if line.startswith("# level"):
            level = int(line.split()[2])
            levels.setdefault(level, [])
            continue
        f = [int(x) for x in line.split()]
        levels[level].append(f)

    def overlaps(kind, a, b):
        iv = intervals[kind]
        i = bisect.bisect_left(iv, (b, b)) - 1
        while i >= 0 and iv[i][0] >= a - 50_000_000:
            if iv[i][1] >= a and iv[i][0] <= b:
                return True
            i -= 1
        return False

    ms = 1e-6
    for level, rows in sorted(levels.items()):
        seg = {k: [] for k in ["gen append->sent", "sent->server read (in the server's socket)", "read->decided",
                               "decided->send start (admitted calls ahead)", "server send", "server send end->arrival stamp",
                               "arrival->generator parsed (generator's queue)", "total (generator's figure)",
                               "server read->send end (server's part)"]}
        joined = 0
        kinds = {}
        tail_total = []
        for g in rows:
            port, stream, started, sent, arrived, ended, _ = g
            s = sheds.get((port, stream))
            if s is None or not (started <= s[3] <= ended):
                continue
            joined += 1
            kind, _, _, read_at, decided, s0, s1, nbytes, gc, _ = s
            kinds[KINDS[kind]] = kinds.get(KINDS[kind], 0) + 1
            vals = [sent - started, read_at - sent, decided - read_at, s0 - decided, s1 - s0, arrived - s1, ended - arrived,
                    ended - started, s1 - read_at]
            for k, v in zip(seg, vals):
                seg[k].append(v * ms)
            tail_total.append((ended - started, vals, nbytes, gc, started, ended, port, sent, read_at, kind))
        print(f"## {level} callers: {len(rows)} shed calls stamped by the generator, {joined} joined ({kinds})")
        print("| segment | p50 ms | p90 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|---:|")
        for k, v in seg.items():
            print(f"| {k} | {pct(v, .5):.3f} | {pct(v, .9):.3f} | {pct(v, .99):.3f} | {max(v) if v else float('nan'):.3f} |")
        if not tail_total:
            continue
        tail_total.sort(key=lambda x: x[0])
        cut = tail_total[int(0.99 * len(tail_total)):]
        names = list(seg)
        mean = [sum(t[1][i] for t in cut) / len(cut) * ms for i in range(len(names))]
        comp = sum(1 for t in cut if overlaps(10, t[4], t[5]))
        fs = sum(1 for t in cut if overlaps(11, t[4], t[5]))
        gc = sum(1 for t in cut if t[3] > 0)
        comp_all = sum(1 for t in tail_total if overlaps(10, t[4], t[5]))
        print(f"worst 1 % ({len(cut)} calls, total >= {cut[0][0] * ms:.3f} ms), mean per segment: " +
              ", ".join(f"{n.split(' (')[0]} {m:.3f}" for n, m in zip(names, mean)))
        print(f"  of them: during a journal compaction {comp} ({100 * comp / len(cut):.0f} %; all sheds: "
              f"{100 * comp_all / len(tail_total):.1f} %), during an fsynced batch {fs}, a GC pause between decision and send {gc}; "
              f"mean bytes in the answer's send {sum(t[2] for t in cut) / len(cut):.0f}")
        if loops:
            # While the call waited in its socket (sent -> read), where was its connection's read loop: in its own turn
            # (nobody reads a connection's socket during its turn), waiting for a send or for its output to drain (both
            # inside the turn), or parked for its next turn / in a receive (where a shed pass or the engine reads it).
            w = sum(max(0, t[8] - t[7]) for t in cut) / len(cut) * ms
            own = [sum(loop_overlap(k, t[6], t[7], t[8]) for t in cut) / len(cut) * ms for k in (20, 21, 22)]
            by = {}
            for t in cut:
                by[KINDS[t[9]]] = by.get(KINDS[t[9]], 0) + 1
            print(f"  their socket wait (mean {w:.3f} ms): their connection's loop in its own turn {own[0]:.3f} (of it waiting "
                  f"for a send {own[1]:.3f}, for its output to drain {own[2]:.3f}), parked for its turn or in a receive "
                  f"{w - own[0]:.3f}; shed by {by}")
            turns = sorted((e - b0) * ms for (k, _), iv in loops.items() if k == 20 for b0, e in iv if b0 >= rows[0][2])
            if turns:
                print(f"  read-loop turns in the level: {len(turns)}, p50 {pct(turns, .5):.3f} p90 {pct(turns, .9):.3f} "
                      f"p99 {pct(turns, .99):.3f} max {turns[-1]:.3f} ms")
        c = intervals[10]
        if c:
            d = sorted((b - a) * ms for a, b in c)
            print(f"  journal compactions in the file: {len(c)}, p50 {pct(d, .5):.2f} ms, max {d[-1]:.2f} ms")
        print()


if __name__ == "__main__":
    main()
