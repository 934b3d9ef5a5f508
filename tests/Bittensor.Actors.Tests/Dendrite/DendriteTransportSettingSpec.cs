using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Tests.Axon;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using DendriteClient = Bittensor.Actors.Dendrite.Dendrite;

namespace Bittensor.Actors.Tests.Dendrite;

/// <summary>
/// <c>bittensor.dendrite.transport</c> decides the client transport of every dendrite built from the settings the roles
/// use (<c>BittensorRuntime.Dendrite</c> → <c>DendriteActor.Props</c>, as <c>ValidatorNeuron</c> and the hosting do):
/// lean by default, grpc when asked, anything else refused naming the key. Which transport dialled the axon is read from
/// the lean client's per-port connection count (each axon has its own port 0 binding).
/// </summary>
public sealed class DendriteTransportSettingSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    private const int Dim = 8;

    private static DendriteSettings FromHocon(string hocon) =>
        DendriteSettings.Create(BittensorRuntime.Section(ConfigurationFactory.ParseString(hocon).WithFallback(BittensorRuntime.ReferenceConfig),
            DendriteSettings.SectionPath));

    private async Task<(ReturnCode Code, int LeanConnections)> ForwardOnce(DendriteSettings settings)
    {
        var (code, lean, _) = await ForwardOnceCounting(settings);
        return (code, lean);
    }

    // Also counts the lean connections made on the client's own I/O loop (bittensor.dendrite.io = loop).
    private async Task<(ReturnCode Code, int LeanConnections, int LoopConnections)> ForwardOnceCounting(DendriteSettings settings)
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        // The count is process-wide by port number (an earlier test's server may have had this ephemeral port): this call's own.
        var before = LeanClientTransport.ConnectionsTo(port);
        var loopBefore = LeanClientTransport.LoopConnectionsTo(port);
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), settings with { NetworkDim = Dim, Timeout = TimeSpan.FromSeconds(30) });
        var result = await dendrite.ForwardText([new EndpointInfo(Bob.ToSs58(), "127.0.0.1", port)], new long[,] { { 1, 2, 3 } });
        return (result[0].Code, LeanClientTransport.ConnectionsTo(port) - before, LeanClientTransport.LoopConnectionsTo(port) - loopBefore);
    }

    [Fact]
    public async Task The_roles_settings_choose_the_lean_client_by_default_and_it_answers()
    {
        var runtime = BittensorRuntime.Get(Sys).Dendrite; // what ValidatorNeuron takes when no settings are given

        var (code, lean) = await ForwardOnce(runtime);

        Assert.Equal("lean", runtime.Transport);
        Assert.Same(LeanClientTransport.Instance, runtime.ClientTransport);
        Assert.Equal(ReturnCode.Success, code);
        Assert.Equal(1, lean);
    }

    [Fact]
    public async Task Transport_grpc_uses_grpc_dotnet_and_never_the_lean_client()
    {
        var settings = FromHocon("bittensor.dendrite.transport = grpc");

        var (code, lean) = await ForwardOnce(settings);

        Assert.Same(GrpcClientTransport.Instance, settings.ClientTransport);
        Assert.Equal(ReturnCode.Success, code);
        Assert.Equal(0, lean);
    }

    [Fact]
    public void An_unknown_transport_is_refused_naming_the_key()
    {
        var error = Assert.Throws<ConfigurationException>(() => FromHocon("bittensor.dendrite.transport = h3"));

        Assert.Contains("bittensor.dendrite.transport", error.Message);
    }

    [Fact]
    public async Task Io_loop_puts_the_dendrites_lean_connections_on_the_clients_own_loop_and_they_answer()
    {
        var settings = FromHocon("bittensor.dendrite.io = loop");

        var (code, lean, loop) = await ForwardOnceCounting(settings);

        Assert.Equal("loop", settings.Io);
        Assert.Equal(ReturnCode.Success, code);
        Assert.Equal(1, lean);
        Assert.Equal(ClientIoLoop.Supported ? 1 : 0, loop); // elsewhere the setting falls back to .NET's sockets
    }

    [Fact]
    public async Task Io_sockets_keeps_the_dendrites_lean_connections_on_dotnets_sockets()
    {
        var settings = FromHocon("bittensor.dendrite.io = sockets");

        var (code, lean, loop) = await ForwardOnceCounting(settings);

        Assert.Equal(ReturnCode.Success, code);
        Assert.Equal(1, lean);
        Assert.Equal(0, loop);
    }

    [Fact]
    public async Task The_roles_default_io_is_the_reference_configurations_and_it_answers()
    {
        var runtime = BittensorRuntime.Get(Sys).Dendrite;

        var (code, lean, loop) = await ForwardOnceCounting(runtime);

        Assert.Equal(ReturnCode.Success, code);
        Assert.Equal(1, lean);
        Assert.Equal(runtime.Io == "loop" && ClientIoLoop.Supported ? 1 : 0, loop);
    }

    [Fact]
    public async Task Io_batch_sends_a_rounds_requests_from_the_loop_and_an_endpoint_that_refuses_its_call_does_not_hold_the_others()
    {
        var settings = FromHocon("bittensor.dendrite.io = batch") with
        {
            NetworkDim = Dim,
            Timeout = TimeSpan.FromSeconds(30),
            FailuresBeforeBackoff = 1,
            BackoffMin = TimeSpan.FromMinutes(10),
            BackoffMax = TimeSpan.FromMinutes(10),
        };
        var (_, a) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var (_, b) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        int dead;
        using (var gone = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            gone.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
            dead = ((System.Net.IPEndPoint)gone.LocalEndPoint!).Port; // nothing listens there once closed: refused
        }
        var (batchA, batchB) = (LeanClientTransport.BatchConnectionsTo(a), LeanClientTransport.BatchConnectionsTo(b));
        var endpoints = new[]
        {
            new EndpointInfo(Bob.ToSs58(), "127.0.0.1", a),
            new EndpointInfo(Alice.ToSs58(), "127.0.0.1", b),
            new EndpointInfo("5DeadEndpoint", "127.0.0.1", dead),
        };
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), settings);
        var fallback = ClientIoLoop.BatchFallback;
        ClientIoLoop.BatchFallback = TimeSpan.FromMinutes(10); // only the round's last arrival may send its requests
        try
        {
            var first = await dendrite.ForwardText(endpoints, new long[,] { { 1, 2, 3 } });
            Assert.Equal([ReturnCode.Success, ReturnCode.Success, ReturnCode.Unavailable], first.Select(r => r.Code));
            // The dead endpoint is backed off now: its actor refuses its call of the next round without sending; the
            // others are answered (a request the batch held goes out only with the round's last arrival, the fallback
            // being 10 minutes; one written later from a continuation, outside the batch, wakes the loop itself).
            var second = await dendrite.ForwardText(endpoints, new long[,] { { 4, 5, 6 } });
            Assert.Equal([ReturnCode.Success, ReturnCode.Success, ReturnCode.Backoff], second.Select(r => r.Code));
        }
        finally
        {
            ClientIoLoop.BatchFallback = fallback;
        }
        Assert.Equal("batch", settings.Io);
        var batched = ClientIoLoop.Supported ? 1 : 0; // elsewhere the setting falls back to .NET's sockets
        Assert.Equal((batched, batched), (LeanClientTransport.BatchConnectionsTo(a) - batchA, LeanClientTransport.BatchConnectionsTo(b) - batchB));
    }

    [Fact]
    public void An_unknown_io_is_refused_naming_the_key()
    {
        var error = Assert.Throws<ConfigurationException>(() => FromHocon("bittensor.dendrite.io = uring"));

        Assert.Contains("bittensor.dendrite.io", error.Message);
    }
}
