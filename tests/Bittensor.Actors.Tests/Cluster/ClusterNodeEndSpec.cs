using Akka.Actor;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.ModelHost;
using Bittensor.Neurons.Demo;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// Nodes that cannot stay in the cluster end, bounded and saying why (docs/cluster.md "Split brain", "Joining"): a worker
/// whose only seed is dead gives up after <c>bittensor.cluster.join_timeout</c> — at start, and as the new node of a
/// downed worker whose seeds are gone — and a front node downed while alive ends (it does not rejoin by itself) with a
/// line that says so. Each node its own ActorSystem on loopback, every message serialized; the ends are awaited as
/// events (the node's Completion, its system's termination), never slept for.
/// </summary>
[Collection(ClusterTestBase.Nodes)]
public sealed class ClusterNodeEndSpec(Xunit.Abstractions.ITestOutputHelper output) : ClusterTestBase(output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    private static Props Echo() => ModelHostActor.ForHandlers(DemoModels.Echo(Dim), 4, 16, TimeSpan.FromSeconds(60));

    // A loopback port nobody listens on (bound, then released): a seed node that is dead.
    private static string DeadSeed()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"127.0.0.1:{port}";
    }

    [Fact]
    public async Task A_worker_whose_only_seed_is_dead_gives_up_after_the_join_timeout_and_says_so()
    {
        var seed = DeadSeed();
        var settings = Settings(seed) with { JoinTimeout = TimeSpan.FromSeconds(3) };
        var node = ClusterWorkerNode.Start(settings, Echo(), 20, overrides: TestOverrides, started: n => Track(n.System));

        Assert.Equal(ClusterWorkerNodeEnd.JoinFailed, await node.Completion.WaitAsync(Bound));
        Assert.Equal(CoordinatedShutdown.ClusterJoinUnsuccessfulReason.Instance, CoordinatedShutdown.Get(node.Current.System).ShutdownReason);
        Assert.Equal(1, node.Current.Number);
        Assert.Equal($"node 1 of this worker could not join the cluster through {seed} within 3 s (bittensor.cluster.join_timeout): no seed node answered; " +
            "start a node there or name a live one in bittensor.cluster.seed_nodes, then restart it", node.Failure);
    }

    [Fact]
    public async Task A_downed_worker_whose_seeds_are_gone_gives_up_after_the_join_timeout_instead_of_waiting_for_ever()
    {
        var (front, router, _) = await StartFront();
        // The worker's only seed is a second front-capable node (a standby), which leaves below. The join timeout bounds
        // node 1's join too (through the live standby): 3 s, as the dead-seed tests use, could pass before a starved
        // machine completed that join, so 30 s, well above it; node 2 then waits it out once.
        var (standby, _) = StartFrontNode(seeds: Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        await Up(standby).WaitAsync(Bound);
        var node = StartWorkerNode([standby], Echo(), 20, adjust: s => s with { JoinTimeout = TimeSpan.FromSeconds(30) });
        await AwaitWorkers(router, 1);
        var removed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var standbyAddress = Akka.Cluster.Cluster.Get(standby).SelfAddress;
        var watcher = front.ActorOf(Props.Create(() => new RemovedWatcher(standbyAddress, removed)));
        Akka.Cluster.Cluster.Get(front).Subscribe(watcher, typeof(Akka.Cluster.ClusterEvent.MemberRemoved));
        await standby.Terminate(); // leaves the cluster (CoordinatedShutdown), its port closes
        await removed.Task.WaitAsync(Bound);

        Akka.Cluster.Cluster.Get(front).Down(Akka.Cluster.Cluster.Get(node.Current.System).SelfAddress);

        // The downed worker starts node 2, which tries its only seed — gone — until the join timeout: then the worker ends.
        Assert.Equal(ClusterWorkerNodeEnd.JoinFailed, await node.Completion.WaitAsync(Bound));
        Assert.Equal(2, node.Current.Number);
        Assert.StartsWith($"node 2 of this worker could not join the cluster through {standbyAddress} within 30 s", node.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_front_node_whose_only_seed_is_dead_ends_after_the_join_timeout_saying_so()
    {
        var seed = DeadSeed();
        var (node, _) = StartFrontNode(adjust: s => s with { JoinTimeout = TimeSpan.FromSeconds(3) }, seeds: seed);

        await node.WhenTerminated.WaitAsync(Bound);
        Assert.Equal(CoordinatedShutdown.ClusterJoinUnsuccessfulReason.Instance, CoordinatedShutdown.Get(node).ShutdownReason);
        Assert.StartsWith($"this front node could not join the cluster through {seed} within 3 s (bittensor.cluster.join_timeout)",
            BittensorCluster.FrontNodeEnded(node, Settings(seed) with { JoinTimeout = TimeSpan.FromSeconds(3) }), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_front_node_downed_while_alive_ends_and_says_it_does_not_rejoin_by_itself()
    {
        var (front, router, _) = await StartFront();
        var (standby, _) = StartFrontNode(seeds: Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        await Up(standby).WaitAsync(Bound);

        Akka.Cluster.Cluster.Get(front).Down(Akka.Cluster.Cluster.Get(standby).SelfAddress);

        await standby.WhenTerminated.WaitAsync(Bound);
        Assert.Equal(CoordinatedShutdown.ClusterDowningReason.Instance, CoordinatedShutdown.Get(standby).ShutdownReason);
        Assert.StartsWith("this front node was downed by the cluster while alive", BittensorCluster.FrontNodeEnded(standby, Settings()), StringComparison.Ordinal);
        Assert.Contains("does not rejoin by itself", BittensorCluster.FrontNodeEnded(standby, Settings()), StringComparison.Ordinal);
        // The active front is untouched.
        Assert.Empty((await Status(router)).Workers);
        Assert.False(front.WhenTerminated.IsCompleted);
    }

    private sealed class RemovedWatcher : ReceiveActor
    {
        public RemovedWatcher(Address address, TaskCompletionSource removed)
        {
            Receive<Akka.Cluster.ClusterEvent.MemberRemoved>(m =>
            {
                if (m.Member.Address == address) removed.TrySetResult();
            });
            ReceiveAny(_ => { });
        }
    }
}
