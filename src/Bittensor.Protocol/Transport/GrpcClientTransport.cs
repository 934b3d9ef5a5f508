using Bittensor.Protocol.Wire;
using Grpc.Core;
using Grpc.Net.Client;
using WireClient = Bittensor.Protocol.Wire.Bittensor.BittensorClient;

namespace Bittensor.Protocol;

/// <summary>
/// The 2021 gRPC client transport: one <see cref="GrpcChannel"/> per peer from <see cref="BittensorChannelFactory"/>
/// (HTTP/2 cleartext, multiplexed, auth headers first, no user-agent). Byte-compatible with 2021 Python axons.
/// </summary>
public sealed class GrpcClientTransport : IClientTransport
{
    /// <summary>The single instance (the transport holds no state; connections own their channels).</summary>
    public static readonly GrpcClientTransport Instance = new();

    private GrpcClientTransport()
    {
    }

    /// <inheritdoc />
    public IPeerConnection Connect(string host, int port, BittensorChannelOptions options) =>
        new Connection(BittensorChannelFactory.Create(host, port, options));

    private sealed class Connection(GrpcChannel channel) : IPeerConnection
    {
        private readonly WireClient _client = new(channel);

        public async Task<TensorMessage> CallAsync(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline,
            CancellationToken cancellationToken)
        {
            using var call = method == BittensorMethod.Backward
                ? _client.BackwardAsync(request, headers, deadline, cancellationToken)
                : _client.ForwardAsync(request, headers, deadline, cancellationToken);
            return await call.ResponseAsync.ConfigureAwait(false);
        }

        public void Dispose() => channel.Dispose();
    }
}
