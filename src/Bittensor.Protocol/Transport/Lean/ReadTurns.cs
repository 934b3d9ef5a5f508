using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// The lean server's read schedule, fair across connections (issue 11's overload tail). A socket read that finds data
/// already there completes at once, so a read loop that always finds data (a connection kept full under overload) would
/// keep the thread that runs it — with inline socket completions (btcli's default) the socket engine's only thread on
/// the axon's core — while every other connection's data waits unread in its socket: at 1,024 callers, p99 of
/// 191–946 ms. So a connection gets a turn of at most <see cref="ReadsPerTurn"/> reads that completed at once after the
/// one that began the turn, then queues here for its next turn. The queue is given its turns by a wake-up through the
/// same socket engine: a byte written into a socket pair whose other end has a receive pending, so the waiting
/// connections run when that event comes out of epoll — behind the sockets that were ready before them, on the engine's
/// thread, without a hop to the thread pool (a plain <c>Task.Yield</c> cost 12–28 % of the throughput). A new
/// connection's first read starts the same way (<see cref="H2Connection.Start"/>): on the engine, never on a pool
/// thread that a busy or real-time-priority server may not give it for a second.
/// Without inline socket completions every read completion runs on the thread pool already, whose queue is first in,
/// first out: there a turn is a work item of its own (a round given on one pool thread would wait behind any turn whose
/// handler blocks); likewise where a socket pair cannot be made (not Linux).
/// Tests drive the turns themselves (<see cref="ReadTurnMode.Driven"/>): <see cref="GiveTurns"/>.
/// </summary>
internal sealed class ReadTurns : IDisposable
{
    /// <summary>Reads that found data already there a connection may handle in one turn, after the read that began it.</summary>
    public const int ReadsPerTurn = 4;

    private readonly ReadLane[] _lanes;
    private int _next = -1;

    private ReadTurns(ReadLane[] lanes) => _lanes = lanes;

    /// <summary>
    /// The schedule of one listening socket (<see cref="ReadTurnMode"/>). On the engine: one lane (wake-up pair) per
    /// socket-engine thread, made one after the other so the runtime spreads their receives over its engines (it
    /// assigns sockets round robin), and connections given lanes round robin: under overload the turns of a many-core
    /// server do not all run on one engine thread. <paramref name="engineLanes"/> &gt; 0 sets the number of lanes (tests).
    /// </summary>
    public static ReadTurns Create(ReadTurnMode mode, int engineLanes = 0)
    {
        if (mode == ReadTurnMode.Auto) mode = InlineCompletions ? ReadTurnMode.Engine : ReadTurnMode.Pool;
        return mode switch
        {
            ReadTurnMode.Driven => new ReadTurns([ReadLane.Driven()]),
            ReadTurnMode.Pool => new ReadTurns([ReadLane.Pool()]),
            _ => new ReadTurns([.. Enumerable.Range(0, engineLanes > 0 ? engineLanes : EngineThreads).Select(_ => ReadLane.OnEngineOrPool())]),
        };
    }

    /// <summary>
    /// True when this process runs socket completions inline (the variable the runtime reads once, at its first socket;
    /// btcli sets it before that: Bittensor.Cli's SocketCompletions).
    /// </summary>
    private static bool InlineCompletions => Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") == "1";

    /// <summary>The runtime's socket-engine threads with inline completions: the processor count unless set (at most 32 lanes).</summary>
    private static int EngineThreads =>
        Math.Clamp(int.TryParse(Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT"), out var n) && n > 0 ? n : Environment.ProcessorCount, 1, 32);

    /// <summary>The lane of a new connection.</summary>
    public ReadLane Assign() => _lanes[(int)((uint)Interlocked.Increment(ref _next) % (uint)_lanes.Length)];

    /// <summary>Turns given so far (tests and probes).</summary>
    public long Given => _lanes.Sum(l => l.Given);

    /// <summary>Wake-ups (or driven rounds) that gave turns so far.</summary>
    public long Rounds => _lanes.Sum(l => l.Rounds);

    /// <summary>Connections waiting for their turn.</summary>
    public int Waiting
    {
        get
        {
            var n = 0;
            foreach (var lane in _lanes) n += lane.Waiting;
            return n;
        }
    }

    /// <summary>True when turns go through the socket engine (wake-up pairs were made).</summary>
    public bool OnEngine => _lanes.All(l => l.OnEngine);

    /// <summary>Tests (<see cref="ReadTurnMode.Driven"/>): one turn to each connection waiting now; the number given.</summary>
    public int GiveTurns() => _lanes.Sum(l => l.GiveTurns());

    /// <summary>Tests: <see cref="ReadLane.WhenQueued"/> of every lane.</summary>
    public Action<ReadTurn>? WhenQueued
    {
        set
        {
            foreach (var lane in _lanes) lane.WhenQueued = value;
        }
    }

    /// <summary>Tests (<see cref="ReadTurnMode.Driven"/>): completes when a connection queues.</summary>
    public Task Queued() => Task.WhenAny(_lanes.Select(l => l.Queued()));

    public void Dispose()
    {
        foreach (var lane in _lanes) lane.Dispose();
    }
}

/// <summary>
/// One queue of <see cref="ReadTurns"/> and its wake-up: a socket pair whose receiving end has a receive pending on the
/// socket engine; a byte written gives every turn waiting then, on that engine's thread.
/// </summary>
internal sealed partial class ReadLane : IDisposable
{
    private const int Armed = 0; // the wake-up's receive is pending and nothing was written to it
    private const int Rung = 1; // a byte was written (or is about to be): the waiting turns will be given
    private const int Giving = 2; // the loop is giving turns; nobody writes
    private const int Disposed = 3;

    private readonly ConcurrentQueue<ReadTurn> _waiting = new();
    private readonly Socket? _bell;
    private readonly Socket? _ear;
    private readonly bool _driven;
    private readonly byte[] _ring = [1];
    private readonly byte[] _heard = new byte[16];
    private TaskCompletionSource _queued = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _state = Giving;
    private long _given;
    private long _rounds;
    private Action? _probe; // a probe waiting for the next wake-up (WaitAdmission: the event loop's lag)

    private ReadLane(Socket? bell, Socket? ear, bool driven)
    {
        _bell = bell;
        _ear = ear;
        _driven = driven;
    }

    /// <summary>A lane whose turns are given by a wake-up through the socket engine, or on the pool without a socket pair.</summary>
    public static ReadLane OnEngineOrPool()
    {
        var pair = Pair();
        var lane = new ReadLane(pair?.Bell, pair?.Ear, driven: false);
        if (pair is not null) _ = lane.ListenAsync();
        return lane;
    }

    /// <summary>A lane whose every turn is a pool work item.</summary>
    public static ReadLane Pool() => new(null, null, driven: false);

    /// <summary>Tests: a lane whose turns are given only by <see cref="GiveTurns"/>.</summary>
    public static ReadLane Driven() => new(null, null, driven: true);

    /// <summary>
    /// Tests: runs on the queuing thread each time a turn is queued, before that thread goes on — on a driven lane a test
    /// may give turns from here, from another thread, as a pool thread or the socket engine could at that moment; on the
    /// engine (or the pool) it runs before the wake-up is rung (or the pool work item queued), so a test can have a
    /// connection's bytes in its socket before its turn is given.
    /// </summary>
    public Action<ReadTurn>? WhenQueued { get; set; }

    /// <summary>Turns given so far (tests and probes).</summary>
    public long Given => Interlocked.Read(ref _given);

    /// <summary>Wake-ups (or driven rounds) that gave turns so far.</summary>
    public long Rounds => Interlocked.Read(ref _rounds);

    /// <summary>Connections waiting for their turn.</summary>
    public int Waiting => _waiting.Count;

    /// <summary>True when turns go through the socket engine (a wake-up pair was made).</summary>
    public bool OnEngine => _ear is not null;

    /// <summary>
    /// Queues <paramref name="turn"/> (<see cref="ReadTurn"/> does, once its read loop awaits it); it resumes when the
    /// turns queued before it on this lane have run, on the thread that gives the turns (the socket engine's, a pool
    /// work item, a test's) — never inside this call.
    /// </summary>
    public void Enqueue(ReadTurn turn)
    {
        _waiting.Enqueue(turn);
        if (_driven)
        {
            Interlocked.Exchange(ref _queued, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            WhenQueued?.Invoke(turn);
            return;
        }
        WhenQueued?.Invoke(turn);
        if (_ear is null || Volatile.Read(ref _state) == Disposed)
        {
            ToPool();
            return;
        }
        if (Interlocked.CompareExchange(ref _state, Rung, Armed) == Armed) Ring();
    }

    /// <summary>
    /// A probe of the event loop's lag (<see cref="WaitAdmission"/>): <paramref name="returned"/> runs when the engine
    /// gets to this lane's wake-up — rung now if it was armed, else the wake-up already on its way (or the round being
    /// given, which rings again after it) — so the time until it runs is what an event that became ready now waits.
    /// Without a socket pair it is a pool work item (the pool's queue is then the loop). A driven lane sends none
    /// (false). One probe at a time: a second one while one waits is not sent (false).
    /// </summary>
    public bool Probe(Action returned)
    {
        if (_driven) return false;
        if (_ear is null || Volatile.Read(ref _state) == Disposed)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static r => r(), returned, preferLocal: false);
            return true;
        }
        if (Interlocked.CompareExchange(ref _probe, returned, null) is not null) return false;
        if (Interlocked.CompareExchange(ref _state, Rung, Armed) == Armed) Ring();
        // Disposed meanwhile: the listener's end ran (or runs) whatever waits.
        else if (Volatile.Read(ref _state) == Disposed) Interlocked.Exchange(ref _probe, null)?.Invoke();
        return true;
    }

    /// <summary>
    /// Tests: gives one turn to each connection waiting now, on the calling thread, in the order they queued; a
    /// connection that queues again during its turn waits for the next call. The number of turns given.
    /// </summary>
    public int GiveTurns()
    {
        if (!_driven) throw new InvalidOperationException("turns are given by the socket engine, not driven");
        return GiveRound();
    }

    /// <summary>Tests: completes when a connection queues after this call (or at once if one waits already).</summary>
    public Task Queued()
    {
        var queued = Volatile.Read(ref _queued).Task;
        return _waiting.IsEmpty ? queued : Task.CompletedTask;
    }

    private int GiveRound()
    {
        Interlocked.Increment(ref _rounds);
        var given = 0;
        for (var due = _waiting.Count; due > 0 && _waiting.TryDequeue(out var turn); due--)
        {
            given++;
            Interlocked.Increment(ref _given);
            turn.Resume();
        }
        return given;
    }

    private async Task ListenAsync()
    {
        try
        {
            var heard = _ear!.ReceiveAsync(_heard, SocketFlags.None);
            Arm();
            while (true)
            {
                if (await heard.ConfigureAwait(false) == 0) return;
                // A wake-up: whatever was rung (a byte from anywhere else would only give turns early).
                if (Interlocked.Exchange(ref _state, Giving) == Disposed)
                {
                    Volatile.Write(ref _state, Disposed);
                    return;
                }
                Interlocked.Exchange(ref _probe, null)?.Invoke();
                GiveRound();
                // Nothing writes while giving, so this receive waits for the next byte in the engine.
                heard = _ear.ReceiveAsync(_heard, SocketFlags.None);
                Arm();
            }
        }
        catch (Exception)
        {
            // The pair was closed (the server stopped) or failed: whoever waits is handed to the pool below.
        }
        finally
        {
            Interlocked.Exchange(ref _state, Disposed);
            ToPool();
            Interlocked.Exchange(ref _probe, null)?.Invoke();
        }
    }

    /// <summary>After a round (or at the start): rings at once for turns queued meanwhile, else waits armed.</summary>
    private void Arm()
    {
        if (!_waiting.IsEmpty || Volatile.Read(ref _probe) is not null)
        {
            if (Interlocked.CompareExchange(ref _state, Rung, Giving) == Giving) Ring();
            return;
        }
        if (Interlocked.CompareExchange(ref _state, Armed, Giving) != Giving) return;
        // A turn (or probe) queued between the check and arming saw Giving and did not ring: ring for it.
        if ((!_waiting.IsEmpty || Volatile.Read(ref _probe) is not null) && Interlocked.CompareExchange(ref _state, Rung, Armed) == Armed) Ring();
    }

    private void Ring()
    {
        try
        {
            _bell!.Send(_ring, SocketFlags.None);
        }
        catch (Exception)
        {
            // Closed (the server stopped): the listener hands what waits to the pool.
            Interlocked.Exchange(ref _state, Disposed);
            ToPool();
            Interlocked.Exchange(ref _probe, null)?.Invoke();
        }
    }

    private void ToPool()
    {
        while (_waiting.TryDequeue(out var turn))
        {
            Interlocked.Increment(ref _given);
            ThreadPool.UnsafeQueueUserWorkItem(static t => t.Resume(), turn, preferLocal: false);
        }
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _state, Disposed);
        _bell?.Dispose();
        _ear?.Dispose();
        ToPool();
        Interlocked.Exchange(ref _probe, null)?.Invoke();
    }

    private static (Socket Bell, Socket Ear)? Pair()
    {
        if (!OperatingSystem.IsLinux()) return null;
        Span<int> fds = stackalloc int[2];
        // AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC: a connected pair with no name anyone else could connect to.
        if (NativeSocketPair(1, 1 | 0x80000, 0, ref MemoryMarshal.GetReference(fds)) != 0) return null;
        Socket? bell = null;
        try
        {
            bell = new Socket(new SafeSocketHandle(fds[0], ownsHandle: true));
            fds[0] = -1;
            var ear = new Socket(new SafeSocketHandle(fds[1], ownsHandle: true));
            return (bell, ear);
        }
        catch (Exception)
        {
            bell?.Dispose();
            if (fds[0] >= 0) _ = NativeClose(fds[0]);
            _ = NativeClose(fds[1]);
            return null;
        }
    }

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    private static partial int NativeSocketPair(int domain, int type, int protocol, ref int fds);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int NativeClose(int fd);
}

/// <summary>How a server's read turns are given.</summary>
internal enum ReadTurnMode
{
    /// <summary>On the socket engine with inline socket completions (btcli's default), else on the pool.</summary>
    Auto,

    /// <summary>By a wake-up through the socket engine (where the completion of its receive runs).</summary>
    Engine,

    /// <summary>Each turn a thread-pool work item.</summary>
    Pool,

    /// <summary>Tests: only when <see cref="ReadTurns.GiveTurns"/> is called.</summary>
    Driven,
}

/// <summary>
/// One connection's place in <see cref="ReadTurns"/>: its read loop awaits <see cref="Wait"/> and continues on the thread
/// that calls <see cref="Resume"/> (synchronously, inside the call), so a turn given by the socket engine runs there.
/// The turn is queued on its lane only when the await registers its continuation (<see cref="IValueTaskSource.OnCompleted"/>),
/// never before: a giver can only resume a read loop that has stopped, and the loop can never go on on the thread that
/// asked for the turn. (Session 12 queued first and awaited after; a turn given in between completed the await
/// synchronously, and a new connection's first turn then ran its reads and calls on the accept loop.) Nothing in
/// <see cref="ReadLane.Enqueue"/> resumes a turn on the calling thread. One wait at a time, awaited once.
/// </summary>
internal sealed class ReadTurn : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core;
    private ReadLane? _lane;
    private int _awaited;

    /// <summary>A wait for the next turn on <paramref name="lane"/>: queued there when it is awaited.</summary>
    public ValueTask Wait(ReadLane lane)
    {
        _core.Reset();
        Volatile.Write(ref _awaited, 0);
        _lane = lane;
        return new ValueTask(this, _core.Version);
    }

    /// <summary>True once the read loop awaits this turn (its continuation is registered): tests.</summary>
    public bool Awaited => Volatile.Read(ref _awaited) == 1;

    public void Resume() => _core.SetResult(true);

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        _core.OnCompleted(continuation, state, token, flags);
        Volatile.Write(ref _awaited, 1);
        var lane = _lane ?? throw new InvalidOperationException("a read turn awaited twice");
        _lane = null;
        lane.Enqueue(this);
    }
}
