using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Axon;

/// <summary>One finished call, as the axon's call observer sees it (CLI logs one line per call from this).</summary>
/// <param name="Method">"Forward" or "Backward".</param>
/// <param name="Caller">Caller's SS58 address (may be unverified when the call failed authentication).</param>
/// <param name="Code">Return code answered.</param>
/// <param name="Message">Return message answered.</param>
/// <param name="BytesIn">Request message size in bytes.</param>
/// <param name="BytesOut">Response message size in bytes.</param>
/// <param name="Elapsed">Time spent in the axon.</param>
/// <param name="InputShape">Shape of the first input tensor, when it decoded.</param>
public sealed record AxonCallRecord(string Method, string Caller, ReturnCode Code, string Message, long BytesIn, long BytesOut, TimeSpan Elapsed, IReadOnlyList<long>? InputShape)
{
    /// <summary>Why a NucleusFull answer was given (<see cref="AxonStats.ShedCallsInFlight"/>, <see cref="AxonStats.ShedTargetWait"/>); null: the model's queue was full.</summary>
    public string? ShedReason { get; init; }
}

/// <summary>Counters of one caller.</summary>
/// <param name="Calls">Calls received.</param>
/// <param name="BytesIn">Request bytes.</param>
/// <param name="BytesOut">Response bytes.</param>
/// <param name="Codes">Calls per return code.</param>
public sealed record CallerStats(long Calls, long BytesIn, long BytesOut, IReadOnlyDictionary<ReturnCode, long> Codes);

/// <summary>Summary of an axon's traffic, answered to <see cref="AxonActor.GetStats"/>.</summary>
/// <param name="TotalCalls">Calls received since start.</param>
/// <param name="Waiting">Calls admitted and not yet finished.</param>
/// <param name="PerCaller">Counters per verified caller SS58; callers beyond the tracking bound are summed under "other",
/// calls refused as unauthenticated under "unverified".</param>
/// <param name="StakesKnown">True once the axon holds a stake snapshot (from its metagraph or <see cref="AxonActor.UpdateStakes"/>).</param>
/// <param name="StakesBlock">Block of the latest metagraph snapshot the axon's stakes come from (0 before one, or for a hand-made table).</param>
/// <param name="RegisteredHotkeys">Hotkeys in the latest stake snapshot (the callers <c>blacklist.registered_only</c> admits).</param>
/// <param name="Refused">Calls and connections the transport refused on its own before the axon saw a call (per-address
/// rate and connection caps, size limits, Kestrel's limits and HTTP/2 errors), by reason; not in <paramref name="TotalCalls"/>.</param>
/// <param name="Shed">Calls answered NucleusFull, by reason: <c>queue_full</c> (the model's queue), <c>calls_in_flight</c>,
/// <c>target_wait</c> (admission by waiting); in <paramref name="TotalCalls"/>.</param>
/// <param name="WarmedUp">The axon's warm-up call (<c>bittensor.axon.warm_up</c>) went through its listener, header and signature
/// checks and nonce store to the serve step before the axon reported itself bound; never in the counts above.</param>
public sealed record AxonStatsSnapshot(long TotalCalls, int Waiting, IReadOnlyDictionary<string, CallerStats> PerCaller,
    bool StakesKnown = false, ulong StakesBlock = 0, int RegisteredHotkeys = 0, IReadOnlyDictionary<string, long>? Refused = null,
    IReadOnlyDictionary<string, long>? Shed = null, bool WarmedUp = false)
    : Akka.Actor.INoSerializationVerificationNeeded;

/// <summary>
/// Per-caller traffic counters, exported through <see cref="System.Diagnostics.Metrics"/> (meter "Bittensor.Axon")
/// and kept in memory for <see cref="AxonActor.GetStats"/>. Thread-safe: gRPC calls update it concurrently.
/// </summary>
internal sealed class AxonStats : IDisposable
{
    public const string MeterName = Bittensor.Actors.Metrics.BittensorMeters.Axon;
    private const int MaxTrackedCallers = 4096;
    private const string OtherCallers = "other";

    /// <summary>Stats key of calls whose caller failed authentication.</summary>
    public const string Unverified = "unverified";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _calls;
    private readonly Counter<long> _bytesIn;
    private readonly Counter<long> _bytesOut;
    private readonly Counter<long> _shed;
    private readonly Counter<long> _refused;
    private readonly ConcurrentDictionary<string, StrongBox<long>> _refusedByReason = new(StringComparer.Ordinal);
    // Shed answers by reason: the three constants below (and only those: the set cannot grow).
    private readonly ConcurrentDictionary<string, StrongBox<long>> _shedByReason = new(StringComparer.Ordinal);

    /// <summary>Shed reason: the model host's queue was full.</summary>
    public const string ShedQueueFull = "queue_full";

    /// <summary>Shed reason: the transport held <c>limits.calls_in_flight</c> calls.</summary>
    public const string ShedCallsInFlight = "calls_in_flight";

    /// <summary>Shed reason: calls waited over <c>limits.target_wait</c> before the axon read them (admission by waiting).</summary>
    public const string ShedTargetWait = "target_wait";
    private readonly Histogram<double> _latency;
    private readonly ConcurrentDictionary<string, Cell> _callers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Cell>.AlternateLookup<ReadOnlySpan<char>> _callersBySpan;
    private readonly KeyValuePair<string, object?> _axon;
    private long _total;

    /// <summary>Stats of the axon announcing <paramref name="axon"/> (its hotkey SS58, a tag on every instrument);
    /// <paramref name="waiting"/> is read when a metrics exporter collects the queue gauge.</summary>
    public AxonStats(string axon = "", Func<int>? waiting = null)
    {
        _callersBySpan = _callers.GetAlternateLookup<ReadOnlySpan<char>>();
        _axon = new KeyValuePair<string, object?>("axon", axon);
        _calls = _meter.CreateCounter<long>("bittensor.axon.calls", "{call}", "Calls answered, tagged by axon, caller, method and return code");
        _bytesIn = _meter.CreateCounter<long>("bittensor.axon.bytes_in", "By", "Request bytes, tagged by axon and caller");
        _bytesOut = _meter.CreateCounter<long>("bittensor.axon.bytes_out", "By", "Response bytes, tagged by axon and caller");
        _shed = _meter.CreateCounter<long>("bittensor.axon.shed", "{call}",
            "Calls shed: answered NucleusFull because the model's queue was full (reason queue_full), the axon held limits.calls_in_flight calls (calls_in_flight) or calls waited over limits.target_wait (target_wait), tagged by axon, method and reason");
        _refused = _meter.CreateCounter<long>("bittensor.axon.refused", "{call}",
            "Calls and connections the transport refused before the axon saw a call (per-IP rate/connection caps, size limits, Kestrel limits, HTTP/2 errors), tagged by axon, method, code and reason");
        _latency = _meter.CreateHistogram<double>("bittensor.axon.duration", "ms", "Time from receipt to answer, tagged by axon, method and return code",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 12000] });
        if (waiting is not null)
            _meter.CreateObservableGauge("bittensor.axon.waiting", () => new Measurement<int>(waiting(), _axon), "{call}",
                "Calls handed to the model host and not answered yet (queued or at the model), tagged by axon");
    }

    /// <summary>The string a caller already recorded is kept under, or null (the claimed hotkey of a known caller is not made again per call).</summary>
    public string? KnownCaller(ReadOnlySpan<char> hotkey) => _callersBySpan.TryGetValue(hotkey, out var key, out _) ? key : null;

    public void Record(AxonCallRecord r)
    {
        Interlocked.Increment(ref _total);
        var key = _callers.Count < MaxTrackedCallers || _callers.ContainsKey(r.Caller) ? r.Caller : OtherCallers;
        var cell = _callers.GetOrAdd(key, static (k, n) => new Cell(n < Metrics.BittensorMeters.MaxPeerLabels ? k : OtherCallers), _callers.Count);
        Interlocked.Increment(ref cell.Calls);
        Interlocked.Add(ref cell.BytesIn, r.BytesIn);
        Interlocked.Add(ref cell.BytesOut, r.BytesOut);
        Interlocked.Increment(ref cell.Codes[Math.Clamp((int)r.Code, 0, cell.Codes.Length - 1)]);

        // Metric tags: callers beyond MaxPeerLabels share "other" (the in-memory table keeps up to 4096).
        var caller = new KeyValuePair<string, object?>("caller", cell.Label);
        var method = new KeyValuePair<string, object?>("method", r.Method);
        var code = new KeyValuePair<string, object?>("code", CodeName(r.Code));
        _calls.Add(1, _axon, caller, method, code);
        _bytesIn.Add(r.BytesIn, _axon, caller);
        _bytesOut.Add(r.BytesOut, _axon, caller);
        _latency.Record(r.Elapsed.TotalMilliseconds, _axon, method, code);
        if (r.Code == ReturnCode.NucleusFull)
        {
            var reason = r.ShedReason ?? ShedQueueFull;
            Interlocked.Increment(ref _shedByReason.GetOrAdd(reason, static _ => new StrongBox<long>()).Value);
            _shed.Add(1, _axon, method, new KeyValuePair<string, object?>("reason", reason));
        }
    }

    // The codes' names, made once: ReturnCode.ToString() boxed the code on every call.
    private static readonly string[] CodeNames = [.. Enumerable.Range(0, (int)ReturnCode.Unauthenticated + 1).Select(i => ((ReturnCode)i).ToString())];

    private static string CodeName(ReturnCode code) => (uint)code < (uint)CodeNames.Length ? CodeNames[(int)code] : code.ToString();

    /// <summary>Counts a refusal of the transport's own (the call never reached the service).</summary>
    public void RecordRefused(Bittensor.Protocol.TransportRefusal refusal)
    {
        // Reasons are the transports' constants or Kestrel's error.type names: a small fixed set; bound it anyway.
        var reason = refusal.Reason.Length <= 64 && (_refusedByReason.Count < 64 || _refusedByReason.ContainsKey(refusal.Reason)) ? refusal.Reason : OtherCallers;
        Interlocked.Increment(ref _refusedByReason.GetOrAdd(reason, static _ => new StrongBox<long>()).Value);
        _refused.Add(1, _axon, new KeyValuePair<string, object?>("method", refusal.Method?.ToString() ?? "none"),
            new KeyValuePair<string, object?>("code", refusal.Code.ToString()), new KeyValuePair<string, object?>("reason", reason));
    }

    public AxonStatsSnapshot Snapshot(int waiting, StakeBook stakes)
    {
        var per = new Dictionary<string, CallerStats>(StringComparer.Ordinal);
        foreach (var (k, c) in _callers)
        {
            var codes = new Dictionary<ReturnCode, long>();
            for (var i = 0; i < c.Codes.Length; i++)
            {
                var n = Interlocked.Read(ref c.Codes[i]);
                if (n > 0) codes[(ReturnCode)i] = n;
            }
            per[k] = new CallerStats(Interlocked.Read(ref c.Calls), Interlocked.Read(ref c.BytesIn), Interlocked.Read(ref c.BytesOut), codes);
        }
        var refused = _refusedByReason.ToDictionary(r => r.Key, r => Interlocked.Read(ref r.Value.Value), StringComparer.Ordinal);
        var shed = _shedByReason.ToDictionary(r => r.Key, r => Interlocked.Read(ref r.Value.Value), StringComparer.Ordinal);
        return new AxonStatsSnapshot(Interlocked.Read(ref _total), waiting, per, stakes.Known, stakes.Block, stakes.Count, refused, shed);
    }

    public void Dispose() => _meter.Dispose();

    private sealed class Cell(string label)
    {
        public readonly string Label = label;
        public long Calls;
        public long BytesIn;
        public long BytesOut;
        public readonly long[] Codes = new long[(int)ReturnCode.Unauthenticated + 1];
    }
}
