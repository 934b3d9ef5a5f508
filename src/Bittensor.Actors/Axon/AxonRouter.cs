using Akka.Actor;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Axon;

/// <summary>
/// One admitted call on its way to a worker. LOCAL-ONLY: it carries a <see cref="TaskCompletionSource{T}"/>
/// back to the gRPC call, so it must never cross a node boundary (no serializer exists for it on purpose).
/// </summary>
internal sealed record AxonCall(
    bool IsBackward,
    ForwardRequest? Forward,
    BackwardRequest? Backward,
    int Priority,
    DateTime DeadlineUtc,
    TaskCompletionSource<ModelResponse> Completion)
{
    public string Caller => Forward?.CallerHotkey ?? Backward!.CallerHotkey;
}

/// <summary>Counts calls admitted and not yet finished; the gRPC service refuses calls beyond the limit (NucleusFull).</summary>
internal sealed class AxonAdmission(int limit)
{
    private int _count;

    public int Limit { get; } = limit;

    public int Count => Volatile.Read(ref _count);

    public bool TryEnter()
    {
        if (Interlocked.Increment(ref _count) <= Limit) return true;
        Interlocked.Decrement(ref _count);
        return false;
    }

    public void Exit() => Interlocked.Decrement(ref _count);
}

/// <summary>Maps stakes to queue priorities (lower runs first) in O(1) without allocation.</summary>
internal static class StakePriority
{
    /// <summary>Unknown callers (and callers with no stake) go last.</summary>
    public const int Lowest = int.MaxValue;

    // Priorities are ints; stakes are TAO as double. Milli-TAO resolution up to ~2.1 million TAO, then equal.
    public static int From(double stake)
    {
        if (!(stake > 0)) return Lowest;
        var milli = stake * 1000.0;
        var scaled = milli >= int.MaxValue - 2 ? int.MaxValue - 2 : (int)milli;
        return int.MaxValue - 1 - scaled;
    }
}

/// <summary>
/// Replaces the 2021 axon's thread pool: holds the waiting calls in stake order and hands each to the next
/// idle worker. A call whose deadline passed while it waited answers NucleusTimeout when it is dequeued.
/// This queue is the axon's ONLY priority mechanism: the router runs on the default dispatcher with a plain
/// FIFO mailbox (a priority mailbox in front of it would be a second, redundant ordering), and its size is
/// bounded by <see cref="AxonAdmission"/> in the gRPC service.
/// </summary>
internal sealed class AxonRouter : UntypedActor
{
    private readonly AxonHandlers _handlers;
    private readonly int _workers;
    private readonly AxonAdmission _admission;
    private readonly TimeProvider _time;
    private readonly Stack<IActorRef> _idle = new();
    private readonly PriorityQueue<AxonCall, (int Priority, long Seq)> _waiting = new();
    private long _seq;

    public AxonRouter(AxonHandlers handlers, int workers, AxonAdmission admission, TimeProvider time)
    {
        _handlers = handlers;
        _workers = workers;
        _admission = admission;
        _time = time;
    }

    public static Props Props(AxonHandlers handlers, int workers, AxonAdmission admission, TimeProvider time) =>
        Akka.Actor.Props.Create(() => new AxonRouter(handlers, workers, admission, time));

    /// <summary>Sent by a worker when it finished its call.</summary>
    public sealed record WorkerIdle(IActorRef Worker);

    /// <summary>Asks how many calls wait and how many workers are busy.</summary>
    public sealed record GetStatus
    {
        public static readonly GetStatus Instance = new();
    }

    /// <summary>Answer to <see cref="GetStatus"/>.</summary>
    public sealed record Status(int Waiting, int BusyWorkers);

    protected override void PreStart()
    {
        for (var i = 0; i < _workers; i++)
            _idle.Push(Context.ActorOf(AxonWorker.Props(_handlers, _admission, _time), $"worker-{i}"));
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case AxonCall call:
                if (_idle.Count > 0 && _waiting.Count == 0) TryDispatch(_idle.Pop(), call);
                else _waiting.Enqueue(call, (call.Priority, _seq++));
                break;
            case WorkerIdle idle:
                var worker = idle.Worker;
                while (_waiting.TryDequeue(out var next, out _))
                {
                    if (TryDispatch(worker, next)) return;
                }
                _idle.Push(worker);
                break;
            case GetStatus:
                Sender.Tell(new Status(_waiting.Count, _workers - _idle.Count));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private bool TryDispatch(IActorRef worker, AxonCall call)
    {
        if (_time.GetUtcNow().UtcDateTime >= call.DeadlineUtc)
        {
            call.Completion.TrySetResult(new ModelResponse(null, ReturnCode.NucleusTimeout, "call waited in the axon's queue past its deadline"));
            _admission.Exit();
            return false;
        }
        worker.Tell(call);
        return true;
    }
}

/// <summary>Runs one call at a time against the model delegates; completes the call's promise and reports idle.</summary>
internal sealed class AxonWorker : UntypedActor
{
    private readonly AxonHandlers _handlers;
    private readonly AxonAdmission _admission;
    private readonly TimeProvider _time;

    public AxonWorker(AxonHandlers handlers, AxonAdmission admission, TimeProvider time)
    {
        _handlers = handlers;
        _admission = admission;
        _time = time;
    }

    public static Props Props(AxonHandlers handlers, AxonAdmission admission, TimeProvider time) =>
        Akka.Actor.Props.Create(() => new AxonWorker(handlers, admission, time));

    private sealed record Finished(AxonCall Call, ModelResponse Response);

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case AxonCall call:
                Run(call).PipeTo(Self, success: r => new Finished(call, r),
                    failure: ex => new Finished(call, new ModelResponse(null, ReturnCode.UnknownException, $"model failed: {ex.GetType().Name}")));
                break;
            case Finished f:
                f.Call.Completion.TrySetResult(f.Response);
                _admission.Exit();
                Context.Parent.Tell(new AxonRouter.WorkerIdle(Self));
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private async Task<ModelResponse> Run(AxonCall call)
    {
        var remaining = call.DeadlineUtc - _time.GetUtcNow().UtcDateTime;
        if (remaining <= TimeSpan.Zero)
            return new ModelResponse(null, ReturnCode.NucleusTimeout, "call reached the model after its deadline");
        using var cts = new CancellationTokenSource(remaining, _time);
        try
        {
            if (call.IsBackward)
            {
                if (_handlers.Backward is null) return new ModelResponse(null, ReturnCode.NotImplemented, "this axon serves no backward");
                return await _handlers.Backward(call.Backward!, cts.Token);
            }
            return await _handlers.Forward(call.Forward!, cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return new ModelResponse(null, ReturnCode.NucleusTimeout, "model did not answer before the deadline");
        }
        catch (AskTimeoutException)
        {
            return new ModelResponse(null, ReturnCode.NucleusTimeout, "model actor did not answer before the deadline");
        }
    }
}
