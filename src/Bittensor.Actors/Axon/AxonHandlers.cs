using Bittensor.Protocol.Wire;
using Bittensor.Protocol;

namespace Bittensor.Actors.Axon;

/// <summary>A verified, decoded forward call handed to the model.</summary>
/// <param name="CallerHotkey">The caller's SS58 address (verified unless verification is disabled).</param>
/// <param name="CallerStake">The caller's stake in the axon's latest snapshot (0 when unknown).</param>
/// <param name="Modality">TEXT (int64 <c>[batch, seq]</c>), TENSOR (rank 3) or IMAGE (rank 5).</param>
/// <param name="Inputs">The input tensor.</param>
public sealed record ForwardRequest(string CallerHotkey, double CallerStake, Modality Modality, DenseTensor Inputs)
{
    /// <summary>Order at the model host: lower first (the axon's stake priority of the caller).</summary>
    public int Priority { get; init; } = StakePriority.Lowest;

    /// <summary>The call's one deadline (UTC): the caller's gRPC deadline capped by call_timeout; null when unknown.</summary>
    public DateTime? DeadlineUtc { get; init; }
}

/// <summary>A verified, decoded backward call: the inputs of an earlier forward and the gradients of its outputs.</summary>
/// <param name="CallerHotkey">The caller's SS58 address.</param>
/// <param name="CallerStake">The caller's stake in the axon's latest snapshot (0 when unknown).</param>
/// <param name="Modality">Modality of <paramref name="Inputs"/>.</param>
/// <param name="Inputs">The inputs tensor.</param>
/// <param name="Grads">float32 <c>[batch, seq, dim]</c> gradients, dims 0 and 1 equal to the inputs'.</param>
public sealed record BackwardRequest(string CallerHotkey, double CallerStake, Modality Modality, DenseTensor Inputs, DenseTensor Grads)
{
    /// <summary>Order at the model host: lower first (the axon's stake priority of the caller).</summary>
    public int Priority { get; init; } = StakePriority.Lowest;

    /// <summary>The call's one deadline (UTC): the caller's gRPC deadline capped by call_timeout; null when unknown.</summary>
    public DateTime? DeadlineUtc { get; init; }
}

/// <summary>
/// What the model answers. On success <paramref name="Outputs"/> holds float32 <c>[batch, seq, network_dim]</c>
/// for a forward, or a float32 tensor shaped like the inputs for a backward. A model may refuse a call with
/// another code (e.g. NotServingNucleus) and a message; then outputs are ignored.
/// </summary>
public sealed record ModelResponse(DenseTensor? Outputs, ReturnCode Code = ReturnCode.Success, string Message = "")
{
    /// <summary>A successful answer.</summary>
    public static ModelResponse Ok(DenseTensor outputs) => new(outputs);
}

/// <summary>
/// A model as delegates, for an axon without a hosted <c>ITextModel</c> (demo models, tests, samples): the axon runs
/// them behind a <see cref="ModelHost.ModelHostActor"/> (<see cref="ModelHost.ModelHostActor.ForHandlers"/>), so they
/// get the same stake-ordered queue, NucleusFull and deadline as a hosted model; at most max_workers run at once,
/// on the thread pool. A missing backward answers NotImplemented. Delegates receive a token cancelled at the call's
/// deadline; a delegate that ignores it keeps its slot busy until it returns (its caller is answered
/// NucleusTimeout at the deadline anyway).
/// </summary>
public sealed record AxonHandlers(
    Func<ForwardRequest, CancellationToken, Task<ModelResponse>> Forward,
    Func<BackwardRequest, CancellationToken, Task<ModelResponse>>? Backward = null)
{
    /// <summary>
    /// True for cheap delegates that compute in microseconds and return a completed task (the demo models): an axon
    /// calls them on the call's own thread (up to max_workers at once, so they must be thread-safe; beyond that the
    /// model host calls them on its thread) and answers at once, without a hop per call. Leave false for anything that
    /// blocks, awaits or computes for long: inline it would hold up the transport's threads or the host's whole queue.
    /// </summary>
    public bool Inline { get; init; }

    /// <summary>
    /// Optional, for <see cref="Inline"/> delegates: the forward written straight into the answer's wire buffer. An
    /// axon serving over gRPC calls it (instead of <see cref="Forward"/>) with a span of exactly batch · seq ·
    /// network_dim float32 values, C order, which becomes the answer's tensor as it is: no tensor and no copy per
    /// call. Return null once every value is written, or a response with another code (its outputs ignored) to refuse
    /// the call. It must compute the same values as <see cref="Forward"/> (the in-memory transport and text hosts use
    /// that one), must not keep the span, and must not block.
    /// </summary>
    public ForwardIntoHandler? ForwardInto { get; init; }
}

/// <summary>A forward that writes its float32 <c>[batch, seq, network_dim]</c> outputs into <paramref name="outputs"/>; null when written, else the refusal.</summary>
public delegate ModelResponse? ForwardIntoHandler(ForwardRequest request, Span<float> outputs);
