using System.Net;
using System.Net.Sockets;
using Bittensor.Protocol.Lean;
using Grpc.Core;

namespace Bittensor.Protocol;

/// <summary>
/// A lean HTTP/2 cleartext (h2c, prior knowledge) gRPC server for the 2021 <c>Bittensor</c> service: its own sockets,
/// frame parser, HPACK decoder and flow control instead of Kestrel + ASP.NET Core + Grpc.AspNetCore, so a call costs
/// little more than the kernel's share (docs/axon.md, "Transports"). The same behaviour as the Kestrel transport:
/// headers checked (<see cref="IBittensorService.CheckHeadersAsync(BittensorMethod, Grpc.Core.Metadata, System.Net.IPAddress, CancellationToken)"/>) before the body is read, the length prefix
/// against the method's limit, the same statuses and refusal counting, connection and per-IP limits. Calls whose
/// handler completes synchronously run on the connection's read loop and their answers leave in one write per read.
/// </summary>
public sealed class LeanServerTransport : IServerTransport
{
    private long _bodiesParsed;

    /// <summary>A transport on the system clock.</summary>
    public LeanServerTransport()
        : this(TimeProvider.System)
    {
    }

    /// <summary>
    /// A transport whose idle and data-rate rules read <paramref name="time"/> and are checked on its timers (tests drive
    /// them with a clock of their own).
    /// </summary>
    public LeanServerTransport(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        Time = time;
    }

    /// <summary>The clock of the idle and data-rate rules.</summary>
    public TimeProvider Time { get; }

    /// <summary>Tests: the admission-by-waiting rule of the latest binding (null: off, or nothing bound).</summary>
    internal WaitAdmission? Admission { get; private set; }

    /// <summary>
    /// How each binding's read turns are given (<see cref="ReadTurns"/>): tests choose the engine's wake-up whatever the
    /// process's socket completions, or drive the turns themselves (<see cref="ReadTurns.GiveTurns"/>).
    /// </summary>
    internal ReadTurnMode TurnMode { get; init; }

    /// <summary>
    /// The server's own work so far, in <see cref="Time"/>'s timestamp units: the clock admission by waiting
    /// (<see cref="WaitAdmission.Work"/>) reads to tell a queue of calls from another process's time slices. Default: on
    /// the system clock the process's CPU time (<see cref="Environment.CpuUsage"/>); on any other clock (tests) none —
    /// every wait is the server's own. Tests set one to drive it.
    /// </summary>
    internal Func<long>? WorkClock { get; init; }

    /// <summary>The process's CPU time (user + system) in <see cref="System.Diagnostics.Stopwatch"/> timestamp units.</summary>
    internal static long ProcessCpu() =>
        (long)(Environment.CpuUsage.TotalTime.Ticks * ((double)System.Diagnostics.Stopwatch.Frequency / TimeSpan.TicksPerSecond));

    /// <summary>
    /// The lag probes this transport's bindings share with the other lean servers of the process (default
    /// <see cref="Lean.LagShare.Process"/>; tests give one of their own).
    /// </summary>
    internal LagShare LagShare { get; init; } = LagShare.Process;

    /// <summary>Tests: the most bytes one socket read takes (default: the whole free input buffer, up to 64 KiB).</summary>
    internal int ReadSize { get; init; } = int.MaxValue;

    /// <summary>Tests: the wake-up lanes of <see cref="ReadTurnMode.Engine"/> (0, the default: one per socket-engine thread).</summary>
    internal int EngineLanes { get; init; }

    private long _connectionsRefused;

    /// <summary>Calls whose request message was read and parsed (the handler ran), over every binding of this transport.</summary>
    internal long BodiesParsed => Interlocked.Read(ref _bodiesParsed);

    /// <summary>Connections closed at once by the per-IP connection cap, over every binding of this transport.</summary>
    internal long ConnectionsRefused => Interlocked.Read(ref _connectionsRefused);

    internal void CountBodyParsed() => Interlocked.Increment(ref _bodiesParsed);

    private long _answersInPlace;

    /// <summary>
    /// Answers serialized in place around their pooled tensor buffer and sent from its array (no copy of the buffer into
    /// the output; H2Connection.TryWriteInPlace), over every binding of this transport.
    /// </summary>
    internal long AnswersInPlace => Interlocked.Read(ref _answersInPlace);

    internal void CountAnswerInPlace() => Interlocked.Increment(ref _answersInPlace);

    internal void CountConnectionRefused() => Interlocked.Increment(ref _connectionsRefused);

    private long _loopbackCongestionSet;
    private long _loopbackCongestionRefused;

    /// <summary>
    /// Loopback connections given <see cref="ServerTransportOptions.LoopbackCongestionControl"/>, and those whose kernel
    /// refused it (they keep the system's), over every binding of this transport.
    /// </summary>
    internal long LoopbackCongestionSet => Interlocked.Read(ref _loopbackCongestionSet);

    internal long LoopbackCongestionRefused => Interlocked.Read(ref _loopbackCongestionRefused);

    internal void CountLoopbackCongestion(bool set)
    {
        if (set) Interlocked.Increment(ref _loopbackCongestionSet);
        else Interlocked.Increment(ref _loopbackCongestionRefused);
    }

    private long _outputsGrown;
    private int _largestOutput;

    /// <summary>
    /// Output buffers the connections allocated after their first two (the growth ladder, or a fresh one after an
    /// oversized answer), over every binding of this transport: a bounded output grows a few times per connection and
    /// then is reused (<see cref="H2Output"/>).
    /// </summary>
    internal long OutputsGrown => Interlocked.Read(ref _outputsGrown);

    /// <summary>The largest output buffer any connection allocated, bytes.</summary>
    internal int LargestOutput => Volatile.Read(ref _largestOutput);

    /// <summary>Most lent output buffers kept for reuse (each <see cref="H2Output.Keep"/> bytes): more given back are let go.</summary>
    internal const int KeptOutputs = 32;

    private readonly Stack<byte[]> _keptOutputs = new();

    /// <summary>Output buffers lent and not given back (the gauge of what the lean connections hold past their first buffers).</summary>
    internal int OutputsLent => Volatile.Read(ref _outputsLent);

    private int _outputsLent;

    /// <summary>
    /// Lends a <see cref="H2Output.Keep"/>-sized output buffer (a kept one, else a new one, counted in
    /// <see cref="OutputsGrown"/>). The connections' outputs borrow past their first 64 KiB and give back after their send,
    /// so what all connections hold is bounded by what they have to send at once, not by two 1 MiB buffers each.
    /// </summary>
    internal byte[] RentOutput()
    {
        Interlocked.Increment(ref _outputsLent);
        lock (_keptOutputs)
        {
            if (_keptOutputs.TryPop(out var kept)) return kept;
        }
        CountOutputGrown(H2Output.Keep);
        return GC.AllocateUninitializedArray<byte>(H2Output.Keep);
    }

    /// <summary>Takes a lent buffer back (never one still being sent); beyond <see cref="KeptOutputs"/> it is let go.</summary>
    internal void ReturnOutput(byte[] buffer)
    {
        Interlocked.Decrement(ref _outputsLent);
        lock (_keptOutputs)
        {
            if (_keptOutputs.Count < KeptOutputs) _keptOutputs.Push(buffer);
        }
    }

    internal void CountOutputGrown(int size)
    {
        Interlocked.Increment(ref _outputsGrown);
        var seen = Volatile.Read(ref _largestOutput);
        while (size > seen)
        {
            var was = Interlocked.CompareExchange(ref _largestOutput, size, seen);
            if (was == seen) break;
            seen = was;
        }
    }

    /// <inheritdoc />
    public Task<IServerBinding> BindAsync(ServerTransportOptions options, IBittensorService service, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(service);
        cancellationToken.ThrowIfCancellationRequested();
        var server = new LeanServer(this, options, service);
        Admission = server.Admission;
        server.Start();
        return Task.FromResult<IServerBinding>(server);
    }
}

/// <summary>One listening socket and its connections.</summary>
internal sealed class LeanServer : IServerBinding
{
    private readonly Socket _listener;
    private readonly HashSet<H2Connection> _connections = [];
    private readonly Dictionary<IPAddress, int> _perIp = [];
    private readonly Dictionary<IPAddress, Bucket> _buckets = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly int _perPeriod;
    private readonly int _bucketSize;
    private readonly long _periodTicks;
    private Task _accepting = Task.CompletedTask;
    private int _stopped;
    private int _congestionWarned;
    private ITimer? _sweep;

    public LeanServer(LeanServerTransport owner, ServerTransportOptions options, IBittensorService service)
    {
        Owner = owner;
        Options = options;
        Service = service;
        Limits = options.Limits ?? ServerLimits.None;
        Time = owner.Time;
        var frequency = Time.TimestampFrequency;
        IdleTicks = Limits.IdleTimeout > TimeSpan.Zero ? Ticks(Limits.IdleTimeout, frequency) : 0;
        if (Limits.MinRequestBodyRate > 0)
        {
            BodyRatePerTick = Limits.MinRequestBodyRate / frequency;
            BodyGraceTicks = Ticks(Limits.MinRequestBodyGrace, frequency);
        }
        if (Limits.MinResponseRate > 0)
        {
            ResponseRatePerTick = Limits.MinResponseRate / frequency;
            ResponseGraceTicks = Ticks(Limits.MinResponseGrace, frequency);
        }
        MaxHeaderList = Limits.MaxRequestHeadersSize > 0 ? Limits.MaxRequestHeadersSize : 16 * 1024;
        if (Limits.RequestsPerSecondPerIp > 0)
        {
            var (tokens, period) = Limits.RefillStep();
            _perPeriod = tokens;
            _bucketSize = Math.Max(_perPeriod, Limits.RequestBurstPerIp);
            _periodTicks = Math.Max(1, (long)(period.TotalSeconds * System.Diagnostics.Stopwatch.Frequency));
        }
        var ip = IPAddress.Parse(options.Ip);
        _listener = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (ip.AddressFamily == AddressFamily.InterNetworkV6 && ip.Equals(IPAddress.IPv6Any)) _listener.DualMode = true;
        try
        {
            _listener.Bind(new IPEndPoint(ip, options.Port));
            _listener.Listen(1024);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
        Endpoint = new IPEndPoint(ip, ((IPEndPoint)_listener.LocalEndPoint!).Port);
        ReadSize = Math.Max(1, owner.ReadSize);
        Turns = ReadTurns.Create(owner.TurnMode, owner.EngineLanes);
        if (options.TargetWait > TimeSpan.Zero)
        {
            var admission = new WaitAdmission(Math.Max(1, Ticks(options.TargetWait, frequency)),
                Math.Max(1, Ticks(options.TargetWaitInterval > TimeSpan.Zero ? options.TargetWaitInterval : ServerTransportOptions.DefaultTargetWaitInterval, frequency)),
                Math.Max(0, options.AdmitPerRead),
                owner.WorkClock ?? (ReferenceEquals(Time, TimeProvider.System) ? LeanServerTransport.ProcessCpu : null),
                // The servers of one process on its clocks share their lag probes (one socket engine; LagShare).
                owner.WorkClock is null && ReferenceEquals(Time, TimeProvider.System) ? owner.LagShare : null);
            Admission = admission;
            ProbeReturned = () => admission.ProbeReturned(Now);
        }
    }

    /// <summary>Admission by measured waiting (<see cref="ServerTransportOptions.TargetWait"/>); null: off.</summary>
    public WaitAdmission? Admission { get; }

    /// <summary>The probe's return (<see cref="WaitAdmission.ProbeReturned"/>), one delegate for every probe.</summary>
    public Action ProbeReturned { get; } = static () => { };

    /// <summary>The connections' read schedule, fair across them.</summary>
    public ReadTurns Turns { get; }

    /// <summary>The most bytes one socket read takes.</summary>
    public int ReadSize { get; }

    /// <summary>Open connections, in no order (tests).</summary>
    internal H2Connection[] Connections()
    {
        lock (_connections) return [.. _connections];
    }

    /// <inheritdoc />
    public bool RehearseShed(IPEndPoint peer, int calls)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(calls);
        foreach (var c in Connections())
        {
            if (c.Remote is not { } remote || remote.Port != peer.Port) continue;
            if (!remote.Address.Equals(peer.Address) && !remote.Address.MapToIPv6().Equals(peer.Address.MapToIPv6())) continue;
            c.RehearseShed(calls);
            return true;
        }
        return false;
    }

    public LeanServerTransport Owner { get; }

    public ServerTransportOptions Options { get; }

    public IBittensorService Service { get; }

    public ServerLimits Limits { get; }

    /// <summary>Largest decoded header list of one request (SETTINGS_MAX_HEADER_LIST_SIZE).</summary>
    public int MaxHeaderList { get; }

    public IPEndPoint Endpoint { get; }

    /// <summary>The clock of the idle and data-rate rules (<see cref="TimeProvider.GetTimestamp"/> units).</summary>
    public TimeProvider Time { get; }

    /// <summary>Now, in <see cref="Time"/>'s timestamp units.</summary>
    public long Now => Time.GetTimestamp();

    /// <summary><see cref="ServerLimits.IdleTimeout"/> in timestamp units; 0: off.</summary>
    public long IdleTicks { get; }

    /// <summary><see cref="ServerLimits.MinRequestBodyRate"/> in bytes per timestamp unit; 0: off.</summary>
    public double BodyRatePerTick { get; }

    public long BodyGraceTicks { get; }

    /// <summary><see cref="ServerLimits.MinResponseRate"/> in bytes per timestamp unit; 0: off.</summary>
    public double ResponseRatePerTick { get; }

    public long ResponseGraceTicks { get; }

    /// <summary>
    /// When a socket write of <paramref name="bytes"/> starting now must have completed (grace + bytes / rate, as
    /// Kestrel's MinResponseDataRate); <see cref="long.MaxValue"/> when the rule is off.
    /// </summary>
    public long WriteDeadline(int bytes)
    {
        if (ResponseRatePerTick <= 0) return long.MaxValue;
        return Now + ResponseGraceTicks + (long)Math.Min(bytes / ResponseRatePerTick, long.MaxValue / 4);
    }

    private static long Ticks(TimeSpan span, long frequency) => (long)Math.Min(span.TotalSeconds * frequency, long.MaxValue / 4);

    private int _callsHeld;
    private long _sends;
    private long _looks;

    /// <summary>Socket sends of answers over every connection (tests: a read's answers, sheds included, leave in one send).</summary>
    internal long Sends => Interlocked.Read(ref _sends);

    /// <summary>Looks at a connection's socket between a read's calls (tests: one per read with the wait rule engaged).</summary>
    internal long Looks => Interlocked.Read(ref _looks);

    internal void CountSend() => Interlocked.Increment(ref _sends);

    internal void CountLook() => Interlocked.Increment(ref _looks);

    // ---------------------------------------------------------------- shed passes (the at-read budget, engaged)

    /// <summary>Connections waiting for their read turn whose sockets a shed pass reads, at most (each read is a few
    /// system calls and, when it sheds, a send).</summary>
    internal const int VisitsPerPass = 8;

    /// <summary>Looks at a waiting connection's socket byte count per shed pass, at most (one system call each, on a socket
    /// the peer is sending to): every other connection, as no pass runs with more than <see cref="VisitsPerPass"/> + 1
    /// open. (Session 19 ran passes at 64 connections: 16 looks a pass, 82k a second, cost ~6 µs per admitted call; 3 a
    /// pass still cost 5-8 µs per verified call, benchmarks/results/axon.md "Session 19, h3-manyconn".)</summary>
    internal const int LooksPerPass = VisitsPerPass;

    private H2Connection[] _openConnections = [];
    private long _nextPass;
    private int _passCursor;
    private long _passes;
    private long _passSheds;
    private long _passLooks;
    private long _passReads;

    /// <summary>Shed passes run (tests and probes).</summary>
    internal long Passes => Interlocked.Read(ref _passes);

    /// <summary>Calls shed by shed passes, i.e. decided before their connection's turn (tests and probes).</summary>
    internal long PassSheds => Interlocked.Read(ref _passSheds);

    /// <summary>A pass shed <paramref name="calls"/> (counted before their answers are sent).</summary>
    internal void CountPassSheds(int calls) => Interlocked.Add(ref _passSheds, calls);

    /// <summary>Looks at a waiting connection's socket byte count by shed passes (tests and probes).</summary>
    internal long PassLooks => Interlocked.Read(ref _passLooks);

    /// <summary>Waiting connections' sockets read by shed passes (tests and probes).</summary>
    internal long PassReads => Interlocked.Read(ref _passReads);

    /// <summary>
    /// A shed pass, when one is due (the at-read budget engaged; at most one every eighth of the target wait over the
    /// whole server): called by a read loop between the calls of its turn (<paramref name="from"/>, not visited), and
    /// after each call decided by an asynchronous header check (the batch verifier's continuations, where verified calls
    /// run; <paramref name="from"/> null). Other connections that wait for their read turn, round robin from where the
    /// last pass stopped, have their calls over their coming turn's budget answered now
    /// (<see cref="H2Connection.DecideWhileWaiting"/>), instead of after every turn ahead of theirs: under overload a
    /// round of turns is the budget's work on every connection (~1.9 ms at 4 connections with verification on), and a
    /// shed answer waited in its socket for up to a round. A connection's socket is read only when it holds more than
    /// that budget (its byte count looked at first). Not when more other connections are open than a pass visits
    /// (<see cref="VisitsPerPass"/>): there the turns stay as they were.
    /// </summary>
    internal void ShedPassIfDue(H2Connection? from, WaitAdmission admission)
    {
        // Only while a pass can look at every other open connection: with many connections (64: 16 callers each, reads
        // of a few calls) passes that read every waiting socket split each connection's read into small ones and a send
        // of their own per visit, and cost more than they gave (session 18, PRIO=rt A/B: 60-91 % of the admitted rate).
        // Session 19 read only sockets over the budget and looked at 3 connections a pass there: verification off the
        // admitted rate held and the shed p50 fell 6.9 -> 2.3 ms, but verified calls cost 43-50 µs against 35-38 (one
        // PRIO=rt pair at 75 % of main's rate): not shipped (branch h3-manyconn-wip).
        var open = Volatile.Read(ref _openConnections);
        if (open.Length < 2 || open.Length > VisitsPerPass + 1) return;
        var now = Now;
        var due = Volatile.Read(ref _nextPass);
        if (now < due || Interlocked.CompareExchange(ref _nextPass, now + Math.Max(1, admission.Target / 8), due) != due) return;
        Interlocked.Increment(ref _passes);
        var start = (int)((uint)Volatile.Read(ref _passCursor) % (uint)open.Length);
        var looks = 0;
        var reads = 0;
        var i = 0;
        for (; i < open.Length && looks < LooksPerPass && reads < VisitsPerPass; i++)
        {
            var c = open[(start + i) % open.Length];
            if (ReferenceEquals(c, from) || !c.WaitingForTurn) continue;
            c.DecideWhileWaiting(admission, out var looked, out var read);
            if (looked) looks++;
            if (read) reads++;
        }
        // The next pass goes on after the last connection this one came to.
        Volatile.Write(ref _passCursor, (int)((uint)(start + Math.Max(1, i)) % (uint)open.Length));
        if (looks > 0) Interlocked.Add(ref _passLooks, looks);
        if (reads > 0) Interlocked.Add(ref _passReads, reads);
    }

    /// <summary>Calls held across every connection: the whole request received, the answer not yet complete.</summary>
    public int CallsHeld => Volatile.Read(ref _callsHeld);

    private TaskCompletionSource? _heldWaiter;
    private int _heldTarget;

    public void Hold() => Interlocked.Increment(ref _callsHeld);

    public void Release()
    {
        var now = Interlocked.Decrement(ref _callsHeld);
        if (Volatile.Read(ref _heldWaiter) is { } waiter && now <= Volatile.Read(ref _heldTarget)) waiter.TrySetResult();
    }

    /// <summary>
    /// Completes once at most <paramref name="calls"/> calls are held (tests: the count after a peer dropped its calls is
    /// awaited as an event, never slept for). One waiter at a time.
    /// </summary>
    internal Task WhenCallsHeldAtMost(int calls)
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _heldTarget, calls);
        // A full fence between publishing the waiter and reading the count: a Release in between sees one or the other.
        Interlocked.Exchange(ref _heldWaiter, waiter);
        if (CallsHeld <= calls) waiter.TrySetResult();
        return waiter.Task;
    }

    public void Start()
    {
        // The idle and data-rate rules are checked a few times per timeout or grace period (at most once a second): a
        // silent connection goes within ~1.25 timeouts, a slow body or answer within ~1.25 grace periods (or later, at
        // the rate's average).
        var shortest = TimeSpan.MaxValue;
        if (IdleTicks > 0) shortest = Limits.IdleTimeout;
        if (BodyRatePerTick > 0 && Limits.MinRequestBodyGrace < shortest) shortest = Limits.MinRequestBodyGrace;
        if (ResponseRatePerTick > 0 && Limits.MinResponseGrace < shortest) shortest = Limits.MinResponseGrace;
        if (shortest != TimeSpan.MaxValue)
        {
            var every = TimeSpan.FromMilliseconds(Math.Clamp(shortest.TotalMilliseconds / 4, 10, 1000));
            _sweep = Time.CreateTimer(static o => ((LeanServer)o!).Sweep(), this, every, every);
        }
        _accepting = AcceptLoop();
    }

    private void Sweep()
    {
        H2Connection[] open;
        lock (_connections)
        {
            if (_stopped == 1 || _connections.Count == 0) return;
            open = [.. _connections];
        }
        var now = Now;
        foreach (var c in open)
        {
            try
            {
                if (IdleTicks > 0 && c.CloseIfIdle(now, IdleTicks, () => Refused(null, StatusCode.Unavailable, RefusalReasons.Idle))) continue;
                if (BodyRatePerTick > 0 || ResponseRatePerTick > 0) c.EnforceDataRates(now);
            }
            catch (Exception)
            {
                // A timer callback must not throw (it would end the process); the next sweep tries again.
            }
        }
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                // A connection that died between SYN and accept (ECONNABORTED) or too many open files: go on.
                continue;
            }
            var peer = (socket.RemoteEndPoint as IPEndPoint)?.Address;
            if (!TryAdmit(peer, out var key))
            {
                socket.Dispose();
                continue;
            }
            socket.NoDelay = true;
            if (TcpCongestion.ApplyToLoopback(socket, peer, Options.LoopbackCongestionControl) is { } set)
            {
                Owner.CountLoopbackCongestion(set);
                if (!set && Interlocked.Exchange(ref _congestionWarned, 1) == 0) Options.Warn?.Invoke(TcpCongestion.RefusedWarning(Options.LoopbackCongestionControl!));
            }
            var connection = new H2Connection(this, socket, key);
            lock (_connections)
            {
                if (_stopped == 1)
                {
                    Release(key);
                    socket.Dispose();
                    continue;
                }
                _connections.Add(connection);
                _openConnections = [.. _connections];
            }
            connection.Start();
        }
    }

    /// <summary>
    /// The key an address is limited under: IPv4 as is (also when mapped into IPv6), IPv6 by its /64. Null: exempt.
    /// </summary>
    private IPAddress? Key(IPAddress? ip)
    {
        if (ip is null) return null;
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        if (Limits.ExemptLoopback && IPAddress.IsLoopback(ip)) return null;
        if (ip.AddressFamily != AddressFamily.InterNetworkV6) return ip;
        var bytes = ip.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes);
    }

    private bool TryAdmit(IPAddress? remote, out IPAddress? key)
    {
        key = Key(remote);
        lock (_perIp)
        {
            if (Limits.MaxConnections > 0 && ConnectionCount >= Limits.MaxConnections)
            {
                Refused(null, StatusCode.Unavailable, RefusalReasons.Connections);
                return false;
            }
            if (key is not null && Limits.MaxConnectionsPerIp > 0)
            {
                var open = _perIp.GetValueOrDefault(key);
                if (open >= Limits.MaxConnectionsPerIp)
                {
                    Owner.CountConnectionRefused();
                    Refused(null, StatusCode.Unavailable, RefusalReasons.PerIpConnections);
                    return false;
                }
                _perIp[key] = open + 1;
            }
            ConnectionCount++;
        }
        return true;
    }

    /// <summary>Open connections.</summary>
    public int ConnectionCount { get; private set; }

    private void Release(IPAddress? key)
    {
        lock (_perIp)
        {
            ConnectionCount--;
            if (key is null || Limits.MaxConnectionsPerIp <= 0) return;
            var open = _perIp.GetValueOrDefault(key) - 1;
            if (open <= 0) _perIp.Remove(key);
            else _perIp[key] = open;
        }
    }

    public void OnClosed(H2Connection connection, IPAddress? key)
    {
        lock (_connections)
        {
            _connections.Remove(connection);
            _openConnections = [.. _connections];
        }
        Release(key);
    }

    /// <summary>True when <paramref name="key"/>'s address is over its request rate (a token taken otherwise).</summary>
    public bool RateLimited(IPAddress? key)
    {
        if (key is null || _perPeriod == 0) return false;
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        lock (_buckets)
        {
            if (!_buckets.TryGetValue(key, out var bucket))
            {
                // Bounded: a bucket that is full again is the same as a new one, so those go first.
                if (_buckets.Count >= 100_000) Prune(now);
                bucket = new Bucket { Tokens = _bucketSize, Since = now };
                _buckets[key] = bucket;
            }
            Refill(bucket, now);
            if (bucket.Tokens <= 0) return true;
            bucket.Tokens--;
            return false;
        }
    }

    private void Refill(Bucket bucket, long now)
    {
        var periods = (now - bucket.Since) / _periodTicks;
        if (periods <= 0) return;
        bucket.Tokens = (int)Math.Min(_bucketSize, bucket.Tokens + (periods * _perPeriod));
        bucket.Since += periods * _periodTicks;
    }

    private void Prune(long now)
    {
        var full = new List<IPAddress>();
        foreach (var (k, b) in _buckets)
        {
            Refill(b, now);
            if (b.Tokens >= _bucketSize) full.Add(k);
        }
        foreach (var k in full) _buckets.Remove(k);
        if (_buckets.Count >= 100_000) _buckets.Clear();
    }

    private sealed class Bucket
    {
        public int Tokens;
        public long Since;
    }

    /// <summary>Tells the service (its metrics) about a refusal of the transport's own; never throws.</summary>
    public void Refused(BittensorMethod? method, StatusCode code, string reason)
    {
        try
        {
            Service.OnRefused(new TransportRefusal(method, code, reason));
        }
        catch (Exception)
        {
            // Counting must not change the answer.
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        H2Connection[] open;
        lock (_connections)
        {
            if (Interlocked.Exchange(ref _stopped, 1) == 0)
            {
                Admission?.Leave();
                _stop.Cancel();
                _listener.Dispose();
                _sweep?.Dispose();
            }
            open = [.. _connections];
        }
        try
        {
            await _accepting.ConfigureAwait(false);
            // GOAWAY to every connection; running calls finish, then each connection closes.
            await Task.WhenAll(open.Select(c => c.DrainAsync())).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Out of time: what is still open is closed below.
        }
        foreach (var c in open) c.Abort();
        Turns.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        using var none = new CancellationTokenSource();
        await none.CancelAsync().ConfigureAwait(false);
        await StopAsync(none.Token).ConfigureAwait(false);
        H2Connection[] rest;
        lock (_connections) rest = [.. _connections];
        foreach (var c in rest) c.Abort();
        // Read loops still waiting for a turn are handed to the pool: their reads end on the closed sockets.
        Turns.Dispose();
        _stop.Dispose();
    }
}
