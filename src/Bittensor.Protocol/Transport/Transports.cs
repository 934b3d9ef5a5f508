using System.Net;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol;

/// <summary>The two calls of the 2021 <c>Bittensor</c> service.</summary>
public enum BittensorMethod
{
    /// <summary><c>/Bittensor/Forward</c>.</summary>
    Forward,

    /// <summary><c>/Bittensor/Backward</c>.</summary>
    Backward,
}

/// <summary>
/// The client side of a peer transport: opens a connection per peer. Today's implementations are
/// <see cref="GrpcClientTransport"/> (the 2021 gRPC wire: HTTP/2 cleartext, auth headers first) and
/// <see cref="InMemoryTransport"/> (its in-process twin); a later HTTP synapse transport plugs in here.
/// </summary>
public interface IClientTransport
{
    /// <summary>A connection to <paramref name="host"/>:<paramref name="port"/> (lazy: nothing is sent until the first call).</summary>
    IPeerConnection Connect(string host, int port, BittensorChannelOptions options);
}

/// <summary>One peer, as a client sees it. Dispose to close it.</summary>
public interface IPeerConnection : IDisposable
{
    /// <summary>
    /// Sends one call and returns the peer's answer. Every transport failure is an <see cref="RpcException"/> with the
    /// status the gRPC transport gives for it: <c>Unavailable</c> (no peer there), <c>DeadlineExceeded</c> (the
    /// deadline passed), <c>Cancelled</c> (the token fired), <c>ResourceExhausted</c> (a message over a size limit),
    /// <c>Unauthenticated</c> (the peer refused the caller's headers), <c>Unknown</c> (the peer's handler threw).
    /// </summary>
    Task<TensorMessage> CallAsync(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline, CancellationToken cancellationToken);

    /// <summary>
    /// Sends one call and hands the peer's answer to <paramref name="read"/>, whose result the task returns. The answer
    /// and its tensors' buffers are valid only while <paramref name="read"/> runs: a transport may hold them in a pooled
    /// buffer it reuses afterwards, so <paramref name="read"/> copies out what it keeps (e.g. decodes the floats into
    /// its own array) and must not throw (a throw ends the call as <c>Internal</c> on the lean transport). It runs on
    /// the transport's thread (the lean client's read loop): keep it short. It may run before the call's status is known
    /// (the lean client reads a message that came whole in one frame when it arrives, before the trailers): if the call
    /// then fails, its result is dropped and the task fails as the call did, so <paramref name="read"/> must have no
    /// effect beyond what it returns. Failures as <see cref="CallAsync(BittensorMethod, TensorMessage, Metadata, DateTime, CancellationToken)"/>.
    /// The default awaits that call and reads its (unpooled) answer.
    /// </summary>
    async Task<T> CallAsync<T>(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline, CancellationToken cancellationToken,
        Func<TensorMessage, T> read)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(read);
        return read(await CallAsync(method, request, headers, deadline, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// As <see cref="CallAsync{T}(BittensorMethod, TensorMessage, Metadata, DateTime, CancellationToken, Func{TensorMessage, T})"/>,
    /// and the transport may receive the answer's tensor data straight into <paramref name="landing"/>'s array (the lean
    /// client does, for an answer in the 2021 layout): <paramref name="read"/> then asks
    /// <see cref="AnswerLanding.TryTake"/> whether the elements are there. The default ignores the landing (nothing lands).
    /// </summary>
    Task<T> CallAsync<T>(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline, CancellationToken cancellationToken,
        Func<TensorMessage, T> read, AnswerLanding? landing)
        where T : class => CallAsync(method, request, headers, deadline, cancellationToken, read);
}

/// <summary>What a server transport hands the service with each call.</summary>
/// <param name="Headers">The request headers (names lower-case).</param>
/// <param name="Deadline">The caller's deadline (UTC), <see cref="DateTime.MaxValue"/> when it set none.</param>
/// <param name="CancellationToken">Fires when the caller cancels, its deadline passes or the connection drops.</param>
/// <param name="Admission">
/// What the service's <see cref="IBittensorService.CheckHeadersAsync(BittensorMethod, Grpc.Core.Metadata, System.Net.IPAddress, CancellationToken)"/> returned for this call when the transport ran it
/// before reading the body (null when it did not: the service then checks the headers itself).
/// </param>
/// <param name="RegisterForDispose">
/// Registers an object the transport disposes once the response has been serialized onto the wire (e.g. a pooled
/// response buffer). Null when the transport hands the response message itself to the caller (the in-memory
/// transport): then nothing in the response may be pooled.
/// </param>
public sealed record InboundCall(Metadata Headers, DateTime Deadline, CancellationToken CancellationToken, object? Admission = null,
    Action<IDisposable>? RegisterForDispose = null);

/// <summary>
/// The outcome of checking a call from its headers alone, before its body is read: go on (with an admission the
/// transport hands back in <see cref="InboundCall.Admission"/>), refuse with a transport status, or answer at once.
/// </summary>
public readonly record struct HeaderDecision
{
    private HeaderDecision(object? admission, Status? refusal, TensorMessage? answer)
    {
        Admission = admission;
        Refusal = refusal;
        Answer = answer;
    }

    /// <summary>Read the body and call <see cref="IBittensorService.HandleAsync"/> with this admission.</summary>
    public object? Admission { get; }

    /// <summary>Refuse the call with this status without reading its body.</summary>
    public Status? Refusal { get; }

    /// <summary>Answer the call with this message (gRPC status OK) without reading its body.</summary>
    public TensorMessage? Answer { get; }

    /// <summary>Go on with the call.</summary>
    public static HeaderDecision Proceed(object? admission) => new(admission, null, null);

    /// <summary>Refuse the call with <paramref name="status"/>.</summary>
    public static HeaderDecision Refuse(Status status) => new(null, status, null);

    /// <summary>Answer the call with <paramref name="answer"/>.</summary>
    public static HeaderDecision Reply(TensorMessage answer) => new(null, null, answer ?? throw new ArgumentNullException(nameof(answer)));
}

/// <summary>
/// The server side of the service, independent of the transport: the axon's checks, admission and model path. It may
/// throw <see cref="RpcException"/> to answer a transport status (e.g. <c>Unauthenticated</c>); any other exception
/// becomes <c>Unknown</c>, as in grpc-dotnet.
/// </summary>
public interface IBittensorService
{
    /// <summary>Handles one call.</summary>
    Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call);

    /// <summary>
    /// Checks a call from its headers alone. Transports call it before they read or parse the body and, unless it
    /// proceeds, answer without reading the body. Must not throw. The default proceeds with no admission.
    /// </summary>
    ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
        ValueTask.FromResult(HeaderDecision.Proceed(null));

    /// <summary>
    /// As <see cref="CheckHeadersAsync(BittensorMethod, Metadata, CancellationToken)"/> for a call from <paramref name="peer"/>,
    /// the connection's remote address (null when the transport has none): what the transports call. The default
    /// ignores the address.
    /// </summary>
    ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, System.Net.IPAddress? peer, CancellationToken cancellationToken) =>
        CheckHeadersAsync(method, headers, cancellationToken);

    /// <summary>
    /// The transport refused a call, or closed a connection, on its own (a per-address rate or connection cap, a size
    /// limit, an HTTP/2 limit or protocol error) without the service seeing the call: for counting only. Called on the
    /// transport's threads; must not throw or block. The default does nothing.
    /// </summary>
    void OnRefused(TransportRefusal refusal)
    {
    }

    /// <summary>
    /// The answer to a call that came while the server already held <see cref="ServerTransportOptions.MaxCallsInFlight"/>
    /// others (shed: answered from its headers, before <see cref="CheckHeadersAsync(BittensorMethod, Metadata, System.Net.IPAddress, CancellationToken)"/> and before its body is read). The
    /// service counts it here. Called on the transport's threads; must not throw or block. The default refuses it with
    /// <c>ResourceExhausted</c>, as grpc servers do over their concurrent-call limit.
    /// </summary>
    HeaderDecision Overloaded(BittensorMethod method, int limit) =>
        HeaderDecision.Refuse(new Status(StatusCode.ResourceExhausted, $"Too many calls in flight (limit {limit}); try again later."));

    /// <summary>
    /// The answer to a call shed because calls waited longer than <see cref="ServerTransportOptions.TargetWait"/> before
    /// the server decided on them, for an interval (answered from its headers, before the header check, its body unread).
    /// Called on the transport's threads; must not throw or block. The default refuses it with <c>ResourceExhausted</c>.
    /// </summary>
    HeaderDecision Delayed(BittensorMethod method, TimeSpan target) =>
        HeaderDecision.Refuse(new Status(StatusCode.ResourceExhausted, $"Calls wait longer than {target.TotalMilliseconds} ms here; try again later."));

    /// <summary>
    /// As <see cref="Overloaded(BittensorMethod, int)"/>; <paramref name="rehearsal"/>: the call is the server's own
    /// warm-up shed (<see cref="IServerBinding.RehearseShed"/>), to be answered as any shed call and counted nowhere. What
    /// the lean transport calls. The default ignores the flag.
    /// </summary>
    HeaderDecision Overloaded(BittensorMethod method, int limit, bool rehearsal) => Overloaded(method, limit);

    /// <summary>As <see cref="Delayed(BittensorMethod, TimeSpan)"/>, with <paramref name="rehearsal"/> as in <see cref="Overloaded(BittensorMethod, int, bool)"/>.</summary>
    HeaderDecision Delayed(BittensorMethod method, TimeSpan target, bool rehearsal) => Delayed(method, target);
}

/// <summary>A call or connection the transport refused before the service saw it.</summary>
/// <param name="Method">The call's method; null for a connection-level refusal (no call was read).</param>
/// <param name="Code">The gRPC status the caller sees (connection-level: <c>Unavailable</c> for a closed socket,
/// <c>Internal</c> for an HTTP/2 connection error).</param>
/// <param name="Reason">Why, as a short snake_case name (<see cref="RefusalReasons"/>, or Kestrel's <c>error.type</c>).</param>
public readonly record struct TransportRefusal(BittensorMethod? Method, StatusCode Code, string Reason);

/// <summary>The reasons transports report in <see cref="TransportRefusal"/> for their own limits.</summary>
public static class RefusalReasons
{
    /// <summary>The caller's address is over its request rate.</summary>
    public const string PerIpRate = "per_ip_rate_exceeded";

    /// <summary>The caller's address holds its maximum of open connections.</summary>
    public const string PerIpConnections = "per_ip_connections_exceeded";

    /// <summary>The server holds its maximum of open connections.</summary>
    public const string Connections = "max_concurrent_connections_exceeded";

    /// <summary>The message's length prefix is over the method's limit.</summary>
    public const string MessageSize = "message_size_exceeded";

    /// <summary>The service's header check threw.</summary>
    public const string CheckFailed = "header_check_failed";

    /// <summary>A connection had no open call for <see cref="ServerLimits.IdleTimeout"/> and was closed (lean server).</summary>
    public const string Idle = "idle_timeout";

    /// <summary>
    /// A request body arrived slower than <see cref="ServerLimits.MinRequestBodyRate"/> after its grace period; the call was
    /// answered DEADLINE_EXCEEDED (lean server).
    /// </summary>
    public const string MinRequestBodyRate = "min_request_body_rate";

    /// <summary>
    /// An answer left slower than <see cref="ServerLimits.MinResponseRate"/> after its grace period because the peer did not
    /// open its flow-control window (the stream is reset ENHANCE_YOUR_CALM) or did not read its socket (the connection is
    /// closed) (lean server).
    /// </summary>
    public const string MinResponseRate = "min_response_rate";
}

/// <summary>Where and with which limits a server transport listens.</summary>
/// <param name="Ip">Address to bind.</param>
/// <param name="Port">Port; 0 lets the transport choose (the binding reports the real one).</param>
/// <param name="MaxReceiveMessageSize">Largest request accepted (larger ones answer <c>ResourceExhausted</c> before being buffered).</param>
/// <param name="MaxSendMessageSize">Largest answer sent (larger ones fail with <c>ResourceExhausted</c>).</param>
/// <param name="MaxConcurrentCalls">Concurrent calls per connection the transport lets through (admission beyond is the service's job).</param>
/// <param name="MaxForwardReceiveSize">
/// Largest Forward request (a smaller limit than <paramref name="MaxReceiveMessageSize"/> for the common text calls);
/// null: <paramref name="MaxReceiveMessageSize"/>. Larger ones answer <c>ResourceExhausted</c> before being buffered.
/// </param>
/// <param name="Limits">Connection-level limits (header size, connections, per-IP); null: none beyond the transport's defaults.</param>
public sealed record ServerTransportOptions(string Ip, int Port, int MaxReceiveMessageSize, int MaxSendMessageSize, int MaxConcurrentCalls,
    int? MaxForwardReceiveSize = null, ServerLimits? Limits = null)
{
    /// <summary>
    /// Calls the server holds at once, all connections together: received (the lean server: the whole request; Kestrel:
    /// its request delegate started) and not yet answered. A call that comes while this many others are held is
    /// answered with <see cref="IBittensorService.Overloaded(BittensorMethod, int)"/> from its headers, before its body is read. 0: no limit.
    /// </summary>
    public int MaxCallsInFlight { get; init; }

    /// <summary>
    /// The TCP congestion control the lean server sets on each connection from a loopback peer (127.0.0.0/8, ::1; Linux
    /// <c>TCP_CONGESTION</c>), e.g. <c>reno</c>; null or empty: the system's (net.ipv4.tcp_congestion_control). With
    /// BBR the kernel paces every connection with timers of its own where no fq qdisc does (the loopback device has
    /// none), which costs a timer interrupt every few answers and buys nothing on loopback (docs/axon.md, "Loopback
    /// congestion control"). A name the kernel does not have or allow leaves the system's (and is reported once through
    /// <see cref="Warn"/>). Both server transports set it (Kestrel's in a connection middleware).
    /// </summary>
    public string? LoopbackCongestionControl { get; init; }

    /// <summary>
    /// Where a server transport tells the operator about a setting it could not apply, once per binding (e.g. a
    /// <see cref="LoopbackCongestionControl"/> the kernel refuses); null: not told.
    /// </summary>
    public Action<string>? Warn { get; init; }

    /// <summary>
    /// Admission by measured waiting (the lean server; docs/axon.md "Admission by waiting"): once the wait of the calls
    /// before the server decides on them — its event loop's lag plus each call's time since its read — has stayed above
    /// this for <see cref="TargetWaitInterval"/>, a call whose wait is above it is answered with
    /// <see cref="IBittensorService.Delayed(BittensorMethod, TimeSpan)"/> from its headers, before its body is read, until the waits stay below it
    /// for an interval. <see cref="TimeSpan.Zero"/>: off. <see cref="MaxCallsInFlight"/> stays the hard cap.
    /// </summary>
    public TimeSpan TargetWait { get; init; }

    /// <summary>How long the waits must stay above (below) <see cref="TargetWait"/> to start (stop) shedding; zero: <see cref="DefaultTargetWaitInterval"/>.</summary>
    public TimeSpan TargetWaitInterval { get; init; }

    /// <summary>
    /// The at-read budget of <see cref="TargetWait"/> (the lean server; docs/axon.md "Admission by waiting"): while the rule
    /// is engaged, each read of a connection admits at most this many calls and answers the rest of that read with
    /// <see cref="IBittensorService.Delayed(BittensorMethod, TimeSpan)"/> in the read's send, and each connection reads once per read turn; the rule
    /// disengages after an interval in which no read had more. 0: the per-call rule (a call is shed when its own wait
    /// is over the target).
    /// </summary>
    public int AdmitPerRead { get; init; }

    /// <summary>The interval of <see cref="TargetWait"/> when none is given: 100 ms (CoDel's).</summary>
    public static readonly TimeSpan DefaultTargetWaitInterval = TimeSpan.FromMilliseconds(100);


    /// <summary>The receive limit of <paramref name="method"/>'s requests.</summary>
    public int ReceiveLimit(BittensorMethod method) =>
        method == BittensorMethod.Forward && MaxForwardReceiveSize is { } f ? Math.Min(f, MaxReceiveMessageSize) : MaxReceiveMessageSize;
}

/// <summary>
/// Connection-level limits of a network transport (the in-memory twin has no connections and ignores them). Zero means
/// no limit of that kind.
/// </summary>
/// <param name="MaxRequestHeadersSize">Largest total size of one request's headers, bytes.</param>
/// <param name="MaxConnections">Open connections at once, all callers together.</param>
/// <param name="MaxConnectionsPerIp">Open connections at once from one IP address.</param>
/// <param name="RequestsPerSecondPerIp">Sustained calls per second from one IP address (a token bucket).</param>
/// <param name="RequestBurstPerIp">Calls one IP address may make at once above the sustained rate (bucket size).</param>
/// <param name="RateLimitPeriod">How often the bucket is refilled at most (see <see cref="RefillStep"/>): short, so an
/// address over its rate is let through evenly rather than in one burst per period.</param>
/// <param name="ExemptLoopback">Per-IP limits do not apply to callers on 127.0.0.0/8 or ::1.</param>
public sealed record ServerLimits(int MaxRequestHeadersSize, int MaxConnections, int MaxConnectionsPerIp, double RequestsPerSecondPerIp,
    int RequestBurstPerIp, TimeSpan RateLimitPeriod, bool ExemptLoopback)
{
    /// <summary>No limits of these kinds.</summary>
    public static readonly ServerLimits None = new(0, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true);

    /// <summary>
    /// A connection that has had no open call for this long is closed (GOAWAY NO_ERROR, then the socket), whatever else
    /// it sends (pings, settings, a header block that never ends, one byte at a time): a peer that connects and stays
    /// silent, or trickles bytes, does not hold a connection slot forever. Zero: never.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// The per-address bucket's refill: <c>Tokens</c> added every <c>Period</c>, at exactly
    /// <see cref="RequestsPerSecondPerIp"/>. <c>Tokens</c> is the whole number of calls the rate allows in
    /// <see cref="RateLimitPeriod"/> (at least one) and <c>Period</c> the time those take at the rate (≤ the setting when it
    /// allows one call or more): 500/s every 10 ms → 5 every 10 ms; 150/s → 1 every 6.67 ms; 0.5/s → 1 every 2 s. A
    /// rate below one call per period is therefore not rounded up to one call per period. With a long period an address
    /// over its rate is let through in one burst of rate × period calls at the start of each period, which the other
    /// callers' calls then wait behind (issue 13: a 1 s period let 500 bad signatures in at once each second).
    /// Throws when <see cref="RequestsPerSecondPerIp"/> is not positive (no rate limit).
    /// </summary>
    public (int Tokens, TimeSpan Period) RefillStep()
    {
        if (!(RequestsPerSecondPerIp > 0) || double.IsInfinity(RequestsPerSecondPerIp))
            throw new InvalidOperationException("RefillStep needs a positive, finite RequestsPerSecondPerIp");
        if (!(RateLimitPeriod > TimeSpan.Zero)) throw new InvalidOperationException("RateLimitPeriod must be positive");
        var tokens = Math.Max(1, (int)Math.Min(int.MaxValue, Math.Floor(RequestsPerSecondPerIp * RateLimitPeriod.TotalSeconds)));
        var ticks = Math.Max(1, Math.Min(TimeSpan.MaxValue.Ticks / 2, tokens / RequestsPerSecondPerIp * TimeSpan.TicksPerSecond));
        return (tokens, TimeSpan.FromTicks((long)ticks));
    }

    /// <summary>
    /// Bytes per second a request body must keep arriving at once the call is admitted (its headers checked), measured
    /// over periods of <see cref="MinRequestBodyGrace"/> (the first begins at admission): a call whose body moved less
    /// than rate × period bytes in one (a body that trickles, stops, or never ends) is answered DEADLINE_EXCEEDED and its
    /// stream slot freed. Kestrel's MinRequestBodyDataRate, whose check is an average over the whole body. Zero: no minimum.
    /// </summary>
    public double MinRequestBodyRate { get; init; }

    /// <summary>How long a request body may arrive below <see cref="MinRequestBodyRate"/> before the rule applies.</summary>
    public TimeSpan MinRequestBodyGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Bytes per second an answer that waits for the peer's flow-control window must keep leaving at, measured over
    /// periods of <see cref="MinResponseGrace"/> from when it began waiting: one that moved less than rate × period bytes
    /// in one (a peer that never reads, window 0, or stopped after a burst) is reset, its stream and buffer freed. A
    /// socket write the peer does not drain within grace + size / rate closes the connection. Kestrel's
    /// MinResponseDataRate. Zero: no minimum.
    /// </summary>
    public double MinResponseRate { get; init; }

    /// <summary>How long an answer may leave below <see cref="MinResponseRate"/> before the rule applies.</summary>
    public TimeSpan MinResponseGrace { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// The server side of a peer transport: serves an <see cref="IBittensorService"/> at an address. Implementations:
/// the Kestrel gRPC server (in the runtime, <c>KestrelServerTransport</c>) and <see cref="InMemoryTransport"/>.
/// </summary>
public interface IServerTransport
{
    /// <summary>Starts listening; the binding reports the address actually bound.</summary>
    Task<IServerBinding> BindAsync(ServerTransportOptions options, IBittensorService service, CancellationToken cancellationToken);
}

/// <summary>A listening server. <see cref="StopAsync"/> stops accepting calls and lets running ones finish.</summary>
public interface IServerBinding : IAsyncDisposable
{
    /// <summary>The address bound (the real port when 0 was asked).</summary>
    IPEndPoint Endpoint { get; }

    /// <summary>Stops listening; running calls finish (until <paramref name="cancellationToken"/> fires).</summary>
    Task StopAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The server's own warm-up (the axon's <c>bittensor.axon.warm_up</c>): the next <paramref name="calls"/> calls of the
    /// connection from <paramref name="peer"/> (the warm-up's own client) are shed as a real overload sheds them —
    /// answered from their headers by <see cref="IBittensorService.Delayed(BittensorMethod, TimeSpan, bool)"/>, then
    /// <see cref="IBittensorService.Overloaded(BittensorMethod, int, bool)"/>, flagged as a rehearsal — so that path's code
    /// is compiled before serving; no admission state is touched. False when no such connection is open or the
    /// transport has no such rehearsal (the default).
    /// </summary>
    bool RehearseShed(IPEndPoint peer, int calls) => false;
}

/// <summary>gRPC status details both transports use for the same failures.</summary>
public static class TransportStatus
{
    /// <summary>A request larger than the receiver's limit.</summary>
    public const string ReceiveTooLarge = "Received message exceeds the maximum configured message size.";

    /// <summary>A message larger than the sender's limit.</summary>
    public const string SendTooLarge = "Sending message exceeds the maximum configured message size.";

    /// <summary>The handler threw something other than an RpcException.</summary>
    public const string HandlerThrew = "Exception was thrown by handler.";

    /// <summary>The deadline passed.</summary>
    public const string DeadlineExceeded = "Deadline Exceeded";

    /// <summary>The caller cancelled.</summary>
    public const string Cancelled = "Call canceled by the client.";

    /// <summary>A Forward request larger than the receiver's Forward limit (checked from the length prefix).</summary>
    public static string ForwardTooLarge(long size, int limit) =>
        $"Received Forward message of {size} bytes exceeds this axon's Forward limit of {limit} bytes.";

    /// <summary>A caller over its address's request rate.</summary>
    public const string RateLimited = "Too many calls from this address; slow down (per-IP rate limit).";
}
