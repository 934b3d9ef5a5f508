#!/usr/bin/env python3
"""Timeline of fan-out rounds from a `perf script` dump of sched and syscall tracepoints (benchmarks/timeline-fanout.sh).

A round is found by its requests: every connection sends one request (a sendto of at least --min-request bytes) per
round, so a round starts at the first request on a connection that already sent one in the current round. It ends with
the last answer-sized receive (>= --min-answer bytes) before the next round's first request. Per round (first request
-> last answer) it counts, for the client process only: context switches away from its threads on its core, wake-ups of
its threads, epoll_wait returns, receive calls and those that found the socket empty (EAGAIN), futex calls; and it splits
the client core's time between the client's threads (by thread name), other processes and idle. It also gives the gap
from a round's last answer to the next round's first request. --show N prints the first N rounds event by event,
--gaps N the first N gaps.
"""
import argparse
import bisect
import collections
import re
import statistics

ap = argparse.ArgumentParser()
ap.add_argument("script")
ap.add_argument("pid", help="the client's process id")
ap.add_argument("--cpu", type=int, default=1, help="the client's core")
ap.add_argument("--min-request", type=int, default=200)
ap.add_argument("--min-answer", type=int, default=60000)
ap.add_argument("--show", type=int, default=0)
ap.add_argument("--gaps", type=int, default=0)
a = ap.parse_args()

line_rx = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$")
events = []
with open(a.script, errors="replace") as f:
    for line in f:
        m = line_rx.match(line)
        if m:
            comm, pid, tid, cpu, t, e, rest = m.groups()
            events.append((float(t) * 1e6, comm, pid, int(tid), int(cpu), e.split(":")[-1], rest))
events.sort(key=lambda x: x[0])
times = [x[0] for x in events]
tids = {x[3] for x in events if x[2] == a.pid}
EAGAIN = "0xfffffffffffffff5"


def hexarg(rest, name):
    m = re.search(name + r": (0x[0-9a-f]+)", rest)
    return int(m.group(1), 16) if m else -1


def ret(rest):
    r = int(rest.split()[-1], 16)
    return r - (1 << 64) if r >= 1 << 63 else r


rounds, cur, seen = [], None, set()
for i, (t, comm, pid, tid, cpu, e, rest) in enumerate(events):
    if pid != a.pid:
        continue
    if e == "sys_enter_sendto" and hexarg(rest, "len") >= a.min_request:
        fd = hexarg(rest, "fd")
        if cur is None or fd in seen:
            cur = {"start": t, "sends": 0, "answers": [], "last_send": t}
            rounds.append(cur)
            seen = set()
        seen.add(fd)
        cur["sends"] += 1
        cur["last_send"] = t
    elif e in ("sys_exit_recvmsg", "sys_exit_recvfrom") and cur is not None and ret(rest) >= a.min_answer:
        cur["answers"].append(t)
rounds = [r for r in rounds[1:-1] if r["answers"]]
if not rounds:
    raise SystemExit("no whole rounds found")
width = max(r["sends"] for r in rounds)
rounds = [r for r in rounds if r["sends"] == width and len(r["answers"]) >= width]
print(f"# {a.script}: client pid {a.pid} ({len(tids)} threads seen), {len(rounds)} whole rounds of {width} requests, core {a.cpu}")


def running_at(index):
    for j in range(index - 1, max(-1, index - 50000), -1):
        x = events[j]
        if x[5] == "sched_switch" and x[4] == a.cpu:
            m = re.search(r"next_comm=(.*?) next_pid=(\d+)", x[6])
            return m.group(1), int(m.group(2))
    return None


def who(r):
    if r is None:
        return None
    return r[0] if r[1] in tids else ("idle" if r[1] == 0 else "other processes")


stats = collections.defaultdict(list)
occupancies = []  # per round: the client core's time by who ran
for k, r in enumerate(rounds):
    t0, t1 = r["start"], r["answers"][-1]
    lo, hi = bisect.bisect_left(times, t0), bisect.bisect_right(times, t1)
    seg = events[lo:hi]
    switches = [x for x in seg if x[5] == "sched_switch" and x[4] == a.cpu]
    mine = [x for x in seg if x[2] == a.pid]
    stats["round µs (first request -> last answer)"].append(t1 - t0)
    stats["requests sent µs (first -> last)"].append(r["last_send"] - t0)
    stats["first answer µs"].append(r["answers"][0] - t0)
    stats["context switches away from client threads"].append(
        sum(1 for x in switches if int(re.search(r"prev_pid=(\d+)", x[6]).group(1)) in tids))
    stats["wake-ups of client threads"].append(
        sum(1 for x in seg if x[5] == "sched_wakeup" and int(re.search(r" pid=(\d+)", x[6]).group(1)) in tids))
    stats["epoll_wait returns"].append(sum(1 for x in mine if x[5] == "sys_exit_epoll_wait"))
    stats["receive calls"].append(sum(1 for x in mine if x[5] in ("sys_enter_recvfrom", "sys_enter_recvmsg")))
    stats["receives that found nothing (EAGAIN)"].append(
        sum(1 for x in mine if x[5] in ("sys_exit_recvfrom", "sys_exit_recvmsg") and x[6].strip().endswith(EAGAIN)))
    stats["futex calls"].append(sum(1 for x in mine if x[5] == "sys_enter_futex"))
    occupancy, last, running = collections.Counter(), t0, who(running_at(lo))
    for x in switches:
        if running:
            occupancy[running] += x[0] - last
        m = re.search(r"next_comm=(.*?) next_pid=(\d+)", x[6])
        running, last = who((m.group(1), int(m.group(2)))), x[0]
    if running:
        occupancy[running] += t1 - last
    occupancies.append(occupancy)
    if k + 1 < len(rounds):
        stats["gap µs (last answer -> next first request)"].append(rounds[k + 1]["start"] - t1)
    if k < a.show:
        print(f"## round {k}: {t1 - t0:.0f} µs")
        for x in seg:
            if x[2] == a.pid or (x[4] == a.cpu and x[5] == "sched_switch"):
                print(f"  {x[0] - t0:8.1f} cpu{x[4]} {x[1][:14]:14s} {x[3]} {x[5]} {x[6][:110]}")

for k in range(min(a.gaps, len(rounds) - 1)):
    r, nx = rounds[k], rounds[k + 1]
    end = r["answers"][-1]
    lo, hi = bisect.bisect_left(times, end - 30), bisect.bisect_right(times, nx["start"] + 60)
    print(f"## gap after round {k}: {nx['start'] - end:.0f} µs")
    for x in events[lo:hi]:
        if x[2] == a.pid or (x[4] == a.cpu and x[5] == "sched_switch"):
            print(f"  {x[0] - end:8.1f} cpu{x[4]} {x[1][:14]:14s} {x[3]} {x[5]} {x[6][:110]}")

names = sorted({n for o in occupancies for n in o} | {"idle", "other processes"}, key=lambda n: (n in ("idle", "other processes"), n))
for name in names:
    stats[f"core {a.cpu}: {name} µs"] = [o.get(name, 0.0) for o in occupancies]
print(f"| per round | rounds | mean | p50 | p90 |")
print(f"|---|---:|---:|---:|---:|")
for name, v in stats.items():
    s = sorted(v)
    print(f"| {name} | {len(v)} | {statistics.mean(v):.1f} | {s[len(s) // 2]:.1f} | {s[int(len(s) * 0.9)]:.1f} |")
