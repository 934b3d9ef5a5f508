using Bittensor.Protocol.Wire;
using Grpc.Core;
using Bittensor.Protocol;

namespace Bittensor.Actors.Axon;

/// <summary>Result of checking a call's three authentication headers.</summary>
/// <param name="Ok">True when the caller may proceed.</param>
/// <param name="Hotkey">The caller's SS58 address taken from the signature header (empty when unparseable).</param>
/// <param name="Version">The caller's protocol version from the <c>bittensor-version</c> header (0 when absent).</param>
/// <param name="Code">On failure: Unauthenticated (sent as gRPC UNAUTHENTICATED) or RequestIncompatibleVersion.</param>
/// <param name="Reason">On failure: why, in words safe to return to the caller.</param>
internal readonly record struct AuthOutcome(bool Ok, string Hotkey, int Version, ReturnCode Code, string Reason)
{
    public static AuthOutcome Accept(string hotkey, int version) => new(true, hotkey, version, ReturnCode.Success, "");

    public static AuthOutcome Refuse(ReturnCode code, string reason, string hotkey = "", int version = 0) => new(false, hotkey, version, code, reason);
}

/// <summary>Server-side seam over request verification (the Protocol layer's RequestVerifier).</summary>
internal interface IRequestAuthenticator
{
    /// <summary>
    /// Checks headers, signature, version and nonce; records the nonce only after the signature verified. With a
    /// persistent nonce store an Accept completes only once the nonce is durable (write-ahead). <paramref name="peer"/>:
    /// the caller's address (null: unknown), the scope of a hold after a failed signature (auth.failed_signature_hold).
    /// </summary>
    ValueTask<AuthOutcome> AuthenticateAsync(Metadata headers, System.Net.IPAddress? peer = null);
}

/// <summary>Seam over the Protocol layer's msgpack-numpy tensor codec.</summary>
internal interface ITensorWireCodec
{
    /// <summary>Decodes a wire tensor; on failure returns false with the request or response return code and a reason (never throws).</summary>
    bool TryDecode(Tensor wire, bool isResponse, out DenseTensor? tensor, out ReturnCode code, out string error);

    /// <summary>Encodes a host tensor as a wire tensor with the given modality.</summary>
    Tensor Encode(DenseTensor tensor, Modality modality, bool requiresGrad = false);

    /// <summary>
    /// Encodes a response tensor; an implementation may place its bytes in a pooled buffer and hand the buffer's owner
    /// to <paramref name="registerForDispose"/> (called once the message has been serialized).
    /// </summary>
    Tensor EncodeResponse(DenseTensor tensor, Modality modality, Action<IDisposable> registerForDispose) => Encode(tensor, modality);

    /// <summary>
    /// A pooled float32 response tensor of <paramref name="shape"/> with its elements left to fill
    /// (<see cref="PooledTensor.Elements"/>), or null when this codec has none (then the caller encodes a tensor).
    /// </summary>
    PooledTensor? RentResponseFloat32(ReadOnlySpan<long> shape, Modality modality) => null;
}
