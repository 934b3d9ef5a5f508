namespace Bittensor.Protocol.Lean;

/// <summary>
/// Admission set by measured waiting (issue 11's overload tail; docs/axon.md "Admission by waiting"): a CoDel-like rule
/// over the wait a call spent before the server decided on it. Under overload the queue is mostly in the sockets, before
/// the server reads a call, where <c>limits.calls_in_flight</c> cannot count it (1,024 callers: ~400 calls in TCP
/// against ≤ 64 counted). Three waits are measured: the <b>lag</b> of the server's event loop — how long an event that
/// became ready waited until the loop ran it, sampled by a probe byte through the read turns' wake-up pair (or a
/// pool work item) at most every <see cref="ProbeEvery"/> while reads happen —, the <b>check wait</b>: how long the
/// latest asynchronous header check took (with verification on, the batch verifier's queue: under overload the calls
/// queue there, read and checked at once but decided milliseconds later; <see cref="CheckTook"/>), and, per call, the
/// time from the read that brought its HEADERS to its check. A call's wait is the latest lag plus the latest check wait
/// plus its own time since its read.
/// <para>When every wait measured has stayed above <see cref="Target"/> for <see cref="Interval"/> (a standing queue,
/// not a burst), the rule is engaged: from then on a call whose own wait is above the target is shed (answered from
/// its headers, no model work) and one below it is admitted; the rule disengages once the waits stayed below the target
/// for an interval, or when nothing was measured for an interval (the server went quiet). Every connection's calls are
/// judged by the same lag, so sheds spread over the connections in proportion to their calls.</para>
/// <para><b>The server's own work, not the host's time slices</b> (session 18, when the rule became the default): the
/// lag and the check wait count only as much of their wall time as the server itself spent working meanwhile — the
/// <see cref="Work"/> clock (the process's CPU time) moved over the probe's flight, or over the check — because only
/// that part is a queue of calls that shedding can shorten. A server sharing its core with another process (a model
/// training beside it: a validator's 16 calls then wait ~3 ms for each of the other process's time slices), or a check
/// waiting for the disk (the nonce journal's fsync), waits long while its queue of calls is short; such a wait is the
/// host's, and the rule must not engage on it. Under overload the server is busy for the whole wait, so the work is
/// the wait and nothing changes there.</para>
/// Lock-free and approximate: the fields are read and written by the read loops and the probe's completion; a race
/// between two samples only moves a stamp by one sample.
/// </summary>
internal sealed class WaitAdmission
{
    private long _aboveSince; // first sample of the current run above the target; 0: the last sample was below
    private long _belowSince; // first sample of the current run at or below the target; 0: the last one was above
    private long _lastSample; // when the last sample was taken
    private int _engaged;
    private long _lag; // the latest probe's lag
    private long _lagAt; // when it was measured
    private long _probeAt; // when the outstanding probe was sent; 0: none outstanding
    private long _probeWork; // the work clock when it was sent; NotRead: not read (the last probe's flight was quiet)
    private int _quietLast; // the last probe's flight was at most QuietFlight: the next one is sent without reading the work clock
    private long _workReads; // times the work clock was read (tests)
    private long _lastProbe;
    private long _check; // the latest asynchronous header check's duration (the batch verifier's queue)
    private long _checkAt; // when it completed
    private int _checking; // asynchronous header checks begun and not yet completed
    private long _shed;
    private long _engagements;
    private long _engagedAt; // when the rule last engaged (at-read budget: the start of its first interval)
    private long _overAt; // at-read budget: the last read that had more calls than its budget
    private long _reads; // at-read budget: reads decided while engaged (tests and probes)
    private readonly Func<long>? _work;
    private readonly LagShare? _share;

    /// <param name="target">The wait above which, once it stayed there for an interval, calls are shed (timestamp units).</param>
    /// <param name="interval">How long the waits must stay above (below) the target to engage (disengage) the rule.</param>
    /// <param name="perRead">
    /// The at-read budget (<see cref="PerRead"/>): while engaged, each read admits at most this many calls and sheds the
    /// rest of it at once; 0: the per-call rule (a call is shed when its own wait is over the target).
    /// </param>
    /// <param name="work">
    /// The server's own work so far, in the same units as the timestamps (<see cref="Work"/>: the process's CPU time); null:
    /// every wait is the server's own (the wall clock's; tests on a driven clock).
    /// </param>
    /// <param name="share">
    /// The lag samples of the other servers of this process (<see cref="LagShare"/>): while more than one rule has joined
    /// it, a probe one of them sent is every rule's sample, and a rule whose probe is due sends none while another's is
    /// out. Null: this rule probes on its own (tests on a driven clock).
    /// </param>
    public WaitAdmission(long target, long interval, int perRead = 0, Func<long>? work = null, LagShare? share = null)
    {
        _work = work;
        _share = share;
        share?.Join();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(target);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(interval);
        ArgumentOutOfRangeException.ThrowIfNegative(perRead);
        Target = target;
        Interval = interval;
        PerRead = perRead;
        ProbeEvery = Math.Max(1, target / 2);
        QuietFlight = Math.Max(1, target / 4);
        QuietProbeEvery = 4 * ProbeEvery;
    }

    /// <summary>
    /// How often the lag is probed at most after a probe whose flight was quiet (<see cref="QuietFlight"/>): twice the
    /// target (session 21). A quiet flight says the loop has no queue; the rule engages only after an interval of waits
    /// over the target (50 × <see cref="ProbeEvery"/> by default), so a queue that builds up is seen at most this much
    /// later, and from its first long flight on the probes come every <see cref="ProbeEvery"/> again. A server with a
    /// call every ~0.5 ms per connection (the fan-out's shape) sent a probe — a byte through the read turns' wake-up
    /// pair, its receive and re-arm on the engine — every ~2 calls.
    /// </summary>
    public long QuietProbeEvery { get; }

    private const long NotRead = long.MinValue;

    /// <summary>
    /// A probe's flight up to this long (a quarter of the target) is its lag as it is, without the work clock: below the
    /// target however much of it was another process's (session 21). The work clock is read only for a probe sent after
    /// one whose flight was longer (and for the first): under a queue, as before, every probe reads it twice; a quiet
    /// server — one call per connection, a validator's round — reads it never. Each read is a <c>getrusage</c> that sums
    /// every thread of the process (~1 µs; two per probe, a probe every ~2 calls at ~2 calls per ms was ~1.3 µs of the
    /// axon farm's 25 µs per call).
    /// </summary>
    public long QuietFlight { get; }

    /// <summary>Times the work clock was read (tests).</summary>
    public long WorkReads => Interlocked.Read(ref _workReads);

    /// <summary>
    /// The at-read budget (<c>limits.admit_per_read</c>; docs/axon.md "Overload: admission by waiting"): while the rule
    /// is engaged, the calls of one read are decided at that read — the first <see cref="PerRead"/> admitted, the rest
    /// answered NucleusFull in that read's send — and each connection reads once per read turn, so a call waits in its
    /// socket about one round of the connections' turns and an admitted one that plus at most this many calls ahead of
    /// it. The round's work grows with the connections that are ready (this many calls each), so many connections keep
    /// their batching. The rule disengages once an interval passed in which no read had more calls than this (not
    /// when the waits drop below the target: the rule itself holds them there). 0: the per-call rule.
    /// </summary>
    public int PerRead { get; }

    /// <summary>Reads decided by the at-read budget (tests and probes).</summary>
    public long BudgetReads => Interlocked.Read(ref _reads);

    /// <summary>The target wait (timestamp units).</summary>
    public long Target { get; }

    /// <summary>The interval (timestamp units).</summary>
    public long Interval { get; }

    /// <summary>How often the event loop's lag is probed at most while reads happen: half the target.</summary>
    public long ProbeEvery { get; }

    /// <summary>True while the rule sheds calls whose wait is above the target.</summary>
    public bool Engaged => Volatile.Read(ref _engaged) == 1;

    /// <summary>Calls this rule shed (tests and probes).</summary>
    public long Shed => Interlocked.Read(ref _shed);

    /// <summary>Times the rule engaged (tests and probes).</summary>
    public long Engagements => Interlocked.Read(ref _engagements);

    /// <summary>
    /// The event loop's lag now: the latest probe's, or the age of an outstanding probe if that is longer (a probe that
    /// has not come back is waiting at least that long); 0 once the latest is older than an interval.
    /// </summary>
    public long Lag(long now)
    {
        var lag = Volatile.Read(ref _lagAt) is var at && at != 0 && now - at <= Interval ? Volatile.Read(ref _lag) : 0;
        var sent = Volatile.Read(ref _probeAt);
        // Another server's probe out (shared): the loop's events wait at least as long as it has been out.
        if (sent == 0 && _share is { Shared: true } share && share.OutSince is var o && o != 0 && now - o <= Interval) sent = o;
        return sent != 0 && now - sent > lag ? now - sent : lag;
    }

    /// <summary>True when a probe should be sent now (none outstanding, the last one at least <see cref="ProbeEvery"/> ago); stamps it sent.</summary>
    public bool ProbeDue(long now)
    {
        if (Volatile.Read(ref _probeAt) != 0) return false;
        // After a quiet flight (no queue in the loop) the next probe waits QuietProbeEvery, else ProbeEvery.
        if (now - Volatile.Read(ref _lastProbe) < (Volatile.Read(ref _quietLast) == 1 ? QuietProbeEvery : ProbeEvery)) return false;
        if (_share is { Shared: true } share)
        {
            // A probe another server of this process sent since this rule's last one came back: its sample is this
            // rule's too (the same socket engine's lag), and no probe of its own is sent.
            if (share.Latest is { } latest && latest.SentAt > Volatile.Read(ref _lastProbe) && !ReferenceEquals(latest.By, this))
            {
                Volatile.Write(ref _lastProbe, now);
                Adopt(latest, now);
                return false;
            }
            // Another's probe is out: its sample comes back for every rule; this one waits for it.
            if (!share.TryClaim(now, Interval)) return false;
        }
        Volatile.Write(ref _lastProbe, now);
        // After a quiet flight the work clock is not read: a quiet flight again needs none, a long one is no sample
        // and the next probe reads it (ProbeReturned).
        Volatile.Write(ref _probeWork, _work is not null && Volatile.Read(ref _quietLast) == 1 ? NotRead : Work(now));
        Volatile.Write(ref _probeAt, now);
        return true;
    }

    /// <summary>
    /// The server's own work so far (the <c>work</c> clock: the process's CPU time), or <paramref name="now"/> without
    /// one. Read at most twice per probe (never while the probes come back within <see cref="QuietFlight"/>) and twice
    /// per asynchronous check.
    /// </summary>
    public long Work(long now)
    {
        if (_work is not { } work) return now;
        Interlocked.Increment(ref _workReads);
        return work();
    }

    /// <summary>
    /// The probe sent at <see cref="ProbeDue"/> came back through the event loop at <paramref name="now"/>: its lag — as
    /// much of its flight as the server spent working (a queue of events ahead of it), not the time another process held
    /// the core — is a sample.
    /// </summary>
    public void ProbeReturned(long now)
    {
        var sent = Interlocked.Exchange(ref _probeAt, 0);
        if (sent == 0) return;
        var flight = Math.Max(0, now - sent);
        var sentWork = Volatile.Read(ref _probeWork);
        var quiet = flight <= QuietFlight;
        Volatile.Write(ref _quietLast, quiet ? 1 : 0);
        long lag;
        if (quiet) lag = flight; // under a quarter of the target whatever ran meanwhile: no work clock needed
        else if (sentWork == NotRead) lag = -1; // long, and the work when it was sent is unknown: no sample; the next probe reads it
        else lag = Math.Min(flight, Math.Max(0, Work(now) - sentWork));
        _share?.Returned(this, sent, lag, quiet);
        if (lag < 0) return;
        Volatile.Write(ref _lag, lag);
        Volatile.Write(ref _lagAt, now);
        Sample(lag, now);
    }

    /// <summary>Another server's probe, sent since this rule's last one, came back (<see cref="LagShare"/>): as if it were this rule's.</summary>
    private void Adopt(LagShare.Sample latest, long now)
    {
        Volatile.Write(ref _quietLast, latest.Quiet ? 1 : 0);
        if (latest.Lag < 0) return;
        Volatile.Write(ref _lag, latest.Lag);
        Volatile.Write(ref _lagAt, now);
        Sample(latest.Lag, now);
    }

    /// <summary>The probe could not be sent (the pair closed): none is outstanding.</summary>
    public void ProbeLost()
    {
        var sent = Interlocked.Exchange(ref _probeAt, 0);
        if (sent != 0) _share?.Lost(sent);
    }

    /// <summary>The server stopped: its rule leaves the process's <see cref="LagShare"/> (once).</summary>
    public void Leave()
    {
        if (Interlocked.Exchange(ref _left, 1) == 0) _share?.Leave();
    }

    private int _left;

    /// <summary>
    /// The decision for a call read at <paramref name="readAt"/> and judged at <paramref name="now"/>: true when it is
    /// to be shed (the rule is engaged, its wait — the lag plus its time since its read — is above the target, and it is
    /// not <paramref name="alone"/>). The call's wait is a sample of the rule either way.
    /// <para><paramref name="alone"/>: no other call waits with it (the only call of its read, none held in flight, no
    /// connection waiting for its read turn). Such a call is never shed — CoDel's "never drop the only packet in the
    /// queue": its wait is the host's (another process on the CPU, a GC), not a queue of calls, and shedding it would
    /// shorten nothing. So a lightly loaded axon on a busy host keeps answering; under overload calls always queue together.</para>
    /// </summary>
    public bool ShouldShed(long readAt, long now, bool alone = false)
    {
        if (!OverTarget(readAt, now) || alone) return false;
        CountShed();
        return true;
    }

    /// <summary>
    /// The first half of <see cref="ShouldShed"/>, for callers whose <c>alone</c> costs something to find out: samples the
    /// call's wait and says whether it would be shed unless alone (engaged, its wait above the target). Only then need the
    /// caller look whether the call is alone; it counts a shed with <see cref="CountShed"/>.
    /// </summary>
    public bool OverTarget(long readAt, long now)
    {
        var wait = Lag(now) + CheckWait(now) + Math.Max(0, now - readAt);
        Sample(wait, now);
        // With the at-read budget a call is never shed for its own wait: the read that brought it decided.
        return PerRead == 0 && wait > Target && Volatile.Read(ref _engaged) == 1;
    }

    /// <summary>A call judged <see cref="OverTarget"/> and not alone was shed.</summary>
    public void CountShed() => Interlocked.Increment(ref _shed);

    /// <summary>
    /// The at-read budget (<see cref="PerRead"/>): a read's calls were decided at <paramref name="now"/>, of which
    /// <paramref name="over"/> were over the budget and shed. A read over the budget keeps the rule engaged; once an
    /// interval passed (since the rule engaged, or since the last read over the budget) in which no read was over it,
    /// the rule disengages.
    /// </summary>
    public void BudgetDecided(int over, long now)
    {
        Interlocked.Increment(ref _reads);
        if (over > 0)
        {
            Interlocked.Add(ref _shed, over);
            Volatile.Write(ref _overAt, now);
            return;
        }
        DisengageIfNothingOver(now);
    }

    private void DisengageIfNothingOver(long now)
    {
        if (Volatile.Read(ref _engaged) == 0) return;
        var since = Math.Max(Volatile.Read(ref _overAt), Volatile.Read(ref _engagedAt));
        if (now - since < Interval) return;
        Volatile.Write(ref _engaged, 0);
        Volatile.Write(ref _aboveSince, 0);
        Volatile.Write(ref _belowSince, 0);
    }

    /// <summary>
    /// The latest asynchronous header check's duration (<see cref="CheckTook"/>: the batch verifier's queue and its batch),
    /// 0 once it is older than an interval. A call checked now waits about as long again before it is decided: with
    /// verification on, under overload, the queue of calls is there (in the verifier's queue), not in the sockets.
    /// </summary>
    /// <remarks>
    /// Only while an asynchronous check is under way (<see cref="CheckBegins"/>): once none is, nothing queues there and a
    /// call read now waits for no check ahead of it. (Session 17's rule counted the latest duration for a whole interval
    /// after it: one slow check — the nonce journal's fsync, a compaction — then put every call of the next 100 ms over the
    /// target and engaged the budget on a validator's 16 calls at light load; session 18, h1-flip.)
    /// </remarks>
    public long CheckWait(long now) =>
        Volatile.Read(ref _checking) > 0 && Volatile.Read(ref _checkAt) is var at && at != 0 && now - at <= Interval ? Volatile.Read(ref _check) : 0;

    /// <summary>
    /// An asynchronous header check begins at <paramref name="now"/> (its call waits for it): counted as under way until
    /// <see cref="CheckTook"/>; returns the work clock now (<see cref="Work"/>), for <see cref="CheckTook"/>.
    /// </summary>
    public long CheckBegins(long now)
    {
        Interlocked.Increment(ref _checking);
        return Work(now);
    }

    /// <summary>
    /// An asynchronous header check (the batch verifier) that began at <paramref name="began"/>, when the work clock read
    /// <paramref name="beganWork"/> (<see cref="Work"/>), completed at <paramref name="now"/>: its duration — as much of it
    /// as the server spent working (the verifier's queue and batch), not a wait for the disk or for another process — is
    /// the check wait every later call counts (<see cref="CheckWait"/>), and it is a sample of the rule.
    /// </summary>
    public void CheckTook(long began, long beganWork, long now)
    {
        if (Interlocked.Decrement(ref _checking) < 0) Interlocked.Increment(ref _checking);
        var took = Math.Min(Math.Max(0, now - began), Math.Max(0, Work(now) - beganWork));
        Volatile.Write(ref _check, took);
        Volatile.Write(ref _checkAt, now);
        Sample(Lag(now) + took, now);
    }

    /// <summary>One measured wait at <paramref name="now"/>: moves the rule's state (engage after an interval above, disengage after one below).</summary>
    public void Sample(long wait, long now)
    {
        // Nothing measured for an interval: the server was quiet, whatever was engaged is stale.
        var last = Volatile.Read(ref _lastSample);
        Volatile.Write(ref _lastSample, now);
        if (last != 0 && now - last > Interval)
        {
            Volatile.Write(ref _engaged, 0);
            Volatile.Write(ref _aboveSince, 0);
            Volatile.Write(ref _belowSince, 0);
        }
        if (wait > Target)
        {
            Volatile.Write(ref _belowSince, 0);
            var since = Volatile.Read(ref _aboveSince);
            if (since == 0) Volatile.Write(ref _aboveSince, now);
            else if (now - since >= Interval && Interlocked.CompareExchange(ref _engaged, 1, 0) == 0)
            {
                Volatile.Write(ref _engagedAt, now);
                Interlocked.Increment(ref _engagements);
            }
        }
        else if (PerRead > 0 && Volatile.Read(ref _engaged) == 1)
        {
            // The at-read budget holds the waits under the target itself: only an interval with nothing over the
            // budget disengages it (BudgetDecided).
            Volatile.Write(ref _aboveSince, 0);
            DisengageIfNothingOver(now);
        }
        else
        {
            Volatile.Write(ref _aboveSince, 0);
            var since = Volatile.Read(ref _belowSince);
            if (since == 0) Volatile.Write(ref _belowSince, now);
            else if (now - since >= Interval) Volatile.Write(ref _engaged, 0);
        }
    }
}

/// <summary>
/// The event loop's lag probes of the lean servers of one process, shared (session 23): the servers of a process share its
/// socket engine, so a probe any of them sends measures the lag every one of them would (the demo's in-process neurons,
/// the benchmarks' axon farm of 64 axons). Each server probing on its own sent, in the farm at 64 axons, a probe with
/// almost every call — the other 63 axons' calls make every flight long, so each rule probed every half target — and read
/// the work clock twice for it (~0.95 probes and 1.65 <c>getrusage</c> per call, ~5 µs of the farm's CPU per call against
/// ~2 at 16 axons). While more than one rule has joined, a rule whose probe is due takes the latest sample another sent
/// since its own last one, or waits while another's is out, and sends one only when none is; with one rule (a process
/// serving one axon, as <c>btcli axon serve</c>) nothing changes.
/// </summary>
internal sealed class LagShare
{
    /// <summary>The process's (the lean servers on the system clock and the process's CPU time join it).</summary>
    public static readonly LagShare Process = new();

    private int _members;
    private long _outSince; // when the probe out now was sent; 0: none
    private Sample? _latest;

    /// <summary>A probe that came back: who sent it, when, its lag (-1: no sample, a long flight whose work was not read), quiet or not.</summary>
    internal sealed record Sample(WaitAdmission By, long SentAt, long Lag, bool Quiet);

    /// <summary>True while more than one rule has joined (only then is anything shared).</summary>
    public bool Shared => Volatile.Read(ref _members) > 1;

    /// <summary>Rules joined and not left.</summary>
    public int Members => Volatile.Read(ref _members);

    /// <summary>The latest probe that came back, of any rule.</summary>
    public Sample? Latest => Volatile.Read(ref _latest);

    /// <summary>When the probe out now was sent (0: none).</summary>
    public long OutSince => Volatile.Read(ref _outSince);

    public void Join() => Interlocked.Increment(ref _members);

    public void Leave() => Interlocked.Decrement(ref _members);

    /// <summary>
    /// True when the caller is to send the probe (none out, or the one out was sent at least <paramref name="staleAfter"/>
    /// ago: lost); it is then the one out, sent at <paramref name="now"/>.
    /// </summary>
    public bool TryClaim(long now, long staleAfter)
    {
        var out_ = Volatile.Read(ref _outSince);
        if (out_ != 0 && now - out_ < staleAfter) return false;
        return Interlocked.CompareExchange(ref _outSince, now, out_) == out_;
    }

    /// <summary>
    /// <paramref name="by"/>'s probe sent at <paramref name="sentAt"/> came back (<paramref name="lag"/> -1: no sample): the
    /// latest (only while shared: one rule alone allocates nothing), and none is out if it was the one out.
    /// </summary>
    public void Returned(WaitAdmission by, long sentAt, long lag, bool quiet)
    {
        if (Shared) Volatile.Write(ref _latest, new Sample(by, sentAt, lag, quiet));
        Interlocked.CompareExchange(ref _outSince, 0, sentAt);
    }

    /// <summary>The probe sent at <paramref name="sentAt"/> could not be sent: none is out.</summary>
    public void Lost(long sentAt) => Interlocked.CompareExchange(ref _outSince, 0, sentAt);
}
