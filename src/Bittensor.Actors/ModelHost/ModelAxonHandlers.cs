using Bittensor.Actors.Axon;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.ModelHost;

/// <summary>
/// Plugs a hosted model into the axon: TEXT forward calls ([batch, seq] int64) go to the model and come back as
/// float32 [batch, seq, network_dim]; backward calls apply the caller's gradients with one optimizer step and answer
/// zeros shaped like the inputs (token ids have no gradient), as the 2021 template server did. Model codes map
/// one to one onto the wire's ReturnCode.
/// </summary>
public static class ModelAxonHandlers
{
    /// <summary>Axon handlers over <paramref name="model"/>.</summary>
    public static AxonHandlers Create(IModelEndpoint model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new AxonHandlers(
            async (request, ct) =>
            {
                if (Refuse(request.Modality, request.Inputs) is { } refused) return refused;
                var (batch, seq) = ((int)request.Inputs.Shape[0], (int)request.Inputs.Shape[1]);
                var r = await model.ForwardAsync(request.Inputs.Longs!, batch, seq, ct).ConfigureAwait(false);
                return r.Code == ModelReturnCode.Success
                    ? ModelResponse.Ok(DenseTensor.Float32([.. r.Shape.Select(d => (long)d)], r.Data))
                    : new ModelResponse(null, (ReturnCode)(int)r.Code, r.Message);
            },
            async (request, ct) =>
            {
                if (Refuse(request.Modality, request.Inputs) is { } refused) return refused;
                var (batch, seq) = ((int)request.Inputs.Shape[0], (int)request.Inputs.Shape[1]);
                if (request.Grads.Floats is null || request.Grads.Rank != 3)
                    return new ModelResponse(null, ReturnCode.RequestShapeException, "gradients must be float32 [batch, seq, dim]");
                var r = await model.BackwardAsync(request.Inputs.Longs!, request.Grads.Floats, batch, seq, ct).ConfigureAwait(false);
                return r.Code == ModelReturnCode.Success
                    ? ModelResponse.Ok(DenseTensor.Zeros(batch, seq))
                    : new ModelResponse(null, (ReturnCode)(int)r.Code, r.Message);
            });
    }

    private static ModelResponse? Refuse(Modality modality, DenseTensor inputs)
    {
        if (modality != Modality.Text) return new ModelResponse(null, ReturnCode.NotImplemented, $"this model serves TEXT, not {modality}");
        if (inputs.Longs is null || inputs.Rank != 2 || inputs.Shape[0] > int.MaxValue || inputs.Shape[1] > int.MaxValue)
            return new ModelResponse(null, ReturnCode.RequestShapeException, "TEXT inputs must be int64 [batch, seq]");
        return null;
    }
}
