using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// One HTTP/2 connection of the lean server (RFC 9113, server side, h2c with prior knowledge). The read loop receives
/// into a pooled buffer, handles every complete frame under the connection's lock, then (outside the lock) runs the
/// calls that became ready: header checks and handlers that complete synchronously append their answers at once, and
/// everything a read produced leaves in one send. Answers of asynchronous handlers are appended when they complete and
/// sent by whichever thread finds the output idle. Every protocol error is a GOAWAY or RST_STREAM with its code; nothing
/// a peer sends makes an exception escape or grows memory without bound.
/// </summary>
internal sealed class H2Connection
{
    /// <summary>The receive window this side keeps open for the whole connection.</summary>
    private const int ConnectionWindow = 1024 * 1024;

    /// <summary>Output queued while another thread sends, above which the read loop waits for it to drain.</summary>
    private const int OutputHighWater = 4 * 1024 * 1024;

    /// <summary>Output a read's calls may pile up before it is sent ahead of the rest.</summary>
    private const int FlushEarly = 256 * 1024;

    /// <summary>
    /// Waiting answers moved into the output at once when a window opens; the rest follow after each send. A client's
    /// WINDOW_UPDATE of megabytes with hundreds of answers waiting (1,024 callers) grew the output to that size, and the
    /// output was reallocated on the large-object heap every time (179 KB allocated per call, RSS 117 → 314 MB).
    /// </summary>
    private const int ResumeAtMost = H2Output.AnswerCap;

    /// <summary>
    /// Under overload (the server holds its calls in flight), the read loop looks at its socket after this many calls of
    /// a read have run: calls that arrived meanwhile and are over the limit are shed at once, not after the read's
    /// admitted calls (issue 11: shed answers in &lt; 1 ms).
    /// </summary>
    private const int PeekEvery = 4;

    /// <summary>Streams the peer may reset (or have refused) in a burst, and the rate the allowance refills at per second.</summary>
    private const int ResetBurst = 200;
    private const int ResetsPerSecond = 100;

    /// <summary>
    /// Streams a peer may have open before it acknowledged this side's SETTINGS. Until then it cannot know our
    /// SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2: the initial value is unlimited); clients assume 100
    /// (SocketsHttpHandler, Go, nghttp2), so streams up to 100 opened before the acknowledgement are served, not refused.
    /// </summary>
    private const int StreamsBeforeSettingsAck = 100;

    /// <summary>
    /// A value the peer did not index and longer than this is kept as octets, not made a string, until the call's check
    /// reads it (<see cref="PendingHeaders"/>): a call shed before its check never makes one.
    /// </summary>
    private const int DeferValuesOver = HpackDecoder.StringsUpTo;

    /// <summary>Idle <see cref="PendingHeaders"/> a connection keeps for its next calls.</summary>
    private const int HeadersPooled = 256;

    private readonly LeanServer _server;
    private readonly Socket? _socket;
    private readonly IPAddress? _key;
    // The peer's address (the scope of auth.failed_signature_hold; _key is null for an exempt loopback peer).
    private readonly IPAddress? _peer;
    private readonly object _sync = new();
    private readonly HpackDecoder _hpack = new();
    private readonly List<HpackField> _fields = [];
    private readonly List<int> _metadataFields = []; // ParseRequest's: which of _fields are the request's metadata
    private readonly Stack<PendingHeaders> _headersPool = new();
    private readonly Dictionary<int, H2Stream> _streams = [];
    private readonly List<H2Stream> _blocked = [];
    private readonly List<H2Stream> _deferred = []; // answers made while the output was full, in order (H2Output.AnswerCap)
    private readonly List<CancellationTokenSource> _toCancel = [];
    private readonly Stack<CancellationTokenSource> _ctsPool = new();
    private readonly H2DataWriter _dataWriter = new();
    private readonly int _maxHeaderBlock;
    private List<H2Stream> _ready = [];
    private List<H2Stream> _readySpare = [];
    private readonly List<H2Stream> _parked = [];
    private bool _runningReady;
    private bool _readEnded; // the read loop's own: a read between calls saw the end, an error, or a connection error
    private readonly ReadTurn _turn = new();
    private ReadLane? _lane; // the read loop's queue in the server's ReadTurns (given at Start)
    private int _readsThisTurn; // the read loop's own: reads of this turn that found data already there
    private bool _awaitingTurn; // queued in the server's ReadTurns (its bytes, if any, are read but not handled yet)
    private bool _inReceive; // the read loop waits in a receive for data (tests: ReceiveWaits)
    private TaskCompletionSource? _receiveWaits; // tests: completed when the read loop waits in a receive
    private long _readAt; // the read loop's own: when the last read completed (WaitAdmission: a call's wait since its read)
    private int _admittedThisRead; // the runner's own: calls the at-read budget admitted since the read loop's last read (WaitAdmission.PerRead)
    private readonly List<H2Stream> _shedding = []; // the runner's own: streams claimed for a shed, answered outside the lock
    // The axon's warm-up (RehearseShed, under _sync): this connection's next calls still to be shed as a rehearsal.
    private int _rehearse;
    // Who may read this connection's socket and handle its frames: 1 its read loop (running, or waiting for data or a
    // send), 0 nobody (the loop waits for its read turn: a shed pass may take it), 2 a shed pass (DecideWhileWaiting).
    private int _reader = 1;
    private bool _readByPass; // a shed pass read the socket while the loop waited for its turn: the turn begins with what it read
    private readonly List<H2Stream> _passShedding = []; // a shed pass's own (under _reader == 2)
    // Calls a shed pass read and kept for the coming turn, in arrival order (under _sync): out of _ready, so a sender's
    // unparking (FlushAsync) does not run them before the turn; the turn puts them back in front.
    private readonly List<H2Stream> _keptForTurn = [];
    // The reader's own (its read loop, or a shed pass while the loop waits for its turn): bytes read from the socket and
    // calls (streams) their frames opened. A shed pass reads a socket only when it holds more than the coming turn's
    // budget of calls at this connection's bytes per call (DecideWhileWaiting).
    private long _bytesIn;
    private long _callsIn;
    // ShedProbe (a benchmark's, off by default): shed answers written into _out (under _sync), and those in the send under way (the sender's own).
    private readonly List<(int Id, long ReadAt, long DecidedAt, long Gc, int Kind)>? _probePending = ShedProbe.On ? [] : null;
    private readonly List<(int Id, long ReadAt, long DecidedAt, long Gc, int Kind)>? _probeSending = ShedProbe.On ? [] : null;
    private long _probeTurnAt; // ShedProbe: when the read loop's current turn began
    private ShedProbe.Work _probeTurnWork; // ShedProbe: what the server had done when it began
    private long _probeSendStart;
    private long _probeSendBytes;
    private readonly int _probePort;
    private byte[] _in = [];
    private int _inStart;
    private int _inEnd;
    private bool _prefaceDone;
    private bool _settingsSeen;
    private bool _settingsAcked;
    private byte[] _block = [];
    private int _blockLength;
    private int _blockStream;
    private bool _blockEndStream;
    private bool _inHeaderBlock;
    private int _blockFrames;
    private int _peerMaxFrame = H2.DefaultMaxFrame;
    private int _peerInitialWindow = H2.DefaultWindow;
    private long _sendWindow = H2.DefaultWindow;
    private long _recvWindow = H2.DefaultWindow;
    private int _lastStreamId;
    private H2Output _out;
    private H2Output _spare;
    private bool _sending;
    private TaskCompletionSource? _drained;
    private bool _closed;
    private bool _goingAway;
    private TaskCompletionSource? _idle;
    private double _resetAllowance = ResetBurst;
    private long _resetStamp = Environment.TickCount64;
    private long _quietSince;
    private long _blockedSince;
    private long _blockedSent;
    private long _blockedChecked;
    private long _writeDeadline = long.MaxValue;

    /// <summary>The peer's address and port (null without a socket).</summary>
    internal IPEndPoint? Remote { get; }

    public H2Connection(LeanServer server, Socket? socket, IPAddress? key)
    {
        _server = server;
        _socket = socket;
        _key = key;
        Remote = socket?.RemoteEndPoint as IPEndPoint;
        _peer = Remote?.Address;
        if (ShedProbe.On) _probePort = (socket?.RemoteEndPoint as IPEndPoint)?.Port ?? 0;
        _maxHeaderBlock = Math.Max(16 * 1024, (2 * server.MaxHeaderList) + 4096);
        _out = new H2Output(server.Owner);
        _spare = new H2Output(server.Owner);
        _quietSince = server.Now;
    }

    /// <summary>
    /// Called on the accept loop: only the SETTINGS go out here (a send of a few dozen bytes into an empty socket
    /// buffer), so a peer learns the limits as early as possible. The first read waits for the connection's first turn
    /// in the server's <see cref="ReadTurns"/>: it starts where the later reads run (the socket engine), behind the
    /// connections already waiting, not on the accept loop (a peer whose first bytes were already there would have its
    /// calls run on it, and a held check would stop the server accepting anyone) nor on a pool thread (a new
    /// connection's first read waited 1.03 s for one under real-time priority, session 11).
    /// </summary>
    public void Start()
    {
        // The SETTINGS first: the read loop may get its turn on another thread at once, and its first frame out (the
        // ACK of the peer's SETTINGS) must follow them.
        lock (_sync) WritePreamble();
        _lane = _server.Turns.Assign();
        ReadLoop = RunAsync();
        KickFlush();
    }

    /// <summary>
    /// The read loop's work without a socket (the fuzz target and tests): feeds <paramref name="input"/> as if it had
    /// been received, runs the calls it made ready and drops the output. False once the connection would close.
    /// Exceptions are not caught here: any that escapes is a bug.
    /// </summary>
    internal bool Feed(ReadOnlySpan<byte> input)
    {
        if (_in.Length == 0)
        {
            _in = new byte[64 * 1024];
            lock (_sync) WritePreamble();
        }
        while (input.Length > 0)
        {
            Compact();
            var n = Math.Min(input.Length, _in.Length - _inEnd);
            input[..n].CopyTo(_in.AsSpan(_inEnd));
            _inEnd += n;
            input = input[n..];
            bool keepGoing;
            lock (_sync) keepGoing = ProcessFrames();
            CancelCollected();
            var run = RunReadyAsync();
            if (!run.IsCompletedSuccessfully) run.AsTask().GetAwaiter().GetResult();
            lock (_sync)
            {
                _out.Reset();
                // No socket: answers held back for a full output go now, each into an emptied output.
                while (_deferred.Count > 0 && !_closed)
                {
                    ResumeDeferred();
                    _out.Reset();
                }
            }
            if (!keepGoing) return false;
        }
        return true;
    }

    /// <summary>The read loop (tests: it ends once the connection does; never faults, it catches what escapes).</summary>
    internal Task ReadLoop { get; private set; } = Task.CompletedTask;

    /// <summary>Turns this connection's read loop has queued for, its first included (tests).</summary>
    internal int TurnsWaited { get; private set; }

    /// <summary>Tests: the connection's socket (the tests' SocketBytes.WaitFor waits on it for a peer's bytes to be there).</summary>
    internal Socket? SocketForTests => _socket;

    /// <summary>Bytes of the peer's waiting in the socket, not read yet (tests).</summary>
    internal int SocketAvailable
    {
        get
        {
            try
            {
                return _socket?.Available ?? 0;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return 0;
            }
        }
    }

    /// <summary>The socket's TCP congestion control (tests; null without a socket or off Linux).</summary>
    internal string? CongestionControl => TcpCongestion.Get(_socket);

    /// <summary>Streams open on this connection (tests and the fuzz target's invariants).</summary>
    internal int OpenStreams
    {
        get
        {
            lock (_sync) return _streams.Count;
        }
    }

    /// <summary>
    /// The read loop. It runs in turns (<see cref="ReadTurns"/>): a turn begins with a read that waited for data (or
    /// with the connection's turn), and may go on with <see cref="ReadTurns.ReadsPerTurn"/> reads that found data
    /// already there; the bytes of one more such read are kept and handled in the connection's next turn, after every
    /// connection that queued before it.
    /// </summary>
    private async Task RunAsync()
    {
        _in = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            // Every wait for a turn is awaited here, in this method's own frame (see NextTurn).
            await NextTurn().ConfigureAwait(false);
            TakeReader();
            if (ShedProbe.On) ProbeTurnStarts();
            while (true)
            {
                if (_inEnd == _in.Length) Compact();
                int n;
                bool atOnce;
                bool filled;
                if (_readByPass)
                {
                    // A shed pass read the socket while this loop waited for the turn (its calls over the budget are
                    // answered, the rest kept for this turn): the turn begins with them and whatever came since (the
                    // drain below), not with a receive that could wait for data with calls ready. It queues for its
                    // next turn after it, as a turn whose read found data already there does.
                    _readByPass = false;
                    if (_readEnded) break;
                    lock (_sync)
                    {
                        // The kept calls count in calls_in_flight again from their turn (DecideWhileWaiting).
                        foreach (var s in _keptForTurn) Rehold(s);
                        _ready.InsertRange(0, _keptForTurn);
                        _keptForTurn.Clear();
                    }
                    atOnce = true;
                    filled = true;
                }
                else
                {
                    try
                    {
                        var receive = _socket!.ReceiveAsync(_in.AsMemory(_inEnd, Math.Min(_in.Length - _inEnd, _server.ReadSize)), SocketFlags.None);
                        atOnce = receive.IsCompleted;
                        if (atOnce) n = await receive.ConfigureAwait(false);
                        else
                        {
                            InReceive(true);
                            var waitFrom = ShedProbe.On ? _server.Now : 0;
                            n = await receive.ConfigureAwait(false);
                            InReceive(false);
                            if (ShedProbe.On) ProbeInterval(ShedProbe.LoopReceiveWait, waitFrom);
                        }
                    }
                    catch (Exception e) when (e is SocketException or ObjectDisposedException)
                    {
                        break;
                    }
                    if (n == 0) break;
                    filled = n == Math.Min(_in.Length - _inEnd, _server.ReadSize);
                    _inEnd += n;
                    _bytesIn += n;
                    if (_server.Admission is { } admission) Stamp(admission);
                }
                if (!atOnce) _readsThisTurn = 0;
                else if (++_readsThisTurn > ReadTurns.ReadsPerTurn)
                {
                    if (ShedProbe.On) ShedProbe.AddTurn(_probePort, _probeTurnAt, _server.Now, _probeTurnWork);
                    await NextTurn().ConfigureAwait(false);
                    TakeReader();
                    if (ShedProbe.On) ProbeTurnStarts();
                }
                Volatile.Write(ref _admittedThisRead, 0);
                bool keepGoing;
                lock (_sync) keepGoing = ProcessFrames();
                CancelCollected();
                // The at-read budget engaged: what the socket holds is read before this read's calls are decided and
                // run (a read that filled its buffer left more there), up to ReadsPerTurn more reads, so the calls
                // that waited in it are decided now, not a round later.
                var readMore = false;
                if (filled && keepGoing && BudgetEngaged)
                {
                    for (var more = 0; more < ReadTurns.ReadsPerTurn && !_readEnded && ReadBetweenCalls(drain: true); more++) readMore = true;
                }
                // A read that waited for its data, over what is left of its budget: decided now, its sheds sent now, and
                // its admitted calls run in its turn (DecideBeforeTurn).
                var decidedAtRead = false;
                if (!atOnce && keepGoing && !_readEnded && _server.Admission is { PerRead: > 0, Engaged: true } budget && DecideBeforeTurn(budget))
                {
                    decidedAtRead = true;
                    var shedsSent = FlushAsync();
                    if (ShedProbe.On && !shedsSent.IsCompleted)
                    {
                        var waitFrom = _server.Now;
                        await shedsSent.ConfigureAwait(false);
                        ProbeInterval(ShedProbe.LoopSendWait, waitFrom);
                    }
                    else await shedsSent.ConfigureAwait(false);
                    var queuedAt = 0L;
                    if (ShedProbe.On)
                    {
                        ShedProbe.AddTurn(_probePort, _probeTurnAt, _server.Now, _probeTurnWork);
                        queuedAt = _server.Now;
                    }
                    await NextTurn(keepSocket: true).ConfigureAwait(false);
                    Volatile.Write(ref _awaitingTurn, false);
                    ReholdDecided();
                    if (ShedProbe.On)
                    {
                        ProbeInterval(ShedProbe.LoopDecidedWait, queuedAt);
                        ProbeTurnStarts();
                    }
                }
                await RunReadyAsync(readLoop: keepGoing, decidedAtRead: decidedAtRead).ConfigureAwait(false);
                var flushed = FlushAsync();
                if (ShedProbe.On && !flushed.IsCompleted)
                {
                    var waitFrom = _server.Now;
                    await flushed.ConfigureAwait(false);
                    ProbeInterval(ShedProbe.LoopSendWait, waitFrom);
                }
                else await flushed.ConfigureAwait(false);
                if (!keepGoing || _readEnded) break;
                if (NeedsDrain(out var drained))
                {
                    var waitFrom = ShedProbe.On ? _server.Now : 0;
                    await drained.ConfigureAwait(false);
                    if (ShedProbe.On) ProbeInterval(ShedProbe.LoopDrainWait, waitFrom);
                }
                Compact();
                // The at-read budget engaged: one read per turn, so every ready connection is read (and its calls over
                // the budget shed) once per round of turns: a call waits in its socket about one round. A read decided
                // before its turn has had it.
                if ((atOnce || readMore) && !decidedAtRead && BudgetEngaged)
                {
                    if (ShedProbe.On) ShedProbe.AddTurn(_probePort, _probeTurnAt, _server.Now, _probeTurnWork);
                    await NextTurn().ConfigureAwait(false);
                    TakeReader();
                    if (ShedProbe.On) ProbeTurnStarts();
                }
            }
        }
        catch (Exception)
        {
            // Nothing a peer sends should get here; whatever did, this connection ends and the server goes on.
        }
        finally
        {
            Abort();
            ArrayPool<byte>.Shared.Return(_in);
            _in = [];
        }
    }

    /// <summary>
    /// The wait for this connection's next turn (its read loop's own; bytes already read are handled in it). The turn is
    /// queued only once the read loop has stopped for it (<see cref="ReadTurn"/>: when the await registers), so whoever
    /// gives it resumes a stopped loop on the giver's own thread; the loop never goes on on the thread that asked. It must
    /// be awaited directly by <see cref="RunAsync"/>, never through an async method of its own: that method would be
    /// resumed by the giver while its caller had not yet awaited it, and the caller would then go on at once on its own
    /// thread (session 12's hang: a new connection's first turn given before <see cref="Start"/> had returned ran the
    /// connection's reads and calls on the accept loop, and a check held there stopped the server accepting anyone).
    /// </summary>
    private ValueTask NextTurn(bool keepSocket = false)
    {
        _readsThisTurn = 0;
        TurnsWaited++;
        Volatile.Write(ref _awaitingTurn, true);
        // From here until the turn comes a shed pass may read the socket (DecideWhileWaiting); the loop takes it back at
        // its turn (TakeReader). With keepSocket (DecideBeforeTurn) it keeps it: no pass reads it, nothing to take back.
        if (!keepSocket) Volatile.Write(ref _reader, 0);
        return _turn.Wait(_lane!);
    }

    private void InReceive(bool waiting)
    {
        Volatile.Write(ref _inReceive, waiting);
        if (waiting) Volatile.Read(ref _receiveWaits)?.TrySetResult();
    }

    /// <summary>
    /// Tests: completes once the read loop waits in a receive for data (at once if it does now; a receive that found
    /// data already there never waits).
    /// </summary>
    internal Task ReceiveWaits()
    {
        var waits = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _receiveWaits, waits);
        if (Volatile.Read(ref _inReceive)) waits.TrySetResult();
        return waits.Task;
    }

    /// <summary>
    /// A read whose receive waited for its data, the at-read budget engaged (session 22, h2-waitedread; h1-longturn's
    /// cut): when it holds more undecided calls than what is left of its budget, they are decided now — the calls over
    /// the budget answered (<see cref="ShedBefore"/>; the caller sends them at once, in a send of their own) — and the
    /// read loop queues for its turn before its admitted calls run, keeping its socket and the ready list meanwhile (no
    /// shed pass reads it, a sender that unparks calls leaves them to it). After an idle moment the next calls reach
    /// every connection's socket together and the engine runs the receive completions one after another: without this,
    /// each ran its read's admitted calls (12, ~0.7 ms verified) before the next connection's completion was looked at,
    /// and the last connection's sheds waited ~2 ms in its socket where no shed pass reaches them. A read within its
    /// budget has nothing to send early and runs inline (queuing it cost its admitted calls a lane round for nothing:
    /// session 21's variant 1). True when the read was decided and the loop must queue (it holds the runner:
    /// <see cref="RunReadyAsync"/> with <c>decidedAtRead</c>).
    /// </summary>
    private bool DecideBeforeTurn(WaitAdmission admission)
    {
        lock (_sync)
        {
            // A sender running unparked calls takes the ready list (and decides it with the budget), as on any read.
            if (_runningReady || _closed) return false;
            var undecided = 0;
            foreach (var s in _ready)
                if (s.Phase == StreamPhase.New && !s.Closed && !s.BudgetAdmitted) undecided++;
            if (undecided <= admission.PerRead - _admittedThisRead) return false;
            _runningReady = true;
        }
        ShedBefore(_ready, _server.Options.MaxCallsInFlight);
        lock (_sync)
        {
            // The admitted calls are not in flight until their turn, as if still in the socket (as a shed pass's kept
            // calls): counted, every connection's queued read would hold its budget of calls (12) in calls_in_flight
            // (64), and with many connections the other reads' calls, then these at their turn, would be shed by it.
            foreach (var s in _ready)
                if (s.Phase == StreamPhase.New && !s.Closed) Unhold(s);
        }
        return true;
    }

    /// <summary>The turn of a read decided before it came: its admitted calls count in calls_in_flight again (under the lock).</summary>
    private void ReholdDecided()
    {
        lock (_sync)
        {
            foreach (var s in _ready) Rehold(s);
        }
    }

    /// <summary>
    /// The turn came: the read loop takes the socket back, after a shed pass that is reading it (a few system calls) ends.
    /// </summary>
    private void TakeReader()
    {
        var spin = new SpinWait();
        while (Interlocked.CompareExchange(ref _reader, 1, 0) != 0) spin.SpinOnce(sleep1Threshold: -1);
        Volatile.Write(ref _awaitingTurn, false);
    }

    /// <summary>True while the read loop waits for its read turn and no shed pass reads its socket (LeanServer.ShedPassIfDue).</summary>
    internal bool WaitingForTurn => Volatile.Read(ref _reader) == 0 && Volatile.Read(ref _awaitingTurn);

    /// <summary>Bytes per call assumed for a connection that has not opened a call yet (below any gRPC call's frames, so
    /// a shed pass errs toward reading it).</summary>
    internal const int UnknownCallBytes = 32;

    /// <summary>
    /// A shed pass (LeanServer.ShedPassIfDue, the at-read budget engaged), on another connection's read loop between its
    /// calls, while this connection's loop waits for its read turn: reads what the socket holds (as the turn's own drain
    /// would) and answers at once the calls over the budget of the coming turn — in arrival order, the first
    /// <see cref="WaitAdmission.PerRead"/> of the calls not yet decided stay for the turn (its read decides them with
    /// whatever comes before it), the rest are shed now, as that read would shed them, instead of after every turn ahead
    /// of this one. Their answers are sent at once. Returns the calls shed. Nothing happens unless the loop is parked for
    /// its turn (the reader flag is taken for the pass, so the loop waits for it to end at its turn).
    /// <para>It reads only a socket that holds more than what is left of the coming turn's budget (the socket's byte
    /// count, one system call, against that many calls at this connection's bytes per call so far): a read that would
    /// shed nothing only splits the turn's read in two, with a send of its own, which with many connections (64: reads of
    /// a few calls each) cost 9-40 % of the admitted rate (session 18). <paramref name="looked"/>: the socket's count was
    /// read; <paramref name="read"/>: the socket was.</para>
    /// </summary>
    internal int DecideWhileWaiting(WaitAdmission admission, out bool looked, out bool read)
    {
        looked = false;
        read = false;
        if (Interlocked.CompareExchange(ref _reader, 2, 0) != 0) return 0;
        try
        {
            if (!Volatile.Read(ref _awaitingTurn) || _readEnded || _in.Length == 0 || _socket is null) return 0;
            int keptBefore;
            lock (_sync)
            {
                keptBefore = 0;
                foreach (var s in _keptForTurn)
                    if (s.Phase == StreamPhase.New && !s.Closed) keptBefore++;
            }
            // Over what is left of the budget: at least one whole call more than that (its kept calls fill it: any call).
            var room = Math.Max(0, admission.PerRead - keptBefore);
            looked = true;
            var perCall = _callsIn > 0 ? Math.Max(UnknownCallBytes, _bytesIn / _callsIn) : UnknownCallBytes;
            int available;
            try
            {
                available = _socket.Available;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return 0;
            }
            if (available <= room * perCall || available < perCall) return 0;
            var reads = _readsThisTurn;
            for (var i = 0; i <= ReadTurns.ReadsPerTurn && !_readEnded && ReadBetweenCalls(drain: true); i++) read = true;
            _readsThisTurn = reads;
            if (!read) return 0;
            _readByPass = true;
            lock (_sync)
            {
                // A runner of parked calls takes the ready list itself (and decides it with the budget).
                if (_runningReady || _closed) return 0;
                var kept = 0;
                foreach (var s in _keptForTurn)
                    if (s.Phase == StreamPhase.New && !s.Closed) kept++;
                foreach (var s in _ready)
                {
                    if (s.Phase != StreamPhase.New || s.Closed) continue;
                    if (kept < admission.PerRead)
                    {
                        kept++;
                        continue;
                    }
                    s.Phase = StreamPhase.Checking;
                    _passShedding.Add(s);
                }
                // What the pass read waits for the turn (the shed ones are answered below and leave the list then).
                foreach (var s in _ready)
                    if (!_passShedding.Contains(s)) _keptForTurn.Add(s);
                    else s.Queued = false;
                _ready.Clear();
                // The kept calls are not in flight until their turn, as if still in the socket: counted, with 64
                // connections (up to PerRead kept on each) they held calls_in_flight (64) over its limit and every
                // turn's kept calls were shed by it, a round late.
                foreach (var s in _keptForTurn) Unhold(s);
            }
            var shed = _passShedding.Count;
            if (shed == 0) return 0;
            admission.BudgetDecided(shed, _server.Now);
            try
            {
                foreach (var s in _passShedding)
                {
                    var answer = DelayedAnswer(s.Method);
                    lock (_sync)
                    {
                        if (ShedProbe.On) ProbeShed(s, ShedProbe.ShedPass);
                        Decide(s, answer);
                    }
                }
            }
            finally
            {
                _passShedding.Clear();
            }
            // Counted before the answers leave: whoever reads them may look at the count at once.
            _server.CountPassSheds(shed);
            KickFlush();
            return shed;
        }
        finally
        {
            Volatile.Write(ref _reader, 0);
        }
    }

    /// <summary>
    /// A read completed: its calls' waits count from now (<see cref="WaitAdmission"/>), and the event loop's lag is
    /// probed when a probe is due (a byte through this connection's read lane, answered where the engine gets to it).
    /// </summary>
    /// <summary>True while admission by waiting is engaged with an at-read budget (<see cref="WaitAdmission.PerRead"/>).</summary>
    private bool BudgetEngaged => _server.Admission is { PerRead: > 0, Engaged: true };

    private void Stamp(WaitAdmission admission)
    {
        var now = _server.Now;
        _readAt = now;
        if (admission.ProbeDue(now) && !_lane!.Probe(_server.ProbeReturned)) admission.ProbeLost();
    }

    private void Compact()
    {
        if (_inStart == _inEnd)
        {
            _inStart = _inEnd = 0;
            return;
        }
        if (_inStart == 0) return;
        _in.AsSpan(_inStart, _inEnd - _inStart).CopyTo(_in);
        _inEnd -= _inStart;
        _inStart = 0;
    }

    private void WritePreamble()
    {
        // SETTINGS: streams per connection and the header list size; the rest stay at their defaults (table 4096,
        // stream window 65535, frame 16384). Then the connection window opened to 1 MiB.
        _out.FrameHeader(12, H2.Settings, 0, 0);
        Span<byte> s = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(s, H2.SettingsMaxConcurrentStreams);
        BinaryPrimitives.WriteUInt32BigEndian(s[2..], (uint)Math.Max(1, _server.Options.MaxConcurrentCalls));
        BinaryPrimitives.WriteUInt16BigEndian(s[6..], H2.SettingsMaxHeaderListSize);
        BinaryPrimitives.WriteUInt32BigEndian(s[8..], (uint)_server.MaxHeaderList);
        _out.Write(s);
        _out.WindowUpdate(0, ConnectionWindow - H2.DefaultWindow);
        _recvWindow = ConnectionWindow;
    }

    // ---------------------------------------------------------------- frames (under _sync)

    /// <summary>Handles every complete frame in the input; false when the connection must close (GOAWAY written).</summary>
    private bool ProcessFrames()
    {
        if (_closed) return false;
        try
        {
            while (true)
            {
                var available = _inEnd - _inStart;
                if (!_prefaceDone)
                {
                    var preface = H2.Preface;
                    var have = Math.Min(available, preface.Length);
                    if (!_in.AsSpan(_inStart, have).SequenceEqual(preface[..have]))
                        throw new H2ConnectionException(H2.ProtocolError, "not an HTTP/2 connection preface (this server speaks h2c with prior knowledge)");
                    if (available < preface.Length) return true;
                    _inStart += preface.Length;
                    _prefaceDone = true;
                    continue;
                }
                if (available < H2.FrameHeaderSize) return true;
                var header = _in.AsSpan(_inStart, H2.FrameHeaderSize);
                var length = (header[0] << 16) | (header[1] << 8) | header[2];
                var type = header[3];
                var flags = header[4];
                var stream = BinaryPrimitives.ReadInt32BigEndian(header[5..]) & 0x7FFFFFFF;
                if (length > H2.DefaultMaxFrame)
                    throw new H2ConnectionException(H2.FrameSizeError, $"frame of {length} bytes exceeds SETTINGS_MAX_FRAME_SIZE {H2.DefaultMaxFrame}");
                if (available < H2.FrameHeaderSize + length) return true;
                var payload = _in.AsSpan(_inStart + H2.FrameHeaderSize, length);
                _inStart += H2.FrameHeaderSize + length;
                if (!_settingsSeen && type != H2.Settings) throw new H2ConnectionException(H2.ProtocolError, "the first frame must be SETTINGS");
                if (_inHeaderBlock && (type != H2.Continuation || stream != _blockStream))
                    throw new H2ConnectionException(H2.ProtocolError, "a header block must be continued by CONTINUATION frames of its stream");
                switch (type)
                {
                    case H2.Data: OnData(flags, stream, payload); break;
                    case H2.Headers: OnHeaders(flags, stream, payload); break;
                    case H2.Priority: OnPriority(stream, payload); break;
                    case H2.RstStream: OnRstStream(stream, payload); break;
                    case H2.Settings: OnSettings(flags, stream, payload); break;
                    case H2.PushPromise: throw new H2ConnectionException(H2.ProtocolError, "PUSH_PROMISE from a client");
                    case H2.Ping: OnPing(flags, stream, payload); break;
                    case H2.GoAway: OnGoAway(stream, payload); break;
                    case H2.WindowUpdate: OnWindowUpdate(stream, payload); break;
                    case H2.Continuation: OnContinuation(flags, stream, payload); break;
                    default: break; // §4.1: unknown frame types are ignored.
                }
            }
        }
        catch (H2ConnectionException e)
        {
            ConnectionError(e.Code, e.Message);
            return false;
        }
        catch (HpackException e)
        {
            ConnectionError(H2.CompressionError, "HPACK: " + e.Message);
            return false;
        }
    }

    private void ConnectionError(uint code, string message)
    {
        _out.GoAway(_lastStreamId, code, message);
        _goingAway = true;
        // Nothing more runs on a connection that is being closed.
        foreach (var s in _ready) s.Queued = false;
        _ready.Clear();
        _parked.Clear();
        _server.Refused(null, StatusCode.Internal, H2.Name(code));
    }

    private void OnSettings(byte flags, int stream, ReadOnlySpan<byte> payload)
    {
        if (stream != 0) throw new H2ConnectionException(H2.ProtocolError, "SETTINGS on a stream");
        if ((flags & H2.Ack) != 0)
        {
            if (payload.Length != 0) throw new H2ConnectionException(H2.FrameSizeError, "SETTINGS ACK with a payload");
            _settingsAcked = true;
            return;
        }
        if (payload.Length % 6 != 0) throw new H2ConnectionException(H2.FrameSizeError, "SETTINGS length not a multiple of 6");
        for (var i = 0; i < payload.Length; i += 6)
        {
            var id = BinaryPrimitives.ReadUInt16BigEndian(payload[i..]);
            var value = BinaryPrimitives.ReadUInt32BigEndian(payload[(i + 2)..]);
            switch (id)
            {
                case H2.SettingsEnablePush when value > 1:
                    throw new H2ConnectionException(H2.ProtocolError, "SETTINGS_ENABLE_PUSH must be 0 or 1");
                case H2.SettingsInitialWindowSize:
                {
                    if (value > int.MaxValue) throw new H2ConnectionException(H2.FlowControlError, "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1");
                    var delta = (long)value - _peerInitialWindow;
                    _peerInitialWindow = (int)value;
                    foreach (var s in _streams.Values)
                    {
                        s.SendWindow += delta;
                        if (s.SendWindow > int.MaxValue) throw new H2ConnectionException(H2.FlowControlError, "a stream window over 2^31-1");
                    }
                    if (delta > 0) ResumeBlocked();
                    break;
                }
                case H2.SettingsMaxFrameSize:
                    if (value is < H2.DefaultMaxFrame or > 16_777_215)
                        throw new H2ConnectionException(H2.ProtocolError, "SETTINGS_MAX_FRAME_SIZE outside 16384..16777215");
                    _peerMaxFrame = (int)value;
                    break;
                default:
                    // HEADER_TABLE_SIZE: this side's encoder uses no dynamic table, so any size is honoured.
                    // MAX_CONCURRENT_STREAMS: servers open no streams. MAX_HEADER_LIST_SIZE: our answers are tiny.
                    break;
            }
        }
        _settingsSeen = true;
        _out.FrameHeader(0, H2.Settings, H2.Ack, 0);
    }

    private void OnPing(byte flags, int stream, ReadOnlySpan<byte> payload)
    {
        if (stream != 0) throw new H2ConnectionException(H2.ProtocolError, "PING on a stream");
        if (payload.Length != 8) throw new H2ConnectionException(H2.FrameSizeError, "PING payload not 8 bytes");
        if ((flags & H2.Ack) != 0) return;
        _out.FrameHeader(8, H2.Ping, H2.Ack, 0);
        _out.Write(payload);
    }

    private void OnGoAway(int stream, ReadOnlySpan<byte> payload)
    {
        if (stream != 0) throw new H2ConnectionException(H2.ProtocolError, "GOAWAY on a stream");
        if (payload.Length < 8) throw new H2ConnectionException(H2.FrameSizeError, "GOAWAY shorter than 8 bytes");
        // The peer opens no more streams; running ones finish and it closes the socket.
    }

    private void OnPriority(int stream, ReadOnlySpan<byte> payload)
    {
        if (stream == 0) throw new H2ConnectionException(H2.ProtocolError, "PRIORITY on stream 0");
        if (payload.Length != 5)
        {
            ResetStream(stream, H2.FrameSizeError);
            return;
        }
        // Priorities are advisory (RFC 9113 deprecates them): ignored.
    }

    private void OnRstStream(int stream, ReadOnlySpan<byte> payload)
    {
        if (stream == 0) throw new H2ConnectionException(H2.ProtocolError, "RST_STREAM on stream 0");
        if (payload.Length != 4) throw new H2ConnectionException(H2.FrameSizeError, "RST_STREAM payload not 4 bytes");
        if (stream > _lastStreamId) throw new H2ConnectionException(H2.ProtocolError, "RST_STREAM on an idle stream");
        if (!_streams.TryGetValue(stream, out var s)) return;
        SpendReset();
        Abort(s);
        // A reset answer that waited for the windows no longer holds the calls parked behind it. One held back for a
        // full output is only dropped: the next held-back answers wait for a send to drain the output, as before (a
        // peer resetting many streams would otherwise have each reset serialize the answers of streams it resets next).
        if (_blocked.Count > 0) ResumeBlocked();
        else if (_deferred.Count > 0) DropClosedDeferred();
    }

    private void OnWindowUpdate(int stream, ReadOnlySpan<byte> payload)
    {
        if (payload.Length != 4) throw new H2ConnectionException(H2.FrameSizeError, "WINDOW_UPDATE payload not 4 bytes");
        var increment = BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7FFFFFFF;
        if (stream == 0)
        {
            if (increment == 0) throw new H2ConnectionException(H2.ProtocolError, "WINDOW_UPDATE of 0 on the connection");
            _sendWindow += increment;
            if (_sendWindow > int.MaxValue) throw new H2ConnectionException(H2.FlowControlError, "connection window over 2^31-1");
            ResumeBlocked();
            return;
        }
        if (!_streams.TryGetValue(stream, out var s))
        {
            if (stream > _lastStreamId) throw new H2ConnectionException(H2.ProtocolError, "WINDOW_UPDATE on an idle stream");
            return;
        }
        if (increment == 0)
        {
            ResetStream(s, H2.ProtocolError);
            return;
        }
        s.SendWindow += increment;
        if (s.SendWindow > int.MaxValue)
        {
            ResetStream(s, H2.FlowControlError);
            return;
        }
        ResumeBlocked();
    }

    private void OnData(byte flags, int stream, ReadOnlySpan<byte> payload)
    {
        if (stream == 0) throw new H2ConnectionException(H2.ProtocolError, "DATA on stream 0");
        var data = Unpad(flags, payload, 0);
        // Flow control counts the whole payload, padding included, whatever happens to the stream.
        _recvWindow -= payload.Length;
        if (_recvWindow < 0) throw new H2ConnectionException(H2.FlowControlError, "DATA beyond the connection window");
        if (_recvWindow < ConnectionWindow / 2)
        {
            _out.WindowUpdate(0, (int)(ConnectionWindow - _recvWindow));
            _recvWindow = ConnectionWindow;
        }
        if (!_streams.TryGetValue(stream, out var s))
        {
            if (stream > _lastStreamId) throw new H2ConnectionException(H2.ProtocolError, "DATA on an idle stream");
            return; // a stream this side answered and closed: the rest of its body is dropped.
        }
        if (s.RemoteClosed)
        {
            ResetStream(s, H2.StreamClosed);
            return;
        }
        s.RecvWindow -= payload.Length;
        s.Received += payload.Length;
        if (s.RecvWindow < 0)
        {
            ResetStream(s, H2.FlowControlError);
            return;
        }
        if (data.Length > 0)
        {
            // Bounded: until the stream is admitted and its length prefix accepted the peer cannot send more than the
            // initial window (65535); after, the message's declared size (at most the method's limit) + 5.
            if (s.Declared >= 0 && s.BodyLength + (long)data.Length > 5L + s.Declared)
            {
                Answer(s, StatusCode.Internal, "Additional data after the message received.");
                return;
            }
            s.Append(data);
        }
        if ((flags & H2.EndStream) != 0) RequestComplete(s);
        if (s.Phase == StreamPhase.Admitted) Ready(s);
    }

    private static ReadOnlySpan<byte> Unpad(byte flags, ReadOnlySpan<byte> payload, int fixedAfterPad)
    {
        if ((flags & H2.Padded) == 0) return payload;
        if (payload.Length < 1) throw new H2ConnectionException(H2.FrameSizeError, "padded frame without a pad length");
        var pad = payload[0];
        if (pad + 1 + fixedAfterPad > payload.Length) throw new H2ConnectionException(H2.ProtocolError, "padding longer than the frame");
        return payload[1..(payload.Length - pad)];
    }

    private void OnHeaders(byte flags, int stream, ReadOnlySpan<byte> payload)
    {
        if (stream == 0 || (stream & 1) == 0) throw new H2ConnectionException(H2.ProtocolError, "HEADERS on stream 0 or an even (server) stream");
        var fragment = Unpad(flags, payload, (flags & H2.PriorityFlag) != 0 ? 5 : 0);
        if ((flags & H2.PriorityFlag) != 0)
        {
            if (fragment.Length < 5) throw new H2ConnectionException(H2.FrameSizeError, "HEADERS too short for its priority");
            fragment = fragment[5..];
        }
        _blockStream = stream;
        _blockEndStream = (flags & H2.EndStream) != 0;
        _blockLength = 0;
        _blockFrames = 0;
        AppendBlock(fragment);
        if ((flags & H2.EndHeaders) != 0) CompleteBlock();
        else _inHeaderBlock = true;
    }

    private void OnContinuation(byte flags, int stream, ReadOnlySpan<byte> payload)
    {
        if (!_inHeaderBlock) throw new H2ConnectionException(H2.ProtocolError, "CONTINUATION without a header block");
        // A flood of (empty) CONTINUATION frames costs work without growing the block: bounded too.
        if (++_blockFrames > 64) throw new H2ConnectionException(H2.EnhanceYourCalm, "more than 64 CONTINUATION frames in one header block");
        AppendBlock(payload);
        if ((flags & H2.EndHeaders) == 0) return;
        _inHeaderBlock = false;
        CompleteBlock();
    }

    private void AppendBlock(ReadOnlySpan<byte> fragment)
    {
        if (_blockLength + fragment.Length > _maxHeaderBlock)
            throw new H2ConnectionException(H2.EnhanceYourCalm, $"header block over {_maxHeaderBlock} bytes");
        if (_blockLength + fragment.Length > _block.Length)
        {
            var bigger = new byte[Math.Min(_maxHeaderBlock, Math.Max(_block.Length * 2, Math.Max(1024, _blockLength + fragment.Length)))];
            _block.AsSpan(0, _blockLength).CopyTo(bigger);
            _block = bigger;
        }
        fragment.CopyTo(_block.AsSpan(_blockLength));
        _blockLength += fragment.Length;
    }

    private void CompleteBlock()
    {
        var id = _blockStream;
        var endStream = _blockEndStream;
        // Decoded in full whatever happens next: the dynamic table must stay in step with the peer's encoder.
        var withinLimit = _hpack.Decode(_block.AsSpan(0, _blockLength), _fields, _server.MaxHeaderList, DeferValuesOver);
        _blockLength = 0;
        if (_streams.TryGetValue(id, out var existing))
        {
            // Trailers from the client: they must end the stream; their fields are ignored.
            if (existing.RemoteClosed) ResetStream(existing, H2.StreamClosed);
            else if (!endStream) ResetStream(existing, H2.ProtocolError);
            else
            {
                RequestComplete(existing);
                if (existing.Phase == StreamPhase.Admitted) Ready(existing);
            }
            return;
        }
        if (id <= _lastStreamId) throw new H2ConnectionException(H2.StreamClosed, "HEADERS on a closed stream");
        _lastStreamId = id;
        if (_goingAway)
        {
            _out.RstStream(id, H2.RefusedStream);
            return;
        }
        var streamLimit = Math.Max(1, _server.Options.MaxConcurrentCalls);
        if (!_settingsAcked) streamLimit = Math.Max(streamLimit, StreamsBeforeSettingsAck);
        if (_streams.Count >= streamLimit)
        {
            // Over SETTINGS_MAX_CONCURRENT_STREAMS (a client that ignores it): refused, safe to retry.
            SpendReset();
            _out.RstStream(id, H2.RefusedStream);
            return;
        }
        if (!withinLimit)
        {
            _server.Refused(null, StatusCode.ResourceExhausted, "request_headers_too_large");
            TrailersOnly(id, endStream, 200, StatusCode.ResourceExhausted,
                $"Request headers exceed this axon's limit of {_server.MaxHeaderList} bytes.");
            return;
        }
        var request = ParseRequest(out var malformed);
        if (malformed is not null)
        {
            // §8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR.
            _out.RstStream(id, H2.ProtocolError);
            return;
        }
        if (request.Method != "POST")
        {
            TrailersOnly(id, endStream, 405, StatusCode.Unimplemented, "Only POST is served.");
            return;
        }
        BittensorMethod method;
        if (request.Path == "/Bittensor/Forward") method = BittensorMethod.Forward;
        else if (request.Path == "/Bittensor/Backward") method = BittensorMethod.Backward;
        else
        {
            TrailersOnly(id, endStream, 200, StatusCode.Unimplemented, "Method is unimplemented.");
            return;
        }
        if (!IsGrpcContentType(request.ContentType))
        {
            TrailersOnly(id, endStream, 415, StatusCode.Internal, $"Content-Type '{request.ContentType}' is not supported.");
            return;
        }
        if (_server.RateLimited(_key))
        {
            _server.Refused(method, StatusCode.ResourceExhausted, RefusalReasons.PerIpRate);
            TrailersOnly(id, endStream, 200, StatusCode.ResourceExhausted, TransportStatus.RateLimited);
            return;
        }
        var s = new H2Stream(this, id, method, PendingHeadersOfRequest(), request.Deadline, RentCts())
        {
            SendWindow = _peerInitialWindow, RecvWindow = H2.DefaultWindow, ReadAt = _readAt,
        };
        _streams.Add(id, s);
        _callsIn++;
        if (endStream) RequestComplete(s);
        Ready(s);
    }

    /// <summary>
    /// The peer ended the stream: its request is whole, and from now until its answer is complete it counts as held
    /// (calls in flight), except while it waits for the peer (parked behind, or its answer held by, the peer's windows).
    /// </summary>
    private void RequestComplete(H2Stream s)
    {
        s.RemoteClosed = true;
        if (s.Held || s.Closed) return;
        s.Held = true;
        _server.Hold();
    }

    private static bool IsGrpcContentType(string? value) =>
        value is not null && value.StartsWith("application/grpc", StringComparison.Ordinal)
        && (value.Length == 16 || value[16] is '+' or ';');

    private readonly record struct Request(string? Method, string? Path, string? ContentType, DateTime Deadline);

    /// <summary>
    /// The request's pseudo-headers from <see cref="_fields"/>, and which of them are its metadata (<see cref="_metadataFields"/>,
    /// for <see cref="PendingHeadersOfRequest"/>); <paramref name="malformed"/> says why it is not a valid request.
    /// </summary>
    private Request ParseRequest(out string? malformed)
    {
        malformed = null;
        string? method = null, scheme = null, path = null, contentType = null;
        var deadline = DateTime.MaxValue;
        _metadataFields.Clear();
        var regularSeen = false;
        for (var i = 0; i < _fields.Count; i++)
        {
            var name = _fields[i].Name;
            if (name.Length == 0)
            {
                malformed = "empty header name";
                continue;
            }
            if (name[0] != ':' && !IsRequestField(name))
            {
                // Metadata: its value (maybe long and only octets yet) is made a string when the call's check reads it.
                regularSeen = true;
                if (!ValidName(name)) malformed = "header name with upper-case or invalid characters";
                else _metadataFields.Add(i);
                continue;
            }
            var value = _hpack.Value(_fields[i]);
            if (name[0] == ':')
            {
                if (regularSeen) malformed = "pseudo-header after a regular header";
                switch (name)
                {
                    case ":method" when method is null: method = value; break;
                    case ":scheme" when scheme is null: scheme = value; break;
                    case ":path" when path is null: path = value; break;
                    case ":authority": break;
                    default: malformed = $"unknown or repeated pseudo-header {name}"; break;
                }
                continue;
            }
            regularSeen = true;
            switch (name)
            {
                case "connection" or "keep-alive" or "proxy-connection" or "transfer-encoding" or "upgrade":
                    malformed = $"connection-specific header {name}";
                    break;
                case "te":
                    if (value != "trailers") malformed = "te other than trailers";
                    break;
                case "content-type":
                    contentType = value;
                    break;
                case "grpc-timeout":
                    if (TryTimeout(value, out var timeout)) deadline = timeout >= TimeSpan.FromDays(365) ? DateTime.MaxValue : DateTime.UtcNow + timeout;
                    break;
                case "grpc-encoding" or "grpc-accept-encoding" or "host" or "content-length":
                    break;
            }
        }
        if (malformed is null && (method is null || scheme is null || string.IsNullOrEmpty(path))) malformed = "missing :method, :scheme or :path";
        return new Request(method, path, contentType, deadline);
    }

    /// <summary>The regular headers <see cref="ParseRequest"/> reads itself (the rest are the request's metadata).</summary>
    private static bool IsRequestField(string name) => name switch
    {
        "connection" or "keep-alive" or "proxy-connection" or "transfer-encoding" or "upgrade" or "te" or "content-type"
            or "grpc-timeout" or "grpc-encoding" or "grpc-accept-encoding" or "host" or "content-length" => true,
        _ => false,
    };

    /// <summary>The metadata <see cref="ParseRequest"/> found, in a <see cref="PendingHeaders"/> of the pool (under the lock).</summary>
    private PendingHeaders PendingHeadersOfRequest()
    {
        var pending = _headersPool.Count > 0 ? _headersPool.Pop() : new PendingHeaders();
        foreach (var i in _metadataFields)
        {
            var f = _fields[i];
            if (f.Value is { } value) pending.Add(f.Name, value);
            else pending.Add(f.Name, _hpack.RawValue(f));
        }
        return pending;
    }

    /// <summary>A stream's metadata as <see cref="Metadata"/>, made on the first call (under the lock); its pending form goes back to the pool.</summary>
    private Metadata HeadersOf(H2Stream s)
    {
        if (s.Headers is { } made) return made;
        var pending = s.PendingHeaders!;
        s.PendingHeaders = null;
        s.Headers = pending.ToMetadata();
        ReturnHeaders(pending);
        return s.Headers;
    }

    private void ReturnHeaders(PendingHeaders pending)
    {
        pending.Clear();
        if (_headersPool.Count < HeadersPooled && pending.RawCapacity <= PendingHeaders.PooledRawLimit) _headersPool.Push(pending);
    }

    private static bool ValidName(string name)
    {
        foreach (var c in name)
        {
            if (c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_' or '.') continue;
            // Other token characters are legal HTTP but not gRPC metadata keys: such headers are dropped, not refused.
            if (c is (>= 'A' and <= 'Z') or <= ' ' or >= (char)0x7F or ':') return false;
        }
        return true;
    }

    internal static void AddMetadata(Metadata headers, string name, string value)
    {
        foreach (var c in name)
            if (!(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_' or '.')) return;
        try
        {
            if (name.EndsWith("-bin", StringComparison.Ordinal))
            {
                var padded = value.Length % 4 == 0 ? value : value + new string('=', 4 - (value.Length % 4));
                headers.Add(name, Convert.FromBase64String(padded));
            }
            else
            {
                headers.Add(name, value);
            }
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            // Not valid gRPC metadata: dropped, as grpc-dotnet drops it.
        }
    }

    /// <summary>gRPC's <c>grpc-timeout</c>: 1–8 digits and a unit (H, M, S, m, u, n).</summary>
    internal static bool TryTimeout(string value, out TimeSpan timeout)
    {
        timeout = default;
        if (value.Length is < 2 or > 9) return false;
        if (!long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount)) return false;
        double ticks = value[^1] switch
        {
            'H' => amount * (double)TimeSpan.TicksPerHour,
            'M' => amount * (double)TimeSpan.TicksPerMinute,
            'S' => amount * (double)TimeSpan.TicksPerSecond,
            'm' => amount * (double)TimeSpan.TicksPerMillisecond,
            'u' => amount * 10.0,
            'n' => amount / 100.0,
            _ => -1,
        };
        if (ticks < 0) return false;
        timeout = TimeSpan.FromTicks((long)Math.Min(ticks, TimeSpan.FromDays(365).Ticks));
        return true;
    }

    /// <summary>RST_STREAM for a stream this side still holds, or only the frame for one it does not.</summary>
    private void ResetStream(int id, uint code)
    {
        if (_streams.TryGetValue(id, out var s)) ResetStream(s, code);
        else _out.RstStream(id, code);
    }

    private void ResetStream(H2Stream s, uint code)
    {
        _out.RstStream(s.Id, code);
        Abort(s);
    }

    /// <summary>The peer reset a stream or one was refused: a rapid-reset flood (CVE-2023-44487) ends the connection.</summary>
    private void SpendReset()
    {
        var now = Environment.TickCount64;
        _resetAllowance = Math.Min(ResetBurst, _resetAllowance + ((now - _resetStamp) * ResetsPerSecond / 1000.0));
        _resetStamp = now;
        if (--_resetAllowance < 0) throw new H2ConnectionException(H2.EnhanceYourCalm, "too many stream resets");
    }

    private void Ready(H2Stream s)
    {
        if (s.Queued) return;
        s.Queued = true;
        _ready.Add(s);
    }

    // ---------------------------------------------------------------- calls

    private enum Step
    {
        None,
        Check,
        Handle,
    }

    /// <summary>
    /// Runs the calls the last read made ready, outside the lock (synchronous checks and handlers run here). Their answers
    /// leave together after the read, but in sends of about 256 KiB when many came at once (32 answers of 64 KiB would
    /// otherwise grow the output past what it keeps between sends, and reallocate it every read).
    /// With <see cref="ServerTransportOptions.MaxCallsInFlight"/> set, the streams over the limit are shed first and their
    /// answers sent at once, before the admitted calls run; and from the read loop (<paramref name="readLoop"/>), while the
    /// server is at its limit, the socket is read between calls so newly arrived calls over it are shed without waiting
    /// for the calls ahead of them (they join the ready list otherwise).
    /// </summary>
    private async ValueTask RunReadyAsync(bool readLoop = false, bool decidedAtRead = false)
    {
        var limit = _server.Options.MaxCallsInFlight;
        var sincePeek = 0;
        var peekedForWait = false;
        // One runner at a time (the read loop, or a sender that unparked calls): whoever runs takes what is ready
        // until nothing is. A read decided before its turn (DecideBeforeTurn) has held the runner since.
        if (!decidedAtRead)
        {
            lock (_sync)
            {
                if (_runningReady || _ready.Count == 0) return;
                _runningReady = true;
            }
        }
        var done = false;
        try
        {
            while (true)
            {
                List<H2Stream> ready;
                lock (_sync)
                {
                    if (_ready.Count == 0)
                    {
                        _runningReady = false;
                        done = true;
                        return;
                    }
                    ready = _ready;
                    _ready = _readySpare;
                    _readySpare = ready;
                }
                try
                {
                    // The budget decides each call once (H2Stream.BudgetAdmitted: the admitted calls of a read decided
                    // before its turn, or read between calls, are not counted again); calls_in_flight still caps them.
                    if (ShedBefore(ready, limit)) await FlushAsync().ConfigureAwait(false);
                    foreach (var s in ready)
                    {
                        s.Queued = false;
                        Pump(s);
                        if (Volatile.Read(ref _out.Length) >= FlushEarly)
                        {
                            var flushed = FlushAsync();
                            if (ShedProbe.On && readLoop && !flushed.IsCompleted)
                            {
                                var waitFrom = _server.Now;
                                await flushed.ConfigureAwait(false);
                                ProbeInterval(ShedProbe.LoopSendWait, waitFrom);
                            }
                            else await flushed.ConfigureAwait(false);
                        }
                        // The at-read budget engaged: the connections waiting for their turn have their calls over the
                        // budget answered now (at most one pass every eighth of the target over the server).
                        if (readLoop && _server.Admission is { PerRead: > 0, Engaged: true } budget) _server.ShedPassIfDue(this, budget);
                        // At the calls_in_flight limit the socket is looked at every PeekEvery calls; with the wait
                        // rule engaged once per read (after PeekEvery calls): each look is two system calls, and with
                        // many connections (64) reads are short, so one every few calls doubled the CPU per call.
                        if (readLoop && ++sincePeek >= PeekEvery
                            && ((limit > 0 && _server.CallsHeld >= limit) || (!peekedForWait && _server.Admission is { PerRead: 0, Engaged: true })))
                        {
                            sincePeek = 0;
                            peekedForWait = true;
                            if (ReadBetweenCalls() && ShedBefore(_ready, limit)) await FlushAsync().ConfigureAwait(false);
                        }
                    }
                }
                finally
                {
                    ready.Clear();
                }
            }
        }
        finally
        {
            if (!done)
            {
                lock (_sync) _runningReady = false;
            }
        }
    }

    /// <summary>
    /// The sheds decided before a list of calls runs: those over <c>calls_in_flight</c> (<see cref="ShedOver"/>), then,
    /// with the rule engaged, those whose wait is already over <see cref="ServerTransportOptions.TargetWait"/>
    /// (<see cref="ShedLate"/>). True when any was shed over <c>calls_in_flight</c> (their answers are sent at once); the
    /// wait rule's answers go out with the read's own answers (its flush, or the first early one: a few calls later), not
    /// in a send of their own — a send per read's sheds cost as much as the sheds themselves with many connections.
    /// </summary>
    private bool ShedBefore(List<H2Stream> list, int limit)
    {
        if (Volatile.Read(ref _rehearse) > 0 && ShedRehearsal(list)) return true;
        var shed = limit > 0 && ShedOver(list, limit);
        if (_server.Admission is { Engaged: true } admission)
        {
            if (admission.PerRead > 0) ShedOverBudget(list, admission);
            else ShedLate(list, admission);
        }
        return shed;
    }

    /// <summary>
    /// The at-read budget (<see cref="WaitAdmission.PerRead"/>), engaged: of the streams of <paramref name="list"/> that
    /// have not had their check, in arrival order, the first ones up to the read's budget (what is left of
    /// <see cref="WaitAdmission.PerRead"/> since the read loop's last read) are admitted and the rest shed, before any of
    /// them runs; their answers leave in the read's send. The first call of a read is always admitted, so a call alone
    /// is never shed. Each call is decided once (<see cref="H2Stream.BudgetAdmitted"/>): the calls a read between calls
    /// brought (at the calls_in_flight limit) are decided there and not again when the runner takes them up, and a read
    /// decided before its turn is not decided again at it. True when any was shed.
    /// </summary>
    private bool ShedOverBudget(List<H2Stream> list, WaitAdmission admission)
    {
        var decided = false;
        lock (_sync)
        {
            var admitted = _admittedThisRead;
            foreach (var s in list)
            {
                if (s.Phase != StreamPhase.New || s.Closed || _closed || s.BudgetAdmitted) continue;
                decided = true;
                if (admitted < admission.PerRead)
                {
                    admitted++;
                    s.BudgetAdmitted = true;
                    continue;
                }
                s.Phase = StreamPhase.Checking;
                _shedding.Add(s);
            }
            _admittedThisRead = admitted;
        }
        if (decided) admission.BudgetDecided(_shedding.Count, _server.Now);
        if (_shedding.Count == 0) return false;
        AnswerShedding(ShedProbe.ShedBudget);
        return true;
    }

    /// <summary>
    /// With the wait rule engaged: sheds every stream of <paramref name="list"/> that has not had its check and whose
    /// wait (<see cref="WaitAdmission.ShouldShed"/>) is over the target now. Claimed under the lock, answered outside
    /// it. True when any was shed.
    /// </summary>
    private bool ShedLate(List<H2Stream> list, WaitAdmission admission)
    {
        var now = _server.Now;
        lock (_sync)
        {
            // Whether the list's calls are alone is looked at once, and only when one of them would be shed otherwise.
            var alone = -1;
            foreach (var s in list)
            {
                if (s.Phase != StreamPhase.New || s.Closed || _closed) continue;
                if (!admission.OverTarget(s.ReadAt, now)) continue;
                if (alone < 0) alone = AloneInList(list) ? 1 : 0;
                if (alone == 1) continue;
                admission.CountShed();
                s.Phase = StreamPhase.Checking;
                _shedding.Add(s);
            }
            if (_shedding.Count == 0) return false;
        }
        AnswerShedding(ShedProbe.ShedLate);
        return true;
    }

    /// <summary>Answers the streams claimed in <see cref="_shedding"/> (NucleusFull from their headers, outside the lock), then empties it.</summary>
    private void AnswerShedding(int kind, bool rehearsal = false)
    {
        try
        {
            foreach (var s in _shedding)
            {
                var shed = DelayedAnswer(s.Method, rehearsal);
                lock (_sync)
                {
                    if (ShedProbe.On && !rehearsal) ProbeShed(s, kind);
                    Decide(s, shed);
                }
            }
        }
        finally
        {
            _shedding.Clear();
        }
    }

    /// <summary>As <see cref="AnswerShedding"/> for streams shed over <c>calls_in_flight</c> (the service's overload answer).</summary>
    private void AnswerOverloaded(int limit, bool rehearsal = false)
    {
        try
        {
            foreach (var s in _shedding)
            {
                var shed = OverloadAnswer(s.Method, limit, rehearsal);
                lock (_sync)
                {
                    if (ShedProbe.On && !rehearsal) ProbeShed(s, ShedProbe.ShedInFlight);
                    Decide(s, shed);
                }
            }
        }
        finally
        {
            _shedding.Clear();
        }
    }

    /// <summary>
    /// The axon's warm-up (<c>bittensor.axon.warm_up</c>; <see cref="LeanServer.RehearseShed"/>): the next
    /// <paramref name="calls"/> calls this connection reads are shed — answered NucleusFull from their headers, unchecked —
    /// through the path a real overload's sheds take (the at-read budget's answer, then calls_in_flight's: the service's
    /// answer, the shed's frames, the read's send), so their code is compiled before the axon serves rather than inside a
    /// turn at its first overload (16–32 ms of JIT then, benchmarks/results/axon.md "Session 23, h1-firstsec"). Nothing
    /// is counted: the service is told they are a rehearsal, and neither the budget nor calls_in_flight is consulted.
    /// </summary>
    internal void RehearseShed(int calls)
    {
        lock (_sync) _rehearse = calls;
    }

    /// <summary>
    /// Sheds the first undecided stream of <paramref name="list"/> as a rehearsal (<see cref="RehearseShed"/>): by the
    /// budget's answer while two or more are left to shed, by calls_in_flight's for the last. True when one was shed.
    /// </summary>
    private bool ShedRehearsal(List<H2Stream> list)
    {
        bool byLimit;
        lock (_sync)
        {
            if (_rehearse <= 0) return false;
            foreach (var s in list)
            {
                if (s.Phase != StreamPhase.New || s.Closed || _closed) continue;
                s.Phase = StreamPhase.Checking;
                _shedding.Add(s);
                break;
            }
            if (_shedding.Count == 0) return false;
            byLimit = _rehearse == 1;
            _rehearse--;
        }
        if (byLimit) AnswerOverloaded(_server.Options.MaxCallsInFlight, rehearsal: true);
        else AnswerShedding(ShedProbe.ShedBudget, rehearsal: true);
        return true;
    }

    /// <summary>True when the calls of <paramref name="list"/> are alone (<see cref="Alone"/>): at most one waits for its check, and no other call is held or waits for a turn.</summary>
    private bool AloneInList(List<H2Stream> list)
    {
        var waiting = 0;
        var held = 0;
        foreach (var s in list)
        {
            if (s.Phase == StreamPhase.New && !s.Closed) waiting++;
            if (Volatile.Read(ref s.Held)) held++;
        }
        return waiting <= 1 && Alone(null, held);
    }

    /// <summary>
    /// True when no call waits with <paramref name="s"/> (<see cref="WaitAdmission.ShouldShed"/>'s <c>alone</c>): no
    /// other call held in flight (<paramref name="heldHere"/>: those of the calls being judged), no other connection
    /// waiting for its read turn, and none of this connection's calls waiting for its check. The wait rule never sheds
    /// such a call.
    /// </summary>
    private bool Alone(H2Stream? s, int heldHere)
    {
        if (_server.CallsHeld - heldHere > 0) return false;
        if (_server.Turns.Waiting - (Volatile.Read(ref _awaitingTurn) ? 1 : 0) > 0) return false;
        if (s is null) return true;
        lock (_sync)
        {
            // The batch being run is _readySpare (RunReadyAsync swaps the lists), calls read since then are in _ready.
            return !HasOtherNew(_ready, s) && !HasOtherNew(_readySpare, s);
        }
    }

    private static bool HasOtherNew(List<H2Stream> list, H2Stream s)
    {
        foreach (var other in list)
            if (!ReferenceEquals(other, s) && other.Phase == StreamPhase.New && !other.Closed) return true;
        return false;
    }

    /// <summary>ShedProbe (under the lock): a shed answer about to be written into the output.</summary>
    private void ProbeShed(H2Stream s, int kind)
    {
        if (_probePending!.Count < 100_000) _probePending.Add((s.Id, s.ReadAt, _server.Now, ShedProbe.GcPause(), kind));
    }

    /// <summary>ShedProbe (under the lock, at a swap of the output): the shed answers written so far go in this send.</summary>
    private void ProbeSendStarts(int bytes)
    {
        _probeSending!.AddRange(_probePending!);
        _probePending!.Clear();
        _probeSendStart = _server.Now;
        _probeSendBytes = bytes;
    }

    /// <summary>ShedProbe (the read loop's): an interval of the loop (its turn, a wait for its send or for its output to drain).</summary>
    private void ProbeTurnStarts()
    {
        _probeTurnAt = _server.Now;
        _probeTurnWork = ShedProbe.Work.Now();
    }

    private void ProbeInterval(int kind, long from) => ShedProbe.Add(kind, _probePort, from, _server.Now, 0, 0, 0, 0, 0, 0);

    /// <summary>ShedProbe (the sender's): the send returned.</summary>
    private void ProbeSendEnded()
    {
        if (_probeSending!.Count == 0) return;
        var now = _server.Now;
        var gc = ShedProbe.GcPause();
        foreach (var (id, readAt, decidedAt, gcAt, kind) in _probeSending)
            ShedProbe.Add(kind, _probePort, id, readAt, decidedAt, _probeSendStart, now, _probeSendBytes, gc - gcAt, 0);
        _probeSending.Clear();
    }

    /// <summary>Moves a call on as far as it can go without waiting.</summary>
    private void Pump(H2Stream s)
    {
        if (ShedProbe.On) Interlocked.Increment(ref ShedProbe.Calls);
        while (true)
        {
            Step step;
            byte[]? body = null;
            lock (_sync) step = NextStep(s, ref body);
            switch (step)
            {
                case Step.Check:
                {
                    // Calls in flight: a call that comes while the server holds the limit of others is answered from its
                    // headers by the service's overload decision (the axon: NucleusFull), unchecked and its body unread.
                    var limit = _server.Options.MaxCallsInFlight;
                    if (limit > 0 && _server.CallsHeld - (Volatile.Read(ref s.Held) ? 1 : 0) >= limit)
                    {
                        var shed = OverloadAnswer(s.Method, limit);
                        lock (_sync)
                        {
                            if (ShedProbe.On) ProbeShed(s, ShedProbe.ShedAtCheck);
                            Decide(s, shed);
                        }
                        continue;
                    }
                    // Admission by waiting: engaged, a call that waited over the target is answered the same way.
                    // Whether it is alone is looked at only for a call that would be shed otherwise (engaged, over the target).
                    if (_server.Admission is { } admission && admission.OverTarget(s.ReadAt, _server.Now)
                        && !Alone(s, Volatile.Read(ref s.Held) ? 1 : 0))
                    {
                        admission.CountShed();
                        var shed = DelayedAnswer(s.Method);
                        lock (_sync)
                        {
                            if (ShedProbe.On) ProbeShed(s, ShedProbe.ShedLate);
                            Decide(s, shed);
                        }
                        continue;
                    }
                    Metadata headers;
                    lock (_sync)
                    {
                        // Closed meanwhile (a reset, the connection's end): nothing would take its answer.
                        if (s.Closed || _closed) return;
                        headers = HeadersOf(s);
                    }
                    ValueTask<HeaderDecision> check;
                    try
                    {
                        check = _server.Service.CheckHeadersAsync(s.Method, headers, _peer, s.Token);
                    }
                    catch (Exception e)
                    {
                        check = ValueTask.FromException<HeaderDecision>(e);
                    }
                    if (!check.IsCompleted)
                    {
                        lock (_sync) s.Async = true;
                        var began = _server.Admission is null ? 0 : _server.Now;
                        _ = AwaitCheck(s, check, began, _server.Admission?.CheckBegins(began) ?? 0);
                        return;
                    }
                    HeaderDecision? decision;
                    try
                    {
                        decision = check.Result;
                    }
                    catch (Exception)
                    {
                        decision = null;
                    }
                    lock (_sync) Decide(s, decision);
                    continue;
                }
                case Step.Handle:
                    Handle(s, body!);
                    return;
                default:
                    return;
            }
        }
    }

    /// <summary>The service's answer to a call over the limit (never one that lets it through).</summary>
    private HeaderDecision? OverloadAnswer(BittensorMethod method, int limit, bool rehearsal = false)
    {
        HeaderDecision? shed;
        try
        {
            shed = _server.Service.Overloaded(method, limit, rehearsal);
        }
        catch (Exception)
        {
            shed = null;
        }
        // A decision that would let the call through is not an overload answer: refused as the default does.
        if (shed is { Refusal: null, Answer: null })
            shed = HeaderDecision.Refuse(new Status(StatusCode.ResourceExhausted, "Too many calls in flight; try again later."));
        return shed;
    }

    /// <summary>The service's answer to a call shed for its wait (never one that lets it through).</summary>
    private HeaderDecision? DelayedAnswer(BittensorMethod method, bool rehearsal = false)
    {
        var target = _server.Options.TargetWait;
        HeaderDecision? shed;
        try
        {
            shed = _server.Service.Delayed(method, target, rehearsal);
        }
        catch (Exception)
        {
            shed = null;
        }
        if (shed is { Refusal: null, Answer: null })
            shed = HeaderDecision.Refuse(new Status(StatusCode.ResourceExhausted, "Calls wait too long here; try again later."));
        return shed;
    }

    /// <summary>
    /// Sheds every stream of <paramref name="list"/> (the runner's batch, or <see cref="_ready"/>) that has not had its
    /// check and came while the server held <paramref name="limit"/> other calls, in arrival order: a stream's "others"
    /// are the calls held except itself and the streams after it in the list (they came later), so the first ones of a
    /// read are admitted and the rest shed. Claimed under the lock (each claimed one counted as released), answered
    /// outside it. True when any was shed.
    /// </summary>
    private bool ShedOver(List<H2Stream> list, int limit)
    {
        lock (_sync)
        {
            var later = 0;
            foreach (var s in list)
                if (s.Phase == StreamPhase.New && s.Held && !s.Closed) later++;
            var released = 0;
            foreach (var s in list)
            {
                if (s.Phase != StreamPhase.New || s.Closed || _closed) continue;
                if (s.Held) later--;
                if (_server.CallsHeld - released - later - (s.Held ? 1 : 0) < limit) continue;
                s.Phase = StreamPhase.Checking;
                if (s.Held) released++;
                _shedding.Add(s);
            }
            if (_shedding.Count == 0) return false;
        }
        AnswerOverloaded(limit);
        return true;
    }

    /// <summary>
    /// The read loop, between calls: takes what the socket already holds (never waits) and handles its frames, so the
    /// calls in it reach their shed decision now. True when frames were read. An end, error or connection error is left
    /// in <see cref="_readEnded"/> for the loop.
    /// </summary>
    private bool ReadBetweenCalls(bool drain = false)
    {
        if (_readEnded || _socket is null) return false;
        // These reads count in the connection's turn: once it is spent the rest waits for the next one. A drain (the
        // at-read budget, before a read's calls are decided) is bounded by its caller, and ends the turn after it.
        if (!drain && _readsThisTurn >= ReadTurns.ReadsPerTurn) return false;
        int n;
        try
        {
            if (!drain) _server.CountLook();
            if (_socket.Available <= 0) return false;
            if (_inEnd == _in.Length) Compact();
            if (_inEnd == _in.Length) return false;
            n = _socket.Receive(_in.AsSpan(_inEnd, Math.Min(_in.Length - _inEnd, _server.ReadSize)), SocketFlags.None);
            _readsThisTurn++;
            if (n > 0 && _server.Admission is { } admission) Stamp(admission);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            _readEnded = true;
            return false;
        }
        if (n == 0)
        {
            _readEnded = true;
            return false;
        }
        _inEnd += n;
        _bytesIn += n;
        bool keepGoing;
        lock (_sync) keepGoing = ProcessFrames();
        if (!keepGoing) _readEnded = true;
        CancelCollected();
        return true;
    }

    /// <summary>
    /// An asynchronous header check (the batch verifier): decides the call when it completes. With the wait rule on, its
    /// duration from <paramref name="began"/> (the work clock then: <paramref name="beganWork"/>) is the rule's check wait (<see cref="WaitAdmission.CheckTook"/>): with
    /// verification on the calls queue in the verifier, where neither the event loop's lag nor a call's time since its
    /// read sees them.
    /// </summary>
    private async Task AwaitCheck(H2Stream s, ValueTask<HeaderDecision> check, long began, long beganWork)
    {
        HeaderDecision? decision;
        try
        {
            decision = await check.ConfigureAwait(false);
        }
        catch (Exception)
        {
            decision = null;
        }
        _server.Admission?.CheckTook(began, beganWork, _server.Now);
        lock (_sync) Decide(s, decision);
        Pump(s);
        // The at-read budget engaged: with verification on the admitted calls run here (the verifier's continuations, on
        // the thread pool), not between the calls of a read loop's turn, and while they run the read loops wait for the
        // core; the connections parked for their turn have their calls over the budget answered now, as a read loop
        // between its calls does (LeanServer.ShedPassIfDue: at most one pass every eighth of the target).
        if (_server.Admission is { PerRead: > 0, Engaged: true } budget) _server.ShedPassIfDue(null, budget);
        await FlushAsync().ConfigureAwait(false);
    }

    /// <summary>What the call needs next (under the lock): its header check, its handler (with its body), or nothing yet.</summary>
    private Step NextStep(H2Stream s, ref byte[]? body)
    {
        if (s.Closed || _closed) return Step.None;
        if (s.Phase == StreamPhase.New)
        {
            s.Phase = StreamPhase.Checking;
            return Step.Check;
        }
        if (s.Phase != StreamPhase.Admitted) return Step.None;
        if (s.BodyLength >= 5)
        {
            var limit = _server.Options.ReceiveLimit(s.Method);
            var declared = (long)BinaryPrimitives.ReadUInt32BigEndian(s.Body!.AsSpan(1, 4));
            if (declared > limit)
            {
                _server.Refused(s.Method, StatusCode.ResourceExhausted, RefusalReasons.MessageSize);
                Answer(s, StatusCode.ResourceExhausted, declared > _server.Options.MaxReceiveMessageSize
                    ? TransportStatus.ReceiveTooLarge
                    : TransportStatus.ForwardTooLarge(declared, limit));
                return Step.None;
            }
            if (s.Body![0] != 0)
            {
                Answer(s, StatusCode.Unimplemented, "Compressed request messages are not supported (no grpc-encoding is negotiated).");
                return Step.None;
            }
            s.Declared = (int)declared;
            if (s.BodyLength > 5 + declared)
            {
                Answer(s, StatusCode.Internal, "Additional data after the message received.");
                return Step.None;
            }
            if (s.RemoteClosed)
            {
                if (s.BodyLength < 5 + declared)
                {
                    Answer(s, StatusCode.Internal, "Incomplete message.");
                    return Step.None;
                }
                if (_blocked.Count > 0 || _deferred.Count > 0)
                {
                    // Back-pressure: answers already wait for the peer's windows (or for the output to drain), so this
                    // call's answer could not be sent either. It runs once they have gone (Unpark), instead of parking
                    // its answer in memory.
                    // Parked, it waits for the peer, not for this server: not counted in the calls in flight (a peer
                    // that never opens its window must not hold the axon's slots).
                    _parked.Add(s);
                    Unhold(s);
                    return Step.None;
                }
                if (!s.Held)
                {
                    // Unparked: counted again while its handler runs (admitted before, so not checked again).
                    s.Held = true;
                    _server.Hold();
                }
                s.Phase = StreamPhase.Running;
                body = s.TakeBody();
                return Step.Handle;
            }
            // Accepted and still arriving: keep the stream's window open for the rest of it.
            if (s.RecvWindow < H2.DefaultWindow / 2)
            {
                _out.WindowUpdate(s.Id, H2.DefaultWindow - s.RecvWindow);
                s.RecvWindow = H2.DefaultWindow;
            }
            return Step.None;
        }
        if (s.RemoteClosed) Answer(s, StatusCode.Internal, "Incomplete message.");
        return Step.None;
    }

    /// <summary>Applies the service's header decision (under the lock).</summary>
    private void Decide(H2Stream s, HeaderDecision? decision)
    {
        if (s.Closed || _closed) return;
        if (decision is not { } d)
        {
            _server.Refused(s.Method, StatusCode.Unknown, RefusalReasons.CheckFailed);
            Answer(s, StatusCode.Unknown, TransportStatus.HandlerThrew);
            return;
        }
        if (d.Refusal is { } refusal)
        {
            Answer(s, refusal.StatusCode, refusal.Detail);
            return;
        }
        if (d.Answer is { } answer)
        {
            WriteAnswer(s, answer);
            return;
        }
        s.Admission = d.Admission;
        s.Phase = StreamPhase.Admitted;
        // The minimum request body rate is measured from here: the window is open for the body from now on.
        if (!s.RemoteClosed)
        {
            s.CheckAt = _server.Now;
            s.CheckBytes = 0;
        }
    }

    /// <summary>Parses the request and runs the handler (outside the lock); a synchronous answer is appended at once.</summary>
    private void Handle(H2Stream s, byte[] body)
    {
        TensorMessage request;
        try
        {
            request = TensorMessage.Parser.ParseFrom(body.AsSpan(5, s.Declared));
        }
        catch (InvalidProtocolBufferException)
        {
            lock (_sync)
            {
                if (!s.Closed) Answer(s, StatusCode.Internal, "Failed to deserialize the request message.");
            }
            return;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(body);
        }
        _server.Owner.CountBodyParsed();
        var call = new InboundCall(s.Headers!, s.Deadline, s.Token, s.Admission, s.RegisterForDispose);
        Task<TensorMessage> task;
        try
        {
            task = _server.Service.HandleAsync(s.Method, request, call);
        }
        catch (Exception e)
        {
            task = Task.FromException<TensorMessage>(e);
        }
        if (task.IsCompleted)
        {
            lock (_sync) Finish(s, task);
            return;
        }
        lock (_sync)
        {
            s.Async = true;
            if (!s.Closed && !_closed)
            {
                // The deadline and the connection's end reach the handler through its token; a deadline that passes
                // before it answers is answered DEADLINE_EXCEEDED here.
                s.Registration = s.Token.UnsafeRegister(static o => ((H2Stream)o!).Connection.OnTokenFired((H2Stream)o!), s);
                if (s.Deadline != DateTime.MaxValue)
                {
                    var left = s.Deadline - DateTime.UtcNow;
                    s.Cancellation.CancelAfter(left > TimeSpan.Zero ? left : TimeSpan.Zero);
                }
            }
        }
        _ = task.ContinueWith(static (t, o) => ((H2Stream)o!).Connection.OnHandled((H2Stream)o!, t), s, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void OnHandled(H2Stream s, Task<TensorMessage> task)
    {
        lock (_sync) Finish(s, task);
        KickFlush();
    }

    private void OnTokenFired(H2Stream s)
    {
        lock (_sync)
        {
            // Resets and the connection's end close the stream before they cancel it: still open means the deadline.
            if (s.Closed || _closed) return;
            if (s.Phase == StreamPhase.Sending)
            {
                // The answer's HEADERS (and maybe part of its DATA) already went: a second HEADERS block would carry
                // :status inside trailers (RFC 9113 §8.1: malformed), and trailers after half a message end a stream
                // whose message never completes. The stream is cancelled instead (§8.7); the client sees CANCEL.
                _out.RstStream(s.Id, H2.Cancel);
                Close(s);
            }
            else
            {
                Answer(s, StatusCode.DeadlineExceeded, TransportStatus.DeadlineExceeded);
            }
        }
        KickFlush();
    }

    /// <summary>Writes a finished handler's outcome (under the lock); pooled objects it registered are disposed after.</summary>
    private void Finish(H2Stream s, Task<TensorMessage> task)
    {
        try
        {
            if (s.Closed || _closed) return;
            if (task.IsCompletedSuccessfully)
            {
                WriteAnswer(s, task.Result);
            }
            else if (task.Exception?.InnerException is RpcException rpc)
            {
                Answer(s, rpc.StatusCode, rpc.Status.Detail);
            }
            else if (task.IsCanceled && s.Deadline <= DateTime.UtcNow)
            {
                Answer(s, StatusCode.DeadlineExceeded, TransportStatus.DeadlineExceeded);
            }
            else if (task.IsCanceled)
            {
                Answer(s, StatusCode.Cancelled, TransportStatus.Cancelled);
            }
            else
            {
                Answer(s, StatusCode.Unknown, TransportStatus.HandlerThrew);
            }
        }
        finally
        {
            // A held-back answer still needs what it registered (pooled tensor buffers) until it is serialized.
            if (s.Deferred is null) s.DisposeRegistered();
        }
    }

    // ---------------------------------------------------------------- answers (under _sync)

    /// <summary>A trailers-only answer with a status (a refusal or an error) that closes the stream.</summary>
    private void Answer(H2Stream s, StatusCode code, string message)
    {
        TrailersOnly(s.Id, s.RemoteClosed, 200, code, message);
        Close(s);
    }

    private void TrailersOnly(int id, bool remoteClosed, int httpStatus, StatusCode code, string message)
    {
        var block = H2Blocks.Build(httpStatus, code, message);
        _out.FrameHeader(block.Length, H2.Headers, H2.EndHeaders | H2.EndStream, id);
        _out.Write(block);
        // The answer is complete: the rest of an unread body is not wanted (§8.1).
        if (!remoteClosed) _out.RstStream(id, H2.NoError);
    }

    /// <summary>
    /// HEADERS, the message as DATA within the flow-control windows (the rest when they open), then trailers; or, while
    /// the output is full (<see cref="H2Output.AnswerCap"/>: a send is under way and the peer's socket has not taken
    /// it yet), the message is held back, unserialized, until a send has drained the output (<see cref="ResumeDeferred"/>).
    /// A held-back answer is made: its slot in the calls in flight is free (it waits for the peer, as one waiting for a
    /// window does), and calls of this connection that become ready meanwhile are parked (<see cref="NextStep"/>).
    /// </summary>
    private void WriteAnswer(H2Stream s, TensorMessage message)
    {
        var size = message.CalculateSize();
        if (size > _server.Options.MaxSendMessageSize)
        {
            Answer(s, StatusCode.ResourceExhausted, TransportStatus.SendTooLarge);
            return;
        }
        // In order: behind answers already held back, unless the output is empty (nothing to wait for).
        if (!_out.RoomForAnswer(AnswerBytes(size)) || (_deferred.Count > 0 && _out.Length > 0))
        {
            s.Deferred = message;
            s.DeferredSize = size;
            _deferred.Add(s);
            Unhold(s);
            return;
        }
        WriteAnswerNow(s, message, size);
    }

    /// <summary>The most output an answer of <paramref name="size"/> takes: HEADERS, DATA frames, trailers and a reset.</summary>
    private int AnswerBytes(int size)
    {
        var total = 5 + size;
        var frame = Math.Max(1, Math.Min(_peerMaxFrame, total));
        return (3 * H2.FrameHeaderSize) + H2Blocks.ResponseHeaders.Length + H2Blocks.OkTrailers.Length + 4 + total
            + (((total / frame) + 2) * H2.FrameHeaderSize);
    }

    /// <summary>
    /// Writes answers held back for a full output, in order, while the output has room for them (each first into an
    /// empty output, whatever its size); true when none is left.
    /// </summary>
    private bool ResumeDeferred()
    {
        var done = 0;
        for (; done < _deferred.Count; done++)
        {
            var s = _deferred[done];
            if (s.Closed || _closed || s.Deferred is not { } message) continue;
            if (!_out.RoomForAnswer(AnswerBytes(s.DeferredSize))) break;
            s.Deferred = null;
            WriteAnswerNow(s, message, s.DeferredSize);
            s.DisposeRegistered(); // serialized now (into the output, or a buffer waiting for the windows)
        }
        _deferred.RemoveRange(0, done);
        return _deferred.Count == 0;
    }

    /// <summary>Forgets held-back answers whose streams closed; the parked calls run once none is left.</summary>
    private void DropClosedDeferred()
    {
        _deferred.RemoveAll(static d => d.Closed);
        if (_deferred.Count == 0) Unpark();
    }

    private void WriteAnswerNow(H2Stream s, TensorMessage message, int size)
    {
        var total = 5 + size;
        if (TryWriteInPlace(s, message, size))
        {
            _sendWindow -= total;
            s.SendWindow -= total;
            EndResponse(s);
            return;
        }
        _out.FrameHeader(H2Blocks.ResponseHeaders.Length, H2.Headers, H2.EndHeaders, s.Id);
        _out.Write(H2Blocks.ResponseHeaders);
        if (Math.Min(_sendWindow, s.SendWindow) >= total)
        {
            // The whole message fits the windows: serialized straight into DATA frames of the output.
            // Frames of the peer's maximum, but never larger than the message: the writer reserves a frame's room
            // ahead, and a 1 MiB SETTINGS_MAX_FRAME_SIZE must not grow the output by 1 MiB per answer.
            var frame = Math.Min(_peerMaxFrame, total);
            _out.Ensure(total + (((total / frame) + 2) * H2.FrameHeaderSize));
            _dataWriter.Begin(_out, s.Id, frame);
            var prefix = _dataWriter.GetSpan(5);
            prefix[0] = 0;
            BinaryPrimitives.WriteUInt32BigEndian(prefix[1..], (uint)size);
            _dataWriter.Advance(5);
            message.WriteTo(_dataWriter);
            var written = _dataWriter.Written;
            _dataWriter.End();
            if (written != total) throw new InvalidOperationException($"serialized {written} bytes of a {total}-byte message");
            _sendWindow -= total;
            s.SendWindow -= total;
            EndResponse(s);
            return;
        }
        // Not enough window: the message waits in a pooled buffer and goes out as WINDOW_UPDATEs arrive.
        var pending = ArrayPool<byte>.Shared.Rent(total);
        pending[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(pending.AsSpan(1), (uint)size);
        message.WriteTo(pending.AsSpan(5, size));
        s.Pending = pending;
        s.PendingLength = total;
        s.PendingOffset = 0;
        s.Phase = StreamPhase.Sending;
        s.SendingSince = s.CheckAt = _server.Now;
        s.CheckBytes = 0;
        if (SendPending(s)) return;
        if (_blocked.Count == 0)
        {
            _blockedSince = s.SendingSince;
            _blockedSent = 0;
            _blockedChecked = 0;
        }
        _blocked.Add(s);
        // The answer is made and waits for the peer's window: its slot in the calls in flight is free for others (a
        // client that stops reading must not hold the axon's slots until it drops the connection).
        Unhold(s);
    }

    /// <summary>
    /// The answer serialized in place around its tensor's buffer, in the array the axon rented for it
    /// (<see cref="TensorCodec.RentFloat32"/> leaves room before and after the buffer), and that array becomes the
    /// output: the model's bytes are written once, by the model, and sent from where it wrote them — not copied into
    /// the output (64 KiB per answer at <c>[1, 16, 1024]</c>; session 22). Only when it can go as it is: the output is
    /// empty (the first answer of a send), the whole message fits the windows and one DATA frame of the peer's maximum,
    /// and the message's one tensor is a pooled one this stream registered. The bytes are those of the copying path:
    /// protobuf serializes the message into the array at the place where the buffer's bytes land on themselves (a copy
    /// onto the same bytes is skipped). That place must be exact (a message written from a place too far on would
    /// overwrite the start of the buffer before copying it): <see cref="BytesBeforeBuffer"/> counts the fields the
    /// generated code writes before the buffer, and <see cref="InPlaceLayout"/> checks once that the schema has no others.
    /// </summary>
    private bool TryWriteInPlace(H2Stream s, TensorMessage message, int size)
    {
        var total = 5 + size;
        if (!InPlaceLayout || _out.Length != 0 || Math.Min(_sendWindow, s.SendWindow) < total || _peerMaxFrame < total || message.Tensors.Count != 1) return false;
        var tensor = message.Tensors[0];
        if (s.FindPooled(tensor) is not { } pooled || pooled.Rented is not { } array) return false;
        var before = BytesBeforeBuffer(message, tensor);
        var at = pooled.BufferOffset - before; // where the message begins in the array
        var headers = H2.FrameHeaderSize + H2Blocks.ResponseHeaders.Length;
        var start = at - 5 - H2.FrameHeaderSize - headers;
        var trailers = H2.FrameHeaderSize + H2Blocks.OkTrailers.Length + (s.RemoteClosed ? 0 : H2.FrameHeaderSize + 4);
        if (before < 0 || start < 0 || at + size + trailers > array.Length || !pooled.Adopt()) return false;
        var span = array.AsSpan();
        var pos = start;
        H2Output.WriteFrameHeader(span[pos..], H2Blocks.ResponseHeaders.Length, H2.Headers, H2.EndHeaders, s.Id);
        pos += H2.FrameHeaderSize;
        H2Blocks.ResponseHeaders.CopyTo(span[pos..]);
        pos += H2Blocks.ResponseHeaders.Length;
        H2Output.WriteFrameHeader(span[pos..], total, H2.Data, 0, s.Id);
        pos += H2.FrameHeaderSize;
        span[pos] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(span[(pos + 1)..], (uint)size);
        pos += 5;
        message.WriteTo(span.Slice(pos, size));
        _out.Adopt(pooled, array, start, pos + size);
        _server.Owner.CountAnswerInPlace();
        return true;
    }

    /// <summary>
    /// True when the schema is the one <see cref="BytesBeforeBuffer"/> counts: <c>TensorMessage</c>'s fields numbered
    /// below <c>tensors</c> are <c>version</c> (1, int32) and <c>hotkey</c> (2, string), and <c>Tensor</c>'s below
    /// <c>buffer</c> is <c>version</c> (1, int32); unknown fields are written after the known ones. Another schema writes
    /// every answer by the copying path.
    /// </summary>
    internal static readonly bool InPlaceLayout =
        TensorMessage.Descriptor.Fields.InFieldNumberOrder().TakeWhile(f => f.FieldNumber < TensorMessage.TensorsFieldNumber)
            .Select(f => (f.FieldNumber, f.FieldType)).SequenceEqual([(TensorMessage.VersionFieldNumber, Google.Protobuf.Reflection.FieldType.Int32),
                (TensorMessage.HotkeyFieldNumber, Google.Protobuf.Reflection.FieldType.String)])
        && Tensor.Descriptor.Fields.InFieldNumberOrder().TakeWhile(f => f.FieldNumber < Tensor.BufferFieldNumber)
            .Select(f => (f.FieldNumber, f.FieldType)).SequenceEqual([(Tensor.VersionFieldNumber, Google.Protobuf.Reflection.FieldType.Int32)]);

    /// <summary>
    /// The bytes of <paramref name="message"/>'s serialization before its one tensor's buffer bytes: the fields numbered
    /// below <c>tensors</c> (5), the tensors field's key and length, the tensor's fields below <c>buffer</c> (2), and the
    /// buffer's key and length (protobuf writes fields in number order).
    /// </summary>
    internal static int BytesBeforeBuffer(TensorMessage message, Tensor tensor)
    {
        var n = 0;
        if (message.Version != 0) n += 1 + CodedOutputStream.ComputeInt32Size(message.Version);
        if (message.Hotkey.Length != 0) n += 1 + CodedOutputStream.ComputeStringSize(message.Hotkey);
        n += 1 + CodedOutputStream.ComputeLengthSize(tensor.CalculateSize());
        if (tensor.Version != 0) n += 1 + CodedOutputStream.ComputeInt32Size(tensor.Version);
        if (tensor.Buffer.Length == 0) return -1;
        n += 1 + CodedOutputStream.ComputeLengthSize(tensor.Buffer.Length);
        return n;
    }

    /// <summary>
    /// Sends what the windows allow of a waiting answer, while the output holds less than <see cref="ResumeAtMost"/>;
    /// true when all of it (and its trailers) went.
    /// </summary>
    private bool SendPending(H2Stream s)
    {
        while (s.PendingOffset < s.PendingLength)
        {
            var window = Math.Min(_sendWindow, s.SendWindow);
            if (window <= 0 || _out.Length >= ResumeAtMost) return false;
            // No further than the cap: a 1 MiB SETTINGS_MAX_FRAME_SIZE must not grow the output past what it keeps.
            var n = (int)Math.Min(Math.Min(Math.Min(window, _peerMaxFrame), s.PendingLength - s.PendingOffset), ResumeAtMost - _out.Length);
            _out.FrameHeader(n, H2.Data, 0, s.Id);
            _out.Write(s.Pending.AsSpan(s.PendingOffset, n));
            s.PendingOffset += n;
            _blockedSent += n;
            _sendWindow -= n;
            s.SendWindow -= n;
        }
        EndResponse(s);
        return true;
    }

    /// <summary>
    /// Answers waiting for the windows go on as far as the windows and the output allow, then answers held back for a
    /// full output; the calls parked behind them run once none waits.
    /// </summary>
    private void ResumeBlocked()
    {
        for (var i = 0; i < _blocked.Count; i++)
        {
            var s = _blocked[i];
            if (s.Closed || SendPending(s))
            {
                _blocked.RemoveAt(i);
                i--;
            }
            else if (_sendWindow <= 0 || _out.Length >= ResumeAtMost)
            {
                return;
            }
        }
        if (_deferred.Count > 0 && !ResumeDeferred()) return;
        Unpark();
    }

    private void RunParked()
    {
        var run = RunAndFlushAsync();
        if (!run.IsCompleted) _ = run.AsTask();
    }

    private async ValueTask RunAndFlushAsync()
    {
        try
        {
            await RunReadyAsync().ConfigureAwait(false);
            await FlushAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // As in the read loop: whatever escaped ends this connection, the server goes on.
            Abort();
        }
    }

    /// <summary>Calls parked behind waiting answers become ready again once no answer waits (under the lock).</summary>
    private void Unpark()
    {
        if (_parked.Count == 0 || _blocked.Count > 0 || _deferred.Count > 0) return;
        foreach (var p in _parked)
            if (!p.Closed) Ready(p);
        _parked.Clear();
    }

    private void EndResponse(H2Stream s)
    {
        _out.FrameHeader(H2Blocks.OkTrailers.Length, H2.Headers, H2.EndHeaders | H2.EndStream, s.Id);
        _out.Write(H2Blocks.OkTrailers);
        if (!s.RemoteClosed) _out.RstStream(s.Id, H2.NoError);
        Close(s);
    }

    /// <summary>The stream is done on this side: forgotten, its buffers returned; its token is reused when nothing else holds it.</summary>
    private void Close(H2Stream s)
    {
        if (s.Closed) return;
        s.Closed = true;
        s.Phase = StreamPhase.Done;
        Unhold(s);
        _streams.Remove(s.Id);
        if (_streams.Count == 0) _quietSince = _server.Now;
        // A held-back answer that will not be sent (reset, deadline, the connection's end): its pooled parts go back.
        if (s.Deferred is not null) s.DisposeRegistered();
        s.ReleaseBuffers();
        if (s.PendingHeaders is { } pending)
        {
            s.PendingHeaders = null;
            ReturnHeaders(pending);
        }
        s.Registration.Unregister();
        if (!s.Async && !s.Cancellation.IsCancellationRequested && s.Cancellation.TryReset() && _ctsPool.Count < 64) _ctsPool.Push(s.Cancellation);
        else if (s.Async) s.Cancellation.CancelAfter(Timeout.Infinite);
        if (_goingAway && _streams.Count == 0) _idle?.TrySetResult();
    }

    /// <summary>A call a shed pass kept (<see cref="DecideWhileWaiting"/>, not held meanwhile) counts in the server's calls
    /// in flight again at its turn, once its request is whole (under the lock).</summary>
    private void Rehold(H2Stream s)
    {
        if (s.Held || s.Closed || !s.RemoteClosed || s.Phase != StreamPhase.New) return;
        s.Held = true;
        _server.Hold();
    }

    /// <summary>No longer counted in the server's calls in flight (under the lock; once per hold).</summary>
    private void Unhold(H2Stream s)
    {
        if (!s.Held) return;
        s.Held = false;
        _server.Release();
    }

    /// <summary>The peer reset the stream (or the connection ends): closed, and whoever holds its token is told.</summary>
    private void Abort(H2Stream s)
    {
        if (s.Closed) return;
        var cancel = s.Async || s.Phase is StreamPhase.Checking or StreamPhase.Running;
        s.Async |= cancel;
        Close(s);
        if (cancel) _toCancel.Add(s.Cancellation);
    }

    private CancellationTokenSource RentCts() => _ctsPool.Count > 0 ? _ctsPool.Pop() : new CancellationTokenSource();

    private void CancelCollected()
    {
        CancellationTokenSource[] cancel;
        lock (_sync)
        {
            if (_toCancel.Count == 0) return;
            cancel = [.. _toCancel];
            _toCancel.Clear();
        }
        foreach (var c in cancel)
        {
            try
            {
                c.Cancel();
            }
            catch (Exception)
            {
                // A handler's cancellation callback failed: its call is already answered or gone.
            }
        }
    }

    // ---------------------------------------------------------------- output

    /// <summary>Sends what the output holds unless another thread is sending (it will send this too).</summary>
    private async ValueTask FlushAsync()
    {
        H2Output sending;
        lock (_sync)
        {
            if (_socket is null) _out.Reset();
            if (_sending || _out.Length == 0 || _socket is null) return;
            _sending = true;
            sending = _out;
            _out = _spare;
            _spare = sending;
            if (ShedProbe.On) ProbeSendStarts(sending.Length);
        }
        try
        {
            while (true)
            {
                var remaining = sending.Buffer.AsMemory(sending.Start, sending.Length - sending.Start);
                while (remaining.Length > 0)
                {
                    // The minimum response rate for a peer that does not read its socket (EnforceDataRates).
                    Volatile.Write(ref _writeDeadline, _server.WriteDeadline(remaining.Length));
                    _server.CountSend();
                    var send = _socket!.SendAsync(remaining, SocketFlags.None);
                    if (ShedProbe.On && !send.IsCompleted) Interlocked.Increment(ref ShedProbe.SendsPending);
                    var n = await send.ConfigureAwait(false);
                    Volatile.Write(ref _writeDeadline, long.MaxValue);
                    if (ShedProbe.On) Interlocked.Add(ref ShedProbe.BytesSent, n);
                    remaining = remaining[n..];
                }
                if (ShedProbe.On) ProbeSendEnded();
                sending.Reset();
                bool unparked;
                lock (_sync)
                {
                    // Answers that wait for the windows or were held back for a full output go next.
                    if (!_closed && (_deferred.Count > 0 || (_blocked.Count > 0 && _sendWindow > 0))) ResumeBlocked();
                    unparked = _ready.Count > 0 && !_runningReady && !_closed;
                }
                // Calls parked behind those answers run now (their peer may send nothing until it has them), on a
                // work item of their own: this sender goes on sending, that runner flushes in pieces as the read loop does.
                if (unparked) ThreadPool.UnsafeQueueUserWorkItem(static c => c.RunParked(), this, preferLocal: true);
                lock (_sync)
                {
                    if (_out.Length == 0 || _closed)
                    {
                        _sending = false;
                        _drained?.TrySetResult();
                        _drained = null;
                        return;
                    }
                    var filled = _out;
                    _out = sending;
                    _spare = filled;
                    sending = filled;
                    if (ShedProbe.On) ProbeSendStarts(sending.Length);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            lock (_sync)
            {
                _sending = false;
                _drained?.TrySetResult();
                _drained = null;
            }
            Abort();
        }
    }

    private void KickFlush()
    {
        var flush = FlushAsync();
        if (!flush.IsCompleted) _ = flush.AsTask();
    }

    private bool NeedsDrain(out Task drained)
    {
        lock (_sync)
        {
            if (!_sending || _out.Length < OutputHighWater)
            {
                drained = Task.CompletedTask;
                return false;
            }
            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            drained = _drained.Task;
            return true;
        }
    }

    // ---------------------------------------------------------------- shutdown

    /// <summary>
    /// Closes the connection (GOAWAY NO_ERROR, then the socket) when it has no open stream, nothing being sent, and has
    /// had no open stream for <paramref name="idleTicks"/> up to <paramref name="now"/> (<see cref="LeanServer.Now"/>
    /// units), whatever it sent meanwhile: a peer that connects and stays silent, never sends the preface, stops after
    /// its calls, or keeps the connection busy with pings or a header block sent a byte at a time gives its slot back
    /// (<c>limits.idle_timeout</c>; Kestrel's KeepAliveTimeout). True when it closes; <paramref name="beforeClose"/> runs
    /// first (the count of the close happens before the peer can see it).
    /// </summary>
    public bool CloseIfIdle(long now, long idleTicks, Action beforeClose)
    {
        lock (_sync)
        {
            if (_closed || _streams.Count > 0 || _sending || Volatile.Read(ref _awaitingTurn) || now - _quietSince < idleTicks) return false;
            if (!_goingAway)
            {
                _goingAway = true;
                _out.GoAway(_lastStreamId, H2.NoError, "idle");
            }
        }
        beforeClose();
        _ = CloseIdleAsync();
        return true;
    }

    /// <summary>
    /// The minimum data rates (<c>limits.min_request_body_rate</c>, <c>limits.min_response_rate</c>; Kestrel's
    /// MinRequestBodyDataRate and MinResponseDataRate), checked by the server's sweep at <paramref name="now"/>:
    /// <list type="bullet">
    /// <item>a call admitted (headers checked, window open for its body) whose body moved less than rate × period bytes
    /// in a period of at least the grace period (the first from admission) is answered DEADLINE_EXCEEDED (its stream
    /// slot freed; a body that trickles a byte at a time, stops, or never ends);</item>
    /// <item>an answer waiting for the peer's flow-control window that moved less than rate × period in such a period
    /// (the first from when it began waiting) is reset (RST_STREAM ENHANCE_YOUR_CALM): its stream and buffer are freed
    /// and the calls parked behind it run;</item>
    /// <item>a socket write the peer has not drained within grace + size / rate closes the connection (no frame can
    /// reach a peer that does not read).</item>
    /// </list>
    /// Each is counted as a refusal. Data the peer sent that this side has not read yet (a busy server) is never the
    /// peer's fault: a connection with unread input is left for the next sweep.
    /// </summary>
    public void EnforceDataRates(long now)
    {
        List<H2Stream>? slowBodies = null, slowAnswers = null;
        bool stuck, run;
        lock (_sync)
        {
            if (_closed) return;
            // A write past its deadline whose socket can take bytes again is only waiting for its completion to run
            // (a busy pool): not the peer's doing. Stuck is a full send buffer the peer does not drain.
            stuck = now > Volatile.Read(ref _writeDeadline) && !Writable();
            if (!stuck)
            {
                // Each rule is judged over periods of (at least) its grace period: a call whose body or answer moved less
                // than rate × period bytes in one is slow; otherwise a new period begins. A peer that sends or takes a burst
                // and then stops is caught one period after the burst, not when its average finally falls below the rate.
                if (_server.BodyRatePerTick > 0)
                {
                    foreach (var s in _streams.Values)
                    {
                        if (s.Closed || s.Phase != StreamPhase.Admitted || s.RemoteClosed) continue;
                        if (Slow(now, ref s.CheckAt, ref s.CheckBytes, s.Received, _server.BodyGraceTicks, _server.BodyRatePerTick)) (slowBodies ??= []).Add(s);
                    }
                }
                if (_server.ResponseRatePerTick > 0 && _blocked.Count > 0)
                {
                    // An answer held back by its own stream's window is the peer's doing on that stream: judged by its own
                    // progress. One whose stream window is open waits for the connection (its window, or output the
                    // peer's socket has not taken): judged by what all waiting answers of the connection got, so answers
                    // queued behind others of a peer that reads are not reset.
                    var connectionSlow = Slow(now, ref _blockedSince, ref _blockedChecked, _blockedSent, _server.ResponseGraceTicks, _server.ResponseRatePerTick);
                    foreach (var s in _blocked)
                    {
                        if (s.Closed) continue;
                        bool slow;
                        if (s.SendWindow <= 0)
                        {
                            slow = Slow(now, ref s.CheckAt, ref s.CheckBytes, s.PendingOffset, _server.ResponseGraceTicks, _server.ResponseRatePerTick);
                        }
                        else
                        {
                            slow = connectionSlow && now - s.SendingSince > _server.ResponseGraceTicks;
                            (s.CheckAt, s.CheckBytes) = (now, s.PendingOffset);
                        }
                        if (slow) (slowAnswers ??= []).Add(s);
                    }
                    if (connectionSlow) (_blockedSince, _blockedChecked) = (now, _blockedSent);
                }
                if (slowBodies is null && slowAnswers is null) return;
                // Bytes of the peer's waiting in the socket: this side is behind, not the peer (a later sweep judges).
                if (slowBodies is not null && Unread()) slowBodies = null;
                if (slowBodies is null && slowAnswers is null) return;
                // Each slot is given back, then counted, and only then (the flush below) can the peer see the answer.
                foreach (var s in slowBodies ?? [])
                {
                    Answer(s, StatusCode.DeadlineExceeded, string.Create(CultureInfo.InvariantCulture,
                        $"The request body arrived at under {_server.Limits.MinRequestBodyRate} bytes/s over {_server.Limits.MinRequestBodyGrace.TotalSeconds} s (this axon's limits.min_request_body_rate)."));
                    _server.Refused(s.Method, StatusCode.DeadlineExceeded, RefusalReasons.MinRequestBodyRate);
                }
                foreach (var s in slowAnswers ?? [])
                {
                    ResetStream(s, H2.EnhanceYourCalm);
                    _server.Refused(s.Method, StatusCode.ResourceExhausted, RefusalReasons.MinResponseRate);
                }
                // Reset answers no longer hold the calls parked behind them.
                if (slowAnswers is not null) ResumeBlocked();
            }
            run = !stuck && _ready.Count > 0 && !_runningReady;
        }
        if (stuck)
        {
            _server.Refused(null, StatusCode.Unavailable, RefusalReasons.MinResponseRate);
            Abort();
            return;
        }
        CancelCollected();
        if (run) RunParked();
        else KickFlush();
    }

    /// <summary>
    /// The minimum-rate test of one period: false while the period (from <paramref name="since"/>) is within
    /// <paramref name="grace"/>; after it, true when fewer than rate × period bytes moved (<paramref name="bytes"/> since
    /// <paramref name="bytesThen"/>), else a new period begins now.
    /// </summary>
    private static bool Slow(long now, ref long since, ref long bytesThen, long bytes, long grace, double ratePerTick)
    {
        var elapsed = now - since;
        if (elapsed <= grace) return false;
        if (bytes - bytesThen < elapsed * ratePerTick) return true;
        (since, bytesThen) = (now, bytes);
        return false;
    }

    /// <summary>True when the socket's send buffer has room (the peer is taking what was sent).</summary>
    private bool Writable()
    {
        if (_socket is null) return true;
        try
        {
            return _socket.Poll(0, SelectMode.SelectWrite);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true; // closing already
        }
    }

    /// <summary>True when the peer's bytes wait in the socket unread (the server, not the peer, is behind).</summary>
    private bool Unread()
    {
        if (_socket is null) return false;
        try
        {
            return Volatile.Read(ref _awaitingTurn) || _socket.Available > 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    private async Task CloseIdleAsync()
    {
        try
        {
            await FlushAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The peer is gone already: closed below either way.
        }
        Abort();
    }

    /// <summary>GOAWAY (no error): no new streams; completes when the running ones have finished.</summary>
    public Task DrainAsync()
    {
        Task idle;
        lock (_sync)
        {
            if (_closed) return Task.CompletedTask;
            if (!_goingAway)
            {
                _goingAway = true;
                _out.GoAway(_lastStreamId, H2.NoError, "server stopping");
            }
            if (_streams.Count == 0) return FlushThen(Task.CompletedTask);
            _idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            idle = _idle.Task;
        }
        return FlushThen(idle);
    }

    private async Task FlushThen(Task idle)
    {
        await FlushAsync().ConfigureAwait(false);
        await idle.ConfigureAwait(false);
        await FlushAsync().ConfigureAwait(false);
    }

    /// <summary>Closes the connection at once: every open call's token fires, the socket closes.</summary>
    public void Abort()
    {
        lock (_sync)
        {
            if (_closed) return;
            foreach (var s in _streams.Values.ToArray()) Abort(s);
            _blocked.Clear();
            _deferred.Clear();
            _parked.Clear();
            _closed = true;
            _idle?.TrySetResult();
        }
        CancelCollected();
        if (_socket is null) return;
        // The slot is given back before the peer can see the close, so a peer that reconnects on seeing it is admitted.
        _server.OnClosed(this, _key);
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }
        _socket.Dispose();
    }
}

internal enum StreamPhase
{
    New,
    Checking,
    Admitted,
    Running,
    Sending,
    Done,
}

/// <summary>One request stream: its headers, body, windows and answer state (guarded by its connection's lock).</summary>
internal sealed class H2Stream
{
    private IDisposable? _disposable;
    private List<IDisposable>? _more;

    public H2Stream(H2Connection connection, int id, BittensorMethod method, PendingHeaders headers, DateTime deadline, CancellationTokenSource cancellation)
    {
        Connection = connection;
        Id = id;
        Method = method;
        PendingHeaders = headers;
        Deadline = deadline;
        Cancellation = cancellation;
        Token = cancellation.Token;
    }

    public H2Connection Connection { get; }

    public int Id { get; }

    public BittensorMethod Method { get; }

    /// <summary>The request's metadata until the call's check makes it <see cref="Headers"/> (then null; the connection's pool has it back).</summary>
    public PendingHeaders? PendingHeaders;

    /// <summary>The request's metadata, made for the call's check (null before: a call shed before its check never has it).</summary>
    public Metadata? Headers;

    public DateTime Deadline { get; }

    public CancellationTokenSource Cancellation { get; }

    public CancellationToken Token { get; }

    /// <summary>What the handler registers to be disposed after the answer (made for a call that reaches its handler).</summary>
    public Action<IDisposable> RegisterForDispose => _register ??= Register;

    private Action<IDisposable>? _register;

    public CancellationTokenRegistration Registration;
    public StreamPhase Phase;
    public bool RemoteClosed;
    public bool Closed;
    public bool Held; // counted in the server's calls in flight (request complete, answer not)
    public bool BudgetAdmitted; // the at-read budget admitted it: counted in its read's budget once, never decided by it again
    public long Received; // DATA payload bytes received (the minimum request body rate)
    public long SendingSince; // when the answer began waiting for the peer's window (LeanServer.Now units)
    public long ReadAt; // when the read that brought its HEADERS completed (WaitAdmission; LeanServer.Now units)
    public long CheckAt; // the minimum rates: when the current period began (admission, or the answer's wait) ...
    public long CheckBytes; // ... and the bytes received (body) or sent (answer) by then
    public bool Queued;
    public bool Async;
    public long SendWindow;
    public int RecvWindow;
    public object? Admission;
    public byte[]? Body;
    public int BodyLength;
    public int Declared = -1;
    public byte[]? Pending;
    public int PendingOffset;
    public int PendingLength;
    public TensorMessage? Deferred; // the answer, held back while the connection's output is full
    public int DeferredSize;

    public void Append(ReadOnlySpan<byte> data)
    {
        if (Body is null || BodyLength + data.Length > Body.Length)
        {
            var want = Math.Max(BodyLength + data.Length, Declared >= 0 ? 5 + Declared : 256);
            var bigger = ArrayPool<byte>.Shared.Rent(want);
            if (Body is not null)
            {
                Body.AsSpan(0, BodyLength).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(Body);
            }
            Body = bigger;
        }
        data.CopyTo(Body.AsSpan(BodyLength));
        BodyLength += data.Length;
    }

    /// <summary>The body's buffer, now the caller's to return to the pool.</summary>
    public byte[] TakeBody()
    {
        var body = Body!;
        Body = null;
        return body;
    }

    public void ReleaseBuffers()
    {
        if (Body is not null) ArrayPool<byte>.Shared.Return(Body);
        Body = null;
        if (Pending is not null) ArrayPool<byte>.Shared.Return(Pending);
        Pending = null;
        Deferred = null;
    }

    private void Register(IDisposable disposable)
    {
        if (_disposable is null) _disposable = disposable;
        else (_more ??= []).Add(disposable);
    }

    /// <summary>The pooled tensor this stream's handler registered whose tensor is <paramref name="tensor"/>, if any.</summary>
    public PooledTensor? FindPooled(Tensor tensor)
    {
        if (_disposable is PooledTensor p && ReferenceEquals(p.Tensor, tensor)) return p;
        if (_more is null) return null;
        foreach (var d in _more)
            if (d is PooledTensor q && ReferenceEquals(q.Tensor, tensor)) return q;
        return null;
    }

    public void DisposeRegistered()
    {
        var first = _disposable;
        _disposable = null;
        first?.Dispose();
        if (_more is null) return;
        foreach (var d in _more) d.Dispose();
        _more = null;
    }
}
