using Akka.Actor;
using Bittensor.Protocol.Wire;
using Bittensor.Protocol;

namespace Bittensor.Actors.Axon;

/// <summary>A verified, decoded forward call handed to the model.</summary>
/// <param name="CallerHotkey">The caller's SS58 address (verified unless verification is disabled).</param>
/// <param name="CallerStake">The caller's stake in the axon's latest snapshot (0 when unknown).</param>
/// <param name="Modality">TEXT (int64 <c>[batch, seq]</c>), TENSOR (rank 3) or IMAGE (rank 5).</param>
/// <param name="Inputs">The input tensor.</param>
public sealed record ForwardRequest(string CallerHotkey, double CallerStake, Modality Modality, DenseTensor Inputs);

/// <summary>A verified, decoded backward call: the inputs of an earlier forward and the gradients of its outputs.</summary>
/// <param name="CallerHotkey">The caller's SS58 address.</param>
/// <param name="CallerStake">The caller's stake in the axon's latest snapshot (0 when unknown).</param>
/// <param name="Modality">Modality of <paramref name="Inputs"/>.</param>
/// <param name="Inputs">The inputs tensor.</param>
/// <param name="Grads">float32 <c>[batch, seq, dim]</c> gradients, dims 0 and 1 equal to the inputs'.</param>
public sealed record BackwardRequest(string CallerHotkey, double CallerStake, Modality Modality, DenseTensor Inputs, DenseTensor Grads);

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
/// The model behind an axon: delegates for forward and backward (a missing backward answers NotImplemented).
/// Delegates receive a token cancelled at the call's deadline; a delegate that ignores it keeps its worker
/// busy until it returns.
/// </summary>
public sealed record AxonHandlers(
    Func<ForwardRequest, CancellationToken, Task<ModelResponse>> Forward,
    Func<BackwardRequest, CancellationToken, Task<ModelResponse>>? Backward = null)
{
    /// <summary>
    /// Routes calls to a model actor: it receives <see cref="ForwardRequest"/>/<see cref="BackwardRequest"/>
    /// and must reply with a <see cref="ModelResponse"/> before the call's deadline.
    /// </summary>
    public static AxonHandlers FromActor(IActorRef model, TimeSpan askTimeout) => new(
        (r, ct) => model.Ask<ModelResponse>(r, askTimeout, ct),
        (r, ct) => model.Ask<ModelResponse>(r, askTimeout, ct));
}
