using System.Globalization;
using System.Net.Http;
using Grpc.Net.Client;

namespace Bittensor.Protocol;

/// <summary>
/// Creates gRPC channels to peers: HTTP/2 cleartext (<c>http://host:port</c>, as 2021 axons serve), one
/// SocketsHttpHandler per channel with multiple HTTP/2 connections allowed and keep-alive pings, wrapped in
/// <see cref="AuthHeadersFirstHandler"/> so a 2021 axon finds the bittensor headers at positions 0–2.
/// A channel is meant to live as long as its endpoint; dispose it to close the connections.
/// </summary>
public static class BittensorChannelFactory
{
    /// <summary>A channel to <c>http://host:port</c>.</summary>
    public static GrpcChannel Create(string host, int port, BittensorChannelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        var literal = host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]" : host;
        return Create(new Uri($"http://{literal}:{port.ToString(CultureInfo.InvariantCulture)}"), options);
    }

    /// <summary>A channel to an <c>http://</c> address.</summary>
    public static GrpcChannel Create(Uri address, BittensorChannelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        options ??= BittensorChannelOptions.Default;
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = CreateHandler(options),
            DisposeHttpClient = true,
            MaxSendMessageSize = options.MaxSendMessageSize,
            MaxReceiveMessageSize = options.MaxReceiveMessageSize,
        });
    }

    /// <summary>The HTTP handler chain the channels use (for callers that build their own GrpcChannel).</summary>
    public static HttpMessageHandler CreateHandler(BittensorChannelOptions? options = null)
    {
        options ??= BittensorChannelOptions.Default;
        var sockets = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            KeepAlivePingDelay = options.KeepAlivePingDelay,
            KeepAlivePingTimeout = options.KeepAlivePingTimeout,
            KeepAlivePingPolicy = options.KeepAlivePingWithoutCalls ? HttpKeepAlivePingPolicy.Always : HttpKeepAlivePingPolicy.WithActiveRequests,
            InitialHttp2StreamWindowSize = options.InitialHttp2StreamWindowSize,
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionIdleTimeout = options.PooledConnectionIdleTimeout,
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
        };
        return new AuthHeadersFirstHandler(sockets, options.DropUserAgent);
    }
}
