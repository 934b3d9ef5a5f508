using Akka.Configuration;

namespace Bittensor.Actors.Dendrite;

/// <summary>
/// Immutable settings of a dendrite, read once from HOCON <c>bittensor.dendrite</c> (see hocon/bittensor.conf).
/// </summary>
public sealed record DendriteSettings
{
    /// <summary>Settings with every default of the reference configuration.</summary>
    public static DendriteSettings Default => Create(BittensorReferenceConfig.Default);

    /// <summary>Default deadline of one call.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(12);

    /// <summary>Last dimension of forward answers expected from peers (1024 on the 2021 network).</summary>
    public int NetworkDim { get; init; } = 1024;

    /// <summary>Endpoints queried at once by a fan-out.</summary>
    public int Parallelism { get; init; } = 64;

    /// <summary>Most endpoint actors alive at once (idle ones beyond are stopped, LRU first).</summary>
    public int MaxEndpoints { get; init; } = 1024;

    /// <summary>An endpoint actor without calls for this long stops itself.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Calls in flight per endpoint.</summary>
    public int EndpointMaxInFlight { get; init; } = 32;

    /// <summary>Calls queued per endpoint behind the in-flight ones; beyond that they answer Backoff.</summary>
    public int EndpointQueueCapacity { get; init; } = 256;

    /// <summary>Largest request sent to a peer (4 MiB: what a 2021 Python axon receives).</summary>
    public int PeerMaxMessageSize { get; init; } = 4 * 1024 * 1024;

    /// <summary>Largest response accepted.</summary>
    public int MaxResponseSize { get; init; } = 64 * 1024 * 1024;

    /// <summary>Backoff floor (first failure's ceiling).</summary>
    public TimeSpan BackoffMin { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Backoff cap.</summary>
    public TimeSpan BackoffMax { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Consecutive transport failures before the endpoint is backed off.</summary>
    public int FailuresBeforeBackoff { get; init; } = 1;

    /// <summary>Weight of the newest latency sample in the moving average.</summary>
    public double LatencyEmaAlpha { get; init; } = 0.1;

    /// <summary>Reads <c>bittensor.dendrite</c> (pass the whole config or the section) and validates it.</summary>
    public static DendriteSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var c = config.HasPath("bittensor.dendrite") ? config.GetConfig("bittensor.dendrite") : config;
        var s = new DendriteSettings
        {
            Timeout = c.GetTimeSpan("timeout", TimeSpan.FromSeconds(12)),
            NetworkDim = c.GetInt("network_dim", 1024),
            Parallelism = c.GetInt("parallelism", 64),
            MaxEndpoints = c.GetInt("max_endpoints", 1024),
            IdleTimeout = c.GetTimeSpan("idle_timeout", TimeSpan.FromSeconds(120)),
            EndpointMaxInFlight = c.GetInt("endpoint_max_in_flight", 32),
            EndpointQueueCapacity = c.GetInt("endpoint_queue_capacity", 256),
            PeerMaxMessageSize = checked((int)c.GetLong("peer_max_message_size", 4 * 1024 * 1024)),
            MaxResponseSize = checked((int)c.GetLong("max_response_size", 64 * 1024 * 1024)),
            BackoffMin = c.GetTimeSpan("backoff.min", TimeSpan.FromMilliseconds(200)),
            BackoffMax = c.GetTimeSpan("backoff.max", TimeSpan.FromSeconds(60)),
            FailuresBeforeBackoff = c.GetInt("failures_before_backoff", 1),
            LatencyEmaAlpha = c.GetDouble("latency_ema_alpha", 0.1),
        };
        s.Validate();
        return s;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid key.</summary>
    public void Validate()
    {
        if (Timeout <= TimeSpan.Zero) throw new ArgumentException("bittensor.dendrite.timeout must be positive");
        if (NetworkDim < 1) throw new ArgumentException("bittensor.dendrite.network_dim must be at least 1");
        if (Parallelism < 1) throw new ArgumentException("bittensor.dendrite.parallelism must be at least 1");
        if (MaxEndpoints < 1) throw new ArgumentException("bittensor.dendrite.max_endpoints must be at least 1");
        if (IdleTimeout <= TimeSpan.Zero) throw new ArgumentException("bittensor.dendrite.idle_timeout must be positive");
        if (EndpointMaxInFlight < 1 || EndpointQueueCapacity < 0) throw new ArgumentException("bittensor.dendrite endpoint limits must be positive");
        if (PeerMaxMessageSize < 1024 || MaxResponseSize < 1024) throw new ArgumentException("bittensor.dendrite message limits must be at least 1024 bytes");
        if (BackoffMin <= TimeSpan.Zero || BackoffMax < BackoffMin) throw new ArgumentException("bittensor.dendrite.backoff needs 0 < min <= max");
        if (FailuresBeforeBackoff < 1) throw new ArgumentException("bittensor.dendrite.failures_before_backoff must be at least 1");
        if (!(LatencyEmaAlpha > 0 && LatencyEmaAlpha <= 1)) throw new ArgumentException("bittensor.dendrite.latency_ema_alpha must be in (0, 1]");
    }
}
