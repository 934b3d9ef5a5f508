using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Bittensor.Actors.Metrics;

/// <summary>
/// The meters the runtime publishes (System.Diagnostics.Metrics; read by OpenTelemetry, dotnet-counters or any
/// <see cref="MeterListener"/>). docs/metrics.md lists every instrument and its tags. Peer labels (hotkeys) are
/// bounded per process by <see cref="MaxPeerLabels"/>; no secret is ever a tag.
/// </summary>
public static class BittensorMeters
{
    /// <summary>Calls served by this process's axons (<c>bittensor.axon.*</c>).</summary>
    public const string Axon = "Bittensor.Axon";

    /// <summary>Model hosts: batches, queue depth, worker restarts (<c>bittensor.model.*</c>).</summary>
    public const string ModelHost = "Bittensor.ModelHost";

    /// <summary>Dendrite calls per peer: latency, codes, backoffs (<c>bittensor.dendrite.*</c>).</summary>
    public const string Dendrite = "Bittensor.Dendrite";

    /// <summary>Chain client: submits, their latency and errors, reconnects (<c>bittensor.chain.*</c>).</summary>
    public const string Chain = "Bittensor.Chain";

    /// <summary>Validator pipelines (<c>bittensor.pipeline.*</c>; the meter lives in Bittensor.Neurons).</summary>
    public const string Pipeline = "Bittensor.Neurons.Pipeline";

    /// <summary>Every meter above; an OpenTelemetry <c>MeterProvider</c> can also take the wildcard <c>Bittensor.*</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = [Axon, ModelHost, Dendrite, Chain, Pipeline];

    /// <summary>Distinct peer hotkeys one instrument tags per process; later peers are counted under <c>other</c>.</summary>
    public const int MaxPeerLabels = 256;

    /// <summary>The label every peer beyond <see cref="MaxPeerLabels"/> shares.</summary>
    public const string OtherPeers = "other";
}

/// <summary>
/// A bounded set of label values: the first <c>max</c> distinct values are kept as they are, later ones map to
/// <see cref="BittensorMeters.OtherPeers"/>, so a caller inventing keys cannot grow a metric's series without bound.
/// Thread-safe.
/// </summary>
internal sealed class BoundedLabels(int max)
{
    private readonly ConcurrentDictionary<string, string> _known = new(StringComparer.Ordinal);

    public string Of(string value)
    {
        if (_known.TryGetValue(value, out var label)) return label;
        if (_known.Count >= max) return BittensorMeters.OtherPeers;
        return _known.GetOrAdd(value, value);
    }
}

/// <summary>Instruments of model hosts (meter <see cref="BittensorMeters.ModelHost"/>), shared by every host in the process.</summary>
internal static class ModelHostMeters
{
    private static readonly Meter Meter = new(BittensorMeters.ModelHost);
    private static readonly ConcurrentDictionary<object, Func<Measurement<int>>> Queues = new(ReferenceEqualityComparer.Instance);

    /// <summary>Requests per batch given to a model worker (a handler host's batches are 1).</summary>
    public static readonly Histogram<int> BatchSize = Meter.CreateHistogram<int>("bittensor.model.batch_size", "{request}",
        "Requests coalesced into one model batch, tagged by host", advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128] });

    /// <summary>Worker restarts after a crash, and failed starts.</summary>
    public static readonly Counter<long> Restarts = Meter.CreateCounter<long>("bittensor.model.restarts", "{restart}",
        "Model worker restarts (tag reason: crash or start_failed), tagged by host");

    /// <summary>Requests refused because the host's queue was full (shed).</summary>
    public static readonly Counter<long> Shed = Meter.CreateCounter<long>("bittensor.model.shed", "{request}",
        "Requests answered NucleusFull at once because the queue was full, tagged by host");

    static ModelHostMeters()
    {
        Meter.CreateObservableGauge("bittensor.model.queue", () => Queues.Values.Select(f => f()), "{request}",
            "Requests waiting in the host's priority queue, tagged by host");
    }

    /// <summary>Registers a live host's queue depth (read on the exporter's thread: an int read, possibly stale).</summary>
    public static void Watch(object host, Func<Measurement<int>> depth) => Queues[host] = depth;

    /// <summary>Forgets a stopped host.</summary>
    public static void Forget(object host) => Queues.TryRemove(host, out _);
}

/// <summary>Instruments of dendrite endpoints (meter <see cref="BittensorMeters.Dendrite"/>): one series set per peer hotkey, bounded.</summary>
internal static class DendriteMeters
{
    private static readonly Meter Meter = new(BittensorMeters.Dendrite);

    /// <summary>Peer labels, bounded.</summary>
    public static readonly BoundedLabels Peers = new(BittensorMeters.MaxPeerLabels);

    /// <summary>Calls answered, by peer, method and code (including Backoff answered without a call).</summary>
    public static readonly Counter<long> Calls = Meter.CreateCounter<long>("bittensor.dendrite.calls", "{call}",
        "Calls to peers by peer hotkey, method and return code (Backoff: refused locally while the peer is backed off)");

    /// <summary>Latency of calls that reached the peer.</summary>
    public static readonly Histogram<double> Latency = Meter.CreateHistogram<double>("bittensor.dendrite.duration", "ms",
        "Round trip of calls that reached the peer, by peer hotkey and method");

    /// <summary>Times the circuit opened (the peer was backed off).</summary>
    public static readonly Counter<long> Backoffs = Meter.CreateCounter<long>("bittensor.dendrite.backoffs", "{backoff}",
        "Times a peer was backed off (circuit opened) after Unavailable/Timeout, by peer hotkey");
}

/// <summary>Instruments of the chain client (meter <see cref="BittensorMeters.Chain"/>).</summary>
internal static class ChainMeters
{
    private static readonly Meter Meter = new(BittensorMeters.Chain);

    /// <summary>Error names seen (chain-given strings: bounded).</summary>
    public static readonly BoundedLabels Errors = new(64);

    /// <summary>Submits answered, by call and outcome.</summary>
    public static readonly Counter<long> Submits = Meter.CreateCounter<long>("bittensor.chain.submits", "{call}",
        "Extrinsics answered, by call name and result (ok, or the error name: a runtime error, a pool reason or Timeout)");

    /// <summary>Time from submit to result.</summary>
    public static readonly Histogram<double> SubmitLatency = Meter.CreateHistogram<double>("bittensor.chain.submit.duration", "ms",
        "Time from a Submit reaching the chain actor to its result, by call name");

    /// <summary>Connection losses and failed connection attempts.</summary>
    public static readonly Counter<long> Reconnects = Meter.CreateCounter<long>("bittensor.chain.reconnects", "{reconnect}",
        "Chain connection losses and failed attempts, each followed by a reconnect");
}
