using System.Collections.Concurrent;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Bittensor.Actors.ModelHost;
using Bittensor.Core.Modeling;
using Bittensor.Neurons.Demo;
using Xunit.Abstractions;

namespace Bittensor.Actors.Tests.ModelHost;

/// <summary>
/// Reading and writing a hosted model's parameters (cluster averaging) goes through the model host's queue: the
/// messages run on the model's own thread, between two jobs, never beside a batch in flight.
/// </summary>
public sealed class ModelHostParametersTests(ITestOutputHelper output) : TestKit(BittensorRuntime.ReferenceConfig, output: output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static readonly ModelSettings Settings = ModelSettings.Default with
    {
        VocabSize = 100, MaxSequence = 16, NetworkDim = ParameterModel.Width, MaxBatch = 8, MaxDelay = TimeSpan.Zero,
        CheckpointEverySteps = 0, CheckpointInterval = TimeSpan.Zero,
    };

    /// <summary>
    /// Four parameters; a forward waits on <see cref="Gate"/> (so a test holds a batch at the model); a backward adds 1
    /// to the first parameter. Every call records its name and thread, and whether another call was running at once.
    /// </summary>
    private sealed class ParameterModel : ITextModel, IFlatParameters
    {
        public const int Width = 2;
        private float[] _values = [1, 2, 3, 4];
        private int _busy;

        public ManualResetEventSlim Gate { get; } = new(true);
        public TaskCompletionSource ForwardStarted { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public ConcurrentQueue<(string Call, int Thread)> Calls { get; } = new();
        public bool Overlapped { get; private set; }

        public int VocabSize => 100;

        public int MaxSequence => 16;

        public int Dim => Width;

        public int ParameterCount => 4;

        private void Enter(string call)
        {
            if (Interlocked.Increment(ref _busy) > 1) Overlapped = true;
            Calls.Enqueue((call, Environment.CurrentManagedThreadId));
        }

        private void Exit(string call)
        {
            Calls.Enqueue((call, Environment.CurrentManagedThreadId));
            Interlocked.Decrement(ref _busy);
        }

        public void Arm()
        {
            Gate.Reset();
            ForwardStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public float[] Forward(long[] tokens, int batch, int seq)
        {
            Enter("forward");
            ForwardStarted.TrySetResult();
            Gate.Wait(TimeSpan.FromMinutes(2));
            Exit("forward-end");
            return new float[tokens.Length * Width];
        }

        public void Backward(long[] tokens, float[] grads, int batch, int seq)
        {
            Enter("backward");
            _values[0] += 1;
            Exit("backward-end");
        }

        public float[] GetParameters()
        {
            Enter("get");
            var copy = (float[])_values.Clone();
            Exit("get-end");
            return copy;
        }

        public void SetParameters(ReadOnlySpan<float> values)
        {
            Enter("set");
            _values = values.ToArray();
            Exit("set-end");
        }

        public void Save(string path) => File.WriteAllText(path, "parameters");

        public void Load(string path)
        {
        }

        public void Dispose() => Gate.Set();
    }

    private async Task<(IActorRef Host, ParameterModel Model)> StartAsync()
    {
        var model = new ParameterModel();
        var host = Sys.ActorOf(ModelHostActor.Props(Settings, () => model));
        await host.Ask<ModelStats>(GetModelStats.Instance, Wait); // answered by the worker: the model is up
        return (host, model);
    }

    private async Task<float[]> ParametersAsync(IActorRef host) => (await host.Ask<ModelParameters>(new GetModelParameters(0), Wait)).Values;

    [Fact]
    public async Task Get_and_set_wait_for_the_batch_in_flight_and_run_on_the_models_thread()
    {
        var (host, model) = await StartAsync();
        Assert.Equal(4, (await host.Ask<ModelParameterCount>(GetModelParameterCount.Instance, Wait)).Count);
        model.Arm();
        host.Tell(new ModelForward(1, [1, 2], 1, 2), TestActor);
        await model.ForwardStarted.Task.WaitAsync(Wait);
        host.Tell(new GetModelParameters(7), TestActor);
        host.Tell(new UpdateModelParameters(8, [5, 6, 7, 8], null), TestActor);
        // The host answers this itself, after it handled the two messages above: they are queued for the model now.
        var queue = await host.Ask<QueueStatus>(GetQueueStatus.Instance, Wait);
        Assert.Equal(1, queue.Running);
        Assert.Equal(["forward"], model.Calls.Select(c => c.Call));

        model.Gate.Set();
        var replies = new List<object>();
        for (var i = 0; i < 3; i++) replies.Add(await ExpectMsgAsync<object>(Wait));
        Assert.Equal(ModelReturnCode.Success, replies.OfType<ModelForwardResult>().Single().Code);
        var got = replies.OfType<ModelParameters>().Single();
        Assert.Equal(7L, got.Tag);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, got.Values);
        var set = replies.OfType<ModelParametersUpdated>().Single();
        Assert.Equal((8L, true), (set.Tag, set.Applied));
        Assert.Equal(["forward", "forward-end", "get", "get-end", "set", "set-end"], model.Calls.Select(c => c.Call));
        Assert.Single(model.Calls.Select(c => c.Thread).Distinct());
        Assert.False(model.Overlapped);
        Assert.Equal(new float[] { 5, 6, 7, 8 }, await ParametersAsync(host));
    }

    [Fact]
    public async Task An_average_keeps_the_steps_taken_since_the_copy_was_sent_and_bad_values_change_nothing()
    {
        var (host, _) = await StartAsync();
        var sent = await ParametersAsync(host); // [1, 2, 3, 4]
        host.Tell(new ModelBackward(1, [1, 2], new float[2 * ParameterModel.Width], 1, 2), TestActor);
        Assert.Equal(ModelReturnCode.Success, (await ExpectMsgAsync<ModelBackwardResult>(Wait)).Code); // first parameter: 2
        // θ ← θ + (average − sent): the step (+1) stays on top of the average; untouched elements become the average.
        var applied = await host.Ask<ModelParametersUpdated>(new UpdateModelParameters(2, [10, 20, 30, 40], sent), Wait);
        Assert.True(applied.Applied, applied.Message);
        Assert.Equal(new float[] { 11, 20, 30, 40 }, await ParametersAsync(host));

        var wrongSize = await host.Ask<ModelParametersUpdated>(new UpdateModelParameters(3, [1, 2, 3], null), Wait);
        Assert.False(wrongSize.Applied);
        Assert.Contains("3 averaged values for a model of 4", wrongSize.Message, StringComparison.Ordinal);
        var nan = await host.Ask<ModelParametersUpdated>(new UpdateModelParameters(4, [1, float.NaN, 3, 4], null), Wait);
        Assert.False(nan.Applied);
        Assert.Contains("NaN", nan.Message, StringComparison.Ordinal);
        Assert.Equal(new float[] { 11, 20, 30, 40 }, await ParametersAsync(host));
    }

    [Fact]
    public async Task A_host_of_delegates_has_no_parameters()
    {
        var host = Sys.ActorOf(ModelHostActor.ForHandlers(DemoModels.Echo(4), 2, 4, Wait));
        Assert.Equal(0, (await host.Ask<ModelParameterCount>(GetModelParameterCount.Instance, Wait)).Count);
        Assert.Empty((await host.Ask<ModelParameters>(new GetModelParameters(1), Wait)).Values);
        Assert.False((await host.Ask<ModelParametersUpdated>(new UpdateModelParameters(1, [1], null), Wait)).Applied);
    }
}
