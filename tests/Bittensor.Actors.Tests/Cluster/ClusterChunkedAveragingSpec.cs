using Akka.Actor;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.ModelHost;
using Bittensor.Core.Crypto;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// Averaging a model whose parameters do not fit one cluster frame (docs/cluster.md "Parameter averaging"): the
/// parameters, the average and the checkpoint cross in chunks of <see cref="BittensorCluster.ParameterChunkFloats"/>
/// floats; a round that loses a chunk is dropped whole (nothing applied anywhere). Each node its own ActorSystem on
/// loopback, every message serialized (<c>serialize-messages = on</c>).
/// </summary>
[Collection(ClusterTestBase.Nodes)]
public sealed class ClusterChunkedAveragingSpec(Xunit.Abstractions.ITestOutputHelper output) : ClusterTestBase(output)
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output = output;

    /// <summary>Just above what one 32 MiB frame carries (8 M floats).</summary>
    private const int Large = 9 * 1024 * 1024 + 5;

    /// <summary>A flat parameter vector behind a lock (snapshot and update atomic).</summary>
    private sealed class FlatReplica : IReplicaParameters
    {
        private readonly float[] _values;
        private readonly object _gate = new();

        public FlatReplica(int count, Func<int, float> init)
        {
            _values = new float[count];
            for (var i = 0; i < count; i++) _values[i] = init(i);
        }

        public int Count => _values.Length;

        public float[] Snapshot()
        {
            lock (_gate) return (float[])_values.Clone();
        }

        public void Update(ReplicaUpdate change)
        {
            lock (_gate) change(_values);
        }
    }

    private (ActorSystem Node, Akka.TestKit.TestProbe Applied) StartReplica(ActorSystem front, IReplicaParameters parameters, Akka.Configuration.Config? extra = null)
    {
        var settings = Settings(Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        var node = StartWorker(settings, Bittensor.Actors.ModelHost.ModelHostActor.ForHandlers(DemoModels.Echo(Dim), 4, 16, TimeSpan.FromSeconds(60)), 20,
            extra, parameters);
        var applied = CreateTestProbe(node);
        node.EventStream.Subscribe(applied.Ref, typeof(ReplicaParametersApplied));
        return (node, applied);
    }

    private static async Task<AveragingResult> AverageNow(IActorRef router) =>
        await router.Ask<AveragingResult>(Bittensor.Actors.Cluster.AverageNow.Instance, TimeSpan.FromSeconds(120));

    [Fact]
    public async Task A_model_above_one_cluster_frame_is_averaged_in_chunks_and_a_joining_worker_gets_the_checkpoint_in_chunks()
    {
        Assert.True(4L * Large > BittensorCluster.MaxFrameBytes, "the model must not fit one frame");
        var (front, router, _) = await StartFront();
        var a = new FlatReplica(Large, i => (i % 1000) * 1e-3f);
        var b = new FlatReplica(Large, i => 1 + (i % 7));
        var (_, appliedA) = StartReplica(front, a);
        var (_, appliedB) = StartReplica(front, b);
        await AwaitWorkers(router, 2);
        var before = (a.Snapshot(), b.Snapshot());
        var expected = new float[Large];
        for (var i = 0; i < Large; i++) expected[i] = (before.Item1[i] + before.Item2[i]) / 2;

        var result = await AverageNow(router);
        Assert.Equal((1L, 2, (string?)null), (result.Round, result.Replicas, result.Skipped));
        foreach (var applied in new[] { appliedA, appliedB })
        {
            var e = await applied.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(120));
            Assert.Equal((1L, false, 2), (e.Round, e.Exact, e.Replicas));
        }
        Assert.Equal(expected, a.Snapshot());
        Assert.Equal(expected, b.Snapshot());
        Assert.Equal(1, (await Status(router)).CheckpointRound);

        // A third replica joins: it receives the checkpoint (in chunks) before it serves.
        var c = new FlatReplica(Large, _ => -3f);
        var (_, appliedC) = StartReplica(front, c);
        var joined = await appliedC.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(120));
        Assert.Equal((1L, true), (joined.Round, joined.Exact));
        Assert.Equal(expected, c.Snapshot());
    }

    /// <summary>
    /// An averaging round that starts while a joiner's checkpoint is arriving (docs/cluster.md "Parameter averaging" 5):
    /// the joiner's second checkpoint chunk is held in its worker's mailbox (<see cref="HeldChunksMailbox"/>: the
    /// transfer stops half-way, the front sends nothing more until that chunk is acknowledged), and a round starts. Asked
    /// for its parameters now, the joiner would put its starting weights (-3) into the average. The round must average
    /// what the joiner holds once the checkpoint is whole (the checkpoint) with the two replicas' parameters (the
    /// checkpoint plus the steps each took since): exactly, so every value here is a small integer.
    /// </summary>
    [Fact]
    public async Task A_round_that_starts_while_a_joiners_checkpoint_is_arriving_averages_the_checkpoint_not_the_joiners_starting_weights()
    {
        const int count = BittensorCluster.ParameterChunkFloats + 17; // two chunks
        var (front, router, _) = await StartFront();
        var a = new FlatReplica(count, i => i % 5);
        var b = new FlatReplica(count, i => (i % 5) + 2);
        var (_, appliedA) = StartReplica(front, a);
        var (_, appliedB) = StartReplica(front, b);
        await AwaitWorkers(router, 2);
        Assert.Equal((1L, 2, (string?)null), Unpack(await AverageNow(router)));
        foreach (var applied in new[] { appliedA, appliedB })
            Assert.Equal(1, (await applied.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(120))).Round);
        var checkpoint = a.Snapshot();
        Assert.Equal(Enumerable.Range(0, count).Select(i => (float)((i % 5) + 1)), checkpoint);
        // The steps the two replicas take after round 1.
        a.Update(p => { for (var i = 0; i < p.Length; i++) p[i] += 2; });
        b.Update(p => { for (var i = 0; i < p.Length; i++) p[i] += 4; });
        var (stepped, steppedB) = (a.Snapshot(), b.Snapshot());
        var expected = new float[count];
        for (var i = 0; i < count; i++) expected[i] = (stepped[i] + steppedB[i] + checkpoint[i]) / 3; // = checkpoint + 2

        using var gate = new ChunkGate();
        var c = new FlatReplica(count, _ => -3f);
        var (joiner, appliedC) = StartReplica(front, c, HeldChunksMailbox.For(gate));
        await gate.Holding.Task.WaitAsync(TimeSpan.FromSeconds(120)); // its first chunk taken, the second held
        Assert.True(c.Snapshot().All(v => v == -3f), "the joiner applied part of its checkpoint"); // nothing applied yet
        var round = AverageNow(router); // sent now (Ask): the router takes it before the status query below
        // The joiner is asked once its checkpoint is whole (a replica whose last acknowledgement of round 1 had not
        // reached the front yet would be deferred too, until it does).
        Assert.InRange((await Status(router)).RoundDeferred, 1, 3);
        Assert.False(gate.CollectWhileHeld.Task.IsCompleted, "the joiner was asked for its parameters while its checkpoint was arriving");
        gate.Open();
        // Any message wakes the worker's mailbox; the held chunk is taken before it.
        await joiner.ActorSelection($"/user/{ClusterSettings.WorkerName}").ResolveOne(TimeSpan.FromSeconds(60));

        var result = await round;
        Assert.Equal((2L, 3, (string?)null), Unpack(result));
        foreach (var applied in new[] { appliedA, appliedB })
        {
            var e = await applied.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(120));
            Assert.Equal((2L, false, 3), (e.Round, e.Exact, e.Replicas));
        }
        var first = await appliedC.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(120));
        Assert.Equal((1L, true), (first.Round, first.Exact)); // the checkpoint
        var second = await appliedC.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(120));
        Assert.Equal((2L, 3), (second.Round, second.Replicas));
        Assert.Equal(expected, a.Snapshot());
        Assert.Equal(expected, b.Snapshot());
        Assert.Equal(expected, c.Snapshot());
    }

    private static (long Round, int Replicas, string? Skipped) Unpack(AveragingResult r) => (r.Round, r.Replicas, r.Skipped);

    /// <summary>
    /// A hosted model of <paramref name="count"/> parameters, all <paramref name="initial"/> at start, that takes part in
    /// averaging through its model host's queue (as the TorchSharp server model does): a forward answers its last
    /// parameter (the one the last chunk of an average carries) in every element but the last of each position's row,
    /// which is <paramref name="marker"/> (which replica answered; rows of a batch keep it). Runs on the host's model
    /// thread only.
    /// </summary>
    private sealed class FlatModel(int count, float initial, float marker) : Bittensor.Core.Modeling.ITextModel, Bittensor.Core.Modeling.IFlatParameters
    {
        private float[] _values = Enumerable.Repeat(initial, count).ToArray();

        public int VocabSize => 100;

        public int MaxSequence => 16;

        public int Dim => ClusterTestBase.Dim;

        public int ParameterCount => _values.Length;

        public float[] Forward(long[] tokens, int batch, int seq)
        {
            var data = new float[batch * seq * Dim];
            Array.Fill(data, _values[^1]);
            for (var end = Dim - 1; end < data.Length; end += Dim) data[end] = marker;
            return data;
        }

        public void Backward(long[] tokens, float[] grads, int batch, int seq)
        {
        }

        public float[] GetParameters() => (float[])_values.Clone();

        public void SetParameters(ReadOnlySpan<float> values)
        {
            if (values.Length != _values.Length) throw new ArgumentException($"{values.Length} values for {_values.Length} parameters");
            _values = values.ToArray();
        }

        public void Save(string path)
        {
        }

        public void Load(string path)
        {
        }

        public void Dispose()
        {
        }
    }

    /// <summary>A worker node hosting <paramref name="model"/> whose parameters take part in averaging, and its applied-average events.</summary>
    private (ActorSystem Node, Akka.TestKit.TestProbe Applied) StartHostedReplica(ActorSystem front, FlatModel model, int capacity)
    {
        var settings = Settings(Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        var node = BittensorCluster.CreateSystem(settings, ClusterSettings.WorkerRole, overrides: TestOverrides);
        Track(node);
        var applied = CreateTestProbe(node);
        node.EventStream.Subscribe(applied.Ref, typeof(ReplicaParametersApplied));
        var modelSettings = ModelSettings.Default with
        {
            VocabSize = 100, MaxSequence = 16, NetworkDim = Dim, MaxBatch = 8, MaxDelay = TimeSpan.Zero, CheckpointEverySteps = 0,
            CheckpointInterval = TimeSpan.Zero,
        };
        BittensorCluster.StartWorker(node, settings, ModelHostActor.Props(modelSettings, () => model), capacity, hostedParameters: true);
        return (node, applied);
    }

    /// <summary>
    /// A joining replica whose checkpoint is more chunks than <c>averaging.chunks_in_flight</c> (docs/cluster.md
    /// "Parameter averaging" 5, "Pacing"): the chunks past the window leave the front only as the joiner acknowledges
    /// the ones before, so a call routed to the joiner as soon as it registered would reach it before the last chunk,
    /// and its model would answer it from its own initial weights (a hosted model applies an average through its host's
    /// queue, after the calls that reached the host before it). The replica that made the checkpoint leaves, so the
    /// front refuses every call at once until the joiner may serve, and five callers send signed calls through the
    /// front's axon (real gRPC) without a pause while the joiner comes in: the first call the front may route to the
    /// joiner goes there. Every call served must carry the checkpoint's value.
    /// </summary>
    [Fact]
    public async Task A_joining_replica_whose_checkpoint_is_more_chunks_than_chunks_in_flight_serves_no_call_before_the_whole_checkpoint_arrived()
    {
        const int count = (3 * BittensorCluster.ParameterChunkFloats) + 17; // four chunks
        // A window of one chunk: three acknowledgements to wait for after the first chunk.
        var (system, events) = StartFrontNode(adjust: s => s with { ChunksInFlight = 1 });
        var active = await Activated(events, TimeSpan.FromSeconds(60));
        var (front, router, port) = (system, active.Router, active.Endpoint.Port);
        var (nodeA, appliedA) = StartHostedReplica(front, new FlatModel(count, 5f, 1), capacity: 20);
        await AwaitWorkers(router, 1);
        var round = await AverageNow(router);
        Assert.Equal((1L, 1, (string?)null), (round.Round, round.Replicas, round.Skipped));
        Assert.Equal(1, (await appliedA.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(120))).Round);
        Assert.Equal(1, (await Status(router)).CheckpointRound); // the checkpoint: 5 everywhere
        await CoordinatedShutdown.Get(nodeA).Run(CoordinatedShutdown.ClrExitReason.Instance); // drains, leaves, stops

        var client = RawClient(port);
        Sr25519KeyPair[] keys = [Alice, Bob, Charlie, Dave, Eve]; // one key per caller: a key's nonces must arrive in order
        foreach (var key in keys) await Signed(key); // (each key's signer made here, not by five callers at once)
        var served = new List<float>();
        var refused = new List<ReturnCode>();
        var joinerAnswered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var everyCallerRefused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var callersRefused = 0; // callers whose first call was refused (under the lock of served)
        using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var calls = Task.WhenAll(keys.Select(key => Task.Run(async () =>
        {
            for (var i = 1; !joinerAnswered.Task.IsCompleted; i++)
            {
                guard.Token.ThrowIfCancellationRequested();
                var answer = await client.ForwardAsync(Row(1 + (i % 90), key), await Signed(key), DateTime.UtcNow.AddMinutes(1));
                lock (served)
                {
                    if (answer.ReturnCode != ReturnCode.Success)
                    {
                        refused.Add(answer.ReturnCode);
                        if (i == 1 && ++callersRefused == keys.Length) everyCallerRefused.TrySetResult();
                        continue;
                    }
                    var values = TensorCodec.Decode(answer.Tensors[0]).Tensor.ToFloat32Array();
                    Assert.Equal(2f, Assert.Single(values.Where((_, n) => n % Dim == Dim - 1).Distinct())); // the joiner's marker
                    served.Add(Assert.Single(values.Where((_, n) => n % Dim != Dim - 1).Distinct()));
                    if (served.Count >= 3) joinerAnswered.TrySetResult();
                }
            }
        }, guard.Token)));

        // Once every caller runs (its first call refused: no worker), the joiner starts, from -3 everywhere; the
        // checkpoint reaches it in four chunks, one unacknowledged at a time.
        await Task.WhenAny(everyCallerRefused.Task, calls).WaitAsync(guard.Token);
        Assert.False(calls.IsCompleted, $"the callers stopped: {calls.Exception}");
        var (_, appliedC) = StartHostedReplica(front, new FlatModel(count, -3f, 2), capacity: 20);
        var joined = await appliedC.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(120));
        Assert.Equal((1L, true), (joined.Round, joined.Exact));
        await calls; // until the joiner answered three calls
        lock (served)
        {
            _output.WriteLine($"{refused.Count} calls refused before the joiner served, {served.Count} served: {string.Join(", ", served)}");
            Assert.True(served.All(v => v == 5f), $"the joiner answered from its own weights, not the checkpoint: {string.Join(", ", served)}");
            Assert.All(refused, code => Assert.Equal(ReturnCode.NotServingNucleus, code));
        }
    }

    /// <summary>
    /// A stand-in worker on a worker node of its own: it registers with the front as a replica of <paramref name="count"/>
    /// parameters and, asked for them, sends only some chunks (<paramref name="offsets"/>), as a worker that dies or
    /// whose chunk is lost half-way would.
    /// </summary>
    private sealed class PartialReplica : ReceiveActor
    {
        public PartialReplica(ActorSelection router, int count, int[] offsets)
        {
            Receive<WorkerRegistered>(_ => { });
            Receive<CollectParameters>(c =>
            {
                foreach (var at in offsets)
                    Sender.Tell(new ReplicaParameters(c.Round, at, count, new float[Math.Min(BittensorCluster.ParameterChunkFloats, count - at)]));
            });
            ReceiveAny(_ => { });
            router.Tell(new RegisterWorker(4, false, "partial", count));
        }
    }

    private IActorRef StartPartialReplica(ActorSystem front, IActorRef router, int count, params int[] offsets)
    {
        var node = BittensorCluster.CreateSystem(Settings(Akka.Cluster.Cluster.Get(front).SelfAddress.ToString()), ClusterSettings.WorkerRole, overrides: TestOverrides);
        Track(node);
        var selection = node.ActorSelection(router.Path.ToStringWithAddress(Akka.Cluster.Cluster.Get(front).SelfAddress));
        return node.ActorOf(Props.Create(() => new PartialReplica(selection, count, offsets)), "partial");
    }

    [Theory]
    [InlineData("a lost chunk", new[] { 0, 2 * BittensorCluster.ParameterChunkFloats })]
    [InlineData("chunks that stop half-way", new[] { 0 })]
    public async Task A_round_whose_replica_sends_only_part_of_its_parameters_is_abandoned_and_nothing_is_applied(string what, int[] offsets)
    {
        _output.WriteLine($"the partial replica sends {what}: chunks at {string.Join(", ", offsets)}");
        const int count = (2 * BittensorCluster.ParameterChunkFloats) + 17; // three chunks
        // averaging.timeout stays at its default (30 s): the round that waits for chunks that never come ends then, and
        // a shorter one could also cut off the real replica's chunks on a loaded machine.
        var (front, router, _) = await StartFront();
        var real = new FlatReplica(count, i => i % 11);
        var (_, applied) = StartReplica(front, real);
        var partial = StartPartialReplica(front, router, count, offsets);
        await AwaitWorkers(router, 2);
        var before = real.Snapshot();

        var result = await AverageNow(router);
        Assert.Equal(1, result.Round);
        Assert.Equal(0, result.Replicas);
        Assert.StartsWith("round 1 abandoned: ", result.Skipped);
        var status = await Status(router);
        Assert.Equal((0L, 0L), (status.CheckpointRound, status.AveragingRounds));
        Assert.Equal(before, real.Snapshot());

        // The next round without the partial replica's chunks missing: the real replica alone, applied whole.
        // (Its first applied event is round 2's: nothing of round 1 was applied before it.)
        await partial.GracefulStop(TimeSpan.FromSeconds(30));
        await AwaitWorkers(router, 1);
        var next = await AverageNow(router);
        Assert.Equal((2L, 1, (string?)null), (next.Round, next.Replicas, next.Skipped));
        var e = await applied.ExpectMsgAsync<ReplicaParametersApplied>(TimeSpan.FromSeconds(120));
        Assert.Equal(2, e.Round);
        Assert.Equal(before, real.Snapshot());
    }

    /// <summary>
    /// Pacing (docs/cluster.md "Pacing"): a worker keeps at most averaging.chunks_in_flight chunks of its parameters
    /// unacknowledged. A probe plays the front: after the window's chunks, the worker answers a status query before
    /// any further chunk (messages from one actor to another keep their order, so a chunk sent before the answer would
    /// arrive before it); each acknowledgement lets exactly one more chunk out, and the chunks make up the parameters.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_worker_sends_its_parameters_paced_by_the_receivers_acknowledgements(int window)
    {
        const int count = (2 * BittensorCluster.ParameterChunkFloats) + 17; // three chunks
        var settings = Settings() with { ChunksInFlight = window };
        var node = StartWorker(settings, Bittensor.Actors.ModelHost.ModelHostActor.ForHandlers(DemoModels.Echo(Dim), 4, 16, TimeSpan.FromSeconds(60)), 20,
            parameters: new FlatReplica(count, i => i * 0.5f));
        var worker = await node.ActorSelection($"/user/{ClusterSettings.WorkerName}").ResolveOne(TimeSpan.FromSeconds(60));
        var front = CreateTestProbe(node);
        var wait = TimeSpan.FromSeconds(60);

        front.Send(worker, new CollectParameters(1));
        var received = new List<ReplicaParameters>();
        for (var i = 0; i < window; i++) received.Add(await front.ExpectMsgAsync<ReplicaParameters>(wait));
        while (received.Sum(r => r.Values.Length) < count)
        {
            // The window is full: the next message is the answer to this query, not a chunk.
            front.Send(worker, GetClusterWorkerState.Instance);
            await front.ExpectMsgAsync<ClusterWorkerState>(wait);
            front.Send(worker, new ParameterChunkAck(1, received[^1].Offset));
            received.Add(await front.ExpectMsgAsync<ReplicaParameters>(wait));
        }
        front.Send(worker, GetClusterWorkerState.Instance);
        await front.ExpectMsgAsync<ClusterWorkerState>(wait); // no chunk beyond the last

        Assert.Equal(Enumerable.Range(0, 3).Select(k => k * BittensorCluster.ParameterChunkFloats), received.Select(r => r.Offset));
        Assert.All(received, r => Assert.Equal((1L, count), (r.Round, r.Total)));
        var values = received.SelectMany(r => r.Values.ToArray()).ToArray();
        Assert.Equal(Enumerable.Range(0, count).Select(i => i * 0.5f), values);
    }
}
