using System.Collections.Concurrent;
using System.Net;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol;

/// <summary>
/// The in-process twin of the gRPC transports: servers bind to an address in this instance, clients of the same
/// instance reach them. Like the real wire, every call is serialized to protobuf bytes and parsed again on the other
/// side (no object is shared), the same size limits answer the same <c>ResourceExhausted</c> statuses, the deadline and
/// the caller's cancellation reach the server's token and answer <c>DeadlineExceeded</c>/<c>Cancelled</c>, headers are
/// copied with lower-case names, no server at an address answers <c>Unavailable</c>, and a handler's exception maps
/// as grpc-dotnet maps it. The service behind it is the same object the gRPC server serves (same checks, same codes).
/// Not modelled: HTTP/2 framing, header order on the wire, per-connection stream limits and the connection-level
/// <see cref="ServerLimits"/> (no connections, no IP addresses).
/// </summary>
public sealed class InMemoryTransport : IClientTransport, IServerTransport
{
    private readonly ConcurrentDictionary<(string Ip, int Port), Binding> _bindings = new();
    private int _nextPort = 40000;

    /// <inheritdoc />
    public IPeerConnection Connect(string host, int port, BittensorChannelOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        ArgumentNullException.ThrowIfNull(options);
        return new Connection(this, Normalize(host), port, options);
    }

    /// <inheritdoc />
    public Task<IServerBinding> BindAsync(ServerTransportOptions options, IBittensorService service, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(service);
        cancellationToken.ThrowIfCancellationRequested();
        if (!IPAddress.TryParse(options.Ip, out var ip)) throw new ArgumentException($"'{options.Ip}' is not an IP address", nameof(options));
        var host = Normalize(options.Ip);
        if (options.Port != 0)
        {
            var binding = new Binding(this, (host, options.Port), new IPEndPoint(ip, options.Port), options, service);
            if (!_bindings.TryAdd((host, options.Port), binding))
                throw new IOException($"Failed to bind to address {options.Ip}:{options.Port}: address already in use.");
            return Task.FromResult<IServerBinding>(binding);
        }
        while (true)
        {
            var port = Interlocked.Increment(ref _nextPort);
            if (port > 65535) throw new IOException("no free in-memory port left");
            var binding = new Binding(this, (host, port), new IPEndPoint(ip, port), options, service);
            if (_bindings.TryAdd((host, port), binding)) return Task.FromResult<IServerBinding>(binding);
        }
    }

    private static string Normalize(string host)
    {
        var h = host.Trim('[', ']');
        return string.Equals(h, "localhost", StringComparison.OrdinalIgnoreCase) ? "127.0.0.1" : h;
    }

    private bool TryFind(string host, int port, out Binding binding) =>
        _bindings.TryGetValue((host, port), out binding!) || _bindings.TryGetValue(("0.0.0.0", port), out binding!) || _bindings.TryGetValue(("::", port), out binding!);

    private static RpcException Error(StatusCode code, string detail) => new(new Status(code, detail));

    private sealed class Connection(InMemoryTransport network, string host, int port, BittensorChannelOptions options) : IPeerConnection
    {
        private volatile bool _disposed;

        public async Task<TensorMessage> CallAsync(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline,
            CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ArgumentNullException.ThrowIfNull(request);
            var bytes = request.ToByteArray();
            if (options.MaxSendMessageSize is { } maxSend && bytes.Length > maxSend) throw Error(StatusCode.ResourceExhausted, TransportStatus.SendTooLarge);
            if (cancellationToken.IsCancellationRequested) throw Error(StatusCode.Cancelled, TransportStatus.Cancelled);
            using var call = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            if (deadline != DateTime.MaxValue)
            {
                var left = deadline.ToUniversalTime() - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) throw Error(StatusCode.DeadlineExceeded, TransportStatus.DeadlineExceeded);
                call.CancelAfter(left);
            }
            if (!network.TryFind(host, port, out var binding) || !binding.IsOpen)
                throw Error(StatusCode.Unavailable, $"Error connecting to subchannel: no in-memory server at {host}:{port}.");
            byte[] answer;
            try
            {
                answer = await binding.ServeAsync(method, bytes, Copy(headers), deadline, call.Token).WaitAsync(call.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (call.IsCancellationRequested)
            {
                throw cancellationToken.IsCancellationRequested
                    ? Error(StatusCode.Cancelled, TransportStatus.Cancelled)
                    : Error(StatusCode.DeadlineExceeded, TransportStatus.DeadlineExceeded);
            }
            if (options.MaxReceiveMessageSize is { } maxReceive && answer.Length > maxReceive)
                throw Error(StatusCode.ResourceExhausted, TransportStatus.ReceiveTooLarge);
            return TensorMessage.Parser.ParseFrom(answer);
        }

        public void Dispose() => _disposed = true;

        private static Metadata Copy(Metadata headers)
        {
            var copy = new Metadata();
            if (headers is null) return copy;
            foreach (var e in headers)
            {
                if (e.IsBinary) copy.Add(e.Key, e.ValueBytes);
                else copy.Add(e.Key, e.Value);
            }
            return copy;
        }
    }

    private sealed class Binding(InMemoryTransport network, (string Ip, int Port) key, IPEndPoint endpoint, ServerTransportOptions options, IBittensorService service) : IServerBinding
    {
        private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _running;
        private volatile bool _stopped;

        public IPEndPoint Endpoint { get; } = endpoint;

        public bool IsOpen => !_stopped;

        private void Refused(BittensorMethod method, StatusCode code, string reason)
        {
            try
            {
                service.OnRefused(new TransportRefusal(method, code, reason));
            }
            catch (Exception)
            {
                // Counting must not change the answer.
            }
        }

        public async Task<byte[]> ServeAsync(BittensorMethod method, byte[] requestBytes, Metadata headers, DateTime deadline, CancellationToken token)
        {
            Interlocked.Increment(ref _running);
            try
            {
                if (_stopped) throw Error(StatusCode.Unavailable, "the in-memory server stopped");
                // The server runs the call on its own thread, as Kestrel does, not on the caller's stack.
                await Task.Yield();
                // Headers first, as the Kestrel transport does: a refused call's body is neither size-checked nor parsed.
                HeaderDecision decision;
                try
                {
                    // Calls in flight, as the network transports count them (this one included): over the limit the
                    // service's overload answer, unchecked and unparsed.
                    var held = options.MaxCallsInFlight;
                    decision = held > 0 && Volatile.Read(ref _running) > held
                        ? service.Overloaded(method, held)
                        : await service.CheckHeadersAsync(method, headers, token).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    Refused(method, StatusCode.Unknown, RefusalReasons.CheckFailed);
                    throw Error(StatusCode.Unknown, TransportStatus.HandlerThrew);
                }
                if (decision.Refusal is { } refusal) throw new RpcException(refusal);
                if (decision.Answer is { } early) return Send(early);
                var limit = options.ReceiveLimit(method);
                if (requestBytes.Length > limit || requestBytes.Length > options.MaxReceiveMessageSize)
                    Refused(method, StatusCode.ResourceExhausted, RefusalReasons.MessageSize);
                if (requestBytes.Length > options.MaxReceiveMessageSize) throw Error(StatusCode.ResourceExhausted, TransportStatus.ReceiveTooLarge);
                if (requestBytes.Length > limit) throw Error(StatusCode.ResourceExhausted, TransportStatus.ForwardTooLarge(requestBytes.Length, limit));
                TensorMessage request;
                try
                {
                    request = TensorMessage.Parser.ParseFrom(requestBytes);
                }
                catch (InvalidProtocolBufferException)
                {
                    throw Error(StatusCode.Internal, "Failed to deserialize request message.");
                }
                TensorMessage response;
                try
                {
                    response = await service.HandleAsync(method, request, new InboundCall(headers, deadline, token, decision.Admission)).ConfigureAwait(false);
                }
                catch (RpcException e)
                {
                    throw new RpcException(e.Status, e.Trailers);
                }
                catch (Exception)
                {
                    throw Error(StatusCode.Unknown, TransportStatus.HandlerThrew);
                }
                return Send(response);
            }
            finally
            {
                if (Interlocked.Decrement(ref _running) == 0 && _stopped) _drained.TrySetResult();
            }
        }

        private byte[] Send(TensorMessage response)
        {
            var bytes = response.ToByteArray();
            if (bytes.Length > options.MaxSendMessageSize) throw Error(StatusCode.ResourceExhausted, TransportStatus.SendTooLarge);
            return bytes;
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            if (_stopped) return;
            _stopped = true;
            network._bindings.TryRemove(KeyValuePair.Create(key, this));
            if (Volatile.Read(ref _running) == 0) _drained.TrySetResult();
            try
            {
                await _drained.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await StopAsync(cts.Token).ConfigureAwait(false);
        }
    }
}
