using Bittensor.Protocol;
using Grpc.Net.Client;

namespace Bittensor.Actors.Dendrite;

/// <summary>Builds the Protocol-layer pieces behind the dendrite's seams.</summary>
internal static class DendriteSeams
{
    /// <summary>One channel per endpoint, from the Protocol layer's factory (auth headers first, no user-agent by default).</summary>
    public static GrpcChannel CreateChannel(EndpointInfo endpoint, DendriteSettings settings) =>
        BittensorChannelFactory.Create(endpoint.Ip, endpoint.Port, BittensorChannelOptions.Default with
        {
            MaxSendMessageSize = settings.PeerMaxMessageSize,
            MaxReceiveMessageSize = settings.MaxResponseSize,
            ConnectTimeout = settings.Timeout < TimeSpan.FromSeconds(5) ? settings.Timeout : TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = settings.IdleTimeout,
        });
}
