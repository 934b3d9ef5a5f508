using System.Collections.Concurrent;
using Akka.Actor;
using Bittensor.Actors.ModelHost;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Axon;

/// <summary>
/// Where the model host's answers to one axon's calls land: a minimal actor ref (no actor, no mailbox) that the host
/// Tells an <see cref="AxonModelReply"/>; the reply completes the waiting gRPC call by request id on the host's own
/// thread (the call's continuation then runs on the thread pool). LOCAL-ONLY, like the calls it completes.
/// </summary>
internal sealed class AxonReplySink : MinimalActorRef
{
    private readonly ConcurrentDictionary<long, TaskCompletionSource<ModelResponse>> _waiting = new();
    private long _nextId;
    private volatile string? _stopped;

    public AxonReplySink(IActorRefProvider provider)
    {
        Provider = provider;
        Path = provider.TempPath();
    }

    /// <inheritdoc />
    public override ActorPath Path { get; }

    /// <inheritdoc />
    public override IActorRefProvider Provider { get; }

    /// <summary>True once the host has stopped (every call answers NotServingNucleus).</summary>
    public bool Stopped => _stopped is not null;

    /// <summary>Calls handed to the model host and not answered yet.</summary>
    public int Waiting => _waiting.Count;

    /// <summary>A new request id and the task its answer completes.</summary>
    public (long Id, Task<ModelResponse> Answer) Register()
    {
        var id = Interlocked.Increment(ref _nextId);
        var completion = new TaskCompletionSource<ModelResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[id] = completion;
        // Registered before the check: either HostStopped's sweep sees this call, or this sees the flag.
        if (_stopped is { } reason) Complete(id, new ModelResponse(null, ReturnCode.NotServingNucleus, reason));
        return (id, completion.Task);
    }

    /// <summary>Answers one waiting call (e.g. when its caller cancelled); later replies for it are dropped.</summary>
    public void Complete(long id, ModelResponse response)
    {
        if (_waiting.TryRemove(id, out var completion)) completion.TrySetResult(response);
    }

    /// <summary>The host is gone: every waiting call and every later one answers NotServingNucleus.</summary>
    public void HostStopped(string reason)
    {
        _stopped = reason;
        foreach (var id in _waiting.Keys) Complete(id, new ModelResponse(null, ReturnCode.NotServingNucleus, reason));
    }

    /// <inheritdoc />
    protected override void TellInternal(object message, IActorRef sender)
    {
        if (message is AxonModelReply reply) Complete(reply.RequestId, reply.Response);
    }
}
