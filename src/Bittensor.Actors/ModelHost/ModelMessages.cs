using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Core.Modeling;

namespace Bittensor.Actors.ModelHost;

/// <summary>
/// Outcome of a model request. The numbers are those of the wire ReturnCode (PROTOCOL.md), so an axon can cast.
/// </summary>
public enum ModelReturnCode
{
    /// <summary>The model answered.</summary>
    Success = 0,
    /// <summary>The host does not serve this kind of call (a text model asked for another modality, no backward delegate).</summary>
    NotImplemented = 4,
    /// <summary>The request is malformed (token ids out of the vocabulary, lengths that do not add up).</summary>
    InvalidRequest = 8,
    /// <summary>Shape not accepted (empty, longer than max_sequence, gradient of the wrong size).</summary>
    RequestShapeException = 9,
    /// <summary>The model host is stopping; the request was not run.</summary>
    NotServingNucleus = 15,
    /// <summary>The model did not answer within request_timeout (or crashed while the request was queued to it).</summary>
    NucleusTimeout = 16,
    /// <summary>Too many requests are waiting (max_queue); try again later.</summary>
    NucleusFull = 17,
    /// <summary>The model failed on this request (exception or NaN); it restarts from its last checkpoint.</summary>
    UnknownException = 21,
}

/// <summary>
/// Forward request: <paramref name="Tokens"/> is [batch, seq] row-major. Local message only: arrays are fine
/// between actors of one process, and no tensor ever leaves the model worker. The host answers the sender with
/// exactly one <see cref="ModelForwardResult"/> carrying the same <paramref name="RequestId"/>.
/// </summary>
public sealed record ModelForward(long RequestId, long[] Tokens, int Batch, int Seq)
{
    /// <summary>Queue order at the host: lower runs first (the axon passes its stake priority); FIFO among equals.</summary>
    public int Priority { get; init; }

    /// <summary>When the caller stops waiting (UTC); the host answers NucleusTimeout then. Null: now + request_timeout.</summary>
    public DateTime? DeadlineUtc { get; init; }
}

/// <summary>Answer to <see cref="ModelForward"/>: <paramref name="Data"/> is [batch, seq, network_dim] row-major (empty unless Success).</summary>
public sealed record ModelForwardResult(long RequestId, float[] Data, int[] Shape, ModelReturnCode Code, string Message = "");

/// <summary>
/// Backward request as the 2021 template server took it: the inputs and the caller's gradient of some loss with
/// respect to the outputs (<paramref name="Grads"/>, [batch, seq, network_dim] row-major). The model recomputes
/// the forward pass with grad, back-propagates <paramref name="Grads"/> and takes one optimizer step.
/// </summary>
public sealed record ModelBackward(long RequestId, long[] Tokens, float[] Grads, int Batch, int Seq)
{
    /// <summary>Queue order at the host: lower runs first; FIFO among equals.</summary>
    public int Priority { get; init; }

    /// <summary>When the caller stops waiting (UTC); the host answers NucleusTimeout then. Null: now + request_timeout.</summary>
    public DateTime? DeadlineUtc { get; init; }
}

/// <summary>Answer to <see cref="ModelBackward"/>; <paramref name="Step"/> counts optimizer steps since start.</summary>
public sealed record ModelBackwardResult(long RequestId, ModelReturnCode Code, long Step, string Message = "");

/// <summary>
/// An axon's verified, decoded call handed straight to the model host (<c>Tell</c>, the axon's reply sink as sender).
/// The request carries its caller's stake priority and its one deadline (<see cref="ForwardRequest.Priority"/>,
/// <see cref="ForwardRequest.DeadlineUtc"/>). The host answers the sender with exactly one <see cref="AxonModelReply"/>
/// with the same <paramref name="RequestId"/>. Local message only: it carries tensors as arrays.
/// </summary>
public sealed record AxonModelCall(long RequestId, ForwardRequest? Forward, BackwardRequest? Backward) : INoSerializationVerificationNeeded
{
    /// <summary>Queue order at the host: lower first.</summary>
    public int Priority => Forward?.Priority ?? Backward!.Priority;

    /// <summary>The call's one deadline (UTC); null: now + the host's request timeout.</summary>
    public DateTime? DeadlineUtc => Forward is not null ? Forward.DeadlineUtc : Backward!.DeadlineUtc;
}

/// <summary>The answer to an <see cref="AxonModelCall"/>: the model's response or a code.</summary>
public sealed record AxonModelReply(long RequestId, ModelResponse Response) : INoSerializationVerificationNeeded;

/// <summary>Asks the host how many requests wait in its queue and how many are at the model; answered with <see cref="QueueStatus"/>.</summary>
public sealed record GetQueueStatus
{
    /// <summary>The only instance.</summary>
    public static GetQueueStatus Instance { get; } = new();
    private GetQueueStatus() { }
}

/// <summary>Requests waiting in the host's queue and requests at the model (not yet answered).</summary>
public sealed record QueueStatus(int Waiting, int Running);

/// <summary>Saves a checkpoint now (also what the periodic timer sends); answered with <see cref="CheckpointSaved"/>.</summary>
public sealed record SaveCheckpoint
{
    /// <summary>The only instance.</summary>
    public static SaveCheckpoint Instance { get; } = new();
    private SaveCheckpoint() { }
}

/// <summary>A checkpoint was written after <paramref name="Step"/> optimizer steps.</summary>
public sealed record CheckpointSaved(long Step);

/// <summary>Asks for <see cref="ModelStats"/>.</summary>
public sealed record GetModelStats
{
    /// <summary>The only instance.</summary>
    public static GetModelStats Instance { get; } = new();
    private GetModelStats() { }
}

/// <summary>Counters of the current model actor incarnation plus the number of incarnations (restarts + 1).</summary>
/// <param name="Incarnation">1 for the first model actor, +1 after each restart.</param>
/// <param name="ForwardCalls">Model forward calls (one per coalesced batch).</param>
/// <param name="ForwardRows">Rows those calls carried.</param>
/// <param name="LargestBatch">Most rows in one call.</param>
/// <param name="Steps">Optimizer steps (including those restored from the checkpoint).</param>
/// <param name="RestoredStep">Step of the checkpoint this incarnation started from (0 = fresh weights).</param>
/// <param name="Dispatcher">The dispatcher the model actor runs on (bittensor.model.dispatcher when configured).</param>
public sealed record ModelStats(int Incarnation, long ForwardCalls, long ForwardRows, int LargestBatch, long Steps, long RestoredStep, string Dispatcher);

/// <summary>Test hook: the next forward call throws inside the model actor, as a bug in user code would.</summary>
public sealed record FailNextForward
{
    /// <summary>The only instance.</summary>
    public static FailNextForward Instance { get; } = new();
    private FailNextForward() { }
}

/// <summary>Sends every batch that is waiting now, without waiting for max_batch or max_delay.</summary>
public sealed record FlushBatches
{
    /// <summary>The only instance.</summary>
    public static FlushBatches Instance { get; } = new();
    private FlushBatches() { }
}

/// <summary>
/// Published on the event stream when a <see cref="ModelHostActor"/> gives up because its model cannot start
/// (<c>bittensor.model.start_attempts</c> tries in a row); the host stops right after, answering every waiting caller
/// NotServingNucleus. Hosts (btcli, the demo) subscribe to say why in one line and exit.
/// </summary>
/// <param name="Host">The host that stops.</param>
/// <param name="Attempts">Tries made.</param>
/// <param name="Reason">The last try's failure, one line (exception type and message).</param>
public sealed record ModelHostGaveUp(IActorRef Host, int Attempts, string Reason);

/// <summary>Waiting for <see cref="ModelHostGaveUp"/> from outside an actor (btcli, the demo, host apps).</summary>
public static class ModelHostEvents
{
    /// <summary>
    /// Completes with the first <see cref="ModelHostGaveUp"/> published on <paramref name="system"/>'s event stream
    /// after this call; cancelled with <paramref name="cancellationToken"/>. The subscriber actor stops either way.
    /// </summary>
    public static Task<ModelHostGaveUp> GaveUpAsync(ActorSystem system, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(system);
        var done = new TaskCompletionSource<ModelHostGaveUp>(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = system.ActorOf(Props.Create(() => new GaveUpWatcher(done)));
        // Subscribed before this returns, so an event published after the call is never missed.
        system.EventStream.Subscribe(watcher, typeof(ModelHostGaveUp));
        var registration = cancellationToken.Register(() =>
        {
            done.TrySetCanceled(cancellationToken);
            watcher.Tell(PoisonPill.Instance);
        });
        _ = done.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        return done.Task;
    }

    private sealed class GaveUpWatcher : ReceiveActor
    {
        public GaveUpWatcher(TaskCompletionSource<ModelHostGaveUp> done) =>
            Receive<ModelHostGaveUp>(g =>
            {
                done.TrySetResult(g);
                Context.Stop(Self);
            });

        protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);
    }
}

/// <summary>
/// Asks how many parameters the hosted model exposes for averaging (<see cref="IFlatParameters"/>); answered with
/// <see cref="ModelParameterCount"/> by the model's worker once the model is built (0: the model exposes none, or the
/// host serves delegates). Like every control message it goes to the model's thread in order with the jobs.
/// </summary>
public sealed record GetModelParameterCount : INoSerializationVerificationNeeded
{
    /// <summary>The only instance.</summary>
    public static GetModelParameterCount Instance { get; } = new();
    private GetModelParameterCount() { }
}

/// <summary>The hosted model's parameter count (0 = none to average).</summary>
public sealed record ModelParameterCount(int Count) : INoSerializationVerificationNeeded;

/// <summary>
/// Asks for a copy of the hosted model's parameters; answered with <see cref="ModelParameters"/> (same
/// <paramref name="Tag"/>). Handled on the model's thread between two jobs (never while a batch runs).
/// </summary>
public sealed record GetModelParameters(long Tag) : INoSerializationVerificationNeeded;

/// <summary>A copy of the hosted model's parameters (empty when it exposes none) and its optimizer steps so far.</summary>
public sealed record ModelParameters(long Tag, float[] Values, long Step) : INoSerializationVerificationNeeded;

/// <summary>
/// Applies an average to the hosted model, on its thread between two jobs: with <paramref name="Sent"/> (the copy this
/// replica contributed) θ ← θ + (<paramref name="Average"/> − <paramref name="Sent"/>), an element that did not move
/// since set to the average itself; without, θ ← average. Answered with <see cref="ModelParametersUpdated"/>.
/// </summary>
public sealed record UpdateModelParameters(long Tag, float[] Average, float[]? Sent) : INoSerializationVerificationNeeded;

/// <summary>The answer to <see cref="UpdateModelParameters"/>: applied, or why not (<paramref name="Message"/>).</summary>
public sealed record ModelParametersUpdated(long Tag, bool Applied, string Message) : INoSerializationVerificationNeeded;

/// <summary>
/// Asks the host to answer one local forward before its first remote call (a cluster worker sends it before it
/// registers with a front): a text host runs a forward of one short row (token ids 0, 1, …) through its own queue,
/// batching and model thread — the model's first use (TorchSharp's native kernels, the JIT of the forward path) is paid
/// there instead of by the first caller, whose deadline may be short on a busy machine. The forward runs in inference
/// mode: the weights, the optimizer and the dropout stream are untouched (<see cref="ModelStats.ForwardCalls"/> counts
/// it). A host of delegates answers at once (they are the caller's code, nothing of the host's to warm). Answered with
/// exactly one <see cref="ModelWarmed"/>, like every request: at the latest at the host's request timeout.
/// </summary>
public sealed record WarmModel : INoSerializationVerificationNeeded
{
    /// <summary>The only instance.</summary>
    public static WarmModel Instance { get; } = new();
    private WarmModel() { }
}

/// <summary>
/// The answer to <see cref="WarmModel"/>: <paramref name="Ran"/> says whether a forward ran (false for a host of
/// delegates); <paramref name="Code"/> and <paramref name="Message"/> are that forward's outcome.
/// </summary>
public sealed record ModelWarmed(bool Ran, ModelReturnCode Code, string Message) : INoSerializationVerificationNeeded;
