using Akka.Configuration;
using Bittensor.Core.Resilience;

namespace Bittensor.Actors.Chain;

/// <summary>How long a submitter waits: until its extrinsic is in a block, or until that block is final.</summary>
public enum WaitFor
{
    /// <summary>Answer once the extrinsic is included in a block (Python's <c>wait_for_inclusion</c>).</summary>
    Inclusion,

    /// <summary>Answer once the including block is finalized (Python's <c>wait_for_finalization</c>).</summary>
    Finalization,
}

/// <summary>The <c>bittensor.subtensor</c> section: which chain, and how the ChainActor talks to it.</summary>
public sealed record SubtensorSettings
{
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.subtensor";

    /// <summary>The reference configuration's values (hocon/bittensor.conf), for code without an ActorSystem and tests.</summary>
    public static SubtensorSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Network name: <c>local</c> (embedded localnet), <c>finney</c>, <c>test</c>, <c>archive</c>, or a custom name.</summary>
    public required string Network { get; init; }

    /// <summary>WebSocket endpoint; empty means the network's well-known one.</summary>
    public required string ChainEndpoint { get; init; }

    /// <summary>Reconnect backoff when the backend fails.</summary>
    public required BackoffPolicy Reconnect { get; init; }

    /// <summary>Default wait for submissions that do not name one.</summary>
    public required WaitFor WaitFor { get; init; }

    /// <summary>Time from send to typed result before a submission fails with <c>Timeout</c>.</summary>
    public required TimeSpan SubmitTimeout { get; init; }

    /// <summary>Bound on queued submissions per signing key; beyond it submissions fail with <c>QueueFull</c>.</summary>
    public required int MaxPendingPerKey { get; init; }

    /// <summary>Mortal era of signed extrinsics sent to a Substrate node, in blocks (a power of two in 4..65536).</summary>
    public required ulong EraPeriod { get; init; }

    /// <summary>Deadline of one JSON-RPC request to a node (waiting for a reconnect included).</summary>
    public required TimeSpan RequestTimeout { get; init; }

    /// <summary>Idle time after which the connection to a node is probed (and dropped when the probe gets no answer within <see cref="KeepAliveTimeout"/>).</summary>
    public required TimeSpan KeepAlive { get; init; }

    /// <summary>How long a keepalive probe (or a WebSocket ping) may stay unanswered before the connection is dropped.</summary>
    public required TimeSpan KeepAliveTimeout { get; init; }

    /// <summary>Largest JSON-RPC message accepted from a node, in bytes.</summary>
    public required int MaxMessageBytes { get; init; }

    /// <summary>For <c>local</c>: the node tried first (empty = always the embedded localnet).</summary>
    public required string LocalEndpoint { get; init; }

    /// <summary>True when the network is the embedded localnet.</summary>
    public bool IsLocal => string.Equals(Network, "local", StringComparison.Ordinal);

    /// <summary>The well-known endpoint of a named network, or <see cref="ChainEndpoint"/> when set.</summary>
    public string ResolvedEndpoint => ChainEndpoint.Length > 0 ? ChainEndpoint : Network switch
    {
        "finney" => "wss://entrypoint-finney.opentensor.ai:443",
        "test" => "wss://test.finney.opentensor.ai:443",
        "archive" => "wss://archive.chain.opentensor.ai:443",
        _ => "",
    };

    /// <summary>The Substrate client's options for <paramref name="endpoint"/> (ws:// or wss://) from these settings.</summary>
    public Bittensor.Chain.Rpc.SubstrateBackendOptions BackendOptions(string endpoint) => new()
    {
        Rpc = new Bittensor.Chain.Rpc.JsonRpcOptions
        {
            Endpoint = new Uri(endpoint),
            RequestTimeout = RequestTimeout,
            KeepAliveInterval = KeepAlive,
            KeepAliveTimeout = KeepAliveTimeout,
            MaxMessageBytes = MaxMessageBytes,
            Reconnect = Reconnect,
        },
        EraPeriod = EraPeriod,
    };

    /// <summary>Reads the <c>bittensor.subtensor</c> section (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static SubtensorSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        return new SubtensorSettings
        {
            Network = c.String("network"),
            ChainEndpoint = c.String("chain_endpoint"),
            Reconnect = new BackoffPolicy(c.Duration("reconnect.min_backoff"), c.Duration("reconnect.max_backoff"), c.Double("reconnect.random_factor")),
            WaitFor = c.OneOf("wait_for", "inclusion", "finalization") == "finalization" ? WaitFor.Finalization : WaitFor.Inclusion,
            SubmitTimeout = c.Duration("submit_timeout"),
            MaxPendingPerKey = c.Int("max_pending_per_key"),
            EraPeriod = (ulong)c.Int("era_period"),
            RequestTimeout = c.Duration("request_timeout"),
            KeepAlive = c.Duration("keepalive"),
            KeepAliveTimeout = c.Duration("keepalive_timeout"),
            MaxMessageBytes = c.Int("max_message_bytes"),
            LocalEndpoint = c.String("local_endpoint"),
        }.Validate();
    }

    /// <summary>Returns these settings when every value is usable.</summary>
    /// <exception cref="ConfigurationException">The first invalid value; the message names its key.</exception>
    public SubtensorSettings Validate()
    {
        HoconSection.Require(!string.IsNullOrWhiteSpace(Network), "bittensor.subtensor.network", Network, "must not be empty");
        HoconSection.Require(ChainEndpoint.Length == 0
            || ChainEndpoint.StartsWith("ws://", StringComparison.Ordinal) || ChainEndpoint.StartsWith("wss://", StringComparison.Ordinal),
            "bittensor.subtensor.chain_endpoint", ChainEndpoint, "must start with ws:// or wss://");
        HoconSection.Require(SubmitTimeout > TimeSpan.Zero, "bittensor.subtensor.submit_timeout", SubmitTimeout, "must be positive");
        HoconSection.Require(MaxPendingPerKey is >= 1 and <= 100_000, "bittensor.subtensor.max_pending_per_key", MaxPendingPerKey, "must be in 1..100000");
        HoconSection.Require(EraPeriod is >= 4 and <= 65536 && ulong.IsPow2(EraPeriod), "bittensor.subtensor.era_period", EraPeriod,
            "must be a power of two in 4..65536");
        HoconSection.Require(RequestTimeout > TimeSpan.Zero, "bittensor.subtensor.request_timeout", RequestTimeout, "must be positive");
        HoconSection.Require(KeepAlive > TimeSpan.Zero, "bittensor.subtensor.keepalive", KeepAlive, "must be positive");
        HoconSection.Require(KeepAliveTimeout > TimeSpan.Zero, "bittensor.subtensor.keepalive_timeout", KeepAliveTimeout, "must be positive");
        HoconSection.Require(MaxMessageBytes is >= 1 << 16 and <= 1 << 30, "bittensor.subtensor.max_message_bytes", MaxMessageBytes,
            "must be in 64 KiB..1 GiB");
        HoconSection.Require(LocalEndpoint.Length == 0
            || LocalEndpoint.StartsWith("ws://", StringComparison.Ordinal) || LocalEndpoint.StartsWith("wss://", StringComparison.Ordinal),
            "bittensor.subtensor.local_endpoint", LocalEndpoint, "must be empty or start with ws:// or wss://");
        HoconSection.Require(Reconnect.Min > TimeSpan.Zero, "bittensor.subtensor.reconnect.min_backoff", Reconnect.Min, "must be positive");
        HoconSection.Require(Reconnect.Max >= Reconnect.Min, "bittensor.subtensor.reconnect.max_backoff", Reconnect.Max,
            "must be at least reconnect.min_backoff");
        HoconSection.Require(Reconnect.RandomFactor is >= 0 and <= 1, "bittensor.subtensor.reconnect.random_factor", Reconnect.RandomFactor, "must be in [0, 1]");
        return this;
    }
}

/// <summary>
/// The <c>bittensor.localnet</c> section: where the embedded chain keeps its state and how fast it runs when it produces
/// blocks on a timer (<c>btcli run</c>, <c>btcli localnet run</c>).
/// </summary>
public sealed record LocalnetSettings
{
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.localnet";

    /// <summary>The reference configuration's values (hocon/bittensor.conf), for code without an ActorSystem and tests.</summary>
    public static LocalnetSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>State folder (home-expanded, absolute).</summary>
    public required string Path { get; init; }

    /// <summary>Block interval when running on a timer.</summary>
    public required TimeSpan BlockTime { get; init; }

    /// <summary>The chain's name: the folder's last segment (part of the chain identity).</summary>
    public string Name => System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(Path)) is { Length: > 0 } n ? n : "default";

    /// <summary>Reads the <c>bittensor.localnet</c> section (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static LocalnetSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        var path = c.String("path");
        HoconSection.Require(!string.IsNullOrWhiteSpace(path), "bittensor.localnet.path", path, "must not be empty");
        return new LocalnetSettings
        {
            Path = System.IO.Path.GetFullPath(Bittensor.Wallet.LocalWallet.ExpandHome(path)),
            BlockTime = c.Duration("block_time"),
        }.Validate();
    }

    /// <summary>Returns these settings when every value is usable.</summary>
    /// <exception cref="ConfigurationException">The first invalid value; the message names its key.</exception>
    public LocalnetSettings Validate()
    {
        HoconSection.Require(!string.IsNullOrWhiteSpace(Path), "bittensor.localnet.path", Path, "must not be empty");
        HoconSection.Require(BlockTime >= TimeSpan.Zero && BlockTime <= TimeSpan.FromHours(1), "bittensor.localnet.block_time", BlockTime,
            "must be in 0s..1h");
        return this;
    }
}
