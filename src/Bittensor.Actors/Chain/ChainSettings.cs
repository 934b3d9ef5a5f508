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
    /// <summary>Network name: <c>local</c> (embedded localnet), <c>finney</c>, <c>test</c>, <c>archive</c>, or a custom name.</summary>
    public string Network { get; init; } = "local";

    /// <summary>WebSocket endpoint; empty means the network's well-known one.</summary>
    public string ChainEndpoint { get; init; } = "";

    /// <summary>Reconnect backoff when the backend fails.</summary>
    public BackoffPolicy Reconnect { get; init; } = new(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30), 0.2);

    /// <summary>Default wait for submissions that do not name one.</summary>
    public WaitFor WaitFor { get; init; } = WaitFor.Inclusion;

    /// <summary>Time from send to typed result before a submission fails with <c>Timeout</c>.</summary>
    public TimeSpan SubmitTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Bound on queued submissions per signing key; beyond it submissions fail with <c>QueueFull</c>.</summary>
    public int MaxPendingPerKey { get; init; } = 64;

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

    /// <summary>Reads the <c>bittensor.subtensor</c> section (pass that section, not the root).</summary>
    public static SubtensorSettings Create(Config section)
    {
        ArgumentNullException.ThrowIfNull(section);
        var waitFor = section.GetString("wait_for", "inclusion");
        return new SubtensorSettings
        {
            Network = section.GetString("network", "local"),
            ChainEndpoint = section.GetString("chain_endpoint", ""),
            Reconnect = new BackoffPolicy(
                section.GetTimeSpan("reconnect.min_backoff", TimeSpan.FromMilliseconds(200)),
                section.GetTimeSpan("reconnect.max_backoff", TimeSpan.FromSeconds(30)),
                section.GetDouble("reconnect.random_factor", 0.2)),
            WaitFor = waitFor switch
            {
                "inclusion" => WaitFor.Inclusion,
                "finalization" => WaitFor.Finalization,
                _ => throw new ArgumentException($"subtensor.wait_for must be 'inclusion' or 'finalization', not '{waitFor}'"),
            },
            SubmitTimeout = section.GetTimeSpan("submit_timeout", TimeSpan.FromSeconds(60)),
            MaxPendingPerKey = section.GetInt("max_pending_per_key", 64),
        }.Validate();
    }

    /// <summary>The reference defaults from the embedded <c>bittensor.conf</c>.</summary>
    public static SubtensorSettings Default => Create(ReferenceConfig.Section("bittensor.subtensor"));

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid key.</summary>
    public SubtensorSettings Validate()
    {
        if (string.IsNullOrWhiteSpace(Network)) throw new ArgumentException("subtensor.network must not be empty");
        if (ChainEndpoint.Length > 0
            && !(ChainEndpoint.StartsWith("ws://", StringComparison.Ordinal) || ChainEndpoint.StartsWith("wss://", StringComparison.Ordinal)))
            throw new ArgumentException($"subtensor.chain_endpoint must start with ws:// or wss://, not '{ChainEndpoint}'");
        if (SubmitTimeout <= TimeSpan.Zero) throw new ArgumentException("subtensor.submit_timeout must be positive");
        if (MaxPendingPerKey is < 1 or > 100_000) throw new ArgumentException("subtensor.max_pending_per_key must be in 1..100000");
        Reconnect.Validate();
        return this;
    }
}

/// <summary>The <c>bittensor.localnet</c> section: where the embedded chain keeps its state and how fast it runs.</summary>
public sealed record LocalnetSettings
{
    /// <summary>State folder (home-expanded).</summary>
    public string Path { get; init; } = ReferenceConfig.ExpandHome("~/.bittensor/localnet/default");

    /// <summary>Block interval when running on a timer.</summary>
    public TimeSpan BlockTime { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Reads the <c>bittensor.localnet</c> section.</summary>
    public static LocalnetSettings Create(Config section)
    {
        ArgumentNullException.ThrowIfNull(section);
        return new LocalnetSettings
        {
            Path = ReferenceConfig.ExpandHome(section.GetString("path", "~/.bittensor/localnet/default")),
            BlockTime = section.GetTimeSpan("block_time", TimeSpan.FromSeconds(1)),
        }.Validate();
    }

    /// <summary>The reference defaults from the embedded <c>bittensor.conf</c>.</summary>
    public static LocalnetSettings Default => Create(ReferenceConfig.Section("bittensor.localnet"));

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid key.</summary>
    public LocalnetSettings Validate()
    {
        if (string.IsNullOrWhiteSpace(Path)) throw new ArgumentException("localnet.path must not be empty");
        if (BlockTime <= TimeSpan.Zero) throw new ArgumentException("localnet.block_time must be positive");
        return this;
    }
}
