using System.Numerics;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Substrate;

/// <summary>
/// A transaction's lifetime (Substrate <c>Era</c>): immortal, or mortal for <see cref="Period"/> blocks from the
/// block whose number ≡ <see cref="Phase"/> mod period (SUBSTRATE.md §4.5).
/// </summary>
public readonly record struct Era(ulong Period, ulong Phase)
{
    /// <summary>The immortal era (<c>00</c>).</summary>
    public static Era Immortal => default;

    /// <summary>True for the immortal era.</summary>
    public bool IsImmortal => Period == 0;

    /// <summary>
    /// A mortal era valid for about <paramref name="period"/> blocks starting at <paramref name="current"/>: period
    /// rounded up to a power of two in [4, 65536], phase quantized as Substrate does.
    /// </summary>
    public static Era Mortal(ulong period, ulong current)
    {
        var p = Math.Clamp(period <= 1 ? 1 : BitOperations.RoundUpToPowerOf2(period), 4UL, 1UL << 16);
        var phase = current % p;
        var quantize = Math.Max(p >> 12, 1);
        return new Era(p, phase / quantize * quantize);
    }

    /// <summary>The SCALE bytes: <c>00</c>, or the two-byte mortal encoding.</summary>
    public byte[] Encode()
    {
        if (IsImmortal) return [0];
        var quantize = Math.Max(Period >> 12, 1);
        var low = (ulong)Math.Clamp(BitOperations.TrailingZeroCount(Period) - 1, 1, 15);
        var encoded = (ushort)(low | ((Phase / quantize) << 4));
        return [(byte)encoded, (byte)(encoded >> 8)];
    }

    /// <summary>The block the era starts at when submitted at <paramref name="current"/> (its hash is the implicit data).</summary>
    public ulong BirthBlock(ulong current) => IsImmortal ? 0 : (Math.Max(current, Phase) - Phase) / Period * Period + Phase;
}

/// <summary>What a signed transaction commits to besides its call.</summary>
/// <param name="SpecVersion">Runtime spec version.</param>
/// <param name="TransactionVersion">Transaction version.</param>
/// <param name="GenesisHash">Genesis block hash (32 bytes; from <c>chain_getBlockHash(0)</c>).</param>
/// <param name="Nonce">Signer's nonce.</param>
/// <param name="Era">Lifetime.</param>
/// <param name="BirthHash">Hash of the era's birth block (the genesis hash for an immortal era).</param>
/// <param name="Tip">Tip in rao.</param>
public sealed record TransactionParams(
    uint SpecVersion,
    uint TransactionVersion,
    ReadOnlyMemory<byte> GenesisHash,
    uint Nonce,
    Era Era,
    ReadOnlyMemory<byte> BirthHash,
    ulong Tip = 0);

/// <summary>
/// Builds v4 signed extrinsics for a runtime from its metadata: the signed-extension list (identifiers, explicit
/// and implicit data types) is read from metadata, known extensions are filled from <see cref="TransactionParams"/>
/// and checked against their declared types, and unknown ones are accepted only when both their explicit and
/// implicit data are empty (otherwise a <see cref="MetadataException"/> names them).
/// </summary>
public sealed class ExtrinsicBuilder
{
    /// <summary>Payloads longer than this are BLAKE2b-256-hashed before signing.</summary>
    public const int MaxUnhashedPayload = 256;

    private readonly RuntimeMetadata _metadata;

    /// <summary>Creates a builder for the runtime described by <paramref name="metadata"/>.</summary>
    public ExtrinsicBuilder(RuntimeMetadata metadata)
    {
        _metadata = metadata ?? throw new ArgumentNullException(nameof(metadata));
        if (metadata.Extrinsic.Version != 4) throw new MetadataException($"extrinsic version {metadata.Extrinsic.Version} is not supported (4 is)");
        foreach (var x in metadata.Extrinsic.SignedExtensions)
        {
            if (!Known(x.Identifier) && !(_metadata.Types.IsZeroSized(x.Type) && _metadata.Types.IsZeroSized(x.AdditionalSigned)))
                throw new MetadataException($"signed extension {x.Identifier} carries data this client does not know how to fill");
        }
    }

    /// <summary>Extension identifiers in metadata order.</summary>
    public IEnumerable<string> ExtensionNames => _metadata.Extrinsic.SignedExtensions.Select(x => x.Identifier);

    private static bool Known(string id) => id is "CheckSpecVersion" or "CheckTxVersion" or "CheckGenesis" or "CheckMortality" or "CheckEra"
        or "CheckNonce" or "ChargeTransactionPayment" or "ChargeTransactionPaymentWrapper" or "CheckMetadataHash";

    /// <summary>The explicit (in the extrinsic) and implicit (signed only) extension data, in metadata order.</summary>
    public (byte[] Explicit, byte[] Implicit) ExtensionData(TransactionParams p)
    {
        ArgumentNullException.ThrowIfNull(p);
        if (p.GenesisHash.Length != 32) throw new ArgumentException("genesis hash must be 32 bytes", nameof(p));
        if (p.BirthHash.Length != 32) throw new ArgumentException("birth hash must be 32 bytes", nameof(p));
        var ex = new ScaleWriter(16);
        var im = new ScaleWriter(80);
        foreach (var x in _metadata.Extrinsic.SignedExtensions)
        {
            var (e, i) = Fill(x, p);
            Check(x, x.Type, e, "explicit");
            Check(x, x.AdditionalSigned, i, "implicit");
            ex.Raw(e);
            im.Raw(i);
        }
        return (ex.ToArray(), im.ToArray());
    }

    private static (byte[] Explicit, byte[] Implicit) Fill(SignedExtensionMetadata x, TransactionParams p)
    {
        var w = new ScaleWriter(8);
        switch (x.Identifier)
        {
            case "CheckSpecVersion":
                return ([], w.U32(p.SpecVersion).ToArray());
            case "CheckTxVersion":
                return ([], w.U32(p.TransactionVersion).ToArray());
            case "CheckGenesis":
                return ([], p.GenesisHash.ToArray());
            case "CheckMortality" or "CheckEra":
                return (p.Era.Encode(), (p.Era.IsImmortal ? p.GenesisHash : p.BirthHash).ToArray());
            case "CheckNonce":
                return (w.Compact(p.Nonce).ToArray(), []);
            case "ChargeTransactionPayment" or "ChargeTransactionPaymentWrapper":
                return (w.Compact(p.Tip).ToArray(), []);
            case "CheckMetadataHash":
                return ([0], [0]); // mode Disabled; no metadata hash (None)
            default:
                return ([], []);
        }
    }

    private void Check(SignedExtensionMetadata x, uint type, byte[] bytes, string what)
    {
        try
        {
            _metadata.Types.Decode(type, bytes);
        }
        catch (ScaleException e)
        {
            throw new MetadataException($"signed extension {x.Identifier}: its {what} data type {_metadata.Types.Describe(type)} does not match what this client writes ({e.Message})", e);
        }
    }

    /// <summary>The bytes to sign: call ‖ explicit ‖ implicit, BLAKE2b-256-hashed when longer than 256 bytes.</summary>
    public byte[] SigningPayload(ReadOnlySpan<byte> call, TransactionParams p)
    {
        var (e, i) = ExtensionData(p);
        byte[] payload = [.. call, .. e, .. i];
        return payload.Length > MaxUnhashedPayload ? Blake2b.Hash256(payload) : payload;
    }

    /// <summary>
    /// The signed extrinsic: <c>Compact(len) ‖ 0x84 ‖ address ‖ signature ‖ explicit ‖ call</c>, with the address and
    /// signature encoded as the metadata's address and signature types (MultiAddress::Id, MultiSignature::Sr25519).
    /// </summary>
    public byte[] Signed(ReadOnlySpan<byte> call, AccountId signer, ReadOnlySpan<byte> sr25519Signature, TransactionParams p)
    {
        if (sr25519Signature.Length != 64) throw new ArgumentException("an sr25519 signature is 64 bytes", nameof(sr25519Signature));
        var (e, _) = ExtensionData(p);
        var body = new ScaleWriter(call.Length + 128);
        body.U8(0x84);
        EncodeAddress(signer, body);
        EncodeSignature(sr25519Signature, body);
        body.Raw(e).Raw(call);
        return new ScaleWriter(body.Length + 4).Bytes(body.WrittenSpan).ToArray();
    }

    /// <summary>Signs <paramref name="call"/> with <paramref name="key"/> and returns the extrinsic.</summary>
    public byte[] Sign(ReadOnlySpan<byte> call, Sr25519KeyPair key, TransactionParams p)
    {
        ArgumentNullException.ThrowIfNull(key);
        var signature = key.Sign(SigningPayload(call, p));
        return Signed(call, new AccountId(key.PublicKey.Span), signature, p);
    }

    /// <summary>An unsigned (bare) extrinsic: <c>Compact(len) ‖ 0x04 ‖ call</c>.</summary>
    public static byte[] Unsigned(ReadOnlySpan<byte> call) => new ScaleWriter(call.Length + 4).Bytes([0x04, .. call]).ToArray();

    private void EncodeAddress(AccountId signer, ScaleWriter w)
    {
        if (_metadata.Extrinsic.AddressType is not { } at) throw new MetadataException("metadata does not give the extrinsic address type");
        var value = _metadata.Types[at].Def is VariantDef ? ScaleValue.Enum("Id", ScaleValue.Account(signer)) : ScaleValue.Account(signer);
        _metadata.Types.Encode(at, value, w);
    }

    private void EncodeSignature(ReadOnlySpan<byte> sig, ScaleWriter w)
    {
        if (_metadata.Extrinsic.SignatureType is not { } st) throw new MetadataException("metadata does not give the extrinsic signature type");
        var value = _metadata.Types[st].Def is VariantDef ? ScaleValue.Enum("Sr25519", ScaleValue.Bytes(sig)) : ScaleValue.Bytes(sig);
        _metadata.Types.Encode(st, value, w);
    }
}
