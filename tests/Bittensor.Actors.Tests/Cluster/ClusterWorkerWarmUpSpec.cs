using Akka.Actor;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.ModelHost;
using Bittensor.Core.Modeling;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// A cluster worker warms its model before it registers (docs/cluster.md "Joining"): the front routes calls to a worker
/// as soon as it registered, so without the warm-up the first remote call paid the model's first use (TorchSharp's
/// kernels, the JIT of the forward path) and, in the demo as processes at load 30-40, went over the validator's 10 s
/// deadline. The model here holds its first forward until the test lets it go, which forces the ordering without load:
/// registration must wait for it. Each node its own ActorSystem on loopback, every message serialized.
/// </summary>
[Collection(ClusterTestBase.Nodes)]
public sealed class ClusterWorkerWarmUpSpec(Xunit.Abstractions.ITestOutputHelper output) : ClusterTestBase(output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2); // hang guard only; nothing is timed

    /// <summary>
    /// A text model (echo: out[b, s, d] = token·1e-3 + d·1e-6) whose first forward waits until <see cref="Release"/>;
    /// it records every forward's tokens. Its parameters take part in averaging, as the TorchSharp server model's do
    /// (<c>btcli run server --cluster.role worker</c>: the worker asks their count first).
    /// </summary>
    private sealed class FirstForwardHeld : ITextModel, IFlatParameters
    {
        private readonly ManualResetEventSlim _release = new(false);
        private readonly TaskCompletionSource<long[]> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<(long[] Tokens, int Batch, int Seq)> _forwards = [];

        /// <summary>Completes with the tokens of the first forward, as it reaches the model (before it is released).</summary>
        public Task<long[]> FirstForward => _first.Task;

        public IReadOnlyList<(long[] Tokens, int Batch, int Seq)> Forwards
        {
            get
            {
                lock (_forwards) return [.. _forwards];
            }
        }

        public void Release() => _release.Set();

        public int VocabSize => 100;

        public int MaxSequence => 16;

        public int Dim => ClusterTestBase.Dim;

        public float[] Forward(long[] tokens, int batch, int seq)
        {
            lock (_forwards) _forwards.Add(([.. tokens], batch, seq));
            _first.TrySetResult([.. tokens]);
            if (!_release.Wait(Bound)) throw new TimeoutException("the test never released the first forward");
            var data = new float[tokens.Length * Dim];
            for (var i = 0; i < tokens.Length; i++)
                for (var d = 0; d < Dim; d++) data[(i * Dim) + d] = (float)((tokens[i] * 1e-3) + (d * 1e-6));
            return data;
        }

        public void Backward(long[] tokens, float[] grads, int batch, int seq)
        {
        }

        public int ParameterCount => 4;

        public float[] GetParameters() => [0, 0, 0, 0];

        public void SetParameters(ReadOnlySpan<float> values)
        {
        }

        public void Save(string path) => File.WriteAllText(path, "held");

        public void Load(string path)
        {
        }

        public void Dispose() => _release.Set();
    }

    [Fact]
    public async Task A_worker_registers_only_after_its_model_answered_a_local_forward_so_the_first_routed_call_finds_it_warm()
    {
        var (front, router, port) = await StartFront();
        var model = new FirstForwardHeld();
        var settings = Settings(Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        var node = BittensorCluster.CreateSystem(settings, ClusterSettings.WorkerRole, overrides: TestOverrides);
        Track(node);
        var joined = CreateTestProbe(node);
        node.EventStream.Subscribe(joined.Ref, typeof(ClusterWorkerJoinedFront));
        var modelSettings = ModelSettings.Default with
        {
            VocabSize = 100, MaxSequence = 16, NetworkDim = Dim, MaxBatch = 8, MaxDelay = TimeSpan.Zero, CheckpointEverySteps = 0,
            CheckpointInterval = TimeSpan.Zero,
        };
        var worker = BittensorCluster.StartWorker(node, settings, ModelHostActor.Props(modelSettings, () => model), 8, hostedParameters: true);
        var registered = joined.ExpectMsgAsync<ClusterWorkerJoinedFront>(Bound).AsTask();

        // Whichever comes first: the model's first forward or the worker's registration. Without the warm-up the worker
        // registers at once and the model sees no forward until a call is routed to it.
        var first = await Task.WhenAny(model.FirstForward, registered).WaitAsync(Bound);
        Assert.True(first == model.FirstForward, "the worker registered with the front before its model had answered any forward");
        // The warm-up: one row of token ids 0, 1, … (8 of them, max_sequence allowing), sent by the worker itself.
        var warmUp = await model.FirstForward;
        Assert.Equal(new long[] { 0, 1, 2, 3, 4, 5, 6, 7 }, warmUp);
        // Held at the model: the worker has not registered, and the front knows no worker.
        Assert.Equal(0, (await worker.Ask<ClusterWorkerState>(GetClusterWorkerState.Instance, Bound)).RegisteredFronts);
        Assert.Empty((await Status(router)).Workers);

        model.Release();
        await registered;
        await AwaitWorkers(router, 1);
        var client = RawClient(port);
        AssertEcho(await Forward(client, Alice, Row(5)), 5);
        // The first call the front routed reached a model that had answered one forward already.
        Assert.Equal(["[1x8] 0 1 2 3 4 5 6 7", "[1x3] 5 7 9"], model.Forwards.Select(f => $"[{f.Batch}x{f.Seq}] {string.Join(' ', f.Tokens)}"));
    }
}
