using System.Collections.Concurrent;
using Akka.Actor;

namespace Bittensor.Actors.ModelHost;

/// <summary>
/// The hosted model as an axon (or any other caller outside the actor system) sees it: plain arrays in, arrays
/// and a <see cref="ModelReturnCode"/> out. Never throws for model-side failures: a crash, a timeout or a full
/// queue come back as codes.
/// </summary>
public interface IModelEndpoint
{
    /// <summary>Representations of <paramref name="tokens"/> ([batch, seq] row-major): [batch, seq, network_dim] on success.</summary>
    /// <param name="tokens">Token ids, [batch, seq] row-major.</param>
    /// <param name="batch">Rows.</param>
    /// <param name="seq">Tokens per row.</param>
    /// <param name="call">Priority and deadline of the call.</param>
    /// <param name="cancellationToken">Stops waiting (the answer is then NucleusTimeout).</param>
    Task<ModelForwardResult> ForwardAsync(long[] tokens, int batch, int seq, ModelCall call, CancellationToken cancellationToken);

    /// <summary>One optimizer step from <paramref name="grads"/>, the gradient w.r.t. the outputs for <paramref name="tokens"/>.</summary>
    Task<ModelBackwardResult> BackwardAsync(long[] tokens, float[] grads, int batch, int seq, ModelCall call, CancellationToken cancellationToken);
}

/// <summary>How a call queues at the model host.</summary>
/// <param name="Priority">Lower runs first (the axon's stake priority); 0 for local callers.</param>
/// <param name="DeadlineUtc">When the caller stops waiting; null = now + the host's request_timeout.</param>
public readonly record struct ModelCall(int Priority = 0, DateTime? DeadlineUtc = null)
{
    /// <summary>Priority 0, the host's default deadline.</summary>
    public static ModelCall Default => default;
}

/// <summary>
/// <see cref="IModelEndpoint"/> over a <see cref="ModelHostActor"/>: each call is a <c>Tell</c> with a request id, and one
/// reply-collector actor per endpoint completes the caller's task from the host's reply (no Ask per call and no
/// timeout of its own: the host answers every accepted request exactly once, at the latest at its deadline). If the
/// host stops, every waiting call and every later one answers NotServingNucleus.
/// </summary>
public sealed class ModelHostEndpoint : IModelEndpoint
{
    private readonly IActorRef _host;
    private readonly IActorRef _collector;
    private readonly ConcurrentDictionary<long, TaskCompletionSource<object>> _waiting = new();
    private long _nextRequestId;
    private int _hostStopped;

    /// <summary>Calls <paramref name="host"/>; the collector actor lives in <paramref name="system"/> (or under an actor's context).</summary>
    public ModelHostEndpoint(IActorRefFactory system, IActorRef host)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(host);
        _host = host;
        _collector = system.ActorOf(Props.Create(() => new ReplyCollector(this, host)));
    }

    /// <summary>Calls waiting for a reply now.</summary>
    public int Waiting => _waiting.Count;

    /// <inheritdoc />
    public async Task<ModelForwardResult> ForwardAsync(long[] tokens, int batch, int seq, ModelCall call, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _nextRequestId);
        var reply = await CallAsync(id, new ModelForward(id, tokens, batch, seq) { Priority = call.Priority, DeadlineUtc = call.DeadlineUtc }, cancellationToken).ConfigureAwait(false);
        return reply as ModelForwardResult ?? new ModelForwardResult(id, [], [], Code(reply), Message(reply));
    }

    /// <inheritdoc />
    public async Task<ModelBackwardResult> BackwardAsync(long[] tokens, float[] grads, int batch, int seq, ModelCall call, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _nextRequestId);
        var reply = await CallAsync(id, new ModelBackward(id, tokens, grads, batch, seq) { Priority = call.Priority, DeadlineUtc = call.DeadlineUtc }, cancellationToken).ConfigureAwait(false);
        return reply as ModelBackwardResult ?? new ModelBackwardResult(id, Code(reply), 0, Message(reply));
    }

    private static ModelReturnCode Code(object reply) => reply is Refusal r ? r.Code : ModelReturnCode.UnknownException;

    private static string Message(object reply) => reply is Refusal r ? r.Message : $"unexpected reply {reply.GetType().Name}";

    private async Task<object> CallAsync(long id, object request, CancellationToken cancellationToken)
    {
        var completion = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[id] = completion;
        // Registered before the check: either the collector's sweep on the host's death sees this call, or this sees the flag.
        if (Volatile.Read(ref _hostStopped) == 1)
        {
            Complete(id, new Refusal(ModelReturnCode.NotServingNucleus, "the model host has stopped"));
        }
        else
        {
            _host.Tell(request, _collector);
        }
        using var registration = cancellationToken.Register(() => Complete(id, new Refusal(ModelReturnCode.NucleusTimeout, "the caller stopped waiting")));
        return await completion.Task.ConfigureAwait(false);
    }

    private void Complete(long id, object reply)
    {
        if (_waiting.TryRemove(id, out var completion)) completion.TrySetResult(reply);
    }

    private void HostStopped()
    {
        Volatile.Write(ref _hostStopped, 1);
        foreach (var id in _waiting.Keys) Complete(id, new Refusal(ModelReturnCode.NotServingNucleus, "the model host has stopped"));
    }

    private sealed record Refusal(ModelReturnCode Code, string Message);

    private sealed class ReplyCollector : ReceiveActor
    {
        public ReplyCollector(ModelHostEndpoint endpoint, IActorRef host)
        {
            Context.Watch(host);
            Receive<ModelForwardResult>(r => endpoint.Complete(r.RequestId, r));
            Receive<ModelBackwardResult>(r => endpoint.Complete(r.RequestId, r));
            Receive<Terminated>(t => t.ActorRef.Equals(host), _ => endpoint.HostStopped());
        }
    }
}
