using System.Net;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using WireService = Bittensor.Protocol.Wire.Bittensor;

namespace Bittensor.Actors.Axon;

/// <summary>
/// The 2021 gRPC server transport: Kestrel, HTTP/2 cleartext only, the <c>Bittensor</c> service mapped onto an
/// <see cref="IBittensorService"/>. Byte-compatible with 2021 Python dendrites. Its in-memory twin is
/// <see cref="InMemoryTransport"/>; both pass the same conformance suite (tests/Bittensor.Actors.Tests/Transport).
/// </summary>
public sealed class KestrelServerTransport : IServerTransport
{
    private readonly ILoggerProvider? _logs;
    private readonly LogLevel _level;

    /// <summary>A Kestrel transport whose server logs (at <paramref name="level"/> and above) go to <paramref name="logs"/>.</summary>
    public KestrelServerTransport(ILoggerProvider? logs = null, LogLevel level = LogLevel.Warning)
    {
        _logs = logs;
        _level = level;
    }

    /// <inheritdoc />
    public async Task<IServerBinding> BindAsync(ServerTransportOptions options, IBittensorService service, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(service);
        // The empty builder reads no appsettings.json and sets up no file watchers (inotify instances are limited to
        // 128 per user, and one host process may run hundreds of axons); everything comes from the options.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(_level);
        if (_logs is not null) builder.Logging.AddProvider(_logs);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Parse(options.Ip), options.Port, l => l.Protocols = HttpProtocols.Http2);
            // gRPC's own limit (below) reads the 5-byte length prefix and answers RESOURCE_EXHAUSTED before buffering;
            // Kestrel's body limit would only abort the stream with a less useful status.
            k.Limits.MaxRequestBodySize = null;
            // Admission (the service) decides overload; do not let the per-connection stream cap refuse calls first.
            k.Limits.Http2.MaxStreamsPerConnection = options.MaxConcurrentCalls;
        });
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = options.MaxReceiveMessageSize;
            o.MaxSendMessageSize = options.MaxSendMessageSize;
            o.EnableDetailedErrors = false;
        });
        builder.Services.AddSingleton(new GrpcAdapter(service));
        var app = builder.Build();
        app.MapGrpcService<GrpcAdapter>();
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("Kestrel reported no address");
        var uri = new Uri(address.Replace("[::]", "[::1]", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
        return new Binding(app, new IPEndPoint(IPAddress.Parse(options.Ip), uri.Port));
    }

    /// <summary>The generated gRPC base mapped onto the transport-neutral service.</summary>
    internal sealed class GrpcAdapter(IBittensorService service) : WireService.BittensorBase
    {
        public override Task<TensorMessage> Forward(TensorMessage request, ServerCallContext context) =>
            service.HandleAsync(BittensorMethod.Forward, request, new InboundCall(context.RequestHeaders, context.Deadline, context.CancellationToken));

        public override Task<TensorMessage> Backward(TensorMessage request, ServerCallContext context) =>
            service.HandleAsync(BittensorMethod.Backward, request, new InboundCall(context.RequestHeaders, context.Deadline, context.CancellationToken));
    }

    private sealed class Binding(WebApplication app, IPEndPoint endpoint) : IServerBinding
    {
        private int _disposed;

        public IPEndPoint Endpoint { get; } = endpoint;

        public Task StopAsync(CancellationToken cancellationToken) => app.StopAsync(cancellationToken);

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }
}
