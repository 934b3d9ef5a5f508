using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Protocol.Wire;
using Bittensor.Protocol;

namespace Bittensor.Actors.Tests.Axon;

public sealed class AxonRouterSpec() : Akka.TestKit.Xunit2.TestKit("akka.loglevel = WARNING")
{
    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    private static AxonCall Call(string caller, int priority, DateTime deadline) => new(false,
        new ForwardRequest(caller, 0, Modality.Text, DenseTensor.Int64([1, 1], [1])), null, priority, deadline,
        new TaskCompletionSource<ModelResponse>(TaskCreationOptions.RunContinuationsAsynchronously));

    [Fact]
    public async Task A_call_that_waited_past_its_deadline_answers_NucleusTimeout_without_reaching_the_model()
    {
        var clock = new ManualClock();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var served = new List<string>();
        var handlers = new AxonHandlers(async (r, _) =>
        {
            lock (served) served.Add(r.CallerHotkey);
            entered.TrySetResult();
            await gate.Task;
            return ModelResponse.Ok(DenseTensor.Zeros(1, 1, 4));
        });
        var admission = new AxonAdmission(10);
        var router = Sys.ActorOf(AxonRouter.Props(handlers, 1, admission, clock));
        var now = clock.GetUtcNow().UtcDateTime;
        var first = Call("first", 5, now.AddSeconds(10));
        var late = Call("late", 1, now.AddSeconds(1));
        var onTime = Call("on-time", 9, now.AddSeconds(10));
        foreach (var _ in new[] { first, late, onTime }) admission.TryEnter();

        router.Tell(first);
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(20));
        router.Tell(late);
        router.Tell(onTime);
        await AwaitAssertAsync(async () => Assert.Equal(2, (await router.Ask<AxonRouter.Status>(AxonRouter.GetStatus.Instance, TimeSpan.FromSeconds(5))).Waiting));
        clock.Advance(TimeSpan.FromSeconds(2));
        gate.SetResult();

        Assert.Equal(ReturnCode.NucleusTimeout, (await late.Completion.Task.WaitAsync(TimeSpan.FromSeconds(20))).Code);
        Assert.Equal(ReturnCode.Success, (await onTime.Completion.Task.WaitAsync(TimeSpan.FromSeconds(20))).Code);
        Assert.Equal(["first", "on-time"], served);
        await AwaitAssertAsync(() => Assert.Equal(0, admission.Count));
    }
}
