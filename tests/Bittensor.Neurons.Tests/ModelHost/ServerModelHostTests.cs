using Akka.Actor;
using Akka.TestKit.Xunit2;
using Bittensor.Neurons.Roles;
using Xunit.Abstractions;
using Bittensor.Protocol;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Neurons.Tests.ModelHost;

/// <summary>Sizes small enough for fast tests; dropout off so steps are deterministic.</summary>
internal static class TestModels
{
    public static readonly ModelSettings Small = ModelSettings.Default with
    {
        VocabSize = 512, DModel = 32, Layers = 1, Heads = 2, FeedForward = 64, MaxSequence = 16, Dropout = 0, Threads = 1,
    };
}

public sealed class ServerModelHostTests(ITestOutputHelper output) : TestKit(TestConfig.Hocon, output: output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static readonly ModelSettings Settings = TestModels.Small with
    {
        MaxBatch = 8,
        MaxDelay = TimeSpan.FromHours(1),
        CheckpointEverySteps = 0,
        CheckpointInterval = TimeSpan.Zero,
        BackoffMin = TimeSpan.FromMilliseconds(10),
        BackoffMax = TimeSpan.FromMilliseconds(100),
        RequestTimeout = TimeSpan.FromMinutes(2),
    };

    private async Task<IActorRef> StartAsync(ModelSettings settings)
    {
        var model = Sys.ActorOf(ServerModelHost.Props(settings));
        // Answered by the model actor itself, so the model is up once this returns.
        await model.Ask<ModelStats>(GetModelStats.Instance, Wait);
        return model;
    }

    private static long[] Tokens(int batch, int seq, int salt) =>
        Enumerable.Range(0, batch * seq).Select(i => (long)((i * 31 + salt * 17) % 500)).ToArray();

    private async Task<ModelForwardResult> ForwardAsync(IActorRef model, long id, long[] tokens, int batch, int seq)
    {
        model.Tell(new ModelForward(id, tokens, batch, seq), TestActor);
        model.Tell(FlushBatches.Instance);
        var result = await ExpectMsgAsync<ModelForwardResult>(Wait);
        Assert.Equal(id, result.RequestId);
        return result;
    }

    [Fact]
    public async Task Concurrent_forward_calls_are_coalesced_into_one_model_call()
    {
        var model = await StartAsync(Settings);
        for (var i = 0; i < 8; i++) model.Tell(new ModelForward(i, Tokens(1, 4, i), 1, 4), TestActor);

        var results = new Dictionary<long, ModelForwardResult>();
        for (var i = 0; i < 8; i++)
        {
            var r = await ExpectMsgAsync<ModelForwardResult>(Wait);
            results[r.RequestId] = r;
        }
        var stats = await model.Ask<ModelStats>(GetModelStats.Instance, Wait);

        Assert.Equal(1, stats.ForwardCalls);
        Assert.Equal(8, stats.LargestBatch);
        Assert.Equal(ModelSettings.DispatcherPath, stats.Dispatcher);
        Assert.All(results.Values, r => Assert.Equal(ModelReturnCode.Success, r.Code));
        Assert.All(results.Values, r => Assert.Equal([1, 4, 1024], r.Shape));
        // Each caller gets its own row: the same as running that request alone.
        var alone = await ForwardAsync(model, 100, Tokens(1, 4, 5), 1, 4);
        Assert.Equal(alone.Data.Length, results[5].Data.Length);
        Assert.All(alone.Data.Zip(results[5].Data), p => Assert.Equal(p.First, p.Second, 1e-4f));
    }

    [Fact]
    public async Task Requests_of_different_lengths_go_in_separate_batches()
    {
        var model = await StartAsync(Settings);
        for (var i = 0; i < 3; i++) model.Tell(new ModelForward(i, Tokens(1, 4, i), 1, 4), TestActor);
        for (var i = 3; i < 5; i++) model.Tell(new ModelForward(i, Tokens(2, 6, i), 2, 6), TestActor);
        model.Tell(FlushBatches.Instance);

        var results = new List<ModelForwardResult>();
        for (var i = 0; i < 5; i++) results.Add(await ExpectMsgAsync<ModelForwardResult>(Wait));
        var stats = await model.Ask<ModelStats>(GetModelStats.Instance, Wait);

        Assert.Equal(2, stats.ForwardCalls);
        Assert.Equal(7, stats.ForwardRows);
        Assert.Equal(4, stats.LargestBatch);
        Assert.Equal([2, 6, 1024], results.Single(r => r.RequestId == 4).Shape);
    }

    [Fact]
    public async Task Backward_steps_from_a_peer_lower_the_loss_on_a_fixed_batch()
    {
        var model = await StartAsync(Settings with { LearningRate = 3e-3 });
        var tokens = Tokens(2, 8, 1);
        var random = new Random(7);
        var target = Enumerable.Range(0, 2 * 8 * 1024).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var losses = new List<double>();

        for (var step = 0; step < 12; step++)
        {
            var y = await ForwardAsync(model, step, tokens, 2, 8);
            Assert.Equal(ModelReturnCode.Success, y.Code);
            losses.Add(y.Data.Zip(target).Average(p => (p.First - p.Second) * (double)(p.First - p.Second)));
            // d(mean squared error)/dy, as a validator would send it back.
            var grads = y.Data.Zip(target).Select(p => 2f * (p.First - p.Second) / target.Length).ToArray();
            model.Tell(new ModelBackward(1000 + step, tokens, grads, 2, 8), TestActor);
            var done = await ExpectMsgAsync<ModelBackwardResult>(Wait);
            Assert.Equal(ModelReturnCode.Success, done.Code);
            Assert.Equal(step + 1, done.Step);
        }

        Assert.True(losses[^1] < losses[0] * 0.9, $"loss went from {losses[0]} to {losses[^1]}");
    }

    [Fact]
    public async Task A_crash_restarts_the_model_from_its_checkpoint_and_every_request_is_answered()
    {
        var model = await StartAsync(Settings with { MaxDelay = TimeSpan.Zero });
        var tokens = Tokens(1, 4, 3);
        var grads = Enumerable.Repeat(0.01f, 4 * 1024).ToArray();
        for (var i = 0; i < 2; i++)
        {
            model.Tell(new ModelBackward(i, tokens, grads, 1, 4), TestActor);
            await ExpectMsgAsync<ModelBackwardResult>(Wait);
        }
        model.Tell(SaveCheckpoint.Instance, TestActor);
        Assert.Equal(2, (await ExpectMsgAsync<CheckpointSaved>(Wait)).Step);
        var atCheckpoint = await ForwardAsync(model, 50, tokens, 1, 4);
        model.Tell(new ModelBackward(3, tokens, grads, 1, 4), TestActor);
        Assert.Equal(3, (await ExpectMsgAsync<ModelBackwardResult>(Wait)).Step);

        model.Tell(FailNextForward.Instance);
        for (var id = 60; id < 64; id++) model.Tell(new ModelForward(id, tokens, 1, 4), TestActor);
        var replies = new List<ModelForwardResult>();
        for (var i = 0; i < 4; i++) replies.Add(await ExpectMsgAsync<ModelForwardResult>(Wait));

        Assert.Equal(Enumerable.Range(60, 4).Select(i => (long)i), replies.Select(r => r.RequestId).Order());
        Assert.Equal(ModelReturnCode.UnknownException, replies.Single(r => r.RequestId == 60).Code);
        foreach (var after in replies.Where(r => r.RequestId != 60))
        {
            Assert.Equal(ModelReturnCode.Success, after.Code);
            Assert.All(atCheckpoint.Data.Zip(after.Data), p => Assert.Equal(p.First, p.Second, 1e-5f));
        }
        var stats = await model.Ask<ModelStats>(GetModelStats.Instance, Wait);
        Assert.Equal(2, stats.Incarnation);
        Assert.Equal(2, stats.RestoredStep);
        Assert.Equal(2, stats.Steps);
        await ExpectNoMsgAsync(TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public async Task Checkpoints_taken_every_n_steps_are_what_a_crash_restores()
    {
        var model = await StartAsync(Settings with { MaxDelay = TimeSpan.Zero, CheckpointEverySteps = 2 });
        var tokens = Tokens(1, 4, 9);
        var grads = Enumerable.Repeat(0.01f, 4 * 1024).ToArray();
        for (var i = 0; i < 3; i++)
        {
            model.Tell(new ModelBackward(i, tokens, grads, 1, 4), TestActor);
            Assert.Equal(ModelReturnCode.Success, (await ExpectMsgAsync<ModelBackwardResult>(Wait)).Code);
        }

        model.Tell(FailNextForward.Instance);
        model.Tell(new ModelForward(10, tokens, 1, 4), TestActor);
        Assert.Equal(ModelReturnCode.UnknownException, (await ExpectMsgAsync<ModelForwardResult>(Wait)).Code);
        var stats = await AwaitRestartAsync(model);

        Assert.Equal((2, 2L, 2L), (stats.Incarnation, stats.RestoredStep, stats.Steps));
    }

    // After a crash the stats request may reach the host while it waits out the restart backoff; it is handed to the
    // next worker, which may be the second incarnation or (if asked before the crash was seen) the first: ask until 2.
    private async Task<ModelStats> AwaitRestartAsync(IActorRef model)
    {
        ModelStats? stats = null;
        await AwaitAssertAsync(async () =>
        {
            stats = await model.Ask<ModelStats>(GetModelStats.Instance, TimeSpan.FromSeconds(2));
            Assert.Equal(2, stats.Incarnation);
        }, Wait, TimeSpan.FromMilliseconds(50));
        return stats!;
    }

    [Fact]
    public async Task Malformed_requests_are_answered_with_a_code_and_never_reach_the_model()
    {
        var model = await StartAsync(Settings);

        model.Tell(new ModelForward(1, [1, 2, 999_999], 1, 3), TestActor);
        Assert.Equal(ModelReturnCode.InvalidRequest, (await ExpectMsgAsync<ModelForwardResult>(Wait)).Code);
        model.Tell(new ModelForward(2, new long[40], 2, 20), TestActor);
        Assert.Equal(ModelReturnCode.RequestShapeException, (await ExpectMsgAsync<ModelForwardResult>(Wait)).Code);
        model.Tell(new ModelForward(3, new long[5], 2, 3), TestActor);
        Assert.Equal(ModelReturnCode.RequestShapeException, (await ExpectMsgAsync<ModelForwardResult>(Wait)).Code);
        model.Tell(new ModelBackward(4, new long[4], new float[10], 1, 4), TestActor);
        Assert.Equal(ModelReturnCode.RequestShapeException, (await ExpectMsgAsync<ModelBackwardResult>(Wait)).Code);
        var nan = new float[4 * 1024];
        nan[7] = float.NaN;
        model.Tell(new ModelBackward(5, new long[4], nan, 1, 4), TestActor);
        Assert.Equal(ModelReturnCode.InvalidRequest, (await ExpectMsgAsync<ModelBackwardResult>(Wait)).Code);

        var stats = await model.Ask<ModelStats>(GetModelStats.Instance, Wait);
        Assert.Equal(0, stats.ForwardCalls);
        Assert.Equal(0, stats.Steps);
    }

    [Fact]
    public async Task A_full_queue_answers_nucleus_full_at_once_and_keeps_the_waiting_requests()
    {
        var model = await StartAsync(Settings with { MaxQueue = 2 });
        for (var i = 0; i < 3; i++) model.Tell(new ModelForward(i, Tokens(1, 4, i), 1, 4), TestActor);

        var refused = await ExpectMsgAsync<ModelForwardResult>(Wait);
        Assert.Equal((2L, ModelReturnCode.NucleusFull), (refused.RequestId, refused.Code));
        model.Tell(FlushBatches.Instance);
        var served = new[] { await ExpectMsgAsync<ModelForwardResult>(Wait), await ExpectMsgAsync<ModelForwardResult>(Wait) };
        Assert.All(served, r => Assert.Equal(ModelReturnCode.Success, r.Code));
    }
}

public sealed class ModelHostEndpointTests(ITestOutputHelper output) : TestKit(TestConfig.Hocon, output: output)
{
    [Fact]
    public async Task The_endpoint_returns_representations_and_takes_optimizer_steps()
    {
        var model = Sys.ActorOf(ServerModelHost.Props(TestModels.Small));
        var endpoint = new ModelHostEndpoint(Sys, model);

        var result = await endpoint.ForwardAsync([1, 2, 3, 4, 5, 6], 2, 3, ModelCall.Default, CancellationToken.None);
        Assert.Equal(ModelReturnCode.Success, result.Code);
        Assert.Equal([2, 3, 1024], result.Shape);
        Assert.Equal(2 * 3 * 1024, result.Data.Length);
        var step = await endpoint.BackwardAsync([1, 2, 3], new float[3 * 1024], 1, 3, ModelCall.Default, CancellationToken.None);
        Assert.Equal((ModelReturnCode.Success, 1L), (step.Code, step.Step));
        Assert.Equal(0, endpoint.Waiting);
    }
}

public sealed class TextHostAxonCallTests(ITestOutputHelper output) : TestKit(TestConfig.Hocon, output: output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private async Task<Bittensor.Actors.Axon.ModelResponse> Call(IActorRef model, long id, Bittensor.Actors.Axon.ForwardRequest? forward, Bittensor.Actors.Axon.BackwardRequest? backward = null)
    {
        model.Tell(new AxonModelCall(id, forward, backward), TestActor);
        var reply = await ExpectMsgAsync<AxonModelReply>(Wait);
        Assert.Equal(id, reply.RequestId);
        return reply.Response;
    }

    [Fact]
    public async Task An_axon_call_to_a_text_model_host_serves_text_forward_and_backward_and_refuses_other_modalities()
    {
        var model = Sys.ActorOf(ServerModelHost.Props(TestModels.Small));
        var inputs = Bittensor.Protocol.DenseTensor.Int64([2, 3], [1, 2, 3, 4, 5, 6]);

        var forward = await Call(model, 1, new Bittensor.Actors.Axon.ForwardRequest("5caller", 0, Bittensor.Protocol.Wire.Modality.Text, inputs));
        Assert.Equal(Bittensor.Protocol.Wire.ReturnCode.Success, forward.Code);
        Assert.True(forward.Outputs!.HasShape(2, 3, 1024));

        var grads = Bittensor.Protocol.DenseTensor.Float32([2, 3, 1024], new float[2 * 3 * 1024]);
        var backward = await Call(model, 2, null, new Bittensor.Actors.Axon.BackwardRequest("5caller", 0, Bittensor.Protocol.Wire.Modality.Text, inputs, grads));
        Assert.Equal(Bittensor.Protocol.Wire.ReturnCode.Success, backward.Code);
        Assert.True(backward.Outputs!.HasShape(2, 3));

        var image = await Call(model, 3, new Bittensor.Actors.Axon.ForwardRequest("5caller", 0, Bittensor.Protocol.Wire.Modality.Image, inputs));
        Assert.Equal(Bittensor.Protocol.Wire.ReturnCode.NotImplemented, image.Code);
        var badToken = await Call(model, 4, new Bittensor.Actors.Axon.ForwardRequest("5caller", 0, Bittensor.Protocol.Wire.Modality.Text, Bittensor.Protocol.DenseTensor.Int64([1, 1], [99_999])));
        Assert.Equal(Bittensor.Protocol.Wire.ReturnCode.InvalidRequest, badToken.Code);
    }
}
