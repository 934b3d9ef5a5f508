using Akka.Actor;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.ModelHost;
using Bittensor.Neurons.Demo;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// A worker that the cluster downs while it is alive (docs/cluster.md "Split brain"): as the split-brain resolver does
/// when it takes a slow worker for dead, the test downs the live worker's member from the front's node. A
/// <see cref="ClusterWorkerNode"/> (what <c>btcli axon worker</c> runs) then joins again as a new node and serves; with
/// rejoin off it ends, saying it was downed. Each node its own ActorSystem on loopback, every message serialized.
/// </summary>
[Collection(ClusterTestBase.Nodes)]
public sealed class ClusterWorkerRejoinSpec(Xunit.Abstractions.ITestOutputHelper output) : ClusterTestBase(output)
{
    private const int Vocab = 8;

    private static Props Echo() => ModelHostActor.ForHandlers(DemoModels.Echo(Dim), 4, 16, TimeSpan.FromSeconds(60));

    private static async Task<ClusterWorkerState> WorkerState(ClusterWorkerIncarnation node) =>
        await node.Worker.Ask<ClusterWorkerState>(GetClusterWorkerState.Instance, TimeSpan.FromSeconds(60));

    /// <summary>
    /// The first round after <paramref name="after"/> that averaged both replicas. A round averages the replicas reachable
    /// when it starts: on a starved machine a live worker's heartbeats came 14 s late (past the tests' pause, then 10 s;
    /// 30 s since session 26), the front marked it unreachable between the wait for two workers and the round, and round 1
    /// averaged one replica (a single-core run at load 68). So a round without both is followed by another, as the interval would.
    /// </summary>
    private async Task<AveragingResult> RoundOfBoth(IActorRef router, long after)
    {
        AveragingResult? round = null;
        await AwaitAssertAsync(async () =>
        {
            round = await router.Ask<AveragingResult>(AverageNow.Instance, TimeSpan.FromSeconds(60));
            Assert.True(round.Round > after && round.Replicas == 2, $"round {round.Round}: {round.Replicas} replicas ({round.Skipped ?? "not skipped"})");
        }, TimeSpan.FromSeconds(120), TimeSpan.FromMilliseconds(100));
        return round!;
    }

    [Fact]
    public async Task A_worker_downed_while_alive_joins_again_as_a_new_node_and_the_front_routes_to_it()
    {
        var (front, router, port) = await StartFront();
        var second = new TaskCompletionSource<ClusterWorkerIncarnation>(TaskCreationOptions.RunContinuationsAsynchronously);
        var node = StartWorkerNode([front], Echo(), 20, started: n =>
        {
            if (n.Number == 2) second.TrySetResult(n);
        });
        var first = node.Current;
        Assert.Equal(1, first.Number);
        await AwaitWorkers(router, 1);
        var client = RawClient(port);
        AssertEcho(await Forward(client, Alice, Row(1)), 1);
        var downed = Akka.Cluster.Cluster.Get(first.System).SelfAddress;

        Akka.Cluster.Cluster.Get(front).Down(downed);

        // The downed node shuts down (its actor system terminates); the worker starts a new node, which joins through the
        // seed as a new member and registers with the front.
        var next = await second.Task.WaitAsync(TimeSpan.FromSeconds(60));
        await first.System.WhenTerminated.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(CoordinatedShutdown.ClusterDowningReason.Instance, CoordinatedShutdown.Get(first.System).ShutdownReason);
        var rejoined = Akka.Cluster.Cluster.Get(next.System);
        Assert.NotEqual(Akka.Cluster.Cluster.Get(first.System).SelfUniqueAddress, rejoined.SelfUniqueAddress);
        Assert.Same(next, node.Current);
        Assert.False(node.Completion.IsCompleted);
        await AwaitAssertAsync(async () =>
        {
            var workers = (await Status(router)).Workers;
            Assert.Equal(rejoined.SelfAddress, Assert.Single(workers, w => w.Reachable && !w.Draining).Worker.Path.Address);
        }, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));
        for (var i = 2; i <= 5; i++) AssertEcho(await Forward(client, Alice, Row(i)), i);
        Assert.Equal(4, (await WorkerState(next)).Served);
    }

    [Fact]
    public async Task With_rejoin_off_a_worker_downed_while_alive_ends_as_downed()
    {
        var (front, router, _) = await StartFront();
        var node = StartWorkerNode([front], Echo(), 20, adjust: s => s with { Rejoin = false });
        await AwaitWorkers(router, 1);

        Akka.Cluster.Cluster.Get(front).Down(Akka.Cluster.Cluster.Get(node.Current.System).SelfAddress);

        Assert.Equal(ClusterWorkerNodeEnd.Downed, await node.Completion.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.True(node.Current.System.WhenTerminated.IsCompleted);
        Assert.Equal(1, node.Current.Number);
        await AwaitWorkers(router, 0);
    }

    [Fact]
    public async Task A_replica_downed_while_alive_rejoins_with_the_round_it_applied_and_keeps_its_steps()
    {
        var (front, router, _) = await StartFront();
        var a = new TrainableDemoModel(Dim, Vocab, seed: 1);
        var b = new TrainableDemoModel(Dim, Vocab, seed: 2);
        var second = new TaskCompletionSource<ClusterWorkerIncarnation>(TaskCreationOptions.RunContinuationsAsynchronously);
        var nodeA = StartWorkerNode([front], ModelHostActor.ForHandlers(a.Handlers, 4, 16, TimeSpan.FromSeconds(60)), 20, parameters: a, started: n =>
        {
            if (n.Number == 2) second.TrySetResult(n);
        });
        StartWorkerNode([front], ModelHostActor.ForHandlers(b.Handlers, 4, 16, TimeSpan.FromSeconds(60)), 20, parameters: b);
        await AwaitWorkers(router, 2);
        var round = (await RoundOfBoth(router, after: 0)).Round;
        await AwaitAssertAsync(async () => Assert.Equal(round, (await WorkerState(nodeA.Current)).AveragedRound), TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));
        // A trains after the round: a checkpoint forced on its new node would undo this step.
        a.Update(p => p[5 * Dim] += 1f);
        var stepped = a.Snapshot();

        Akka.Cluster.Cluster.Get(front).Down(Akka.Cluster.Cluster.Get(nodeA.Current.System).SelfAddress);

        var next = await second.Task.WaitAsync(TimeSpan.FromSeconds(60));
        await AwaitAssertAsync(async () =>
        {
            var workers = (await Status(router)).Workers.Where(w => w.Reachable && !w.Draining && !w.Held && !w.Receiving).ToList();
            Assert.Contains(workers, w => w.Worker.Path.Address == Akka.Cluster.Cluster.Get(next.System).SelfAddress);
        }, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));
        // The new node registered with the round it applied (the replica's own parameters hold it): nothing was sent to overwrite them.
        Assert.Equal(round, (await WorkerState(next)).AveragedRound);
        Assert.Equal(stepped, a.Snapshot());
        // And it takes part in the next round like any replica.
        await RoundOfBoth(router, after: round);
    }
}
