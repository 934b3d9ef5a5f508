using Akka.Actor;
using Akka.TestKit.Xunit2;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Metagraph;
using Bittensor.Chain;
using Bittensor.Core.Domain;
using Bittensor.Models;
using Bittensor.Neurons.Demo;
using Bittensor.Actors.ModelHost;
using Bittensor.Neurons.Roles;
using Bittensor.Protocol.Wire;
using Xunit.Abstractions;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// Stake priority and the blacklist rules through the shipped server role: a <see cref="ServerNeuron"/> on an in-memory
/// localnet, its axon fed by the role's own MetagraphActor, real signed callers over gRPC (one dendrite per hotkey).
/// The model is a gate the test opens, so the service order is decided by the queue, not by timing.
/// </summary>
public sealed class ServerStakeTests(ITestOutputHelper output) : TestKit(TestConfig.Hocon, output: output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(2);
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-server-stake-").FullName;
    private readonly List<Dendrite> _dendrites = [];

    [Fact]
    public async Task Under_a_full_queue_a_staked_caller_overtakes_the_unstaked_callers_waiting_before_it()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var ct = timeout.Token;
        await using var subnet = await LocalSubnet.StartAsync(Sys, tempo: 100, seed: 21, ct);
        var first = await Caller(subnet, 0m, ct);
        var early1 = await Caller(subnet, 0m, ct);
        var early2 = await Caller(subnet, 0m, ct);
        var staked = await Caller(subnet, 500m, ct);
        var model = new GatedModel();
        var server = await StartServer(subnet, "127.0.0.30", s => s with { MaxWorkers = 1, QueueCapacity = 8 }, model.Handlers(1024), ct);
        try
        {
            var stats = await server.Axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait, ct);
            Assert.True(stats.StakesKnown);
            Assert.True(stats.RegisteredHotkeys >= 5, $"the axon's snapshot holds {stats.RegisteredHotkeys} hotkeys");

            // The axon hands each call straight to its model host; the host's queue is the one stake-ordered queue.
            var host = await Sys.ActorSelection(server.Axon.Path / "model").ResolveOne(Wait);
            var calls = new List<Task<EndpointResult>> { Call(server, first) };
            await model.FirstEntered.WaitAsync(ct);
            foreach (var keys in new[] { early1, early2, staked })
            {
                calls.Add(Call(server, keys));
                var expected = calls.Count - 1;
                await AwaitAssertAsync(async () =>
                    Assert.Equal(expected, (await host.Ask<QueueStatus>(GetQueueStatus.Instance, Wait, ct)).Waiting), Wait);
            }
            Assert.Equal(4, (await server.Axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait, ct)).Waiting);
            model.Open();
            foreach (var c in calls) Assert.Equal(ReturnCode.Success, (await c.WaitAsync(ct)).Code);

            Assert.Equal([first.HotkeySs58, staked.HotkeySs58, early1.HotkeySs58, early2.HotkeySs58], model.Served);
        }
        finally
        {
            model.Open();
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task With_registered_only_an_unregistered_caller_is_refused_and_a_registered_one_served()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var ct = timeout.Token;
        await using var subnet = await LocalSubnet.StartAsync(Sys, tempo: 100, seed: 22, ct);
        var registered = await Caller(subnet, 0m, ct);
        var stranger = subnet.NewKeys();
        var server = await StartServer(subnet, "127.0.0.31", s => s with { BlacklistRegisteredOnly = true }, DemoModels.Echo(1024), ct);
        try
        {
            var refused = await Call(server, stranger);
            Assert.Equal(ReturnCode.SenderUnknown, refused.Code);
            Assert.Contains("not registered", refused.Message, StringComparison.Ordinal);
            Assert.Equal(ReturnCode.Success, (await Call(server, registered)).Code);

            // Once the stranger registers and the server's metagraph syncs, it is served.
            await ChainOps.EnsureRegisteredAsync(subnet.Chain, subnet.Netuid, stranger, ct);
            await SyncAsync(server, ct);
            Assert.Equal(ReturnCode.Success, (await Call(server, stranger)).Code);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Min_stake_refuses_a_caller_below_it_until_its_stake_reaches_it()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var ct = timeout.Token;
        await using var subnet = await LocalSubnet.StartAsync(Sys, tempo: 100, seed: 23, ct);
        var rich = await Caller(subnet, 100m, ct);
        var poor = await Caller(subnet, 0m, ct);
        var server = await StartServer(subnet, "127.0.0.32", s => s with { BlacklistMinStake = 50 }, DemoModels.Echo(1024), ct);
        try
        {
            Assert.Equal(ReturnCode.Success, (await Call(server, rich)).Code);
            var refused = await Call(server, poor);
            Assert.Equal(ReturnCode.SenderUnknown, refused.Code);
            Assert.Contains("minimum of 50 TAO", refused.Message, StringComparison.Ordinal);

            await ChainOps.SubmitOrThrowAsync(subnet.Chain, new AddStake(poor.HotkeyAccount, Balance.FromTao(60m)), poor.Coldkey!, ct);
            await SyncAsync(server, ct);
            Assert.Equal(ReturnCode.Success, (await Call(server, poor)).Code);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    /// <summary>A registered hotkey with <paramref name="stakeTao"/> staked from its coldkey.</summary>
    private static async Task<NeuronKeys> Caller(LocalSubnet subnet, decimal stakeTao, CancellationToken ct)
    {
        var keys = subnet.NewKeys();
        await ChainOps.EnsureRegisteredAsync(subnet.Chain, subnet.Netuid, keys, ct);
        if (stakeTao > 0)
            await ChainOps.SubmitOrThrowAsync(subnet.Chain, new AddStake(keys.HotkeyAccount, Balance.FromTao(stakeTao)), keys.Coldkey!, ct);
        return keys;
    }

    private async Task<ServerNeuron> StartServer(LocalSubnet subnet, string ip, Func<AxonSettings, AxonSettings> axon, AxonHandlers handlers,
        CancellationToken ct)
    {
        var settings = axon(AxonSettings.Default with { Ip = ip, Port = 0, CallTimeout = Wait });
        return await ServerNeuron.StartAsync(Sys, subnet.Chain, subnet.Netuid, subnet.NewKeys(), new ServerOptions
        {
            AxonIp = ip,
            Axon = settings,
            Handlers = handlers,
            Metagraph = MetagraphSettings.Default with { Path = _dir, Save = false },
            // The nonce store in this test's folder, never under ~/.bittensor.
            StatePath = Path.Combine(_dir, "neurons", ip),
        }, ct);
    }

    /// <summary>Syncs the server's metagraph; the axon is told before the sync's asker, so the next call sees the new stakes.</summary>
    private static async Task SyncAsync(ServerNeuron server, CancellationToken ct) =>
        await server.Metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, Wait, ct);

    private Task<EndpointResult> Call(ServerNeuron server, NeuronKeys caller)
    {
        var dendrite = new Dendrite(Sys, caller.Requests, DendriteSettings.Default with { Timeout = Wait });
        _dendrites.Add(dendrite);
        var tokens = new long[1, 4] { { 1, 2, 3, 4 } };
        return dendrite.ForwardText([new EndpointInfo(server.Hotkey, server.Ip, server.Port)], tokens).ContinueWith(t => t.Result[0], TaskScheduler.Default);
    }

    /// <summary>A forward model that waits on a gate the test opens, recording the order callers reached it in.</summary>
    private sealed class GatedModel
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _firstEntered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<string> _served = [];

        public Task FirstEntered => _firstEntered.Task;

        public IReadOnlyList<string> Served
        {
            get { lock (_served) return [.. _served]; }
        }

        public void Open() => _gate.TrySetResult();

        public AxonHandlers Handlers(int networkDim) => new(async (r, ct) =>
        {
            lock (_served) _served.Add(r.CallerHotkey);
            _firstEntered.TrySetResult();
            await _gate.Task.WaitAsync(ct);
            return ModelResponse.Ok(DemoModels.EchoForward(r.Inputs, networkDim));
        });
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (!disposing) return;
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
