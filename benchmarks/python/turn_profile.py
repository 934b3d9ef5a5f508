#!/usr/bin/env python3
"""What the axon's engine thread runs inside long read-loop turns (issue 11: "shed calls answered in < 1 ms"; session 21).

Reads `perf script -F tid,time,ip,sym,dso` output of `perf record -g -k CLOCK_MONOTONIC -p <server>` taken inside a
level of benchmarks/shed-probe.sh (benchmarks/shed-perf.sh does both), the server's thread list ("tid comm" lines) and
the server's probe file (BITTENSOR_SHED_PROBE: the read loops' turns, kind 20, on the same clock). The engine thread is
the server's thread with the most samples. Each of its samples is put in a bucket by the longest read-loop turn that
covers it (turns of different connections overlap: a turn that waits in a send lets others run), and for each bucket
prints its samples, the share of coarse categories (GC, JIT, kernel send / receive / other, the verify, ...) and the
top self and inclusive frames, so that turns over 1 ms can be read against ordinary ones.

Usage: turn_profile.py PERF_SCRIPT_TXT TIDS_TXT SERVER_PROBE [TOP=25]
       turn_profile.py --work SERVER_PROBE   (only what the server did during the turns, by their length)
"""
import collections
import re
import struct
import sys
import bisect

HEAD = re.compile(r'^\s*(\d+)\s+([\d.]+):')
FRAME = re.compile(r'^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$')
MAGIC = b"SHEDPRB1"
BUCKETS = [(0, "outside any turn"), (0.6, "turn < 0.6 ms"), (1.0, "turn 0.6-1 ms"), (2.0, "turn 1-2 ms"), (1e9, "turn > 2 ms")]

CATEGORIES = [  # (name, test on the stack's frames: list of (sym, dso), leaf first) -- first match wins, leaf-most
    ("GC", lambda s, d: "gc_heap" in s or "GCHeap" in s or "WKS::" in s or "SVR::" in s or "GarbageCollect" in s),
    ("JIT / tiering", lambda s, d: "libclrjit" in d or "TieredCompilation" in s or "OnStackReplacement" in s
     or "ThePreStub" in s or "MethodDesc::DoPrestub" in s or "CallCountingManager" in s),
    ("verify (Ed25519/Sr25519)", lambda s, d: "Verif" in s or "Ed25519" in s or "Sr25519" in s or "Ristretto" in s
     or "Curve25519" in s or "Schnorr" in s or "Keccak" in s or "Blake2" in s or "Merlin" in s or "Strobe" in s),
    ("nonce journal", lambda s, d: "Nonce" in s or "Journal" in s),
    ("send (kernel)", lambda s, d: "sendmsg" in s or "tcp_sendmsg" in s or "__sys_sendto" in s or "tcp_write_xmit" in s),
    ("receive (kernel)", lambda s, d: "recvmsg" in s or "recvfrom" in s or "tcp_recvmsg" in s),
    ("epoll (kernel)", lambda s, d: "epoll" in s),
]


def read_probe(path, work=False):
    """The read loops' turns (start, end); with work, also what the server did in each (fields 4-9 of the record:
    calls pumped, bytes sent, GC pause in ns, JIT time in ns, sends that did not complete at once, signatures checked)."""
    data = open(path, "rb").read()
    if not data.startswith(MAGIC):
        sys.exit("not a probe file")
    n = (len(data) - len(MAGIC)) // 80
    recs = struct.unpack_from(f"<{n * 10}q", data, len(MAGIC))
    if work:
        return [tuple(recs[i * 10 + 2:i * 10 + 10]) for i in range(n) if recs[i * 10] == 20]
    return [(recs[i * 10 + 2], recs[i * 10 + 3]) for i in range(n) if recs[i * 10] == 20]


def turn_work(path, w0=None, w1=None):
    """What the server did during its read loops' turns, by the turn's length (session 21's probe fields)."""
    turns = read_probe(path, work=True)
    if w0 is not None:
        turns = [t for t in turns if t[0] >= w0 and t[1] <= w1]
    if not turns:
        print("no turns")
        return
    print(f"\nwhat the server did during its turns ({len(turns)} turns; sums over the server, not only the turn's own connection):")
    print("| turn length | turns | share of turn time | calls pumped | KB sent | GC pause ms | turns with a GC | JIT ms | sends pending | turns with a JIT | signatures |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    total = sum(t[1] - t[0] for t in turns)
    lims = [(0, 0.6), (0.6, 1.0), (1.0, 2.0), (2.0, 1e9)]
    for lo, hi in lims:
        sel = [t for t in turns if lo <= (t[1] - t[0]) / 1e6 < hi]
        if not sel:
            continue
        k = len(sel)
        mean = lambda i: sum(t[i] for t in sel) / k
        print(f"| {lo}-{hi if hi < 1e9 else ''} ms | {k} | {100 * sum(t[1] - t[0] for t in sel) / total:.1f} % | {mean(2):.1f} | {mean(3) / 1024:.1f} | "
              f"{mean(4) / 1e6:.3f} | {sum(1 for t in sel if t[4] > 0)} | {mean(5) / 1e6:.3f} | {mean(6):.2f} | {sum(1 for t in sel if t[5] > 0)} | {mean(7):.1f} |")


def read_samples(path):
    samples = []  # (tid, ns, [(sym, dso)] leaf first)
    cur = None
    for line in open(path, errors="replace"):
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = None
            continue
        m = HEAD.match(line)
        if m and not line.startswith("\t"):
            if cur:
                samples.append(cur)
            cur = (int(m.group(1)), int(round(float(m.group(2)) * 1e9)), [])
            continue
        f = FRAME.match(line)
        if f and cur is not None:
            sym = f.group(2)
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
            cur[2].append((sym, f.group(3)))
    if cur:
        samples.append(cur)
    return samples


def category(stack):
    for sym, dso in stack:
        for name, test in CATEGORIES:
            if test(sym, dso):
                return name
    leaf_sym, leaf_dso = stack[0] if stack else ("?", "?")
    if "kernel" in leaf_dso:
        return "other kernel"
    if leaf_dso.startswith("/tmp/perf-") or leaf_dso.endswith(".map"):
        return "managed (other)"
    if "libcoreclr" in leaf_dso:
        return "runtime (other)"
    return "other native"


def short(sym):
    sym = re.sub(r"\[Optimized\]|\[OptimizedTier1\]|\[Tier0\]|\[Tier1\]|\[PreJIT\]|\[QuickJitted\]|\[OSR\]|\[Instrumented\]", lambda m: m.group(0), sym)
    return sym[:150]


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--work":
        turn_work(sys.argv[2])
        return
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    names = {}
    for line in open(sys.argv[2]):
        tid, _, comm = line.strip().partition(" ")
        if tid.isdigit():
            names[int(tid)] = comm
    samples = read_samples(sys.argv[1])
    if not samples:
        sys.exit("no samples")
    per_tid = collections.Counter(s[0] for s in samples)
    engine = max(per_tid, key=lambda t: per_tid[t])
    w0, w1 = min(s[1] for s in samples), max(s[1] for s in samples)
    print(f"samples {len(samples)} over {(w1 - w0) / 1e6:.0f} ms; by thread: " +
          ", ".join(f"{names.get(t, t)}({t}) {c}" for t, c in per_tid.most_common(8)))
    turns = sorted(t for t in read_probe(sys.argv[3]) if t[1] >= w0 - 50_000_000 and t[0] <= w1)
    if not turns:
        sys.exit("no turns in the perf window (perf without -k CLOCK_MONOTONIC?)")
    inside = [(b - a) / 1e6 for a, b in turns if a >= w0 and b <= w1]
    inside.sort()
    if inside:
        print(f"turns inside the window: {len(inside)}, p50 {inside[len(inside) // 2]:.2f} p99 {inside[int(len(inside) * 0.99)]:.2f} "
              f"max {inside[-1]:.2f} ms; > 1 ms: {sum(1 for x in inside if x > 1)}")
    starts = [a for a, _ in turns]
    maxlen = max(b - a for a, b in turns)
    eng = [s for s in samples if s[0] == engine]
    buckets = collections.defaultdict(list)
    for s in eng:
        t = s[1]
        best = 0.0
        i = bisect.bisect_right(starts, t)
        j = i - 1
        while j >= 0 and t - starts[j] <= maxlen:
            a, b = turns[j]
            if a <= t <= b:
                best = max(best, (b - a) / 1e6)
            j -= 1
        if best == 0:
            name = BUCKETS[0][1]
        else:
            name = next(n for lim, n in BUCKETS[1:] if best < lim)
        buckets[name].append(s[2])
    print(f"engine thread {names.get(engine, engine)} ({engine}): {len(eng)} samples")
    if len(read_probe(sys.argv[3], work=True)[0]) == 8:
        turn_work(sys.argv[3], w0, w1)
    order = [n for _, n in BUCKETS]
    cats = [c for c, _ in CATEGORIES] + ["other kernel", "managed (other)", "runtime (other)", "other native"]
    print("\n| bucket | samples | " + " | ".join(cats) + " |")
    print("|---|---:|" + "---:|" * len(cats))
    for name in order:
        st = buckets.get(name, [])
        if not st:
            continue
        cc = collections.Counter(category(x) for x in st)
        print(f"| {name} | {len(st)} | " + " | ".join(f"{100 * cc[c] / len(st):.1f}" for c in cats) + " |")
    def incl_share(st):
        c = collections.Counter()
        for x in st:
            for sym in set(short(f[0]) for f in x):
                c[sym] += 1
        return {k: v / len(st) for k, v in c.items()} if st else {}
    ordinary = buckets.get("turn < 0.6 ms", []) + buckets.get("turn 0.6-1 ms", [])
    long_ = buckets.get("turn 1-2 ms", []) + buckets.get("turn > 2 ms", [])
    if ordinary and long_:
        a, b = incl_share(ordinary), incl_share(long_)
        print(f"\nframes (inclusive) by share of the engine's samples: turns > 1 ms ({len(long_)}) against turns < 1 ms ({len(ordinary)}), "
              "largest differences first")
        diff = sorted(set(a) | set(b), key=lambda k: -abs(b.get(k, 0) - a.get(k, 0)))
        for k in diff[:top * 2]:
            print(f"  {100 * b.get(k, 0):5.1f} % vs {100 * a.get(k, 0):5.1f} %  {k}")
    for name in order:
        st = buckets.get(name, [])
        if not st:
            continue
        print(f"\n## {name}: {len(st)} samples")
        self_c = collections.Counter(short(x[0][0]) if x else "?" for x in st)
        incl = collections.Counter()
        for x in st:
            for sym in set(short(f[0]) for f in x):
                incl[sym] += 1
        print("  self:")
        for sym, c in self_c.most_common(top):
            print(f"    {100 * c / len(st):5.1f} %  {sym}")
        print("  inclusive:")
        for sym, c in incl.most_common(top * 2):
            print(f"    {100 * c / len(st):5.1f} %  {sym}")


if __name__ == "__main__":
    main()
