using System.Globalization;
using System.Text;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// A benchmark's probe of where a shed call's time goes (issue 11: "shed calls answered in &lt; 1 ms"), off unless the
/// environment variable <c>BITTENSOR_SHED_PROBE</c> names a file (benchmarks/shed-probe.sh sets it for the server only;
/// nothing in the product reads it otherwise, and <see cref="On"/> is a static read-only field, so the JIT drops every
/// probe site when it is off). When on, the lean server records, on the machine's monotonic clock
/// (<see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>, shared with the load generator's process), for every shed
/// answer: the peer's port and stream id (the generator's key), the read that brought its HEADERS, the shed decision, the
/// start and the return of the send that carried the answer, the bytes of that send, the GC pause time between the
/// decision and the send's return, and which rule shed it; and the nonce journal's compactions and fsynced batches as
/// intervals. Records go to the file as text lines, from a background thread every 200 ms (and at exit); at most
/// <see cref="Capacity"/> records are kept (a level of a few seconds), later ones are dropped and counted.
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
        if (to == from && dropped == 0) return;
        var text = new StringBuilder();
        for (var r = from; r < to; r++)
        {
            for (var f = 0; f < Fields; f++)
            {
                if (f > 0) text.Append(' ');
                text.Append(Records[(r * Fields) + f].ToString(CultureInfo.InvariantCulture));
            }
            text.Append('\n');
        }
        if (dropped > 0 && to == Capacity) text.Append(CultureInfo.InvariantCulture, $"# dropped {dropped}\n");
        try
        {
            File.AppendAllText(path, text.ToString());
        }
        catch (IOException)
        {
            // A probe must not stop the server.
        }
    }
}
