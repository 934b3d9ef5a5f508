using Akka.Configuration;

namespace Bittensor.Actors.Dendrite;

/// <summary>
/// Immutable settings of a dendrite, read once from HOCON <c>bittensor.dendrite</c> (see hocon/bittensor.conf).
/// </summary>
public sealed record DendriteSettings
{
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.dendrite";

    /// <summary>The reference configuration's values (hocon/bittensor.conf), for code without an ActorSystem and tests.</summary>
    public static DendriteSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Default deadline of one call.</summary>
    public required TimeSpan Timeout { get; init; }

    /// <summary>Last dimension of forward answers expected from peers (1024 on the 2021 network).</summary>
    public required int NetworkDim { get; init; }

    /// <summary>Endpoints queried at once by a fan-out.</summary>
    public required int Parallelism { get; init; }

    /// <summary>Most endpoint actors alive at once (idle ones beyond are stopped, LRU first).</summary>
    public required int MaxEndpoints { get; init; }

    /// <summary>An endpoint actor without calls for this long stops itself.</summary>
    public required TimeSpan IdleTimeout { get; init; }

    /// <summary>Calls in flight per endpoint.</summary>
    public required int EndpointMaxInFlight { get; init; }

    /// <summary>Calls queued per endpoint behind the in-flight ones; beyond that they answer Backoff.</summary>
    public required int EndpointQueueCapacity { get; init; }

    /// <summary>Largest request sent to a peer (4 MiB: what a 2021 Python axon receives).</summary>
    public required int PeerMaxMessageSize { get; init; }

    /// <summary>Largest response accepted.</summary>
    public required int MaxResponseSize { get; init; }

    /// <summary>Backoff floor (first failure's ceiling).</summary>
    public required TimeSpan BackoffMin { get; init; }

    /// <summary>Backoff cap.</summary>
    public required TimeSpan BackoffMax { get; init; }

    /// <summary>Consecutive transport failures before the endpoint is backed off.</summary>
    public required int FailuresBeforeBackoff { get; init; }

    /// <summary>Weight of the newest latency sample in the moving average.</summary>
    public required double LatencyEmaAlpha { get; init; }

    /// <summary>
    /// How long one signed <c>bittensor-signature</c> may serve calls to other endpoints (a fan-out round signs once,
    /// not once per endpoint); zero signs every call alone, as the 2021 dendrite did.
    /// </summary>
    public TimeSpan SignatureReuse { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// When calls need a new signed value back to back (rounds that follow each other within
    /// <see cref="SignatureReuse"/>), sign the next one in the background while the round's answers are awaited, so the
    /// next round does not sign on its critical path. Off, or with <see cref="SignatureReuse"/> zero: every need signs then.
    /// </summary>
    public bool SignAhead { get; init; } = true;

    /// <summary>
    /// The client transport toward axons: <c>lean</c> (<see cref="Bittensor.Protocol.LeanClientTransport"/>: own h2c frames,
    /// one DATA frame per answer, answers parsed where they land) or <c>grpc</c> (Grpc.Net.Client over SocketsHttpHandler).
    /// A transport given in code (<see cref="DendriteOptions.Transport"/>) takes precedence.
    /// </summary>
    public string Transport { get; init; } = "lean";

    /// <summary>
    /// How the lean transport's connections wait for their sockets: <c>loop</c> (the client's own I/O loop: one thread
    /// with its own epoll, non-blocking sends and receives, outside .NET's socket engine; Linux x86-64, elsewhere
    /// sockets), <c>batch</c> (the loop, and a fan-out round's requests sent by the loop's thread in one pass, woken
    /// once per round: <see cref="Bittensor.Protocol.SendBatch"/>) or <c>sockets</c> (.NET's socket engine). Same wire,
    /// same bounds and statuses; the grpc transport ignores it.
    /// </summary>
    public string Io { get; init; } = "sockets";

    /// <summary>
    /// Where the dendrite's actors (the dendrite actor and its endpoint actors) run: <c>loop</c> (their mailboxes on the
    /// client's I/O loop's thread, the thread that reads the answers, when the lean connections are on it:
    /// <see cref="Io"/> <c>loop</c> or <c>batch</c>; otherwise, and with the grpc transport, Akka's default dispatcher)
    /// or <c>pool</c> (Akka's default dispatcher, the thread pool, always). Each endpoint stays its own actor with its own
    /// mailbox, queue, backoff and deadlines either way.
    /// </summary>
    public string Dispatcher { get; init; } = "loop";

    /// <summary>
    /// Keep-alive: an HTTP/2 PING once nothing has come from the axon for this long while a call is open on the
    /// connection (also when none is, with <see cref="KeepAliveWithoutCalls"/>); zero: no pings. A pooled connection that
    /// went quiet longer than this is checked by the first call that uses it. At least 10s (gRPC clients' floor).
    /// </summary>
    public TimeSpan KeepAliveTime { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>A PING not answered within this closes the connection (its calls answer Unavailable; the next one reconnects).</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Ping idle pooled connections too (no call open). Off by default: a gRPC server that does not permit pings without
    /// calls (grpcio's default) answers GOAWAY ENHANCE_YOUR_CALM "too_many_pings" after a few, and the interval doubles.
    /// </summary>
    public bool KeepAliveWithoutCalls { get; init; }

    /// <summary>The client transport <see cref="Transport"/> names.</summary>
    public Bittensor.Protocol.IClientTransport ClientTransport => Transport switch
    {
        "grpc" => Bittensor.Protocol.GrpcClientTransport.Instance,
        _ => Bittensor.Protocol.LeanClientTransport.Instance,
    };

    /// <summary>Reads the <c>bittensor.dendrite</c> section (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static DendriteSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        return new DendriteSettings
        {
            Timeout = c.Duration("timeout"),
            NetworkDim = c.Int("network_dim"),
            Parallelism = c.Int("parallelism"),
            MaxEndpoints = c.Int("max_endpoints"),
            IdleTimeout = c.Duration("idle_timeout"),
            EndpointMaxInFlight = c.Int("endpoint_max_in_flight"),
            EndpointQueueCapacity = c.Int("endpoint_queue_capacity"),
            PeerMaxMessageSize = c.Int("peer_max_message_size"),
            MaxResponseSize = c.Int("max_response_size"),
            BackoffMin = c.Duration("backoff.min"),
            BackoffMax = c.Duration("backoff.max"),
            FailuresBeforeBackoff = c.Int("failures_before_backoff"),
            LatencyEmaAlpha = c.Double("latency_ema_alpha"),
            SignatureReuse = c.Duration("signature_reuse"),
            SignAhead = c.Bool("sign_ahead"),
            Transport = c.String("transport"),
            Io = c.String("io"),
            Dispatcher = c.String("dispatcher"),
            KeepAliveTime = c.Duration("keepalive_time"),
            KeepAliveTimeout = c.Duration("keepalive_timeout"),
            KeepAliveWithoutCalls = c.Bool("keepalive_without_calls"),
        }.Validate();
    }

    /// <summary>Returns these settings when every value is usable.</summary>
    /// <exception cref="ConfigurationException">The first invalid value; the message names its key.</exception>
    public DendriteSettings Validate()
    {
        HoconSection.Require(Timeout > TimeSpan.Zero, "bittensor.dendrite.timeout", Timeout, "must be positive");
        HoconSection.Require(NetworkDim >= 1, "bittensor.dendrite.network_dim", NetworkDim, "must be at least 1");
        HoconSection.Require(Parallelism >= 1, "bittensor.dendrite.parallelism", Parallelism, "must be at least 1");
        HoconSection.Require(MaxEndpoints >= 1, "bittensor.dendrite.max_endpoints", MaxEndpoints, "must be at least 1");
        HoconSection.Require(IdleTimeout > TimeSpan.Zero, "bittensor.dendrite.idle_timeout", IdleTimeout, "must be positive");
        HoconSection.Require(EndpointMaxInFlight >= 1, "bittensor.dendrite.endpoint_max_in_flight", EndpointMaxInFlight, "must be at least 1");
        HoconSection.Require(EndpointQueueCapacity >= 0, "bittensor.dendrite.endpoint_queue_capacity", EndpointQueueCapacity, "must not be negative");
        HoconSection.Require(PeerMaxMessageSize >= 1024, "bittensor.dendrite.peer_max_message_size", PeerMaxMessageSize, "must be at least 1024 bytes");
        HoconSection.Require(MaxResponseSize >= 1024, "bittensor.dendrite.max_response_size", MaxResponseSize, "must be at least 1024 bytes");
        HoconSection.Require(BackoffMin > TimeSpan.Zero, "bittensor.dendrite.backoff.min", BackoffMin, "must be positive");
        HoconSection.Require(BackoffMax >= BackoffMin, "bittensor.dendrite.backoff.max", BackoffMax, "must be at least backoff.min");
        HoconSection.Require(FailuresBeforeBackoff >= 1, "bittensor.dendrite.failures_before_backoff", FailuresBeforeBackoff, "must be at least 1");
        HoconSection.Require(LatencyEmaAlpha > 0 && LatencyEmaAlpha <= 1, "bittensor.dendrite.latency_ema_alpha", LatencyEmaAlpha, "must be in (0, 1]");
        HoconSection.Require(SignatureReuse >= TimeSpan.Zero && SignatureReuse <= TimeSpan.FromSeconds(1), "bittensor.dendrite.signature_reuse", SignatureReuse,
            "must be between 0 and 1s");
        HoconSection.Require(Transport is "lean" or "grpc", "bittensor.dendrite.transport", Transport, "must be lean or grpc");
        HoconSection.Require(Io is "batch" or "loop" or "sockets", "bittensor.dendrite.io", Io, "must be batch, loop or sockets");
        HoconSection.Require(Dispatcher is "loop" or "pool", "bittensor.dendrite.dispatcher", Dispatcher, "must be loop or pool");
        HoconSection.Require(KeepAliveTime == TimeSpan.Zero || (KeepAliveTime >= TimeSpan.FromSeconds(10) && KeepAliveTime <= TimeSpan.FromDays(1)),
            "bittensor.dendrite.keepalive_time", KeepAliveTime, "must be 0s (no pings) or between 10s and 1d");
        HoconSection.Require(KeepAliveTimeout >= TimeSpan.FromSeconds(1) && KeepAliveTimeout <= TimeSpan.FromHours(1), "bittensor.dendrite.keepalive_timeout",
            KeepAliveTimeout, "must be between 1s and 1h");
        return this;
    }
}
