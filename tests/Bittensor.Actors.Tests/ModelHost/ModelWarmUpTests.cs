using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Actors.ModelHost;
using Bittensor.Core.Modeling;
using Bittensor.Protocol;

namespace Bittensor.Actors.Tests.ModelHost;

/// <summary>
/// <see cref="WarmModel"/>: a text host answers it after one short forward through its own queue and model thread
/// (what a cluster worker waits for before it registers); a host of delegates answers at once without calling them.
/// </summary>
public sealed class ModelWarmUpTests() : Akka.TestKit.Xunit2.TestKit("akka.loglevel = WARNING\n" + TestKitWaits.Hocon)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>Records each forward's shape and tokens; throws on every forward when <paramref name="fail"/>.</summary>
    private sealed class Recording(int maxSequence = 16, bool fail = false) : ITextModel
    {
        private readonly List<string> _forwards = [];

        public IReadOnlyList<string> Forwards
        {
            get
            {
                lock (_forwards) return [.. _forwards];
            }
        }

        public int Backwards { get; private set; }

        public int VocabSize => 5;

        public int MaxSequence => maxSequence;

        public int Dim => 2;

        public float[] Forward(long[] tokens, int batch, int seq)
        {
            lock (_forwards) _forwards.Add($"[{batch}x{seq}] {string.Join(' ', tokens)}");
            if (fail) throw new InvalidOperationException("this model fails");
            return new float[tokens.Length * Dim];
        }

        public void Backward(long[] tokens, float[] grads, int batch, int seq) => Backwards++;

        public void Save(string path) => File.WriteAllText(path, "recording");

        public void Load(string path)
        {
        }

        public void Dispose()
        {
        }
    }

    private static ModelSettings Settings(int maxSequence = 16) => ModelSettings.Default with
    {
        VocabSize = 5, MaxSequence = maxSequence, NetworkDim = 2, MaxBatch = 8, MaxDelay = TimeSpan.Zero, CheckpointEverySteps = 0,
        CheckpointInterval = TimeSpan.Zero, StartAttempts = 1,
    };

    [Fact]
    public async Task A_text_host_answers_after_one_inference_forward_of_one_short_row_and_takes_no_step()
    {
        var model = new Recording();
        var host = Sys.ActorOf(ModelHostActor.Props(Settings(), () => model));
        host.Tell(WarmModel.Instance, TestActor);
        var warmed = await ExpectMsgAsync<ModelWarmed>(Wait);
        Assert.Equal(new ModelWarmed(true, ModelReturnCode.Success, ""), warmed);
        // Token ids 0, 1, … within the vocabulary (5 here), one row of 8.
        Assert.Equal(["[1x8] 0 1 2 3 4 0 1 2"], model.Forwards);
        var stats = await host.Ask<ModelStats>(GetModelStats.Instance, Wait);
        Assert.Equal((1L, 0L), (stats.ForwardCalls, stats.Steps));
        Assert.Equal(0, model.Backwards);
    }

    [Fact]
    public async Task The_warm_up_row_is_cut_to_max_sequence()
    {
        var model = new Recording(maxSequence: 3);
        var host = Sys.ActorOf(ModelHostActor.Props(Settings(maxSequence: 3), () => model));
        host.Tell(WarmModel.Instance, TestActor);
        Assert.True((await ExpectMsgAsync<ModelWarmed>(Wait)).Ran);
        Assert.Equal(["[1x3] 0 1 2"], model.Forwards);
    }

    [Fact]
    public async Task A_model_that_fails_its_warm_up_is_answered_with_the_failure_once()
    {
        var model = new Recording(fail: true);
        var host = Sys.ActorOf(ModelHostActor.Props(Settings(), () => model));
        host.Tell(WarmModel.Instance, TestActor);
        var warmed = await ExpectMsgAsync<ModelWarmed>(Wait);
        Assert.True(warmed.Ran);
        Assert.Equal(ModelReturnCode.UnknownException, warmed.Code);
        Assert.Contains("this model fails", warmed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_host_of_delegates_answers_at_once_without_calling_them()
    {
        var calls = 0;
        var handlers = new AxonHandlers((_, _) =>
        {
            Interlocked.Increment(ref calls);
            return Task.FromResult(ModelResponse.Ok(DenseTensor.Zeros(1, 1, 2)));
        });
        var host = Sys.ActorOf(ModelHostActor.ForHandlers(handlers, 1, 4, Wait));
        host.Tell(WarmModel.Instance, TestActor);
        var warmed = await ExpectMsgAsync<ModelWarmed>(Wait);
        Assert.False(warmed.Ran);
        Assert.Equal(ModelReturnCode.Success, warmed.Code);
        Assert.Equal(0, Volatile.Read(ref calls));
    }
}
