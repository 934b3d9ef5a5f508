using System.Net;
using Akka.Configuration;

namespace Bittensor.Actors.Axon;

/// <summary>
/// Immutable settings of an axon, read once from HOCON <c>bittensor.axon</c> (see hocon/bittensor.conf for
/// what each key means and its default).
/// </summary>
public sealed record AxonSettings
{
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.axon";

    /// <summary>The reference configuration's values (hocon/bittensor.conf), for code without an ActorSystem and tests.</summary>
    public static AxonSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Local address to bind.</summary>
    public required string Ip { get; init; }

    /// <summary>TCP port to bind; 0 lets the OS choose.</summary>
    public required int Port { get; init; }

    /// <summary>Address announced on chain; empty means <see cref="Ip"/>.</summary>
    public required string ExternalIp { get; init; }

    /// <summary>Port announced on chain; 0 means <see cref="Port"/>.</summary>
    public required int ExternalPort { get; init; }

    /// <summary>Largest request or response message in bytes.</summary>
    public required int MaxMessageSize { get; init; }

    /// <summary>Calls running the model at once (Python's <c>max_workers</c>).</summary>
    public required int MaxWorkers { get; init; }

    /// <summary>Admitted calls that may wait for a worker before new ones answer NucleusFull.</summary>
    public required int QueueCapacity { get; init; }

    /// <summary>Longest time a call may spend in the axon (queue + model).</summary>
    public required TimeSpan CallTimeout { get; init; }

    /// <summary>Last dimension of forward answers.</summary>
    public required int NetworkDim { get; init; }

    /// <summary>How far ahead of our clock a caller's nonce may be.</summary>
    public required TimeSpan ClockSkew { get; init; }

    /// <summary>Oldest nonce accepted relative to our clock.</summary>
    public required TimeSpan NonceMaxAge { get; init; }

    /// <summary>How many callers' last nonces are remembered.</summary>
    public required int NonceStoreCapacity { get; init; }

    /// <summary>
    /// How much older than a caller's newest accepted nonce a nonce may be and still pass once (concurrent calls from
    /// one caller are signed in one order and may be verified in another). Zero keeps the 2021 rule (strictly newer).
    /// </summary>
    public TimeSpan NonceReorderWindow { get; init; }

    /// <summary>
    /// File persisting the last nonce per caller (write-ahead: journal beside it); empty keeps them in memory. The roles
    /// and <c>btcli axon serve</c> fill it with their state folder's <c>nonces</c> when empty.
    /// </summary>
    public required string NonceStorePath { get; init; }

    /// <summary>Nonces survive power loss (fsynced per-caller reservations, docs/axon.md "Replay after a restart"); off: kill -9 only.</summary>
    public required bool NonceStoreFsync { get; init; }

    /// <summary>Skip signature verification (benchmark anchors only; logged loudly).</summary>
    public required bool DisableSignatureVerification { get; init; }

    /// <summary>
    /// Verify the signatures of concurrent calls together (sr25519 batch verification, <see cref="Bittensor.Protocol.Sr25519BatchVerifier"/>):
    /// no timer, a batch is whatever queued while the previous check ran. Off: each call verified alone.
    /// </summary>
    public bool BatchVerification { get; init; } = true;

    /// <summary>
    /// Signature verifications per second for callers with no accepted nonce remembered (0 = no limit); over it a call is
    /// refused before its signature is checked (<see cref="Bittensor.Protocol.RequestVerifierOptions.NewCallerVerifiesPerSecond"/>).
    /// </summary>
    public double NewCallerVerifiesPerSecond { get; init; } = 1000;

    /// <summary>
    /// How long a known caller's hotkey draws from the new-caller budget, for calls from the address (IPv6: the /64) a call
    /// under it failed its signature check from (0 = never): an impersonation flood then costs the shared budget, not a
    /// verify per call, and does not hold the real owner's calls from another address
    /// (<see cref="Bittensor.Protocol.RequestVerifierOptions.FailedSignatureHold"/>).
    /// </summary>
    public TimeSpan FailedSignatureHold { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Serve waiting calls highest stake first (true) or strictly in arrival order (false).</summary>
    public required bool PriorityByStake { get; init; }

    /// <summary>Callers below this stake (TAO) answer SenderUnknown after verification.</summary>
    public required double BlacklistMinStake { get; init; }

    /// <summary>Only callers registered on the subnet (in the latest stake snapshot) are served; others answer SenderUnknown.</summary>
    public required bool BlacklistRegisteredOnly { get; init; }

    /// <summary>The 2021 protocol version this axon speaks (1.5.0 → 150).</summary>
    public required int ProtocolVersion { get; init; }

    /// <summary>Show Kestrel's connection-level traces (HTTP/2 frames, resets) in the Akka log (transport <c>kestrel</c> only).</summary>
    public required bool Trace { get; init; }

    /// <summary>The server transport: <c>lean</c> (the project's own HTTP/2 server, the default) or <c>kestrel</c> (ASP.NET Core's Kestrel with our gRPC endpoint).</summary>
    public string Transport { get; init; } = "lean";

    /// <summary>
    /// The TCP congestion control the server transport (lean or kestrel) sets on connections from loopback peers (Linux), e.g. <c>reno</c>;
    /// empty: the system's (<see cref="Bittensor.Protocol.ServerTransportOptions.LoopbackCongestionControl"/>, docs/axon.md "Loopback
    /// congestion control").
    /// </summary>
    public string LoopbackCongestionControl { get; init; } = "reno";

    /// <summary>
    /// Before the axon reports itself bound (the serving line, <c>serve_axon</c>, a cluster front's activation) it makes two
    /// signed Forwards to its own listener over loopback with a throwaway key, so the first real caller does not pay the
    /// first use of the serving path (JIT, HPACK, the header check, the signature check, the nonce store's first write).
    /// The calls are not counted in the stats, never reaches the model, and prints no per-call line (docs/axon.md "Warm-up").
    /// </summary>
    public bool WarmUp { get; init; } = true;

    /// <summary>How long the warm-up call may take; past it (or on any failure) one warning is logged and the axon serves anyway.</summary>
    public TimeSpan WarmUpTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest Forward request in bytes (at most <see cref="MaxMessageSize"/>, which bounds Backward requests and every answer).</summary>
    public required int ForwardMessageSize { get; init; }

    /// <summary>Largest total size of one request's headers, bytes.</summary>
    public required int RequestHeadersSize { get; init; }

    /// <summary>Concurrent calls (HTTP/2 streams) per connection; 0: max(100, queue_capacity + max_workers + 16).</summary>
    public required int StreamsPerConnection { get; init; }

    /// <summary>
    /// Calls the axon holds at once, all connections together: received (the request complete) and not yet answered.
    /// One more is answered NucleusFull from its headers, before its body is read or its signature checked (docs/axon.md,
    /// "Overload"). 0: no limit.
    /// </summary>
    public int CallsInFlight { get; init; } = 64;

    /// <summary>
    /// Admission by measured waiting (lean transport; docs/axon.md "Admission by waiting"): once calls have waited longer
    /// than this before the axon read them (its event loop's lag plus each call's time since its read) for
    /// <see cref="TargetWaitInterval"/>, a call that waited longer is answered NucleusFull from its headers until the
    /// waits drop (with <see cref="AdmitPerRead"/>: the at-read budget). Only the server's own work counts as waiting, not
    /// another process's time slices. Default 2 ms (on since session 18: the 1,024-caller admitted p99 within ~2.5× the
    /// 16-caller p99 instead of 20–29×; the cost: ~1 % of the calls shed at 128 callers, and ~12 % of the unbounded
    /// queue's rate with verification on and 64 connections); <see cref="TimeSpan.Zero"/>: off. <see cref="CallsInFlight"/>
    /// stays the hard cap.
    /// </summary>
    public TimeSpan TargetWait { get; init; } = TimeSpan.FromMilliseconds(2);

    /// <summary>How long the waits must stay above (below) <see cref="TargetWait"/> to start (stop) shedding.</summary>
    public TimeSpan TargetWaitInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The at-read budget of <see cref="TargetWait"/> (<c>limits.admit_per_read</c>; docs/axon.md "Admission by waiting"):
    /// while the rule is engaged each read of a connection admits at most this many calls and sheds the rest of it at
    /// once, in the read's send; the rule disengages after an interval in which no read had more. 0: the per-call rule.
    /// </summary>
    public int AdmitPerRead { get; init; } = 12;

    /// <summary>Open connections at once, all callers together; 0: no limit.</summary>
    public required int MaxConnections { get; init; }

    /// <summary>Open connections at once from one IP address (IPv6: one /64); 0: no limit.</summary>
    public required int PerIpConnections { get; init; }

    /// <summary>Sustained calls per second from one IP address; 0: no limit.</summary>
    public required double PerIpRequestsPerSecond { get; init; }

    /// <summary>Calls one IP address may make at once above its sustained rate (token bucket size).</summary>
    public required int PerIpBurst { get; init; }

    /// <summary>How often an address's token bucket is refilled (rate × period tokens).</summary>
    public required TimeSpan PerIpRatePeriod { get; init; }

    /// <summary>Per-IP limits do not apply to loopback callers (127.0.0.0/8, ::1): local demos and tests.</summary>
    public required bool PerIpExemptLoopback { get; init; }

    /// <summary>
    /// A connection with no open call that received nothing for this long is closed (both transports; Kestrel's
    /// KeepAliveTimeout, whose default is the same 130 s); zero: never.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(130);

    /// <summary>
    /// Bytes per second a request body must keep arriving at once its headers are admitted, measured over periods of
    /// <see cref="MinRequestBodyGrace"/>; a call whose body moved less in one is answered DEADLINE_EXCEEDED. Kestrel's
    /// MinRequestBodyDataRate, whose default is the same 240 bytes/s with 5 s grace. 0: no minimum.
    /// </summary>
    public double MinRequestBodyRate { get; init; } = 240;

    /// <summary>How long a request body may arrive below <see cref="MinRequestBodyRate"/> first.</summary>
    public TimeSpan MinRequestBodyGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Bytes per second an answer waiting for the peer's flow-control window must keep leaving at, measured over periods
    /// of <see cref="MinResponseGrace"/>: one the peer does not take (window 0) is reset; a socket write it does not drain
    /// within grace + size / rate closes the connection. Kestrel's MinResponseDataRate (default 240 bytes/s, 5 s). 0: no minimum.
    /// </summary>
    public double MinResponseRate { get; init; } = 240;

    /// <summary>How long an answer may leave below <see cref="MinResponseRate"/> first.</summary>
    public TimeSpan MinResponseGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The connection-level limits handed to the server transport.</summary>
    public Bittensor.Protocol.ServerLimits TransportLimits => new(RequestHeadersSize, MaxConnections, PerIpConnections, PerIpRequestsPerSecond,
        PerIpBurst, PerIpRatePeriod, PerIpExemptLoopback)
    {
        IdleTimeout = IdleTimeout,
        MinRequestBodyRate = MinRequestBodyRate,
        MinRequestBodyGrace = MinRequestBodyGrace,
        MinResponseRate = MinResponseRate,
        MinResponseGrace = MinResponseGrace,
    };

    /// <summary>HTTP/2 streams per connection the transport allows (see <see cref="StreamsPerConnection"/>).</summary>
    public int EffectiveStreamsPerConnection => StreamsPerConnection > 0 ? StreamsPerConnection : Math.Max(100, QueueCapacity + MaxWorkers + 16);

    /// <summary>Reads the <c>bittensor.axon</c> section (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static AxonSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        return new AxonSettings
        {
            Ip = c.String("ip"),
            Port = c.Int("port"),
            ExternalIp = c.String("external_ip"),
            ExternalPort = c.Int("external_port"),
            MaxMessageSize = c.Int("max_message_size"),
            MaxWorkers = c.Int("max_workers"),
            QueueCapacity = c.Int("queue_capacity"),
            CallTimeout = c.Duration("call_timeout"),
            NetworkDim = c.Int("network_dim"),
            ClockSkew = c.Duration("auth.clock_skew"),
            NonceMaxAge = c.Duration("auth.max_age"),
            NonceStoreCapacity = c.Int("auth.nonce_store_capacity"),
            NonceReorderWindow = c.Duration("auth.reorder_window"),
            NonceStorePath = c.String("auth.nonce_store_path"),
            NonceStoreFsync = c.Bool("auth.nonce_store_fsync"),
            DisableSignatureVerification = c.Bool("auth.disable_signature_verification"),
            BatchVerification = c.Bool("auth.batch_verification"),
            NewCallerVerifiesPerSecond = c.Double("auth.new_caller_verifies_per_second"),
            FailedSignatureHold = c.Duration("auth.failed_signature_hold"),
            PriorityByStake = c.Bool("priority.by_stake"),
            BlacklistMinStake = c.Double("blacklist.min_stake"),
            BlacklistRegisteredOnly = c.Bool("blacklist.registered_only"),
            ProtocolVersion = c.Int("protocol_version"),
            Trace = c.Bool("trace"),
            Transport = c.String("transport"),
            LoopbackCongestionControl = c.String("loopback_congestion_control"),
            WarmUp = c.Bool("warm_up"),
            WarmUpTimeout = c.Duration("warm_up_timeout"),
            ForwardMessageSize = c.Int("limits.forward_message_size"),
            RequestHeadersSize = c.Int("limits.request_headers_size"),
            StreamsPerConnection = c.Int("limits.streams_per_connection"),
            CallsInFlight = c.Int("limits.calls_in_flight"),
            TargetWait = c.Duration("limits.target_wait"),
            TargetWaitInterval = c.Duration("limits.target_wait_interval"),
            AdmitPerRead = c.Int("limits.admit_per_read"),
            MaxConnections = c.Int("limits.connections"),
            PerIpConnections = c.Int("limits.per_ip.connections"),
            PerIpRequestsPerSecond = c.Double("limits.per_ip.requests_per_second"),
            PerIpBurst = c.Int("limits.per_ip.burst"),
            PerIpRatePeriod = c.Duration("limits.per_ip.rate_period"),
            PerIpExemptLoopback = c.Bool("limits.per_ip.exempt_loopback"),
            IdleTimeout = c.Duration("limits.idle_timeout"),
            MinRequestBodyRate = c.Double("limits.min_request_body_rate.bytes_per_second"),
            MinRequestBodyGrace = c.Duration("limits.min_request_body_rate.grace_period"),
            MinResponseRate = c.Double("limits.min_response_rate.bytes_per_second"),
            MinResponseGrace = c.Duration("limits.min_response_rate.grace_period"),
        }.Validate();
    }

    /// <summary>Returns these settings when every value is usable.</summary>
    /// <exception cref="ConfigurationException">The first invalid value; the message names its key.</exception>
    public AxonSettings Validate()
    {
        HoconSection.Require(IPAddress.TryParse(Ip, out _), "bittensor.axon.ip", Ip, "is not an IP address");
        HoconSection.Require(Port is >= 0 and <= 65535, "bittensor.axon.port", Port, "must be in 0..65535");
        HoconSection.Require(ExternalIp.Length == 0 || IPAddress.TryParse(ExternalIp, out _), "bittensor.axon.external_ip", ExternalIp, "is not an IP address");
        HoconSection.Require(ExternalPort is >= 0 and <= 65535, "bittensor.axon.external_port", ExternalPort, "must be in 0..65535");
        HoconSection.Require(MaxMessageSize >= 1024, "bittensor.axon.max_message_size", MaxMessageSize, "must be at least 1024 bytes");
        HoconSection.Require(MaxWorkers >= 1, "bittensor.axon.max_workers", MaxWorkers, "must be at least 1");
        HoconSection.Require(QueueCapacity >= 0, "bittensor.axon.queue_capacity", QueueCapacity, "must not be negative");
        HoconSection.Require(CallTimeout > TimeSpan.Zero, "bittensor.axon.call_timeout", CallTimeout, "must be positive");
        HoconSection.Require(NetworkDim >= 1, "bittensor.axon.network_dim", NetworkDim, "must be at least 1");
        HoconSection.Require(ClockSkew >= TimeSpan.Zero, "bittensor.axon.auth.clock_skew", ClockSkew, "must not be negative");
        HoconSection.Require(NonceMaxAge > TimeSpan.Zero, "bittensor.axon.auth.max_age", NonceMaxAge, "must be positive");
        HoconSection.Require(ClockSkew + NonceMaxAge < TimeSpan.FromMinutes(15), "bittensor.axon.auth.max_age", NonceMaxAge,
            "clock_skew + max_age must stay under 15 minutes");
        HoconSection.Require(NonceReorderWindow >= TimeSpan.Zero && NonceReorderWindow <= NonceMaxAge, "bittensor.axon.auth.reorder_window",
            NonceReorderWindow, "must lie between 0 and max_age");
        HoconSection.Require(NewCallerVerifiesPerSecond >= 0 && double.IsFinite(NewCallerVerifiesPerSecond), "bittensor.axon.auth.new_caller_verifies_per_second",
            NewCallerVerifiesPerSecond, "must be a non-negative number (0 = no limit)");
        HoconSection.Require(FailedSignatureHold >= TimeSpan.Zero && FailedSignatureHold <= TimeSpan.FromHours(1), "bittensor.axon.auth.failed_signature_hold",
            FailedSignatureHold, "must lie between 0 (off) and 1h");
        HoconSection.Require(NonceStoreCapacity >= 1, "bittensor.axon.auth.nonce_store_capacity", NonceStoreCapacity, "must be at least 1");
        HoconSection.Require(BlacklistMinStake >= 0 && !double.IsNaN(BlacklistMinStake), "bittensor.axon.blacklist.min_stake", BlacklistMinStake,
            "must be a non-negative number");
        HoconSection.Require(ProtocolVersion > 0, "bittensor.axon.protocol_version", ProtocolVersion, "must be positive");
        HoconSection.Require(Transport is "kestrel" or "lean", "bittensor.axon.transport", Transport, "must be kestrel or lean");
        HoconSection.Require(LoopbackCongestionControl.Length == 0 || TcpCongestionName(LoopbackCongestionControl), "bittensor.axon.loopback_congestion_control",
            LoopbackCongestionControl, "must be empty (the system's) or a congestion control's name: 1-15 of a-z, 0-9, _ (e.g. reno, cubic, bbr)");
        HoconSection.Require(WarmUpTimeout > TimeSpan.Zero && WarmUpTimeout <= TimeSpan.FromMinutes(5), "bittensor.axon.warm_up_timeout", WarmUpTimeout,
            "must lie between 0 (exclusive) and 5m");
        HoconSection.Require(ForwardMessageSize >= 1024, "bittensor.axon.limits.forward_message_size", ForwardMessageSize, "must be at least 1024 bytes");
        HoconSection.Require(RequestHeadersSize >= 1024, "bittensor.axon.limits.request_headers_size", RequestHeadersSize, "must be at least 1024 bytes");
        HoconSection.Require(StreamsPerConnection >= 0, "bittensor.axon.limits.streams_per_connection", StreamsPerConnection, "must not be negative (0 = automatic)");
        HoconSection.Require(CallsInFlight >= 0, "bittensor.axon.limits.calls_in_flight", CallsInFlight, "must not be negative (0 = no limit)");
        HoconSection.Require(TargetWait >= TimeSpan.Zero && TargetWait <= TimeSpan.FromSeconds(10), "bittensor.axon.limits.target_wait", TargetWait,
            "must lie between 0 (off) and 10s");
        HoconSection.Require(TargetWaitInterval >= TimeSpan.FromMilliseconds(1) && TargetWaitInterval <= TimeSpan.FromMinutes(1),
            "bittensor.axon.limits.target_wait_interval", TargetWaitInterval, "must lie between 1ms and 1m");
        HoconSection.Require(AdmitPerRead >= 0 && AdmitPerRead <= 4096, "bittensor.axon.limits.admit_per_read", AdmitPerRead,
            "must lie between 0 (the per-call rule) and 4096");
        HoconSection.Require(MaxConnections >= 0, "bittensor.axon.limits.connections", MaxConnections, "must not be negative (0 = no limit)");
        HoconSection.Require(IdleTimeout >= TimeSpan.Zero && IdleTimeout <= TimeSpan.FromDays(1), "bittensor.axon.limits.idle_timeout", IdleTimeout,
            "must lie between 0 (never) and 1d");
        // Kestrel's MinDataRate wants a grace period over its 1 s heartbeat.
        HoconSection.Require(MinRequestBodyRate >= 0 && double.IsFinite(MinRequestBodyRate), "bittensor.axon.limits.min_request_body_rate.bytes_per_second",
            MinRequestBodyRate, "must be a non-negative number (0 = no minimum)");
        HoconSection.Require(MinRequestBodyGrace > TimeSpan.FromSeconds(1) && MinRequestBodyGrace <= TimeSpan.FromHours(1),
            "bittensor.axon.limits.min_request_body_rate.grace_period", MinRequestBodyGrace, "must be over 1s and at most 1h");
        HoconSection.Require(MinResponseRate >= 0 && double.IsFinite(MinResponseRate), "bittensor.axon.limits.min_response_rate.bytes_per_second",
            MinResponseRate, "must be a non-negative number (0 = no minimum)");
        HoconSection.Require(MinResponseGrace > TimeSpan.FromSeconds(1) && MinResponseGrace <= TimeSpan.FromHours(1),
            "bittensor.axon.limits.min_response_rate.grace_period", MinResponseGrace, "must be over 1s and at most 1h");
        HoconSection.Require(PerIpConnections >= 0, "bittensor.axon.limits.per_ip.connections", PerIpConnections, "must not be negative (0 = no limit)");
        HoconSection.Require(PerIpRequestsPerSecond >= 0 && double.IsFinite(PerIpRequestsPerSecond), "bittensor.axon.limits.per_ip.requests_per_second",
            PerIpRequestsPerSecond, "must be a non-negative number (0 = no limit)");
        HoconSection.Require(PerIpBurst >= 0, "bittensor.axon.limits.per_ip.burst", PerIpBurst, "must not be negative");
        HoconSection.Require(PerIpRatePeriod > TimeSpan.Zero, "bittensor.axon.limits.per_ip.rate_period", PerIpRatePeriod, "must be positive");
        return this;
    }

    /// <summary>A name Linux's TCP_CONGESTION could take: 1-15 of a-z, 0-9, '_' (TCP_CA_NAME_MAX is 16 with its zero).</summary>
    private static bool TcpCongestionName(string name) =>
        name.Length is > 0 and <= 15 && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_');
}
