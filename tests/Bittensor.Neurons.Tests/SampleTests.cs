using Bittensor.Chain.Local;
using Bittensor.Samples.Client;
using Bittensor.Samples.EmbeddedHost;
using Bittensor.Samples.Server;
using Bittensor.Samples.Validator;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Bittensor.Neurons.Tests;

public sealed class SampleTests : IAsyncLifetime
{
    private readonly string _wallets = Directory.CreateTempSubdirectory("bt-samples-").FullName;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromMinutes(3));
    private Localnet _localnet = null!;
    private Task _blocks = Task.CompletedTask;
    private readonly CancellationTokenSource _stopBlocks = new();

    public Task InitializeAsync()
    {
        _localnet = Localnet.Open(new LocalnetOptions { Name = "samples" });
        // The samples share one in-memory chain; it produces a block every 20 ms so their calls get included.
        _blocks = new LocalnetBlockProducer(_localnet, TimeSpan.FromMilliseconds(20)).RunAsync(null, _stopBlocks.Token);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stopBlocks.CancelAsync();
        try
        {
            await _blocks;
        }
        catch (OperationCanceledException)
        {
        }
        await _localnet.DisposeAsync();
        Directory.Delete(_wallets, recursive: true);
        _timeout.Dispose();
        _stopBlocks.Dispose();
    }

    [Fact]
    public async Task The_cluster_miner_sample_serves_signed_calls_through_its_front_with_every_worker() =>
        // Front + 2 worker ActorSystems on loopback; exit 0 = every forward+backward pair succeeded and both replicas served.
        Assert.Equal(0, await Bittensor.Samples.ClusterMiner.ClusterMinerSample.RunAsync(["--workers", "2", "--calls", "4"], _timeout.Token));

    [Fact]
    public async Task The_server_client_validator_and_embedded_host_samples_run_against_one_localnet()
    {
        var console = new StringWriter();
        // Console.Out is the process's: the samples' output is kept for the failure messages, and given back after.
        var stdout = Console.Out;
        Console.SetOut(TextWriter.Synchronized(console));
        try
        {
            await RunSamplesAsync(console);
        }
        finally
        {
            Console.SetOut(stdout);
        }
    }

    private async Task RunSamplesAsync(StringWriter console)
    {
        var ct = _timeout.Token;
        using var stopServer = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var serving = new TaskCompletionSource<ushort>(TaskCreationOptions.RunContinuationsAsynchronously);
        var serverState = Path.Combine(_wallets, "state-server");
        var server = ServerSample.RunAsync(["--wallet.path", _wallets, "--neuron.full_path", serverState], _localnet, uid => serving.TrySetResult(uid), stopServer.Token);
        if (await Task.WhenAny(serving.Task, server).WaitAsync(ct) == server) await server; // surfaces the server sample's error
        var uid = await serving.Task;

        Assert.True(await ClientSample.RunAsync(["--wallet.path", _wallets], _localnet, ct) == 0, console.ToString());
        Assert.True(await ValidatorSample.RunAsync(["--wallet.path", _wallets], _localnet, ct) == 0, console.ToString());

        using (var host = EmbeddedHostSample.Build(["--wallet.path", _wallets, "--neuron.full_path", Path.Combine(_wallets, "state-embedded")], _localnet))
        {
            await host.StartAsync(ct);
            var service = host.Services.GetServices<IHostedService>().OfType<ServerService>().Single();
            Assert.NotNull(service.Server);
            Assert.NotEqual(uid, service.Server.Uid);
            // The service took the chain and metagraph actors from the ActorRegistry that WithBittensor filled.
            var registry = host.Services.GetRequiredService<Akka.Hosting.ActorRegistry>();
            Assert.True(registry.TryGet<Bittensor.Actors.Hosting.ChainActorKey>(out var chain));
            Assert.Equal("/user/bittensor/chain", chain.Path.ToStringWithoutAddress());
            Assert.True(service.MetagraphNeurons >= 2, $"the registry's metagraph saw {service.MetagraphNeurons} neurons");
            await host.StopAsync(ct);
        }

        await stopServer.CancelAsync();
        Assert.Equal(0, await server.WaitAsync(ct));
        // The server sample kept the nonces it accepted from the client sample in its state folder (replay-safe restart).
        Assert.Contains(" ", File.ReadAllText(Path.Combine(serverState, "nonces")).Split('\n')[1], StringComparison.Ordinal);
        var neurons = await _localnet.GetNeuronsAsync(1, ct);
        Assert.True(neurons.Count >= 3, $"expected the server, validator and embedded server registered, found {neurons.Count}");
    }
}
