#!/usr/bin/env python3
"""The rest of a shed tail (benchmarks/shed-probe.sh's files; session 26, h1-jitburst): for the worst 1 % of the level's
shed calls, what coincided with each, and per 100 ms window of the level the JIT (methods, ms), gen-0/gen-1 GCs (the
probe's kind-25 running totals at each read-loop turn's end), nonce-journal compactions (10), fsynced batches (11) and
read-loop turns over 1 ms (20); the shed p99 without the windows of a JIT burst (>= 10 methods or >= 5 ms of JIT in
100 ms) and also without the level's first 0.5 s; then, per window, the worst calls' mean segments (the generator's
append -> send, the server's socket wait, the server's part, the way back, the generator's parse).

Usage: shed_tail.py SERVER_FILE GENERATOR_FILE (one level's files, e.g. OUT/server-on.txt OUT/gen-on.txt)
"""
import os
import sys, bisect, collections
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shed_segments import server_records, KINDS
sp, gp = sys.argv[1], sys.argv[2]
sheds = {}; r25 = []; comp = []; fs = []; turns = []
for f in server_records(sp):
    k = f[0]
    if k in KINDS: sheds[(f[1], f[2])] = f
    elif k == 25: r25.append(f)
    elif k == 10: comp.append((f[1], f[2]))
    elif k == 11: fs.append((f[1], f[2]))
    elif k == 20: turns.append((f[2], f[3], f[1]))
rows = []
for line in open(gp):
    if line.startswith('#'): continue
    rows.append([int(x) for x in line.split()])
g0 = min(r[2] for r in rows); g1 = max(r[5] for r in rows)
j = []
for port, stream, started, sent, arrived, ended, _ in rows:
    s = sheds.get((port, stream))
    if s is None or not (started <= s[3] <= ended): continue
    j.append((ended - started, started, sent, s[3], port))
j.sort(); n = len(j); p99 = j[int(.99 * n)][0]; cut = j[int(.99 * n):]
r25.sort(key=lambda f: f[3])
# per-interval deltas between consecutive kind-25 records (process-wide running totals)
jitiv = []; gciv = []
for a, b in zip(r25, r25[1:]):
    if b[8] > a[8]: jitiv.append((a[3], b[3], b[8] - a[8], b[9] - a[9]))
    if b[6] > a[6] or b[7] > a[7]: gciv.append((a[3], b[3], b[6] - a[6], b[7] - a[7]))
longt = [(s, e, p) for s, e, p in turns if e - s > 1_000_000]
W = 100_000_000
def win(t): return int((t - g0) // W)
agg = collections.defaultdict(lambda: collections.Counter())
for a, b, m, ns in jitiv:
    w = win(b); agg[w]['jitm'] += m; agg[w]['jitus'] += ns // 1000
for a, b, g0d, g1d in gciv:
    w = win(b); agg[w]['gen0'] += g0d; agg[w]['gen1'] += g1d
for a, b in comp: agg[win(a)]['compact'] += 1
for a, b in fs: agg[win(a)]['fsync'] += 1
for s, e, p in longt: agg[win(s)]['turn>1ms'] += 1; agg[win(s)]['maxturn_us'] = max(agg[win(s)]['maxturn_us'], (e - s) // 1000)
for c in cut: agg[win(c[1])]['worst'] += 1
burst = {w for w, c in agg.items() if c['jitm'] >= 10 or c['jitus'] >= 5000}
def ov(iv, a, b):
    i = bisect.bisect_left(iv, (a - 50_000_000,))
    while i < len(iv) and iv[i][0] < b:
        if iv[i][1] > a: return True
        i += 1
    return False
jitiv.sort(); gciv.sort(); comp.sort(); fs.sort(); longt.sort()
cls = collections.Counter()
for tot, st, sent, rd, port in cut:
    if win(st) in burst: cls['JIT-burst window'] += 1
    elif ov(jitiv, sent, rd): cls['other JIT in its wait'] += 1
    elif ov(gciv, sent, rd): cls['a GC in its wait'] += 1
    elif ov(comp, sent, rd): cls['a compaction in its wait'] += 1
    elif ov(longt, sent, rd): cls['a turn > 1 ms in its wait'] += 1
    elif ov(fs, sent, rd): cls['an fsynced batch in its wait'] += 1
    elif st - g0 < 300_000_000: cls['level first 0.3 s'] += 1
    else: cls['none of these'] += 1
rest = sorted(t for t, st, *_ in j if win(st) not in burst)
steady = sorted(t for t, st, *_ in j if win(st) not in burst and st - g0 >= 500_000_000)
print(f"sheds {n}; p99 {p99/1e6:.3f} ms; JIT-burst windows (>=10 methods or >=5 ms JIT per 100 ms): {sorted(w/10 for w in burst)}; "
      f"p99 without them {rest[int(.99*len(rest))]/1e6:.3f}; also without the first 0.5 s {steady[int(.99*len(steady))]/1e6:.3f}")
inl = lambda iv: [x for x in iv if g0 <= x[1] <= g1]
print(f"in the level ({(g1-g0)/1e9:.1f} s): JIT {sum(x[2] for x in inl(jitiv))} methods {sum(x[3] for x in inl(jitiv))/1e6:.1f} ms; gen0 {sum(x[2] for x in inl(gciv))} gen1 {sum(x[3] for x in inl(gciv))}; compactions {len(inl(comp))}; fsynced batches {len(inl(fs))}; turns>1ms {len(inl(longt))} of {len(inl(turns))}")
print("worst 1 % by first coincidence:", dict(cls.most_common()))
print("window(s) worst jitM jit_ms gen0 gen1 compact fsync turns>1ms maxturn_ms")
for w in sorted(agg):
    c = agg[w]
    if c['worst'] >= 8 or c['jitm'] >= 10:
        print(f"{w/10:5.1f} {c['worst']:5d} {c['jitm']:4d} {c['jitus']/1000:6.2f} {c['gen0']:4d} {c['gen1']:4d} {c['compact']:7d} {c['fsync']:5d} {c['turn>1ms']:9d} {c['maxturn_us']/1000:8.2f}")

import collections
j2 = []
for port, stream, started, sent, arrived, ended, _ in rows:
    s = sheds.get((port, stream))
    if s is None or not (started <= s[3] <= ended): continue
    j2.append((ended - started, started, sent, s[3], s[6], arrived, ended))
j2.sort(); cut2 = j2[int(.99*len(j2)):]
acc = collections.defaultdict(lambda: [0]*6)
for tot, st, sent, rd, se, arr, end in cut2:
    a = acc[int((st-g0)//100_000_000)]
    a[0] += 1; a[1] += sent-st; a[2] += rd-sent; a[3] += se-rd; a[4] += arr-se; a[5] += end-arr
print("win  n  append->sent  sent->read  read->sendEnd  sendEnd->arrival  arrival->parsed (mean ms)")
for w in sorted(acc):
    a = acc[w]
    if a[0] >= 8: print(f"{w/10:4.1f} {a[0]:4d}" + "".join(f" {x/a[0]/1e6:8.3f}" for x in a[1:]))
