namespace Bittensor.Core.Crypto;

/// <summary>
/// An sr25519 (schnorrkel over ristretto255) key pair: the secret scalar, the 32-byte nonce seed and the
/// 32-byte public key (the AccountId32 on chain). Secret material is zeroed on <see cref="Dispose"/>.
/// </summary>
public sealed class Sr25519KeyPair : IDisposable
{
    // API contract; implementation lands with the crypto work (issue "Foundation, keys and wallets").
    private Sr25519KeyPair() => throw new NotImplementedException();

    /// <summary>The 32-byte compressed Ristretto public key.</summary>
    public ReadOnlyMemory<byte> PublicKey => throw new NotImplementedException();

    /// <summary>The 32-byte mini secret this pair was expanded from, when known (null after HDKD soft or from a 64-byte secret).</summary>
    public ReadOnlyMemory<byte>? MiniSecret => throw new NotImplementedException();

    /// <summary>Expands a 32-byte mini secret in Ed25519 mode (the mode Substrate uses).</summary>
    public static Sr25519KeyPair FromMiniSecret(ReadOnlySpan<byte> miniSecret) => throw new NotImplementedException();

    /// <summary>From the canonical 64-byte secret (scalar ‖ nonce), as bittensor keyfiles store <c>privateKey</c>.</summary>
    public static Sr25519KeyPair FromCanonicalSecret(ReadOnlySpan<byte> secret64) => throw new NotImplementedException();

    /// <summary>From the Ed25519-form 64-byte secret (scalar·8 ‖ nonce), as polkadot-js stores it.</summary>
    public static Sr25519KeyPair FromEd25519Secret(ReadOnlySpan<byte> secret64) => throw new NotImplementedException();

    /// <summary>The canonical 64-byte secret (scalar ‖ nonce). The caller owns and must zero the array.</summary>
    public byte[] ToCanonicalSecret() => throw new NotImplementedException();

    /// <summary>The Ed25519-form 64-byte secret (scalar·8 ‖ nonce). The caller owns and must zero the array.</summary>
    public byte[] ToEd25519Secret() => throw new NotImplementedException();

    /// <summary>Signs with signing context <c>substrate</c>; returns 64 bytes (R ‖ s with the 0x80 marker).</summary>
    public byte[] Sign(ReadOnlySpan<byte> message) => throw new NotImplementedException();

    /// <summary>SS58 address of the public key (prefix 42 by default).</summary>
    public string ToSs58(ushort prefix = Ss58.BittensorPrefix) => throw new NotImplementedException();

    /// <summary>Zeroes the secret material.</summary>
    public void Dispose() => throw new NotImplementedException();
}

/// <summary>sr25519 verification (signing context <c>substrate</c>).</summary>
public static class Sr25519
{
    /// <summary>True only for a valid 64-byte schnorrkel signature (marker bit set, s &lt; ℓ, valid points).</summary>
    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
        => throw new NotImplementedException();
}
