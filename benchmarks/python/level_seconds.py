#!/usr/bin/env python3
"""A level's seconds (session 23, h1-firstsec: "the verified 1,024 level's first second"): from the generator's --stamps
file (and optionally the server's ShedProbe file), per second of a level: shed calls, their p50 / p99 (append -> parse),
and the p99 without the level's first measured second; with the probe file also, per second (and per 250 ms in the first
two), the read loops' turns (count, p99, turns > 1 ms), and the server's running totals at turns' ends (ShedProbe kind
25): sr25519 key tables built, signatures verified without a key's tables, gen-0 / gen-1 collections, methods the JIT
compiled and its compile time.
The level's start (t = 0) is the first server turn after the idle gap (the generator presigning) before the level's first
stamp; without the probe file, the first stamp minus 1 s (axon-load-raw's warm-up: no stamps in the level's first second).

Usage: level_seconds.py STAMPS_FILE [PROBE_FILE] [--level 1024]
"""
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from shed_segments import server_records, pct  # noqa: E402


def stamps(path, level):
    rows, cur = [], None
    for line in open(path):
        if line.startswith("# level"):
            cur = int(line.split()[2])
            continue
        if cur == level:
            f = [int(x) for x in line.split()]
            rows.append((f[2], (f[5] - f[2]) * 1e-6))
    return rows


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    level = 1024
    if "--level" in sys.argv:
        level = int(sys.argv[sys.argv.index("--level") + 1])
    sheds = stamps(args[0], level)
    if not sheds:
        print(f"no stamps for level {level}")
        return
    first = min(s for s, _ in sheds)
    turns, keys = [], []
    if len(args) > 1:
        for f in server_records(args[1]):
            if f[0] == 20:
                turns.append((f[2], f[3], f[6], f[7]))
            elif f[0] == 25:
                keys.append((f[3], f[4], f[5], f[6], f[7], f[8], f[9]))
        turns.sort()
        keys.sort()
    t0 = first - 1_000_000_000
    if turns:
        before = [t for t in turns if t[0] < first]
        gap_at = None
        for a, b in zip(before, before[1:]):
            if b[0] - a[1] > 300_000_000:
                gap_at = b[0]
        if gap_at is not None:
            t0 = gap_at
    print(f"level {level}: {len(sheds)} shed calls stamped; level start = first stamp - {(first - t0) / 1e9:.3f} s")
    lat = lambda lo, hi: [l for s, l in sheds if lo <= (s - t0) / 1e9 < hi]
    allv = [l for _, l in sheds]
    first_sec = max(1, round((first - t0) / 1e9))  # the generator records from its 1-s warm-up on
    rest = [l for s, l in sheds if (s - t0) / 1e9 >= first_sec + 1]
    print(f"shed p50 / p99 / max ms: all {pct(allv, .5):.3f} / {pct(allv, .99):.3f} / {max(allv):.3f}; "
          f"without the first measured second [{first_sec}, {first_sec + 1}) s: {pct(rest, .5):.3f} / {pct(rest, .99):.3f} ({len(rest)} calls)")

    def at(t):  # running totals at the last turn end <= t
        lo, hi, best = 0, len(keys) - 1, None
        while lo <= hi:
            m = (lo + hi) // 2
            if keys[m][0] <= t:
                best = keys[m]
                lo = m + 1
            else:
                hi = m - 1
        return best

    print("| from s | to s | sheds | shed p50 ms | shed p99 ms | turns | turn p99 ms | turns > 1 ms | turns with GC (pause sum ms) | turns with JIT | tables built | verifies without tables | gen-0 | gen-1 | JIT methods | JIT ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    edges = [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 3.0, 4.0, 5.0, 6.0]
    end_all = max(s for s, _ in sheds)
    edges = [e for e in edges if t0 + e * 1e9 <= end_all + 1e9]
    for lo, hi in zip(edges, edges[1:]):
        v = lat(lo, hi)
        a, b = t0 + lo * 1e9, t0 + hi * 1e9
        tt = [t for t in turns if a <= t[0] < b]
        lens = [(t[1] - t[0]) * 1e-6 for t in tt]
        gc = [t for t in tt if t[2] > 0]
        jit = [t for t in tt if t[3] > 0]
        k0, k1 = at(a), at(b)
        if k0 is None and keys:
            k0 = (0,) + tuple(keys[0][1:])  # before the first turn: the first record's totals
        d = [k1[i] - k0[i] for i in range(1, 7)] if (k0 and k1) else [float("nan")] * 6
        print(f"| {lo:.2f} | {hi:.2f} | {len(v)} | {pct(v, .5):.3f} | {pct(v, .99):.3f} | {len(tt)} | {pct(lens, .99):.2f} | "
              f"{sum(1 for l in lens if l > 1)} | {len(gc)} ({sum(t[2] for t in gc) / 1e6:.1f}) | {len(jit)} | "
              f"{d[0]} | {d[1]} | {d[2]} | {d[3]} | {d[4]} | {d[5] / 1e6:.1f} |")


if __name__ == "__main__":
    main()
