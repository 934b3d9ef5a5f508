using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using Bittensor.Actors;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.ModelHost;
using Bittensor.Chain;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;
using Bittensor.Neurons.Roles;
using Bittensor.Protocol.Wire;
using Xunit.Abstractions;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// A clustered server on chain (<c>btcli run server --cluster.role front|worker</c>): two front-capable nodes with the
/// same hotkey and a worker, each its own ActorSystem on loopback, each front node with its own ChainActor on one
/// in-memory localnet. The active front announces its axon on chain; when it dies, the standby's front serves at its
/// own address and announces that on chain, and a signed dendrite reaches the model through it.
/// </summary>
public sealed class ClusterServerTests(ITestOutputHelper output) : TestKit(TestConfig.Hocon, output: output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(3);
    private readonly List<ActorSystem> _nodes = [];

    private static ClusterSettings Settings(params string[] seeds) => ClusterSettings.Default with
    {
        Hostname = "127.0.0.1", Port = 0, SeedNodes = seeds, RegisterInterval = TimeSpan.FromMilliseconds(300), AveragingInterval = TimeSpan.Zero,
    };

    private ActorSystem Node(ClusterSettings settings, string role, string? extra = null)
    {
        var overrides = ConfigurationFactory.ParseString(
            "akka.loglevel = WARNING\nakka.coordinated-shutdown.run-by-clr-shutdown-hook = off\n" + (extra ?? "")).WithFallback(TestConfig.Hocon);
        var node = BittensorCluster.CreateSystem(settings, role, overrides: overrides);
        _nodes.Add(node);
        return node;
    }

    private static IActorRef ChainOn(ActorSystem node, LocalSubnet subnet) =>
        node.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(new NonOwningChainBackend(subnet.Localnet, _ => subnet.Driver.Submitted())),
            SubtensorSettings.Default, () => 0.5), "chain");

    private Akka.TestKit.TestProbe Activations(ActorSystem node)
    {
        var probe = CreateTestProbe(node);
        node.EventStream.Subscribe(probe.Ref, typeof(ClusterFrontActivated));
        return probe;
    }

    /// <summary>
    /// The worker's acknowledgement by the front on <paramref name="front"/>'s node (the worker publishes it when the
    /// front's <c>WorkerRegistered</c> arrives; the front routes to it from then: with a data plane it acknowledges
    /// only once connected); then the front's own table says so.
    /// </summary>
    private static async Task AwaitWorker(Akka.TestKit.TestProbe joined, ActorSystem front, IActorRef router, CancellationToken ct)
    {
        var address = Akka.Cluster.Cluster.Get(front).SelfAddress.ToString();
        await joined.FishForMessageAsync<ClusterWorkerJoinedFront>(j => j.Front == address, Wait, cancellationToken: ct);
        var status = await router.Ask<ClusterFrontStatus>(GetClusterFrontStatus.Instance, Wait, ct);
        Assert.Single(status.Workers, w => w.Reachable && !w.Draining);
    }

    [Fact]
    public async Task The_active_front_serves_its_axon_on_chain_and_after_it_dies_the_standby_announces_its_own()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var ct = timeout.Token;
        await using var subnet = await LocalSubnet.StartAsync(Sys, tempo: 100, seed: 41, ct);
        var keys = subnet.NewKeys();
        var caller = subnet.NewKeys();
        await ChainOps.EnsureRegisteredAsync(subnet.Chain, subnet.Netuid, caller, ct);

        // Node A: the first front-capable node (it dies below without leaving).
        var a = Node(Settings(), ClusterSettings.FrontRole, "akka.coordinated-shutdown.run-by-actor-system-terminate = off");
        var activatedA = Activations(a);
        var frontA = await ClusterServerFront.StartAsync(a, ChainOn(a, subnet), subnet.Netuid, keys,
            new ServerOptions { AxonIp = "127.0.0.40", AxonPort = 0, StatePath = subnet.State("front-a") }, Settings(), ct);
        var routerA = (await activatedA.ExpectMsgAsync<ClusterFrontActivated>(Wait, cancellationToken: ct)).Router;
        var first = await frontA.Announcements.ReadAsync(ct);
        Assert.Null(first.Error);
        var onChain = (await subnet.Localnet.GetNeuronAsync(subnet.Netuid, frontA.Uid, ct))!.Axon;
        Assert.Equal(("127.0.0.40", first.Port), (onChain.IpText, (int)onChain.Port));

        // Node B: a standby front with the same hotkey; a worker hosting the model.
        var seed = Akka.Cluster.Cluster.Get(a).SelfAddress.ToString();
        var b = Node(Settings(seed), ClusterSettings.FrontRole);
        var activatedB = Activations(b);
        var frontB = await ClusterServerFront.StartAsync(b, ChainOn(b, subnet), subnet.Netuid, keys,
            new ServerOptions { AxonIp = "127.0.0.41", AxonPort = 0, StatePath = subnet.State("front-b") }, Settings(seed), ct);
        Assert.Equal(frontA.Uid, frontB.Uid);
        var worker = Node(Settings(seed), ClusterSettings.WorkerRole);
        var joined = CreateTestProbe(worker);
        worker.EventStream.Subscribe(joined.Ref, typeof(ClusterWorkerJoinedFront));
        BittensorCluster.StartWorker(worker, Settings(seed), ModelHostActor.ForHandlers(DemoModels.Echo(1024), 4, 16, TimeSpan.FromSeconds(60)), 20);
        var bUp = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Akka.Cluster.Cluster.Get(b).RegisterOnMemberUp(() => bUp.TrySetResult());
        await bUp.Task.WaitAsync(ct);
        await AwaitWorker(joined, a, routerA, ct);

        var dendrite = new Dendrite(Sys, caller.Requests, DendriteSettings.Default with { Timeout = TimeSpan.FromSeconds(60) });
        var tokens = new long[1, 3] { { 4, 5, 6 } };
        var viaA = (await dendrite.ForwardText([new EndpointInfo(keys.HotkeySs58, "127.0.0.40", first.Port)], tokens))[0];
        Assert.Equal(ReturnCode.Success, viaA.Code);
        // The call went to the worker on its data connection (docs/cluster.md "Data plane").
        var servedA = Assert.Single((await routerA.Ask<ClusterFrontStatus>(GetClusterFrontStatus.Instance, Wait, ct)).Workers);
        Assert.NotNull(servedA.DataPlane);
        Assert.True(servedA.Served >= 1, $"the worker served {servedA.Served} calls");

        // A dies: the standby takes over, binds its own address and serves it on chain.
        await a.Terminate();
        var routerB = (await activatedB.ExpectMsgAsync<ClusterFrontActivated>(Wait, cancellationToken: ct)).Router;
        var next = await frontB.Announcements.ReadAsync(ct);
        Assert.Null(next.Error);
        onChain = (await subnet.Localnet.GetNeuronAsync(subnet.Netuid, frontB.Uid, ct))!.Axon;
        Assert.Equal(("127.0.0.41", next.Port), (onChain.IpText, (int)onChain.Port));

        // A caller that reads the chain finds the new front, and the model answers through it.
        await AwaitWorker(joined, b, routerB, ct);
        var viaB = (await dendrite.ForwardText([new EndpointInfo(keys.HotkeySs58, onChain.IpText, onChain.Port)], tokens))[0];
        Assert.Equal(ReturnCode.Success, viaB.Code);
        var servedB = Assert.Single((await routerB.Ask<ClusterFrontStatus>(GetClusterFrontStatus.Instance, Wait, ct)).Workers);
        Assert.NotNull(servedB.DataPlane);
        Assert.True(servedB.Served >= 1, $"the worker served {servedB.Served} calls");
        await frontB.DisposeAsync();
        await frontA.DisposeAsync();
    }

    protected override void AfterAll()
    {
        foreach (var node in _nodes)
        {
            try
            {
                node.Terminate().Wait(TimeSpan.FromSeconds(30));
            }
            catch (AggregateException)
            {
            }
        }
        base.AfterAll();
    }
}
