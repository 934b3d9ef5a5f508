namespace Bittensor.Protocol;

/// <summary>Settings for channels toward peers (see <see cref="BittensorChannelFactory"/>).</summary>
public sealed record BittensorChannelOptions
{
    /// <summary>Defaults: 4 MiB send (a 2021 Python axon's receive limit), 16 MiB receive, pings every 60 s while calls are active, no user-agent.</summary>
    public static BittensorChannelOptions Default { get; } = new();

    /// <summary>Largest request message sent, in bytes; null for no limit. 4 MiB matches a 2021 Python axon's default receive limit.</summary>
    public int? MaxSendMessageSize { get; init; } = 4 * 1024 * 1024;

    /// <summary>Largest response message accepted, in bytes; null for no limit.</summary>
    public int? MaxReceiveMessageSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>
    /// Time without a frame from the peer before an HTTP/2 keep-alive ping (while a call is open, or always with
    /// <see cref="KeepAlivePingWithoutCalls"/>); <see cref="Timeout.InfiniteTimeSpan"/> disables pings.
    /// </summary>
    public TimeSpan KeepAlivePingDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a ping may go unanswered before the connection is closed.</summary>
    public TimeSpan KeepAlivePingTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Ping idle connections too (no call open): finds a pooled connection to a vanished peer before a call is sent on
    /// it, but a gRPC server that does not permit pings without calls answers GOAWAY "too_many_pings". Default off.
    /// </summary>
    public bool KeepAlivePingWithoutCalls { get; init; }

    /// <summary>
    /// The HTTP/2 receive window each call's stream starts with (bytes). A full 2021 answer, <c>[1, 16, 1024]</c> float32,
    /// is 65.7 KB: over HTTP/2's default 65,535 every answer would stall on a WINDOW_UPDATE round trip. 1 MiB by default.
    /// </summary>
    public int InitialHttp2StreamWindowSize { get; init; } = 1024 * 1024;

    /// <summary>
    /// The lean client's connections wait on the client's own I/O loop (one thread with its own epoll, non-blocking
    /// sends and receives: <c>bittensor.dendrite.io = loop</c>) instead of .NET's socket engine. Linux on x86-64 only;
    /// elsewhere ignored (sockets). The grpc transport ignores it. Default off here; the dendrite's setting decides.
    /// </summary>
    public bool ClientIoLoop { get; init; }

    /// <summary>
    /// With <see cref="ClientIoLoop"/>: the connection's writes are queued in an outbox that the loop thread sends, woken
    /// once per <see cref="SendBatch"/> (a fan-out round's dispatch) or at once outside one (<c>bittensor.dendrite.io =
    /// batch</c>). Ignored without the loop.
    /// </summary>
    public bool ClientIoBatch { get; init; }

    /// <summary>TCP connect timeout.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long an unused connection stays open.</summary>
    public TimeSpan PooledConnectionIdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Remove grpc-dotnet's <c>user-agent</c> header (default) instead of moving it after the bittensor
    /// headers. A 2021 grpc core lists metadata in wire order, so moving suffices there; current grpc cores
    /// list <c>user-agent</c> first whatever the wire order, so only dropping keeps the bittensor headers at
    /// positions 0–2 for a Python axon on a newer grpcio. The header is optional in gRPC.
    /// </summary>
    public bool DropUserAgent { get; init; } = true;
}
