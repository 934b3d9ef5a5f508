using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.ModelHost;
using Bittensor.Actors.Tests.Axon;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// Several cluster nodes in this test process: each an ActorSystem of its own on loopback (port 0), every message
/// checked by serialization (<c>akka.actor.serialize-messages = on</c>), a real Kestrel axon on the front.
/// </summary>
public abstract class ClusterTestBase(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    protected const int Dim = 16;

    private readonly List<ActorSystem> _nodes = [];

    /// <summary>Every node runs with these: messages serialized on every Tell, quiet logs.</summary>
    protected static readonly Config TestOverrides = ConfigurationFactory.ParseString("""
        akka.loglevel = WARNING
        akka.actor.serialize-messages = on
        akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
        """);

    protected static ClusterSettings Settings(params string[] seeds) => ClusterSettings.Default with
    {
        Hostname = "127.0.0.1", Port = 0, SeedNodes = seeds, DrainTimeout = TimeSpan.FromSeconds(60), RegisterInterval = TimeSpan.FromMilliseconds(300),
    };

    /// <summary>A front node with its router and an axon (real gRPC on loopback port 0) in front of it.</summary>
    protected async Task<(ActorSystem System, IActorRef Front, int AxonPort)> StartFront(AxonSettings? axon = null)
    {
        var settings = Settings();
        var system = BittensorCluster.CreateSystem(settings, ClusterSettings.FrontRole, overrides: TestOverrides);
        _nodes.Add(system);
        var front = BittensorCluster.StartFront(system, settings);
        var axonActor = system.ActorOf(AxonActor.Props(axon ?? Loopback(networkDim: Dim, callTimeout: TimeSpan.FromSeconds(60)), front), "axon");
        var bound = await axonActor.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, Wait);
        return (system, front, bound.Endpoint.Port);
    }

    /// <summary>A worker node joined through <paramref name="front"/>'s node, hosting <paramref name="handlers"/>.</summary>
    protected ActorSystem StartWorker(ActorSystem front, AxonHandlers handlers, int concurrency = 4, int queue = 16, Config? extra = null)
    {
        var settings = Settings(Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        var overrides = extra is null ? TestOverrides : extra.WithFallback(TestOverrides);
        var system = BittensorCluster.CreateSystem(settings, ClusterSettings.WorkerRole, overrides: overrides);
        _nodes.Add(system);
        BittensorCluster.StartWorker(system, settings, ModelHostActor.ForHandlers(handlers, concurrency, queue, TimeSpan.FromSeconds(60)), concurrency + queue);
        return system;
    }

    protected static async Task<ClusterFrontStatus> Status(IActorRef front) => await front.Ask<ClusterFrontStatus>(GetClusterFrontStatus.Instance, Wait);

    /// <summary>Waits (event by event, bounded) until the front routes to <paramref name="workers"/> reachable, non-draining workers.</summary>
    protected async Task AwaitWorkers(IActorRef front, int workers) =>
        await AwaitAssertAsync(async () => Assert.Equal(workers, (await Status(front)).Workers.Count(w => w.Reachable && !w.Draining)),
            TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));

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
