using Akka.Actor;
using Akka.TestKit.Xunit2;
using Bittensor.Actors.ModelHost;
using Bittensor.Core.Modeling;
using Xunit.Abstractions;

namespace Bittensor.Actors.Tests.ModelHost;

/// <summary>
/// A model without TorchSharp: out[row, pos, d] = token + d/1000. The test holds <see cref="Gate"/> to keep a call
/// at the model (its worker thread waits on it), and <see cref="FailNext"/> makes the next forward throw.
/// </summary>
internal sealed class GatedModel : ITextModel
{
    public const int Width = 4;

    public static ManualResetEventSlim Gate { get; } = new(true);

    public int VocabSize => 100;

    public int MaxSequence => 16;

    public int Dim => Width;

    public float[] Forward(long[] tokens, int batch, int seq)
    {
        Gate.Wait(TimeSpan.FromMinutes(2));
        var data = new float[tokens.Length * Width];
        for (var i = 0; i < tokens.Length; i++)
            for (var d = 0; d < Width; d++) data[(i * Width) + d] = tokens[i] + (d / 1000f);
        return data;
    }

    public void Backward(long[] tokens, float[] grads, int batch, int seq) => Gate.Wait(TimeSpan.FromMinutes(2));

    public void Save(string path) => File.WriteAllText(path, "gated");

    public void Load(string path)
    {
    }

    public void Dispose()
    {
    }
}

// One test class: the gate is static, so these tests must not run in parallel with each other.
public sealed class ModelHostActorTests(ITestOutputHelper output) : TestKit(Bittensor.Actors.BittensorRuntime.ReferenceConfig, output: output), IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static readonly ModelSettings Settings = ModelSettings.Default with
    {
        VocabSize = 100, MaxSequence = 16, NetworkDim = GatedModel.Width, MaxBatch = 8, MaxDelay = TimeSpan.Zero,
        CheckpointEverySteps = 0, CheckpointInterval = TimeSpan.Zero,
        BackoffMin = TimeSpan.FromMilliseconds(10), BackoffMax = TimeSpan.FromMilliseconds(50),
    };

    void IDisposable.Dispose()
    {
        GatedModel.Gate.Set();
        Dispose();
    }

    private async Task<IActorRef> StartAsync(ModelSettings? settings = null)
    {
        GatedModel.Gate.Set();
        var host = Sys.ActorOf(ModelHostActor.Props(settings ?? Settings, () => new GatedModel()));
        // Answered by the worker, so the model is up once this returns.
        await host.Ask<ModelStats>(GetModelStats.Instance, Wait);
        return host;
    }

    private static ModelForward Forward(long id, int seq = 2, int priority = 0, DateTime? deadline = null) =>
        new(id, [.. Enumerable.Range(0, seq).Select(i => (long)((id + i) % 100))], 1, seq) { Priority = priority, DeadlineUtc = deadline };

    // Holds the model busy with request `id` (at the model, gate closed) and returns once the host has sent it.
    private async Task<IActorRef> BusyAsync(IActorRef host, long id, DateTime? deadline = null)
    {
        GatedModel.Gate.Reset();
        host.Tell(Forward(id, seq: 1, deadline: deadline), TestActor);
        // Stats are answered by the worker after it finished the busy call, so do not ask; a marker request that the
        // host refuses at once (bad shape) proves the busy request was taken before it.
        host.Tell(new ModelForward(-1, [1], 1, 99), TestActor);
        Assert.Equal((-1L, ModelReturnCode.RequestShapeException), Id(await ExpectMsgAsync<ModelForwardResult>(Wait)));
        return host;
    }

    private static (long, ModelReturnCode) Id(ModelForwardResult r) => (r.RequestId, r.Code);

    [Fact]
    public async Task A_full_queue_answers_nucleus_full_and_serves_the_waiting_requests_once_each()
    {
        var host = await BusyAsync(await StartAsync(Settings with { MaxQueue = 2 }), 1);
        host.Tell(Forward(2, seq: 3), TestActor);
        host.Tell(Forward(3, seq: 4), TestActor);
        host.Tell(Forward(4, seq: 5), TestActor);

        Assert.Equal((4L, ModelReturnCode.NucleusFull), Id(await ExpectMsgAsync<ModelForwardResult>(Wait)));
        GatedModel.Gate.Set();
        var served = new[] { await ExpectMsgAsync<ModelForwardResult>(Wait), await ExpectMsgAsync<ModelForwardResult>(Wait), await ExpectMsgAsync<ModelForwardResult>(Wait) };
        Assert.Equal([1L, 2L, 3L], served.Select(r => r.RequestId));
        Assert.All(served, r => Assert.Equal(ModelReturnCode.Success, r.Code));
        Assert.Equal([1, 3, GatedModel.Width], served[1].Shape);
        Assert.Equal(2f + 0.001f, served[1].Data[1], 1e-6f); // request 2 sent tokens [2, 3, 4]

        // Nothing else was sent for requests 1 to 4: the next reply is the next request's.
        host.Tell(Forward(5), TestActor);
        Assert.Equal((5L, ModelReturnCode.Success), Id(await ExpectMsgAsync<ModelForwardResult>(Wait)));
    }

    [Fact]
    public async Task The_deadline_answers_nucleus_timeout_once_and_the_late_result_is_dropped()
    {
        var host = await StartAsync();
        // At the model: its deadline passes while the model works on it.
        await BusyAsync(host, 1, deadline: DateTime.UtcNow.AddMilliseconds(200));
        // Queued behind it: its deadline passes while it waits.
        host.Tell(Forward(2, seq: 3, deadline: DateTime.UtcNow.AddMilliseconds(200)), TestActor);
        // Already past when it arrives.
        host.Tell(Forward(3, seq: 4, deadline: DateTime.UtcNow.AddSeconds(-1)), TestActor);

        var timedOut = new[] { await ExpectMsgAsync<ModelForwardResult>(Wait), await ExpectMsgAsync<ModelForwardResult>(Wait), await ExpectMsgAsync<ModelForwardResult>(Wait) };
        Assert.Equal([1L, 2L, 3L], timedOut.Select(r => r.RequestId).Order());
        Assert.All(timedOut, r => Assert.Equal(ModelReturnCode.NucleusTimeout, r.Code));

        // The model finishes request 1 now; its result must not reach anyone.
        GatedModel.Gate.Set();
        host.Tell(Forward(4), TestActor);
        Assert.Equal((4L, ModelReturnCode.Success), Id(await ExpectMsgAsync<ModelForwardResult>(Wait)));
    }

    [Fact]
    public async Task Waiting_requests_run_in_priority_order_lower_first_fifo_among_equals()
    {
        var host = await BusyAsync(await StartAsync(), 1);
        // Different lengths so that no two are coalesced into one call.
        host.Tell(Forward(2, seq: 2, priority: 5), TestActor);
        host.Tell(Forward(3, seq: 3, priority: 1), TestActor);
        host.Tell(Forward(4, seq: 4, priority: 5), TestActor);
        host.Tell(Forward(5, seq: 5, priority: int.MaxValue), TestActor);
        host.Tell(Forward(6, seq: 6, priority: 0), TestActor);

        GatedModel.Gate.Set();
        var order = new List<long>();
        for (var i = 0; i < 6; i++) order.Add((await ExpectMsgAsync<ModelForwardResult>(Wait)).RequestId);
        Assert.Equal([1L, 6L, 3L, 2L, 4L, 5L], order);
    }

    [Fact]
    public async Task Stopping_the_host_answers_every_accepted_request_not_serving()
    {
        var host = await BusyAsync(await StartAsync(), 1);
        host.Tell(Forward(2, seq: 3), TestActor);
        host.Tell(new ModelBackward(3, [1, 2], new float[2 * GatedModel.Width], 1, 2), TestActor);

        // A PoisonPill is queued ahead of anything the worker sends once the gate opens.
        host.Tell(PoisonPill.Instance);
        GatedModel.Gate.Set();

        var replies = new[] { await ExpectMsgAsync<object>(Wait), await ExpectMsgAsync<object>(Wait), await ExpectMsgAsync<object>(Wait) };
        var forwards = replies.OfType<ModelForwardResult>().ToArray();
        var backward = Assert.Single(replies.OfType<ModelBackwardResult>());
        Assert.Equal([1L, 2L], forwards.Select(r => r.RequestId).Order());
        Assert.All(forwards, r => Assert.Equal(ModelReturnCode.NotServingNucleus, r.Code));
        Assert.Equal((3L, ModelReturnCode.NotServingNucleus), (backward.RequestId, backward.Code));
    }

    [Fact]
    public async Task A_failing_model_answers_its_call_unknown_and_the_host_restarts_the_worker_after_a_backoff()
    {
        var host = await StartAsync();
        host.Tell(FailNextForward.Instance);
        host.Tell(Forward(1), TestActor);
        Assert.Equal((1L, ModelReturnCode.UnknownException), Id(await ExpectMsgAsync<ModelForwardResult>(Wait)));

        host.Tell(Forward(2), TestActor);
        Assert.Equal((2L, ModelReturnCode.Success), Id(await ExpectMsgAsync<ModelForwardResult>(Wait)));
        var stats = await host.Ask<ModelStats>(GetModelStats.Instance, Wait);
        Assert.Equal(2, stats.Incarnation);
        Assert.Equal(ModelSettings.DispatcherPath, stats.Dispatcher);
    }

    [Fact]
    public async Task The_endpoint_tells_the_host_with_a_request_id_and_completes_each_call_once()
    {
        var host = await StartAsync();
        var endpoint = new ModelHostEndpoint(Sys, host);

        var calls = Enumerable.Range(0, 20).Select(i => endpoint.ForwardAsync([i, i + 1], 1, 2, new ModelCall(i % 3), CancellationToken.None)).ToArray();
        var results = await Task.WhenAll(calls);

        Assert.All(results, r => Assert.Equal(ModelReturnCode.Success, r.Code));
        Assert.Equal(20, results.Select(r => r.RequestId).Distinct().Count());
        Assert.All(results, r => Assert.Equal(r.Data[0], r.Data[GatedModel.Width] - 1, 1e-6f));
        Assert.Equal(0, endpoint.Waiting);
    }

    [Fact]
    public async Task The_endpoint_answers_not_serving_when_the_host_is_gone_and_timeout_when_the_caller_gives_up()
    {
        var probe = CreateTestProbe();
        var endpoint = new ModelHostEndpoint(Sys, probe.Ref);

        using var cts = new CancellationTokenSource();
        var abandoned = endpoint.ForwardAsync([1], 1, 1, ModelCall.Default, cts.Token);
        var sent = await probe.ExpectMsgAsync<ModelForward>(Wait);
        await cts.CancelAsync();
        Assert.Equal((sent.RequestId, ModelReturnCode.NucleusTimeout), Id(await abandoned));

        var waiting = endpoint.BackwardAsync([1], new float[4], 1, 1, new ModelCall(3, DateTime.UtcNow.AddMinutes(1)), CancellationToken.None);
        var backward = await probe.ExpectMsgAsync<ModelBackward>(Wait);
        Assert.Equal(3, backward.Priority);
        Sys.Stop(probe.Ref);
        Assert.Equal(ModelReturnCode.NotServingNucleus, (await waiting).Code);
        Assert.Equal(ModelReturnCode.NotServingNucleus, (await endpoint.ForwardAsync([1], 1, 1, ModelCall.Default, CancellationToken.None)).Code);
        Assert.Equal(0, endpoint.Waiting);
    }

    [Fact]
    public async Task A_model_that_cannot_start_is_tried_start_attempts_times_then_the_host_stops_and_waiting_callers_get_not_serving()
    {
        var tries = 0;
        var gaveUp = CreateTestProbe();
        Sys.EventStream.Subscribe(gaveUp, typeof(ModelHostGaveUp));
        var host = Sys.ActorOf(ModelHostActor.Props(Settings with { StartAttempts = 3 }, () =>
        {
            Interlocked.Increment(ref tries);
            throw new InvalidDataException("checkpoint /x/model.ckpt is not a TorchSharp state dict");
        }));
        Watch(host);
        host.Tell(Forward(1), TestActor);

        var reply = await ExpectMsgAsync<ModelForwardResult>(Wait);
        Assert.Equal((1L, ModelReturnCode.NotServingNucleus), Id(reply));
        var gave = await gaveUp.ExpectMsgAsync<ModelHostGaveUp>(Wait);
        Assert.Equal(3, gave.Attempts);
        Assert.Equal("InvalidDataException: checkpoint /x/model.ckpt is not a TorchSharp state dict", gave.Reason);
        await ExpectTerminatedAsync(host, Wait);
        Assert.Equal(3, Volatile.Read(ref tries));
    }

    [Fact]
    public async Task A_model_that_starts_on_a_later_try_serves_and_its_start_failures_are_forgotten()
    {
        var tries = 0;
        var host = Sys.ActorOf(ModelHostActor.Props(Settings with { StartAttempts = 3 }, () =>
        {
            if (Interlocked.Increment(ref tries) <= 2) throw new OutOfMemoryException("simulated: out of memory at load");
            return new GatedModel();
        }));
        GatedModel.Gate.Set();
        host.Tell(Forward(7), TestActor);

        Assert.Equal((7L, ModelReturnCode.Success), Id(await ExpectMsgAsync<ModelForwardResult>(Wait)));
        Assert.Equal(3, Volatile.Read(ref tries));
        // A crash in service after the start is restarted (not counted as a failed start): the host keeps serving.
        host.Tell(FailNextForward.Instance);
        host.Tell(Forward(8), TestActor);
        Assert.Equal((8L, ModelReturnCode.UnknownException), Id(await ExpectMsgAsync<ModelForwardResult>(Wait)));
        host.Tell(Forward(9), TestActor);
        Assert.Equal((9L, ModelReturnCode.Success), Id(await ExpectMsgAsync<ModelForwardResult>(Wait)));
        Assert.Equal(4, Volatile.Read(ref tries));
    }
}
