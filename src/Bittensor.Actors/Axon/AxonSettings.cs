using System.Net;
using Akka.Configuration;

namespace Bittensor.Actors.Axon;

/// <summary>
/// Immutable settings of an axon, read once from HOCON <c>bittensor.axon</c> (see hocon/bittensor.conf for
/// what each key means and its default).
/// </summary>
public sealed record AxonSettings
{
    /// <summary>Local address to bind.</summary>
    public required string Ip { get; init; }

    /// <summary>TCP port to bind; 0 lets the OS choose.</summary>
    public required int Port { get; init; }

    /// <summary>Address announced on chain; empty means <see cref="Ip"/>.</summary>
    public string ExternalIp { get; init; } = "";

    /// <summary>Port announced on chain; 0 means <see cref="Port"/>.</summary>
    public int ExternalPort { get; init; }

    /// <summary>Largest request or response message in bytes.</summary>
    public int MaxMessageSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>Calls running the model at once (Python's <c>max_workers</c>).</summary>
    public int MaxWorkers { get; init; } = 10;

    /// <summary>Admitted calls that may wait for a worker before new ones answer NucleusFull.</summary>
    public int QueueCapacity { get; init; } = 256;

    /// <summary>Longest time a call may spend in the axon (queue + model).</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(12);

    /// <summary>Last dimension of forward answers.</summary>
    public int NetworkDim { get; init; } = 1024;

    /// <summary>How far ahead of our clock a caller's nonce may be.</summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Oldest nonce accepted relative to our clock.</summary>
    public TimeSpan NonceMaxAge { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How many callers' last nonces are remembered.</summary>
    public int NonceStoreCapacity { get; init; } = 100_000;

    /// <summary>
    /// File persisting the last nonce per caller (write-ahead: journal beside it); empty keeps them in memory. The roles
    /// and <c>btcli axon serve</c> fill it with their state folder's <c>nonces</c> when empty.
    /// </summary>
    public string NonceStorePath { get; init; } = "";

    /// <summary>fsync each journal batch before accepting its requests (survives power loss); off: survives kill -9 only.</summary>
    public bool NonceStoreFsync { get; init; } = true;

    /// <summary>Skip signature verification (benchmark anchors only; logged loudly).</summary>
    public bool DisableSignatureVerification { get; init; }

    /// <summary>Serve waiting calls highest stake first (true) or strictly in arrival order (false).</summary>
    public bool PriorityByStake { get; init; } = true;

    /// <summary>Callers below this stake (TAO) answer SenderUnknown after verification.</summary>
    public double BlacklistMinStake { get; init; }

    /// <summary>Only callers registered on the subnet (in the latest stake snapshot) are served; others answer SenderUnknown.</summary>
    public bool BlacklistRegisteredOnly { get; init; }

    /// <summary>The 2021 protocol version this axon speaks (1.5.0 → 150).</summary>
    public int ProtocolVersion { get; init; } = Bittensor.Protocol.ProtocolVersion.Current;

    /// <summary>Reads <c>bittensor.axon</c> (pass the whole config or the section itself) and validates it.</summary>
    public static AxonSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var c = config.HasPath("bittensor.axon") ? config.GetConfig("bittensor.axon") : config;
        var s = new AxonSettings
        {
            Ip = c.GetString("ip", "0.0.0.0"),
            Port = c.GetInt("port", 8091),
            ExternalIp = c.GetString("external_ip", ""),
            ExternalPort = c.GetInt("external_port", 0),
            MaxMessageSize = checked((int)c.GetLong("max_message_size", 16 * 1024 * 1024)),
            MaxWorkers = c.GetInt("max_workers", 10),
            QueueCapacity = c.GetInt("queue_capacity", 256),
            CallTimeout = c.GetTimeSpan("call_timeout", TimeSpan.FromSeconds(12)),
            NetworkDim = c.GetInt("network_dim", 1024),
            ClockSkew = c.GetTimeSpan("auth.clock_skew", TimeSpan.FromSeconds(30)),
            NonceMaxAge = c.GetTimeSpan("auth.max_age", TimeSpan.FromSeconds(60)),
            NonceStoreCapacity = c.GetInt("auth.nonce_store_capacity", 100_000),
            NonceStorePath = c.GetString("auth.nonce_store_path", ""),
            NonceStoreFsync = c.GetBoolean("auth.nonce_store_fsync", true),
            DisableSignatureVerification = c.GetBoolean("auth.disable_signature_verification", false),
            PriorityByStake = c.GetBoolean("priority.by_stake", true),
            BlacklistMinStake = c.GetDouble("blacklist.min_stake", 0),
            BlacklistRegisteredOnly = c.GetBoolean("blacklist.registered_only", false),
        };
        s.Validate();
        return s;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid key.</summary>
    public void Validate()
    {
        if (!IPAddress.TryParse(Ip, out _)) throw new ArgumentException($"bittensor.axon.ip '{Ip}' is not an IP address");
        if (Port is < 0 or > 65535) throw new ArgumentException($"bittensor.axon.port {Port} is outside 0..65535");
        if (ExternalPort is < 0 or > 65535) throw new ArgumentException($"bittensor.axon.external_port {ExternalPort} is outside 0..65535");
        if (MaxMessageSize < 1024) throw new ArgumentException("bittensor.axon.max_message_size must be at least 1024 bytes");
        if (MaxWorkers < 1) throw new ArgumentException("bittensor.axon.max_workers must be at least 1");
        if (QueueCapacity < 0) throw new ArgumentException("bittensor.axon.queue_capacity must not be negative");
        if (CallTimeout <= TimeSpan.Zero) throw new ArgumentException("bittensor.axon.call_timeout must be positive");
        if (NetworkDim < 1) throw new ArgumentException("bittensor.axon.network_dim must be at least 1");
        if (ClockSkew < TimeSpan.Zero || NonceMaxAge <= TimeSpan.Zero || ClockSkew + NonceMaxAge >= TimeSpan.FromMinutes(15))
            throw new ArgumentException("bittensor.axon.auth needs clock_skew >= 0, max_age > 0 and clock_skew + max_age under 15 minutes");
        if (NonceStoreCapacity < 1) throw new ArgumentException("bittensor.axon.auth.nonce_store_capacity must be at least 1");
        if (BlacklistMinStake < 0 || double.IsNaN(BlacklistMinStake)) throw new ArgumentException("bittensor.axon.blacklist.min_stake must be a non-negative number");
    }
}
