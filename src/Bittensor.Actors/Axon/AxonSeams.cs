using System.Globalization;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Actors.Axon;

/// <summary>Builds the Protocol-layer implementations behind the axon's seams.</summary>
internal static class AxonSeams
{
    public static IRequestAuthenticator CreateAuthenticator(AxonSettings settings, TimeProvider time, Action<string>? onNonceFileProblem = null) =>
        new VerifierAuthenticator(new RequestVerifier(new RequestVerifierOptions
        {
            OwnVersion = settings.ProtocolVersion,
            MaxFutureSkew = settings.ClockSkew,
            MaxAge = settings.NonceMaxAge,
            NonceCapacity = settings.NonceStoreCapacity,
            ReorderWindow = settings.NonceReorderWindow,
            NonceFilePath = settings.NonceStorePath.Length == 0 ? null : settings.NonceStorePath,
            NonceFileSync = settings.NonceStoreFsync,
            OnNonceFileProblem = onNonceFileProblem,
            NewCallerVerifiesPerSecond = settings.NewCallerVerifiesPerSecond,
            FailedSignatureHold = settings.FailedSignatureHold,
        }, settings.BatchVerification ? new Sr25519BatchVerifier() : null, time));

    public static ITensorWireCodec CreateCodec(AxonSettings? settings) => ProtocolTensorCodec.Instance;
}

/// <summary>Request verification through the Protocol layer's <see cref="RequestVerifier"/> (verify first, then record the nonce).</summary>
internal sealed class VerifierAuthenticator(RequestVerifier verifier) : IRequestAuthenticator, IDisposable
{
    /// <summary>The Protocol-layer verifier (tests read its batching counters).</summary>
    public RequestVerifier Verifier => verifier;

    public async ValueTask<AuthOutcome> AuthenticateAsync(Metadata headers, System.Net.IPAddress? peer = null)
    {
        var result = await verifier.VerifyAsync(headers, peer).ConfigureAwait(false);
        var versionText = headers.GetValue(AuthHeaders.VersionName);
        var version = int.TryParse(versionText, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0;
        return result.IsAccepted
            ? AuthOutcome.Accept(result.Hotkey!, version)
            : AuthOutcome.Refuse(result.Code, result.Reason, result.Hotkey ?? "", version);
    }

    public void Dispose() => verifier.Dispose();
}

/// <summary>The Protocol layer's msgpack-numpy <see cref="TensorCodec"/> mapped to <see cref="DenseTensor"/> (one copy out).</summary>
internal sealed class ProtocolTensorCodec : ITensorWireCodec
{
    public static readonly ProtocolTensorCodec Instance = new();

    public bool TryDecode(Tensor wire, bool isResponse, out DenseTensor? tensor, out ReturnCode code, out string error)
    {
        var result = TensorCodec.Decode(wire);
        if (!result.IsSuccess)
        {
            tensor = null;
            code = isResponse ? result.ResponseCode : result.RequestCode;
            error = result.Message;
            return false;
        }
        var d = result.Tensor;
        var shape = d.ShapeToArray();
        tensor = d.DataType switch
        {
            DataType.Float32 => DenseTensor.Float32(shape, d.ToFloat32Array()),
            DataType.Int64 => DenseTensor.Int64(shape, d.ToInt64Array()),
            DataType.Float64 => DenseTensor.Float32(shape, Array.ConvertAll(d.ToFloat64Array(), x => (float)x)),
            DataType.Int32 => DenseTensor.Int64(shape, Array.ConvertAll(d.ToInt32Array(), x => (long)x)),
            _ => null,
        };
        code = tensor is null ? (isResponse ? ReturnCode.ResponseDeserializationException : ReturnCode.RequestDeserializationException) : ReturnCode.Success;
        error = tensor is null ? $"unsupported dtype {d.DataType}" : "";
        return tensor is not null;
    }

    // Response buffers: 128 KiB arrays for the usual [1, 16, 1024] float32 answer (the pool's bucket above 64 KiB plus
    // the msgpack header). Up to 256 kept per size, so 128+ calls in flight rent without allocating once warm (the
    // shared pool keeps ~32 per core and would allocate a large-object-heap array per call beyond that).
    private static readonly System.Buffers.ArrayPool<byte> ResponsePool = System.Buffers.ArrayPool<byte>.Create(16 * 1024 * 1024, 256);

    public Tensor EncodeResponse(DenseTensor tensor, Modality modality, Action<IDisposable> registerForDispose)
    {
        long[] shape = [.. tensor.Shape];
        var pooled = tensor.DataType == DataType.Float32
            ? TensorCodec.ToPooledTensor(tensor.Floats, shape, modality, pool: ResponsePool)
            : TensorCodec.ToPooledTensor(tensor.Longs, shape, modality, pool: ResponsePool);
        registerForDispose(pooled);
        return pooled.Tensor;
    }

    public PooledTensor? RentResponseFloat32(ReadOnlySpan<long> shape, Modality modality) =>
        TensorCodec.RentFloat32(shape, modality, ResponsePool);

    public Tensor Encode(DenseTensor tensor, Modality modality, bool requiresGrad = false)
    {
        long[] shape = [.. tensor.Shape];
        return tensor.DataType == DataType.Float32
            ? TensorCodec.ToTensor(tensor.Floats, shape, modality, requiresGrad)
            : TensorCodec.ToTensor(tensor.Longs, shape, modality, requiresGrad);
    }
}
