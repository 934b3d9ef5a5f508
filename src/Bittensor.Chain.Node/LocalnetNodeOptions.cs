namespace Bittensor.Chain.Node;

/// <summary>How <see cref="LocalnetNode"/> listens and what it bounds.</summary>
public sealed record LocalnetNodeOptions
{
    /// <summary>Default JSON-RPC port (as a Substrate node).</summary>
    public const int DefaultPort = 9944;

    /// <summary>Address to bind (default 127.0.0.1; a name such as <c>localhost</c> binds loopback).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>Port; 0 picks a free one (<see cref="LocalnetNode.Endpoint"/> tells which).</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>Largest request (HTTP body or WebSocket message) in bytes (default 4 MiB); larger ones are refused.</summary>
    public int MaxRequestBytes { get; init; } = 4 << 20;

    /// <summary>Most requests in one JSON-RPC batch (default 256).</summary>
    public int MaxBatch { get; init; } = 256;

    /// <summary>Most open connections (default 512).</summary>
    public int MaxConnections { get; init; } = 512;

    /// <summary>Most subscriptions per connection (default 1024).</summary>
    public int MaxSubscriptionsPerConnection { get; init; } = 1024;

    /// <summary>
    /// Messages (responses and notifications) queued per WebSocket connection (default 4096). A connection whose
    /// queue is full — a subscriber that does not read — is closed; block production never waits for it.
    /// </summary>
    public int MaxQueuedMessagesPerConnection { get; init; } = 4096;

    /// <summary>Most blocks <c>dev_newBlock</c> makes in one call (default 10 000).</summary>
    public int MaxNewBlocks { get; init; } = 10_000;

    /// <summary>Most keys one <c>state_getKeysPaged</c> page or <c>state_queryStorageAt</c> call handles (default 10 000).</summary>
    public int MaxKeys { get; init; } = 10_000;

    /// <summary>Blocks whose full state is kept for <c>state_*</c> calls at a block hash (default 64; older ones answer "state discarded").</summary>
    public int StateHistory { get; init; } = 64;

    /// <summary>
    /// Where the node and its Kestrel server log (connections at Debug, slow subscribers dropped at Warning, Kestrel's
    /// own events under Microsoft.AspNetCore.*); null = nowhere.
    /// </summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> for unusable values.</summary>
    public LocalnetNodeOptions Validate()
    {
        if (string.IsNullOrWhiteSpace(Host)) throw new ArgumentException("rpc host is empty");
        if (Port is < 0 or > 65535) throw new ArgumentException($"rpc port {Port} is not in 0..65535");
        if (MaxRequestBytes < 1024) throw new ArgumentException("MaxRequestBytes must be at least 1024");
        if (MaxBatch < 1 || MaxConnections < 1 || MaxSubscriptionsPerConnection < 1 || MaxQueuedMessagesPerConnection < 1 || MaxNewBlocks < 1 || MaxKeys < 1 || StateHistory < 1)
            throw new ArgumentException("node limits must be at least 1");
        return this;
    }
}
