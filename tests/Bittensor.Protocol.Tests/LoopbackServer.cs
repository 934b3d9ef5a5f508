using System.Net;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bittensor.Protocol.Tests;

/// <summary>
/// A real Kestrel gRPC server on loopback (HTTP/2 cleartext) running a minimal Bittensor service: it
/// authenticates with <see cref="RequestVerifier"/>, decodes tensors[0] with the codec and answers a
/// float32 [batch, seq, 1024] tensor whose values are token id + position / 1024.
/// </summary>
internal sealed class LoopbackServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LoopbackServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; private set; }

    public static async Task<LoopbackServer> StartAsync(RequestVerifier verifier)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(verifier);
        builder.Services.AddSingleton<ServiceState>();
        var app = builder.Build();
        app.MapGrpcService<TestService>();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new LoopbackServer(app, new Uri(address).Port);
    }

    public ServiceState State => _app.Services.GetRequiredService<ServiceState>();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    internal sealed class ServiceState
    {
        public List<string> LastHeaderNames { get; } = [];
    }

    internal sealed class TestService(RequestVerifier verifier, ServiceState state) : Wire.Bittensor.BittensorBase
    {
        public override Task<TensorMessage> Forward(TensorMessage request, ServerCallContext context)
        {
            lock (state.LastHeaderNames)
            {
                state.LastHeaderNames.Clear();
                state.LastHeaderNames.AddRange(context.RequestHeaders.Select(h => h.Key));
            }
            var auth = verifier.Verify(context.RequestHeaders);
            if (!auth.IsAccepted) throw new RpcException(new Status(StatusCode.Unauthenticated, auth.Reason));
            var reply = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = "server" };
            if (request.Tensors.Count == 0)
            {
                reply.ReturnCode = ReturnCode.EmptyRequest;
                return Task.FromResult(reply);
            }
            var decoded = TensorCodec.Decode(request.Tensors[0]);
            if (!decoded.IsSuccess)
            {
                reply.ReturnCode = decoded.RequestCode;
                reply.Message = decoded.Message;
                return Task.FromResult(reply);
            }
            var tokens = decoded.Tensor.ToInt64Array();
            var output = new float[tokens.Length * 1024];
            for (var i = 0; i < tokens.Length; i++)
                for (var j = 0; j < 1024; j++) output[i * 1024 + j] = tokens[i] + j / 1024f;
            var shape = decoded.Tensor.Shape;
            reply.Tensors.Add(TensorCodec.ToTensor(output, [shape[0], shape[1], 1024], Modality.Tensor));
            return Task.FromResult(reply);
        }
    }
}
