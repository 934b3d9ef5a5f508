using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Actors.ModelHost;
using Bittensor.Core.Crypto;
using Bittensor.Core.Modeling;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Axon;

/// <summary>
/// The call path of a model-backed axon, end to end over real Kestrel h2c with real signatures: AxonService Tells the
/// <see cref="ModelHostActor"/> (the one queue, ordered by the callers' stakes), the host Tells its ModelWorker, the
/// answer comes back to the gRPC call.
/// </summary>
public sealed class AxonModelHostPathSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    private const int Dim = 8;

    /// <summary>A text model whose forward waits on a gate and records the first token of each row it computed.</summary>
    private sealed class GatedTextModel : ITextModel
    {
        private readonly List<long> _served = [];

        public ManualResetEventSlim Gate { get; } = new(false);

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IReadOnlyList<long> Served
        {
            get { lock (_served) return [.. _served]; }
        }

        public int VocabSize => 100;

        public int MaxSequence => 16;

        public int Dim => AxonModelHostPathSpec.Dim;

        public float[] Forward(long[] tokens, int batch, int seq)
        {
            lock (_served)
                for (var b = 0; b < batch; b++) _served.Add(tokens[b * seq]);
            Entered.TrySetResult();
            Gate.Wait(TimeSpan.FromMinutes(2));
            var data = new float[tokens.Length * Dim];
            for (var i = 0; i < tokens.Length; i++)
                for (var d = 0; d < Dim; d++) data[(i * Dim) + d] = tokens[i] + (d / 1000f);
            return data;
        }

        public void Backward(long[] tokens, float[] grads, int batch, int seq)
        {
        }

        public void Save(string path) => File.WriteAllText(path, "gated");

        public void Load(string path)
        {
        }

        public void Dispose()
        {
        }
    }

    private static ModelSettings Settings(int maxQueue) => ModelSettings.Default with
    {
        VocabSize = 100, MaxSequence = 16, NetworkDim = Dim, MaxBatch = 1, MaxDelay = TimeSpan.Zero, MaxQueue = maxQueue,
        CheckpointEverySteps = 0, CheckpointInterval = TimeSpan.Zero,
    };

    private static TensorMessage Row(Sr25519KeyPair caller, long first) => TextRequest(caller, [1, 4], [first, 2, 3, 4]);

    [Fact]
    public async Task A_call_through_a_real_axon_waits_in_the_model_hosts_queue_and_callers_are_served_by_stake()
    {
        var model = new GatedTextModel();
        var host = Sys.ActorOf(ModelHostActor.Props(Settings(maxQueue: 8), () => model));
        try
        {
            var (axon, port) = await StartAxon(AxonActor.Props(Loopback(networkDim: Dim), host));
            axon.Tell(new AxonActor.UpdateStakes(new Dictionary<string, double>
            {
                [Bob.ToSs58()] = 10, [Charlie.ToSs58()] = 1000, [Dave.ToSs58()] = 100.5,
            }));
            await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait);
            var client = RawClient(port);
            var blocker = Forward(client, Alice, Row(Alice, 1));
            await model.Entered.Task.WaitAsync(Wait);

            // Eve (unknown, lowest) and Bob arrive before the richer callers; all four wait in the host's queue.
            var calls = new List<Task<TensorMessage>>();
            foreach (var (key, first) in new[] { (Eve, 5L), (Bob, 2L), (Dave, 4L), (Charlie, 3L) })
            {
                calls.Add(Forward(client, key, Row(key, first)));
                await AwaitQueued(host, calls.Count);
            }
            Assert.Equal(5, (await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait)).Waiting);
            model.Gate.Set();

            var answer = await blocker;
            Assert.Equal(ReturnCode.Success, answer.ReturnCode);
            var values = TensorCodec.Decode(answer.Tensors[0]).Tensor.ToFloat32Array();
            Assert.Equal(4 * Dim, values.Length);
            Assert.Equal(1f, values[0]);
            Assert.Equal(4f + (7 / 1000f), values[^1]);
            foreach (var c in calls) Assert.Equal(ReturnCode.Success, (await c).ReturnCode);
            Assert.Equal([1L, 3, 4, 2, 5], model.Served); // Alice, then Charlie 1000, Dave 100.5, Bob 10, Eve 0
            Assert.Equal(0, (await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait)).Waiting);
        }
        finally
        {
            model.Gate.Set();
        }
    }

    [Fact]
    public async Task A_full_model_host_queue_answers_NucleusFull_at_once_and_the_host_refuses_what_the_model_cannot_take()
    {
        var model = new GatedTextModel();
        var host = Sys.ActorOf(ModelHostActor.Props(Settings(maxQueue: 1), () => model));
        try
        {
            var (_, port) = await StartAxon(AxonActor.Props(Loopback(networkDim: Dim), host));
            var client = RawClient(port);
            var running = Forward(client, Alice, Row(Alice, 1));
            await model.Entered.Task.WaitAsync(Wait);
            var waiting = Forward(client, Bob, Row(Bob, 2));
            await AwaitQueued(host, 1);

            var refused = await Forward(client, Charlie, Row(Charlie, 3));
            Assert.Equal(ReturnCode.NucleusFull, refused.ReturnCode);
            Assert.False(running.IsCompleted);
            // Token ids beyond the model's vocabulary are refused by the host, before the queue.
            Assert.Equal(ReturnCode.InvalidRequest, (await Forward(client, Dave, Row(Dave, 500))).ReturnCode);

            model.Gate.Set();
            Assert.Equal(ReturnCode.Success, (await running).ReturnCode);
            Assert.Equal(ReturnCode.Success, (await waiting).ReturnCode);
        }
        finally
        {
            model.Gate.Set();
        }
    }

    [Fact]
    public async Task When_the_model_host_stops_later_calls_answer_NotServingNucleus()
    {
        var model = new GatedTextModel();
        model.Gate.Set();
        var host = Sys.ActorOf(ModelHostActor.Props(Settings(maxQueue: 4), () => model));
        var (_, port) = await StartAxon(AxonActor.Props(Loopback(networkDim: Dim), host));
        var client = RawClient(port);
        Assert.Equal(ReturnCode.Success, (await Forward(client, Alice, Row(Alice, 1))).ReturnCode);

        await host.GracefulStop(Wait);

        await AwaitAssertAsync(async () => Assert.Equal(ReturnCode.NotServingNucleus, (await Forward(client, Bob, Row(Bob, 2))).ReturnCode), Wait);
    }

    [Fact]
    public async Task When_the_model_host_stops_the_running_and_the_waiting_calls_answer_NotServingNucleus()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handlers = new AxonHandlers(async (r, ct) =>
        {
            entered.TrySetResult();
            await gate.Task.WaitAsync(ct);
            return ModelResponse.Ok(DenseTensor.Zeros(1, 4, Dim));
        });
        var (axon, port) = await StartAxon(Loopback(workers: 1, queue: 4, networkDim: Dim), handlers);
        var host = await ModelHostOf(axon);
        var client = RawClient(port);
        var running = Forward(client, Alice, Row(Alice, 1));
        await entered.Task.WaitAsync(Wait);
        var waiting = Forward(client, Bob, Row(Bob, 2));
        await AwaitQueued(host, 1);

        await host.GracefulStop(Wait);

        Assert.Equal(ReturnCode.NotServingNucleus, (await running).ReturnCode);
        Assert.Equal(ReturnCode.NotServingNucleus, (await waiting).ReturnCode);
        await AwaitAssertAsync(async () => Assert.Equal(ReturnCode.NotServingNucleus, (await Forward(client, Charlie, Row(Charlie, 3))).ReturnCode), Wait);
        gate.TrySetResult();
    }
}
