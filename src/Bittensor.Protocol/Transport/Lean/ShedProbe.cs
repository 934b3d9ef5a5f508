namespace Bittensor.Protocol.Lean;

/// <summary>
/// A benchmark's probe of where a shed call's time goes (issue 11: "shed calls answered in &lt; 1 ms"), off unless the
/// environment variable <c>BITTENSOR_SHED_PROBE</c> names a file (benchmarks/shed-probe.sh sets it for the server only;
/// nothing in the product reads it otherwise, and <see cref="On"/> is a static read-only field, so the JIT drops every
/// probe site when it is off). When on, the lean server records, on the machine's monotonic clock
/// (<see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>, shared with the load generator's process), for every shed
/// answer: the peer's port and stream id (the generator's key), the read that brought its HEADERS, the shed decision, the
/// start and the return of the send that carried the answer, the bytes of that send, the GC pause time between the
/// decision and the send's return, and which rule shed it; the nonce journal's compactions and fsynced batches as
/// intervals; and each read loop's turns and its waits for a send or for its output to drain (session 19: while a call
/// waits in its socket, was its connection's loop in its own turn, where nobody reads that socket?). Records go to the
/// file as raw int64s (10 per record, after an 8-byte magic), from a background thread every 200 ms (and at exit); at
/// most <see cref="Capacity"/> records are kept (a level of a few seconds), later ones are dropped and counted.
/// </summary>
internal static class ShedProbe
{
    /// <summary>True when the probe is on (read once at start-up).</summary>
    public static readonly bool On = Environment.GetEnvironmentVariable("BITTENSOR_SHED_PROBE") is { Length: > 0 };

    /// <summary>Records kept at most.</summary>
    public const int Capacity = 2_000_000;

    private const int Fields = 10;
    private static readonly object Gate = new();
    private static readonly long[] Records = On ? new long[Capacity * Fields] : [];
    private static int _count;
    private static int _written;
    private static long _dropped;

    /// <summary>Record kinds.</summary>
    public const int ShedBudget = 1, ShedInFlight = 2, ShedAtCheck = 3, ShedLate = 4, ShedPass = 5, Compaction = 10, FsyncBatch = 11, InlineBatch = 12;

    /// <summary>Read-loop intervals (kind, port, start, end): a turn (from the turn given to the wait for the next), a wait for its send to complete, a wait for its output to drain, a receive that waited for data (session 21),
    /// a wait for the turn of a read decided before it (session 22: H2Connection.DecideBeforeTurn, its admitted calls waiting).
    /// A turn's record also holds what the whole server did during it (<see cref="Work"/>, session 21: what makes a long turn long).</summary>
    public const int LoopTurn = 20, LoopSendWait = 21, LoopDrainWait = 22, LoopReceiveWait = 23, LoopDecidedWait = 24;

    /// <summary>A turn's second record (session 23: what a level's first second spends): port, start, end, then the whole
    /// server's running totals at the turn's end — sr25519 key tables built, signatures verified without a key's tables (a
    /// key's first sighting), gen-0 and gen-1 collections, methods the JIT compiled, the JIT's compile time (ns).</summary>
    public const int LoopTurnKeys = 25;

    /// <summary>Calls pumped (a step of a call run: its check, its model, its answer), server-wide, while the probe is on.</summary>
    public static long Calls;

    /// <summary>Bytes the server's connections sent, while the probe is on.</summary>
    public static long BytesSent;

    /// <summary>Signatures checked by the batching verifier, while the probe is on.</summary>
    public static long Signatures;

    /// <summary>Sends of the server's connections that did not complete at once (the socket's send buffer was full), while the probe is on.</summary>
    public static long SendsPending;

    /// <summary>
    /// What the server has done so far, for a turn's record (its end's minus its start's): calls pumped, bytes sent, the
    /// GC's pause time (Stopwatch ticks), the JIT's compile time (ns), sends that did not complete at once, signatures checked.
    /// </summary>
    public readonly record struct Work(long Calls, long BytesSent, long GcPause, long JitNs, long SendsPending, long Signatures,
        long TablesBuilt, long WithoutTables, long Gen0, long Gen1, long JitMethods)
    {
        public static Work Now()
        {
            var keys = Bittensor.Core.Crypto.Sr25519.PreparedKeyCounts;
            return new(Volatile.Read(ref ShedProbe.Calls), Volatile.Read(ref ShedProbe.BytesSent), ShedProbe.GcPause(),
                System.Runtime.JitInfo.GetCompilationTime().Ticks * 100, Volatile.Read(ref ShedProbe.SendsPending), Volatile.Read(ref ShedProbe.Signatures),
                keys.TablesBuilt, keys.VerifiedWithoutTables, GC.CollectionCount(0), GC.CollectionCount(1), System.Runtime.JitInfo.GetCompiledMethodCount());
        }
    }

    /// <summary>A read loop's turn: its port, start and end, and what the server did during it (fields 4-9).</summary>
    public static void AddTurn(long port, long start, long end, in Work before)
    {
        var after = Work.Now();
        Add(LoopTurn, port, start, end, after.Calls - before.Calls, after.BytesSent - before.BytesSent, after.GcPause - before.GcPause,
            after.JitNs - before.JitNs, after.SendsPending - before.SendsPending, after.Signatures - before.Signatures);
        Add(LoopTurnKeys, port, start, end, after.TablesBuilt, after.WithoutTables, after.Gen0, after.Gen1, after.JitMethods, after.JitNs);
    }

    static ShedProbe()
    {
        if (!On) return;
        var path = Environment.GetEnvironmentVariable("BITTENSOR_SHED_PROBE")!;
        var writer = new Thread(() =>
        {
            while (true)
            {
                Thread.Sleep(200);
                Drain(path);
            }
        })
        { IsBackground = true, Name = "shed probe" };
        writer.Start();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Drain(path);
    }

    /// <summary>GC pause time so far, in Stopwatch ticks (the GC's counter; cheap).</summary>
    public static long GcPause() => (long)(GC.GetTotalPauseDuration().Ticks * (System.Diagnostics.Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond));

    /// <summary>Adds one record (a shed answer sent, or an interval).</summary>
    public static void Add(long kind, long a, long b, long c, long d, long e, long f, long g, long h, long i)
    {
        lock (Gate)
        {
            if (_count >= Capacity)
            {
                _dropped++;
                return;
            }
            var at = _count * Fields;
            Records[at] = kind;
            Records[at + 1] = a;
            Records[at + 2] = b;
            Records[at + 3] = c;
            Records[at + 4] = d;
            Records[at + 5] = e;
            Records[at + 6] = f;
            Records[at + 7] = g;
            Records[at + 8] = h;
            Records[at + 9] = i;
            _count++;
        }
    }

    /// <summary>The file's first bytes: the records follow as little-endian int64s, <see cref="Fields"/> per record.</summary>
    public static ReadOnlySpan<byte> Magic => "SHEDPRB1"u8;

    private static bool _headerWritten;
    private static long _droppedWritten;

    // The records go to the file as raw little-endian int64s (benchmarks/python/shed_segments.py reads them): a copy, not
    // a text of ~50k records every 200 ms. Until session 19 they were formatted as text, which took this thread 1.1-1.8 ms
    // of the axon's core every 200 ms (perf sched: it preempted the socket engine's thread, the one that runs the read
    // loops), inside the very tail the probe measures.
    private static void Drain(string path)
    {
        int from, to;
        long dropped;
        lock (Gate)
        {
            from = _written;
            to = _count;
            dropped = _dropped;
            _written = to;
        }
        if (to == from && dropped == _droppedWritten) return;
        try
        {
            using var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
            if (!_headerWritten)
            {
                file.Write(Magic);
                _headerWritten = true;
            }
            file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Records.AsSpan(from * Fields, (to - from) * Fields)));
            if (dropped != _droppedWritten)
            {
                _droppedWritten = dropped;
                Span<long> record = stackalloc long[Fields];
                record.Clear();
                record[0] = -1; // dropped records
                record[1] = dropped;
                file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(record));
            }
        }
        catch (IOException)
        {
            // A probe must not stop the server.
        }
    }
}
