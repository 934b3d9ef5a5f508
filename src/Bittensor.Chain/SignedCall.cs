using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain;

/// <summary>
/// An encoded call with its signer, nonce and sr25519 signature.
/// <para>
/// The signature covers the Substrate v4 signing payload of an immortal transaction with no tip and the
/// metadata-hash check disabled — the layout subtensor's runtime used from spec ~148 to 218
/// (SUBSTRATE.md §4.5): <c>call ‖ era 0x00 ‖ Compact(nonce) ‖ Compact(tip = 0) ‖ mode 0x00 ‖ spec_version u32 ‖
/// transaction_version u32 ‖ genesis_hash ‖ genesis_hash (birth block of an immortal era) ‖ 0x00 (no metadata
/// hash)</c>, BLAKE2b-256-hashed first when longer than 256 bytes. So a signature is bound to the call, the
/// nonce (no replay) and the chain (genesis + versions), and the same bytes form a real extrinsic
/// (<see cref="ToExtrinsic"/>).
/// </para>
/// </summary>
/// <param name="Call">SCALE-encoded call (pallet, call index, args).</param>
/// <param name="Signer">Public key that signed.</param>
/// <param name="Nonce">Signer's account nonce.</param>
/// <param name="Signature">64-byte sr25519 signature over <see cref="SigningPayload"/>.</param>
public sealed record SignedCall(ReadOnlyMemory<byte> Call, AccountId Signer, uint Nonce, ReadOnlyMemory<byte> Signature)
{
    /// <summary>Payloads longer than this are hashed before signing (Substrate's rule).</summary>
    public const int MaxUnhashedPayload = 256;

    /// <summary>The bytes that are signed (already hashed when longer than 256 bytes).</summary>
    public static byte[] SigningPayload(ReadOnlySpan<byte> call, uint nonce, ChainIdentity chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        if (chain.GenesisHash.Length != 32) throw new ArgumentException("genesis hash must be 32 bytes", nameof(chain));
        var w = new ScaleWriter(call.Length + 96);
        w.Raw(call);
        w.U8(0); // era: immortal
        w.Compact(nonce);
        w.Compact(0UL); // tip
        w.U8(0); // CheckMetadataHash mode: disabled
        w.U32(chain.SpecVersion).U32(chain.TransactionVersion);
        w.Raw(chain.GenesisHash.Span);
        w.Raw(chain.GenesisHash.Span); // immortal era: the "birth block" hash is the genesis hash
        w.U8(0); // metadata hash: None
        var payload = w.ToArray();
        return payload.Length > MaxUnhashedPayload ? Blake2b.Hash256(payload) : payload;
    }

    /// <summary>True when <see cref="Signature"/> is a valid sr25519 signature by <see cref="Signer"/> for this chain.</summary>
    public bool Verify(ChainIdentity chain)
    {
        if (Signature.Length != 64) return false;
        var payload = SigningPayload(Call.Span, Nonce, chain);
        return Sr25519.Verify(Signer.ToArray(), payload, Signature.Span);
    }

    /// <summary>
    /// The signed v4 extrinsic: <c>Compact(len) ‖ 0x84 ‖ 0x00 ‖ signer ‖ 0x01 ‖ signature ‖ era 0x00 ‖
    /// Compact(nonce) ‖ Compact(tip 0) ‖ mode 0x00 ‖ call</c>.
    /// </summary>
    public byte[] ToExtrinsic()
    {
        var body = new ScaleWriter(Call.Length + 110);
        body.U8(0x84).U8(0);
        Signer.Encode(body);
        body.U8(1).Raw(Signature.Span);
        body.U8(0).Compact(Nonce).Compact(0UL).U8(0);
        body.Raw(Call.Span);
        var w = new ScaleWriter(body.Length + 4);
        w.Bytes(body.WrittenSpan);
        return w.ToArray();
    }
}

/// <summary>Builds <see cref="SignedCall"/>s with an sr25519 key pair.</summary>
public static class CallSigner
{
    /// <summary>Encodes and signs <paramref name="call"/> with <paramref name="key"/> at <paramref name="nonce"/> for <paramref name="chain"/>.</summary>
    public static SignedCall Sign(ChainCall call, Sr25519KeyPair key, uint nonce, ChainIdentity chain)
    {
        ArgumentNullException.ThrowIfNull(call);
        return Sign(call.ToBytes(), key, nonce, chain);
    }

    /// <summary>Signs already-encoded call bytes.</summary>
    public static SignedCall Sign(ReadOnlyMemory<byte> callBytes, Sr25519KeyPair key, uint nonce, ChainIdentity chain)
    {
        ArgumentNullException.ThrowIfNull(key);
        var payload = SignedCall.SigningPayload(callBytes.Span, nonce, chain);
        var signature = key.Sign(payload);
        return new SignedCall(callBytes.ToArray(), new AccountId(key.PublicKey.Span), nonce, signature);
    }
}
