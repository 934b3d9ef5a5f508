using Bittensor.Core.Domain;
using Bittensor.Protocol;

namespace Bittensor.Actors.Dendrite;

/// <summary>Builds the Protocol-layer pieces behind the dendrite's seams.</summary>
internal static class DendriteSeams
{
    /// <summary>
    /// One connection per endpoint through the client transport (gRPC: auth headers first, no user-agent by default), with
    /// the settings' keep-alive (both transports ping the same way: lean by its own PINGs, grpc through SocketsHttpHandler).
    /// </summary>
    public static IPeerConnection Connect(IClientTransport transport, EndpointInfo endpoint, DendriteSettings settings) =>
        transport.Connect(endpoint.Ip, endpoint.Port, BittensorChannelOptions.Default with
        {
            MaxSendMessageSize = settings.PeerMaxMessageSize,
            MaxReceiveMessageSize = settings.MaxResponseSize,
            ConnectTimeout = settings.Timeout < TimeSpan.FromSeconds(5) ? settings.Timeout : TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = settings.IdleTimeout,
            KeepAlivePingDelay = settings.KeepAliveTime == TimeSpan.Zero ? Timeout.InfiniteTimeSpan : settings.KeepAliveTime,
            KeepAlivePingTimeout = settings.KeepAliveTimeout,
            KeepAlivePingWithoutCalls = settings.KeepAliveWithoutCalls,
            ClientIoLoop = settings.Io is "loop" or "batch",
            ClientIoBatch = settings.Io == "batch",
        });
}
