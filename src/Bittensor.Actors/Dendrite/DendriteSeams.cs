using Grpc.Net.Client;

namespace Bittensor.Actors.Dendrite;

/// <summary>Builds the Protocol-layer pieces behind the dendrite's seams.</summary>
internal static class DendriteSeams
{
    public static GrpcChannel CreateChannel(EndpointInfo endpoint, DendriteSettings settings) =>
        GrpcChannel.ForAddress(endpoint.Address, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                KeepAlivePingDelay = TimeSpan.FromSeconds(60),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
                ConnectTimeout = settings.Timeout,
            },
            MaxReceiveMessageSize = settings.MaxResponseSize,
            MaxSendMessageSize = settings.PeerMaxMessageSize,
            DisposeHttpClient = true,
        });
}
