using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Actors.ModelHost;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.ModelHost;

/// <summary>The model host serving an axon's delegates: the same queue, deadlines and NucleusFull as a hosted text model.</summary>
public sealed class HandlerHostTests() : Akka.TestKit.Xunit2.TestKit("akka.loglevel = WARNING\n" + TestKitWaits.Hocon)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    /// <summary>A forward delegate that records callers and waits on a gate the test opens.</summary>
    private sealed class Gated
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<string> _served = [];

        public Task Entered => _entered.Task;

        public IReadOnlyList<string> Served
        {
            get { lock (_served) return [.. _served]; }
        }

        public void Open() => _gate.TrySetResult();

        public AxonHandlers Handlers => new(async (r, ct) =>
        {
            lock (_served) _served.Add(r.CallerHotkey);
            _entered.TrySetResult();
            await _gate.Task.WaitAsync(ct);
            return ModelResponse.Ok(DenseTensor.Zeros(1, 1, 4));
        });
    }

    /// <summary>A clock whose timers fire only when the test says so, after whatever the test did first.</summary>
    private sealed class HeldTimers : TimeProvider
    {
        public List<(TimerCallback Callback, object? State)> Created { get; } = [];

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Created.Add((callback, state));
            return new Inert();
        }

        private sealed class Inert : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task A_deadline_timer_that_fires_after_the_handler_answered_is_harmless()
    {
        // A timer's Dispose does not wait for a callback already on its way: the deadline may fire after the handler's
        // token source was disposed. That used to throw ObjectDisposedException on a thread-pool timer (process crash).
        var clock = new HeldTimers();
        var gate = new TaskCompletionSource<ModelResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        var handlers = new AxonHandlers((_, _) => gate.Task);
        var call = Call(1, "5Caller", 0, DateTime.UtcNow.AddMinutes(5));
        var answer = ModelHostActor.StartHandler(handlers, call, DateTime.UtcNow.AddMinutes(5), clock);
        Assert.False(answer.IsCompleted);
        gate.SetResult(ModelResponse.Ok(DenseTensor.Zeros(1, 1, 4)));
        var response = await answer.WaitAsync(Wait);
        Assert.Equal(ReturnCode.Success, response.Code);
        var (callback, state) = Assert.Single(clock.Created);
        var late = Record.Exception(() => callback(state));
        Assert.Null(late);
    }

    private static AxonModelCall Call(long id, string caller, int priority, DateTime deadline) =>
        new(id, new ForwardRequest(caller, 0, Modality.Text, DenseTensor.Int64([1, 1], [1])) { Priority = priority, DeadlineUtc = deadline }, null);

    private async Task<AxonModelReply> Reply(long id)
    {
        var reply = await ExpectMsgAsync<AxonModelReply>(r => r.RequestId == id, Wait);
        return reply;
    }

    [Fact]
    public async Task A_call_that_waited_past_its_deadline_answers_NucleusTimeout_without_reaching_the_model()
    {
        var clock = new ManualClock();
        var model = new Gated();
        var host = Sys.ActorOf(ModelHostActor.ForHandlers(model.Handlers, 1, 10, TimeSpan.FromSeconds(10), clock));
        var now = clock.GetUtcNow().UtcDateTime;

        host.Tell(Call(1, "first", 5, now.AddSeconds(10)), TestActor);
        await model.Entered.WaitAsync(Wait);
        host.Tell(Call(2, "late", 1, now.AddSeconds(1)), TestActor);
        host.Tell(Call(3, "on-time", 9, now.AddSeconds(10)), TestActor);
        await AwaitAssertAsync(async () => Assert.Equal(new QueueStatus(2, 1), await host.Ask<QueueStatus>(GetQueueStatus.Instance, Wait)));
        clock.Advance(TimeSpan.FromSeconds(2));
        model.Open();

        var replies = new[] { await ExpectMsgAsync<AxonModelReply>(Wait), await ExpectMsgAsync<AxonModelReply>(Wait), await ExpectMsgAsync<AxonModelReply>(Wait) }
            .ToDictionary(r => r.RequestId, r => r.Response.Code);
        Assert.Equal(ReturnCode.Success, replies[1]);
        Assert.Equal(ReturnCode.NucleusTimeout, replies[2]);
        Assert.Equal(ReturnCode.Success, replies[3]);
        Assert.Equal(["first", "on-time"], model.Served);
        Assert.Equal(new QueueStatus(0, 0), await host.Ask<QueueStatus>(GetQueueStatus.Instance, Wait));
    }

    [Fact]
    public async Task Waiting_calls_run_lowest_priority_value_first_and_a_full_queue_answers_NucleusFull_at_once()
    {
        var model = new Gated();
        var host = Sys.ActorOf(ModelHostActor.ForHandlers(model.Handlers, 1, 3, TimeSpan.FromSeconds(30)));
        var deadline = DateTime.UtcNow.AddMinutes(5);

        host.Tell(Call(1, "running", 0, deadline), TestActor);
        await model.Entered.WaitAsync(Wait);
        host.Tell(Call(2, "poor", StakePriority.Lowest, deadline), TestActor);
        host.Tell(Call(3, "rich", StakePriority.From(1000), deadline), TestActor);
        host.Tell(Call(4, "middle", StakePriority.From(10), deadline), TestActor);
        host.Tell(Call(5, "refused", StakePriority.From(1_000_000), deadline), TestActor);

        var refused = await ExpectMsgAsync<AxonModelReply>(Wait);
        Assert.Equal((5L, ReturnCode.NucleusFull), (refused.RequestId, refused.Response.Code));
        model.Open();
        for (var i = 0; i < 4; i++) Assert.Equal(ReturnCode.Success, (await ExpectMsgAsync<AxonModelReply>(Wait)).Response.Code);
        Assert.Equal(["running", "rich", "middle", "poor"], model.Served);
    }

    [Fact]
    public async Task With_no_queue_a_free_worker_still_takes_a_call_and_a_missing_backward_answers_NotImplemented()
    {
        var model = new Gated();
        var host = Sys.ActorOf(ModelHostActor.ForHandlers(model.Handlers, 1, 0, TimeSpan.FromSeconds(30)));
        var deadline = DateTime.UtcNow.AddMinutes(5);

        host.Tell(Call(1, "running", 0, deadline), TestActor);
        await model.Entered.WaitAsync(Wait);
        host.Tell(Call(2, "second", 0, deadline), TestActor);
        Assert.Equal(ReturnCode.NucleusFull, (await Reply(2)).Response.Code);
        var backward = new BackwardRequest("b", 0, Modality.Text, DenseTensor.Int64([1, 1], [1]), DenseTensor.Zeros(1, 1, 4)) { DeadlineUtc = deadline };
        host.Tell(new AxonModelCall(3, null, backward), TestActor);
        Assert.Equal(ReturnCode.NotImplemented, (await Reply(3)).Response.Code);
        model.Open();
        Assert.Equal(ReturnCode.Success, (await Reply(1)).Response.Code);
    }

    [Fact]
    public async Task A_throwing_delegate_answers_UnknownException_and_the_host_keeps_serving()
    {
        var calls = 0;
        var handlers = new AxonHandlers((r, _) => Interlocked.Increment(ref calls) == 1
            ? throw new InvalidOperationException("model broke")
            : Task.FromResult(ModelResponse.Ok(DenseTensor.Zeros(1, 1, 4))));
        var host = Sys.ActorOf(ModelHostActor.ForHandlers(handlers, 2, 4, TimeSpan.FromSeconds(30)));
        var deadline = DateTime.UtcNow.AddMinutes(5);

        host.Tell(Call(1, "a", 0, deadline), TestActor);
        Assert.Equal(ReturnCode.UnknownException, (await Reply(1)).Response.Code);
        host.Tell(Call(2, "b", 0, deadline), TestActor);
        Assert.Equal(ReturnCode.Success, (await Reply(2)).Response.Code);
    }

    [Fact]
    public async Task An_inline_delegate_that_does_not_complete_at_once_holds_its_slot_until_it_does()
    {
        var gate = new TaskCompletionSource<ModelResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        var threads = new List<int>();
        var handlers = new AxonHandlers((r, _) =>
        {
            lock (threads) threads.Add(Environment.CurrentManagedThreadId);
            return r.CallerHotkey == "slow" ? gate.Task : Task.FromResult(ModelResponse.Ok(DenseTensor.Zeros(1, 1, 4)));
        })
        {
            Inline = true,
        };
        var host = Sys.ActorOf(ModelHostActor.ForHandlers(handlers, 1, 4, TimeSpan.FromSeconds(30)));
        var deadline = DateTime.UtcNow.AddMinutes(5);

        host.Tell(Call(1, "fast", 0, deadline), TestActor);
        Assert.Equal(ReturnCode.Success, (await Reply(1)).Response.Code);
        host.Tell(Call(2, "slow", 0, deadline), TestActor);
        host.Tell(Call(3, "fast", 0, deadline), TestActor);
        await AwaitAssertAsync(async () => Assert.Equal(new QueueStatus(1, 1), await host.Ask<QueueStatus>(GetQueueStatus.Instance, Wait)));
        gate.SetResult(ModelResponse.Ok(DenseTensor.Zeros(1, 1, 4)));

        Assert.Equal(ReturnCode.Success, (await Reply(2)).Response.Code);
        Assert.Equal(ReturnCode.Success, (await Reply(3)).Response.Code);
        Assert.Equal(3, threads.Count);
    }
}
