using Akka.Actor;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.ModelHost;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// Parameter averaging across the workers' replicas (docs/cluster.md "Parameter averaging"): a front and workers
/// hosting <see cref="TrainableDemoModel"/> replicas that start from different weights and train on different calls,
/// each node its own ActorSystem on loopback, every message serialized (the parameters cross as raw floats).
/// </summary>
[Collection(ClusterTestBase.Nodes)]
public sealed class ClusterAveragingSpec(Xunit.Abstractions.ITestOutputHelper output) : ClusterTestBase(output)
{
    private const int Vocab = 8;

    /// <summary>A worker hosting <paramref name="model"/>; its event stream (averages applied) is read from the returned probe.</summary>
    private Akka.TestKit.TestProbe StartReplica(ActorSystem front, TrainableDemoModel model, Akka.Configuration.Config? extra = null)
    {
        var settings = Settings(Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        var node = StartWorker(settings, ModelHostActor.ForHandlers(model.Handlers, 4, 16, TimeSpan.FromSeconds(60)), 20, extra, parameters: model);
        var applied = CreateTestProbe(node);
        node.EventStream.Subscribe(applied.Ref, typeof(ReplicaParametersApplied));
        return applied;
    }

    /// <summary>
    /// A replica run as a worker process runs it (<see cref="ClusterWorkerNode"/>: downed while alive, it joins again as a
    /// new node, keeping its parameters and the average it applied); the averages it applies, in whichever of its nodes,
    /// are read from the returned probe.
    /// </summary>
    private Akka.TestKit.TestProbe StartReplicaNode(ActorSystem[] seeds, TrainableDemoModel model, Akka.Configuration.Config? extra = null)
    {
        var applied = CreateTestProbe();
        StartWorkerNode(seeds, ModelHostActor.ForHandlers(model.Handlers, 4, 16, TimeSpan.FromSeconds(60)), 20, extra, parameters: model,
            started: n => n.System.EventStream.Subscribe(applied.Ref, typeof(ReplicaParametersApplied)));
        return applied;
    }

    private static async Task<AveragingResult> AverageNow(IActorRef router) => await router.Ask<AveragingResult>(Bittensor.Actors.Cluster.AverageNow.Instance, TimeSpan.FromSeconds(60));

    private static string Describe(ClusterFrontStatus s) =>
        $"checkpoint round {s.CheckpointRound}, rounds {s.AveragingRounds}, deferred {s.RoundDeferred}, workers: " +
        string.Join("; ", s.Workers.Select(w => $"{w.Replica} reachable={w.Reachable} draining={w.Draining} held={w.Held} receiving={w.Receiving} data={w.DataPlane ?? "-"}"));

    private static float[] Mean(params float[][] replicas)
    {
        var sum = new float[replicas[0].Length];
        foreach (var r in replicas)
            for (var i = 0; i < sum.Length; i++) sum[i] += r[i];
        for (var i = 0; i < sum.Length; i++) sum[i] /= replicas.Length;
        return sum;
    }

    [Fact]
    public async Task After_an_averaging_round_the_replicas_hold_equal_parameters_and_serve_the_average()
    {
        var (front, router, port) = await StartFront();
        var a = new TrainableDemoModel(Dim, Vocab, seed: 1);
        var b = new TrainableDemoModel(Dim, Vocab, seed: 2);
        var appliedA = StartReplica(front, a);
        var appliedB = StartReplica(front, b);
        await AwaitWorkers(router, 2);
        var client = RawClient(port);

        // Train through the front: backwards spread over both replicas, so they drift apart further.
        for (var i = 0; i < 6; i++)
        {
            var backward = Row(i);
            backward.Tensors.Add(TensorCodec.ToTensor(Enumerable.Repeat(0.5f, 3 * Dim).ToArray(), [1, 3, Dim], Modality.Tensor));
            Assert.Equal(ReturnCode.Success, (await client.BackwardAsync(backward, await Signed(Alice), DateTime.UtcNow.AddSeconds(60))).ReturnCode);
        }
        Assert.True(a.Steps > 0 && b.Steps > 0, $"both replicas should have trained: {a.Steps}, {b.Steps}");
        var (beforeA, beforeB) = (a.Snapshot(), b.Snapshot());
        Assert.NotEqual(beforeA, beforeB);

        var result = await AverageNow(router);
        Assert.Equal((1L, 2, (string?)null), (result.Round, result.Replicas, result.Skipped));
        // Each worker applies the average as its own message arrives: awaited as the event it publishes.
        foreach (var applied in new[] { appliedA, appliedB })
        {
            var e = await applied.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(60));
            Assert.Equal((1L, false, 2), (e.Round, e.Exact, e.Replicas));
        }
        var expected = Mean(beforeA, beforeB);
        Assert.Equal(expected, a.Snapshot());
        Assert.Equal(expected, b.Snapshot());
        Assert.Equal(1, (await Status(router)).CheckpointRound);

        // Whatever replica serves it, a forward now answers rows of the averaged table: token 3 → row 3.
        for (var i = 0; i < 4; i++)
        {
            var answer = await Forward(client, Alice, TextRequest(Alice, [1, 1], [3]));
            Assert.Equal(ReturnCode.Success, answer.ReturnCode);
            Assert.Equal(expected.AsSpan(3 * Dim, Dim).ToArray(), TensorCodec.Decode(answer.Tensors[0]).Tensor.ToFloat32Array());
        }
    }

    /// <summary>A replica that takes one step (row 5 += 1) right after its parameters are copied for a round, when armed.</summary>
    private sealed class StepsAfterSnapshot(TrainableDemoModel inner) : IReplicaParameters
    {
        public volatile bool Armed;

        public int Count => inner.Count;

        public float[] Snapshot()
        {
            var copy = inner.Snapshot();
            if (Armed) inner.Update(p => p[5 * Dim] += 1f);
            return copy;
        }

        public void Update(ReplicaUpdate change) => inner.Update(change);
    }

    [Fact]
    public async Task A_replica_keeps_the_steps_it_took_after_sending_its_parameters()
    {
        var (front, router, _) = await StartFront();
        var a = new TrainableDemoModel(Dim, Vocab, seed: 1);
        var b = new TrainableDemoModel(Dim, Vocab, seed: 2);
        var stepping = new StepsAfterSnapshot(a);
        var settings = Settings(Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        var nodeA = StartWorker(settings, ModelHostActor.ForHandlers(a.Handlers, 4, 16, TimeSpan.FromSeconds(60)), 20, parameters: stepping);
        var appliedA = CreateTestProbe(nodeA);
        nodeA.EventStream.Subscribe(appliedA.Ref, typeof(ReplicaParametersApplied));
        var appliedB = StartReplica(front, b);
        await AwaitWorkers(router, 2);
        // Round 1 makes them equal.
        await AverageNow(router);
        await appliedA.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(60));
        await appliedB.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(60));
        var equal = b.Snapshot();
        Assert.Equal(equal, a.Snapshot());

        // Round 2: a steps (row 5 += 1) after it sent its copy. The average is the old value; a keeps its step, b
        // (which never saw the step) is unchanged.
        stepping.Armed = true;
        Assert.Equal(2, (await AverageNow(router)).Round);
        await appliedA.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(60));
        await appliedB.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(60));
        var after = a.Snapshot();
        Assert.Equal(equal[5 * Dim] + 1f, after[5 * Dim]);
        after[5 * Dim] = equal[5 * Dim];
        Assert.Equal(equal, after);
        Assert.Equal(equal, b.Snapshot());
    }

    [Fact]
    public async Task A_joining_worker_starts_from_the_latest_averaged_checkpoint()
    {
        var (front, router, port) = await StartFront();
        Assert.Equal("no available worker has parameters to average", (await AverageNow(router)).Skipped);
        var a = new TrainableDemoModel(Dim, Vocab, seed: 1);
        var b = new TrainableDemoModel(Dim, Vocab, seed: 2);
        StartReplica(front, a);
        StartReplica(front, b);
        await AwaitWorkers(router, 2);
        var expected = Mean(a.Snapshot(), b.Snapshot());
        Assert.Equal(2, (await AverageNow(router)).Replicas);

        // A third replica with weights of its own joins: before it serves, the front sends it the checkpoint.
        var c = new TrainableDemoModel(Dim, Vocab, seed: 3);
        Assert.NotEqual(expected, c.Snapshot());
        var appliedC = StartReplica(front, c);
        var e = await appliedC.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(60));
        Assert.Equal((1L, true), (e.Round, e.Exact));
        Assert.Equal(expected, c.Snapshot());
        await AwaitWorkers(router, 3);
    }

    [Fact]
    public async Task Rounds_run_by_themselves_every_averaging_interval()
    {
        var (front, events) = StartFrontNode(adjust: s => s with { AveragingInterval = TimeSpan.FromMilliseconds(300) });
        var router = (await Activated(events, TimeSpan.FromSeconds(60))).Router;
        var a = new TrainableDemoModel(Dim, Vocab, seed: 1);
        var b = new TrainableDemoModel(Dim, Vocab, seed: 2);
        var appliedA = StartReplica(front, a);
        var appliedB = StartReplica(front, b);
        await AwaitWorkers(router, 2);
        // The first round both replicas took part in (a round with one replica only sends it as it is).
        var roundA = await appliedA.FishForMessageAsync<ReplicaParametersApplied>(m => m.Replicas == 2, TimeSpan.FromSeconds(120));
        await appliedB.FishForMessageAsync<ReplicaParametersApplied>(m => m.Round == roundA.Round, TimeSpan.FromSeconds(120));
        // No traffic: whatever round ran since, both hold the same average.
        Assert.Equal(a.Snapshot(), b.Snapshot());
    }

    [Fact]
    public async Task After_a_front_take_over_the_new_front_pulls_the_checkpoint_from_a_replica_and_a_joining_worker_starts_from_it()
    {
        // The first front dies below without leaving (kill -9 as the others see it); the others detect it after the
        // tests' heartbeat pause (ClusterTestBase.HeartbeatPause).
        var (first, firstEvents) = StartFrontNode(extra: Akka.Configuration.ConfigurationFactory.ParseString("akka.coordinated-shutdown.run-by-actor-system-terminate = off"));
        var active = await Activated(firstEvents, TimeSpan.FromSeconds(60));
        var (standby, standbyEvents) = StartFrontNode(seeds: Akka.Cluster.Cluster.Get(first).SelfAddress.ToString());
        var a = new TrainableDemoModel(Dim, Vocab, seed: 1);
        var b = new TrainableDemoModel(Dim, Vocab, seed: 2);
        // As worker processes: a replica downed while alive during the take-over joins again as a new node (a loaded
        // machine: its view late, its resolver's "down all when unstable" deadline downed it — 1 of 3 runs at load 20-47).
        // Both fronts are their seeds (docs/cluster.md), so that a new node can join after the first front died.
        var appliedA = StartReplicaNode([first, standby], a);
        var appliedB = StartReplicaNode([first, standby], b);
        // The standby must be Up before the front dies, as in ClusterFrontTakeoverSpec: a node still joining when the
        // leader dies is no standby yet (the CI run at 19:44 waited 3 min for a take-over that could not come).
        await Up(standby).WaitAsync(TimeSpan.FromSeconds(60));
        await AwaitWorkers(active.Router, 2);
        var checkpoint = Mean(a.Snapshot(), b.Snapshot());
        Assert.Equal(2, (await AverageNow(active.Router)).Replicas);
        foreach (var applied in new[] { appliedA, appliedB })
        {
            var e = await applied.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(60));
            Assert.Equal((1L, false), (e.Round, e.Exact));
        }
        Assert.Equal(checkpoint, b.Snapshot());
        // Replica a trains after the round: its step must survive the take-over (no checkpoint is forced on it).
        a.Update(p => p[5 * Dim] += 1f);

        await first.Terminate();
        var next = await Activated(standbyEvents, TakeOverBound);
        await AwaitWorkers(next.Router, 2);
        // The replicas registered with the round they applied; the new front pulled that average from one of them.
        await AwaitAssertAsync(async () => Assert.Equal(1, (await Status(next.Router)).CheckpointRound), TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));

        // A fresh replica joining the new front starts from the checkpoint the old front made.
        var c = new TrainableDemoModel(Dim, Vocab, seed: 3);
        var appliedC = StartReplica(standby, c);
        var joined = await appliedC.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(60));
        Assert.Equal((1L, true), (joined.Round, joined.Exact));
        Assert.Equal(checkpoint, c.Snapshot());
        await AwaitWorkers(next.Router, 3);

        // Rounds continue from the replicas' round: the next is round 2. a's step was kept until then: the next thing a
        // applied is round 2 (a checkpoint forced on it after the take-over would have come first, in order).
        var expected = Mean(a.Snapshot(), b.Snapshot(), c.Snapshot());
        Assert.Equal(checkpoint[5 * Dim] + 1f, a.Snapshot()[5 * Dim]);
        var round2 = await AverageNow(next.Router);
        // On a mismatch, say what the front knew of its workers (this assertion failed once at load 20-24: 2 replicas).
        if ((round2.Round, round2.Replicas, round2.Skipped) != (2L, 3, (string?)null))
            Assert.Fail($"round 2 was {round2}, 3 replicas expected; the front: {Describe(await Status(next.Router))}");
        foreach (var applied in new[] { appliedA, appliedB, appliedC })
        {
            var e = await applied.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(60));
            Assert.Equal((2L, false), (e.Round, e.Exact));
        }
        // Equal replicas; the mean of three up to the order the front added them in.
        Assert.Equal(a.Snapshot(), c.Snapshot());
        Assert.Equal(b.Snapshot(), c.Snapshot());
        var averaged = c.Snapshot();
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], averaged[i], 5);
    }
}
