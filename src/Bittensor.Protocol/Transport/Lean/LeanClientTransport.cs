using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol;

/// <summary>
/// A lean HTTP/2 cleartext (h2c, prior knowledge) gRPC client for the 2021 <c>Bittensor</c> service: one connection per
/// peer with its own frames, HPACK and flow control instead of Grpc.Net.Client + SocketsHttpHandler. It announces a
/// 1 MiB frame size and 4 MiB stream / 64 MiB connection windows (a 64 KB answer is one DATA frame, no WINDOW_UPDATE
/// round trip), reads each answer into one array of its size and parses it there, and completes the call on the
/// connection's read loop. Same wire as <see cref="GrpcClientTransport"/> (bittensor headers first among the metadata,
/// no user-agent) and the same statuses for the same failures (<see cref="IPeerConnection.CallAsync"/>).
/// Keep-alive: HTTP/2 PINGs after <see cref="BittensorChannelOptions.KeepAlivePingDelay"/> without a frame from the peer
/// while a call is open (or always, <see cref="BittensorChannelOptions.KeepAlivePingWithoutCalls"/>); a PING not answered
/// within <see cref="BittensorChannelOptions.KeepAlivePingTimeout"/> closes the connection, so a call does not wait its
/// whole deadline on a peer that vanished, and the next call connects anew. A GOAWAY ENHANCE_YOUR_CALM "too_many_pings"
/// doubles the interval for the peer's next connections (gRPC's client rule).
/// Not supported (not needed by a dendrite): TLS, compression.
/// </summary>
public sealed class LeanClientTransport : IClientTransport
{
    /// <summary>The single instance (connections hold all state).</summary>
    public static readonly LeanClientTransport Instance = new();

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, int> s_connectionsByPort = new();

    /// <summary>TCP connections this process's lean clients made to <paramref name="port"/> (any host): shows which transport a role used. Process-wide by port number, ever since the process started: a test compares it before and after (an earlier server may have had the same ephemeral port).</summary>
    internal static int ConnectionsTo(int port) => s_connectionsByPort.GetValueOrDefault(port);

    internal static void CountConnection(int port) => s_connectionsByPort.AddOrUpdate(port, 1, static (_, n) => n + 1);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, int> s_loopConnectionsByPort = new();

    /// <summary>Of <see cref="ConnectionsTo"/>, those made on the client's own I/O loop (<see cref="BittensorChannelOptions.ClientIoLoop"/>; tests: which path a role's connections took).</summary>
    internal static int LoopConnectionsTo(int port) => s_loopConnectionsByPort.GetValueOrDefault(port);

    internal static void CountLoopConnection(int port) => s_loopConnectionsByPort.AddOrUpdate(port, 1, static (_, n) => n + 1);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, int> s_batchConnectionsByPort = new();

    /// <summary>Of <see cref="LoopConnectionsTo"/>, those whose writes go through the loop's outboxes (<see cref="BittensorChannelOptions.ClientIoBatch"/>; tests).</summary>
    internal static int BatchConnectionsTo(int port) => s_batchConnectionsByPort.GetValueOrDefault(port);

    internal static void CountBatchConnection(int port) => s_batchConnectionsByPort.AddOrUpdate(port, 1, static (_, n) => n + 1);

    /// <summary>Per-port answer counters for tests and the fan-out harness (<see cref="BytesLandedFrom"/>,
    /// <see cref="HeadReadsFrom"/>): one object per port number, looked up once when a connection is made, so the read loop
    /// adds to its fields per answer without a dictionary update (two per answer before session 23).</summary>
    internal sealed class PortCounters
    {
        internal long Landed;
        internal long HeadReads;
        internal long LoopThreadRequests;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, PortCounters> s_countersByPort = new();

    internal static PortCounters CountersFor(int port) => s_countersByPort.GetOrAdd(port, static _ => new PortCounters());

    /// <summary>Answer bytes this process's lean clients received from <paramref name="port"/> straight into a caller's <see cref="AnswerLanding"/> (tests; process-wide by port number, so compare before and after).</summary>
    internal static long BytesLandedFrom(int port) => s_countersByPort.TryGetValue(port, out var c) ? Interlocked.Read(ref c.Landed) : 0;

    /// <summary>Answers from <paramref name="port"/> whose head, landed floats and tail came in one receive at a frame start (tests; process-wide by port number, so compare before and after).</summary>
    internal static long HeadReadsFrom(int port) => s_countersByPort.TryGetValue(port, out var c) ? Interlocked.Read(ref c.HeadReads) : 0;

    /// <summary>Requests to <paramref name="port"/> whose HEADERS the client I/O loop's own thread wrote (the dendrite's actors on that thread: <c>bittensor.dendrite.dispatcher = loop</c>; tests; process-wide by port number, so compare before and after).</summary>
    internal static long LoopThreadRequestsTo(int port) => s_countersByPort.TryGetValue(port, out var c) ? Interlocked.Read(ref c.LoopThreadRequests) : 0;

    private readonly TimeProvider _time;

    private LeanClientTransport()
        : this(TimeProvider.System)
    {
    }

    /// <summary>A transport whose keep-alive runs on <paramref name="time"/> (tests drive it).</summary>
    internal LeanClientTransport(TimeProvider time) => _time = time;

    /// <summary>
    /// The local address and port of <paramref name="connection"/>'s current TCP connection (a lean client's, after its
    /// first call), or null: how a server in this process tells that connection apart (the axon's warm-up,
    /// <see cref="IServerBinding.RehearseShed"/>).
    /// </summary>
    public static System.Net.IPEndPoint? LocalEndPoint(IPeerConnection connection) =>
        (connection as LeanPeerConnection)?.Current?.LocalEndPoint;

    /// <inheritdoc />
    public IPeerConnection Connect(string host, int port, BittensorChannelOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ArgumentNullException.ThrowIfNull(options);
        var keepAlive = new KeepAlivePolicy(options.KeepAlivePingDelay, options.KeepAlivePingTimeout, options.KeepAlivePingWithoutCalls, _time);
        return new LeanPeerConnection(host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host, port, options, keepAlive);
    }
}

/// <summary>
/// One peer of the lean client: connects on the first call, and again on the next call after the connection was lost,
/// closed (a keep-alive PING unanswered) or drained by a GOAWAY (how often is the caller's backoff's business, as with
/// grpc-dotnet's channel).
/// </summary>
internal sealed class LeanPeerConnection(string host, int port, BittensorChannelOptions options, KeepAlivePolicy keepAlive) : IPeerConnection
{
    private readonly object _gate = new();
    private KeepAlivePolicy _keepAlive = keepAlive;
    private H2ClientConnection? _calmedBy; // the connection whose "too_many_pings" GOAWAY last doubled _keepAlive's interval
    private H2ClientConnection? _current;
    private Task<H2ClientConnection>? _connecting;
    private bool _disposed;

    /// <summary>The connection calls go to now (tests).</summary>
    internal H2ClientConnection? Current
    {
        get
        {
            lock (_gate) return _current;
        }
    }

    public Task<TensorMessage> CallAsync(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline,
        CancellationToken cancellationToken) => CallCoreAsync<TensorMessage>(method, request, headers, deadline, cancellationToken, null);

    // The answer is read into a pooled array and handed to `read` on the read loop; the array goes back afterwards.
    public Task<T> CallAsync<T>(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline,
        CancellationToken cancellationToken, Func<TensorMessage, T> read)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(read);
        return CallCoreAsync(method, request, headers, deadline, cancellationToken, read);
    }

    // As above; the answer's tensor data may be received straight into the landing's array (H2ClientConnection).
    public Task<T> CallAsync<T>(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline,
        CancellationToken cancellationToken, Func<TensorMessage, T> read, AnswerLanding? landing)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(read);
        return CallCoreAsync(method, request, headers, deadline, cancellationToken, read, landing);
    }

    private Task<T> CallCoreAsync<T>(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline,
        CancellationToken cancellationToken, Func<TensorMessage, T>? read, AnswerLanding? landing = null)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(headers);
        Task<H2ClientConnection> connecting;
        lock (_gate)
        {
            if (_disposed) return Task.FromException<T>(new RpcException(new Status(StatusCode.Unavailable, "connection disposed")));
            if (_current is { IsUsable: true } usable) return usable.CallAsync(method, request, headers, deadline, cancellationToken, read, landing);
            if (_connecting is null || _connecting.IsFaulted || _connecting.IsCanceled || (_connecting.IsCompletedSuccessfully && !_connecting.Result.IsUsable))
            {
                if (_current is { TooManyPings: true } calm && !ReferenceEquals(calm, _calmedBy))
                {
                    _calmedBy = calm;
                    _keepAlive = _keepAlive.Calmer();
                }
                _connecting = ConnectAsync(_keepAlive);
            }
            connecting = _connecting;
        }
        return CallAfterConnectAsync(connecting, method, request, headers, deadline, cancellationToken, read, landing);
    }

    private async Task<H2ClientConnection> ConnectAsync(KeepAlivePolicy policy)
    {
        var conn = await H2ClientConnection.ConnectAsync(host, port, options, policy).ConfigureAwait(false);
        LeanClientTransport.CountConnection(port);
        H2ClientConnection? old;
        lock (_gate)
        {
            if (_disposed)
            {
                conn.Dispose();
                throw new RpcException(new Status(StatusCode.Unavailable, "connection disposed"));
            }
            old = _current;
            _current = conn;
        }
        // The old connection is no longer usable: it ends when its last stream does (GOAWAY) or is already closed.
        if (old is not null && old.OpenStreams == 0) old.Dispose();
        return conn;
    }

    private static async Task<T> CallAfterConnectAsync<T>(Task<H2ClientConnection> connecting, BittensorMethod method, TensorMessage request,
        Metadata headers, DateTime deadline, CancellationToken cancellationToken, Func<TensorMessage, T>? read, AnswerLanding? landing)
        where T : class
    {
        H2ClientConnection conn;
        var remaining = deadline == DateTime.MaxValue ? Timeout.InfiniteTimeSpan : deadline.ToUniversalTime() - DateTime.UtcNow;
        if (remaining != Timeout.InfiniteTimeSpan && remaining <= TimeSpan.Zero)
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, TransportStatus.DeadlineExceeded));
        try
        {
            conn = remaining == Timeout.InfiniteTimeSpan
                ? await connecting.WaitAsync(cancellationToken).ConfigureAwait(false)
                : await connecting.WaitAsync(remaining, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, TransportStatus.DeadlineExceeded));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, TransportStatus.Cancelled));
        }
        return await conn.CallAsync(method, request, headers, deadline, cancellationToken, read, landing).ConfigureAwait(false);
    }

    public void Dispose()
    {
        H2ClientConnection? current;
        lock (_gate)
        {
            _disposed = true;
            current = _current;
            _current = null;
        }
        current?.Dispose();
    }
}
