using Bittensor.Chain.Substrate;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Local;

/// <summary>A signed v4 extrinsic the localnet accepted as well-formed and correctly signed.</summary>
/// <param name="Bytes">The whole extrinsic (with its compact length prefix).</param>
/// <param name="Hash">BLAKE2b-256 of <see cref="Bytes"/> (the transaction hash RPC clients see).</param>
/// <param name="Signer">The signing account.</param>
/// <param name="Nonce">Its nonce.</param>
/// <param name="CallBytes">The encoded call.</param>
/// <param name="Call">The call decoded.</param>
internal sealed record CheckedExtrinsic(byte[] Bytes, byte[] Hash, AccountId Signer, uint Nonce, byte[] CallBytes, ChainCall Call);

/// <summary>
/// Checks v4 signed extrinsics against the extension list <see cref="LocalnetMetadata"/> publishes: format
/// (<c>0x84</c>, <c>MultiAddress::Id</c>, <c>MultiSignature::Sr25519</c>, era, compact nonce, compact tip,
/// metadata-hash mode 0), the call (one the localnet implements), the era against the node's known block hashes
/// (birth block computed from the block being built, as <c>CheckMortality</c> does), and the sr25519 signature over
/// <c>call ‖ explicit ‖ spec ‖ tx version ‖ genesis ‖ birth hash ‖ 00</c>. Nonce rules are the pool's (Localnet).
/// Failures are <see cref="CallResult.Failed"/> with a pool reason: <c>BadFormat</c>, <c>BadCall</c>,
/// <c>Unsigned</c>, <c>BadSigner</c>, <c>BadSignature</c>, <c>AncientBirthBlock</c>, <c>Unsupported</c>.
/// </summary>
internal static class LocalnetExtrinsics
{
    /// <summary>Largest extrinsic accepted (a set_weights over 4096 uids is ~16 KiB).</summary>
    public const int MaxExtrinsicBytes = 1 << 20;

    /// <summary>
    /// Parses and verifies <paramref name="extrinsic"/> for a chain whose best block is <paramref name="best"/>;
    /// <paramref name="blockHash"/> gives the hash of a recent block by number (null when unknown).
    /// </summary>
    public static CheckedExtrinsic Check(ReadOnlySpan<byte> extrinsic, ChainIdentity chain, ulong best, Func<ulong, byte[]?> blockHash, out CallResult.Failed? failure)
    {
        failure = null;
        if (extrinsic.Length > MaxExtrinsicBytes)
        {
            failure = new CallResult.Failed("BadFormat", $"the extrinsic is {extrinsic.Length} bytes; the limit is {MaxExtrinsicBytes}");
            return null!;
        }
        AccountId signer;
        byte[] signature, callBytes, explicitData;
        Era era;
        uint nonce;
        ChainCall call;
        try
        {
            var r = new ScaleReader(extrinsic);
            var len = r.Length(1);
            if (len != r.Remaining) throw new ScaleException($"the length prefix says {len} bytes but {r.Remaining} follow", 0);
            var version = r.U8();
            if (version == 0x04)
            {
                failure = new CallResult.Failed("Unsigned", "unsigned extrinsics are not accepted (every call the localnet implements is signed)");
                return null!;
            }
            if (version != 0x84) throw new ScaleException($"extrinsic version byte 0x{version:x2} is not 0x84 (signed v4)", 0);
            var addressKind = r.U8();
            if (addressKind != 0)
            {
                failure = new CallResult.Failed("BadSigner", $"address variant {addressKind} is not supported (MultiAddress::Id only)");
                return null!;
            }
            signer = AccountId.Decode(ref r);
            var sigKind = r.U8();
            if (sigKind != 1)
            {
                failure = new CallResult.Failed("BadSignature", $"signature variant {sigKind} is not supported (MultiSignature::Sr25519 only)");
                return null!;
            }
            signature = r.Raw(64).ToArray();
            var explicitStart = r.Position;
            era = ReadEra(ref r);
            nonce = r.CompactU32();
            _ = r.CompactU64(); // tip: no fees on the localnet
            var mode = r.U8();
            if (mode != 0)
            {
                failure = new CallResult.Failed("Unsupported", $"CheckMetadataHash mode {mode}: the localnet only accepts mode 0 (disabled)");
                return null!;
            }
            explicitData = extrinsic[explicitStart..r.Position].ToArray();
            callBytes = extrinsic[r.Position..].ToArray();
        }
        catch (ScaleException e)
        {
            failure = new CallResult.Failed("BadFormat", "the extrinsic could not be decoded: " + e.Message);
            return null!;
        }
        try
        {
            call = ChainCall.Decode(callBytes);
        }
        catch (ScaleException e)
        {
            failure = new CallResult.Failed("BadCall", "the call could not be decoded: " + e.Message);
            return null!;
        }
        if (call is AddStake { Netuid: not null } or RemoveStake { Netuid: not null })
        {
            // The later (hotkey, netuid, amount) layout: this runtime's metadata describes (hotkey, amount), so a
            // spec-148 node cannot decode it either; keeping it would leave blocks polkadot-js cannot read.
            failure = new CallResult.Failed("BadCall",
                $"the call could not be decoded: this runtime's {call.Name} takes (hotkey, amount) with one stake per hotkey; it has no netuid argument");
            return null!;
        }

        byte[] birthHash;
        if (era.IsImmortal)
        {
            birthHash = chain.GenesisHash.ToArray();
        }
        else
        {
            var building = best + 1;
            var birth = era.BirthBlock(building);
            if (birth > best || blockHash(birth) is not { } h)
            {
                failure = new CallResult.Failed("AncientBirthBlock", $"the era's birth block {birth} is not one of the last {LocalnetMetadata.BlockHashCount} blocks (best is {best})");
                return null!;
            }
            birthHash = h;
        }
        var w = new ScaleWriter(callBytes.Length + explicitData.Length + 80);
        w.Raw(callBytes).Raw(explicitData).U32(chain.SpecVersion).U32(chain.TransactionVersion).Raw(chain.GenesisHash.Span).Raw(birthHash).U8(0);
        var payload = w.ToArray();
        if (payload.Length > SignedCall.MaxUnhashedPayload) payload = Blake2b.Hash256(payload);
        if (!Sr25519.Verify(signer.ToArray(), payload, signature))
        {
            failure = new CallResult.Failed("BadSignature", "the signature does not verify for this signer, call, nonce, era and chain (genesis, spec and transaction version)");
            return null!;
        }
        var bytes = extrinsic.ToArray();
        return new CheckedExtrinsic(bytes, Blake2b.Hash256(bytes), signer, nonce, callBytes, call);
    }

    /// <summary>
    /// The signer and call of a signed v4 extrinsic in this localnet's layout (as <c>author_pendingExtrinsics</c> lists the
    /// pool), without checking its signature, era or nonce (the pool did when it took it).
    /// </summary>
    /// <exception cref="ScaleException">Not a signed v4 extrinsic of this layout, or its call is not one the localnet implements.</exception>
    public static (AccountId Signer, ChainCall Call) ReadSignerAndCall(ReadOnlySpan<byte> extrinsic)
    {
        var r = new ScaleReader(extrinsic);
        var len = r.Length(1);
        if (len != r.Remaining) throw new ScaleException($"the length prefix says {len} bytes but {r.Remaining} follow", 0);
        var version = r.U8();
        if (version != 0x84) throw new ScaleException($"extrinsic version byte 0x{version:x2} is not 0x84 (signed v4)", 0);
        var addressKind = r.U8();
        if (addressKind != 0) throw new ScaleException($"address variant {addressKind} is not MultiAddress::Id", r.Position - 1);
        var signer = AccountId.Decode(ref r);
        var sigKind = r.U8();
        if (sigKind != 1) throw new ScaleException($"signature variant {sigKind} is not MultiSignature::Sr25519", r.Position - 1);
        _ = r.Raw(64);
        _ = ReadEra(ref r);
        _ = r.CompactU32();
        _ = r.CompactU64();
        var mode = r.U8();
        if (mode != 0) throw new ScaleException($"CheckMetadataHash mode {mode} is not 0", r.Position - 1);
        return (signer, ChainCall.Decode(extrinsic[r.Position..]));
    }

    /// <summary>Reads an era: <c>00</c> immortal, else two bytes (period = 2^(low4 + 1), phase = high12 · quantize).</summary>
    public static Era ReadEra(ref ScaleReader r)
    {
        var at = r.Position;
        var first = r.U8();
        if (first == 0) return Era.Immortal;
        var encoded = (ushort)(first | (r.U8() << 8));
        var period = 2UL << (encoded % (1 << 4));
        var quantize = Math.Max(period >> 12, 1);
        var phase = (ulong)(encoded >> 4) * quantize;
        if (period < 4 || phase >= period) throw new ScaleException($"invalid mortal era 0x{encoded:x4}", at);
        return new Era(period, phase);
    }
}
