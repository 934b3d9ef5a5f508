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
}

/// <summary>What a server transport hands the service with each call.</summary>
/// <param name="Headers">The request headers (names lower-case).</param>
/// <param name="Deadline">The caller's deadline (UTC), <see cref="DateTime.MaxValue"/> when it set none.</param>
/// <param name="CancellationToken">Fires when the caller cancels, its deadline passes or the connection drops.</param>
public sealed record InboundCall(Metadata Headers, DateTime Deadline, CancellationToken CancellationToken);

/// <summary>
/// The server side of the service, independent of the transport: the axon's checks, admission and model path. It may
/// throw <see cref="RpcException"/> to answer a transport status (e.g. <c>Unauthenticated</c>); any other exception
/// becomes <c>Unknown</c>, as in grpc-dotnet.
/// </summary>
public interface IBittensorService
{
    /// <summary>Handles one call.</summary>
    Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call);
}

/// <summary>Where and with which limits a server transport listens.</summary>
/// <param name="Ip">Address to bind.</param>
/// <param name="Port">Port; 0 lets the transport choose (the binding reports the real one).</param>
/// <param name="MaxReceiveMessageSize">Largest request accepted (larger ones answer <c>ResourceExhausted</c> before being buffered).</param>
/// <param name="MaxSendMessageSize">Largest answer sent (larger ones fail with <c>ResourceExhausted</c>).</param>
/// <param name="MaxConcurrentCalls">Concurrent calls per connection the transport lets through (admission beyond is the service's job).</param>
public sealed record ServerTransportOptions(string Ip, int Port, int MaxReceiveMessageSize, int MaxSendMessageSize, int MaxConcurrentCalls);

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
}
