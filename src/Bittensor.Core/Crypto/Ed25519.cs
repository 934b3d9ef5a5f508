using System.Security.Cryptography;

namespace Bittensor.Core.Crypto;

/// <summary>
/// An ed25519 key pair from a 32-byte seed (libsodium <c>crypto_sign_seed_keypair</c>) with Substrate's
/// hard derivation. The seed and the expanded secret are zeroed on <see cref="Dispose"/>.
/// </summary>
public sealed class Ed25519KeyPair : IDisposable
{
    private readonly byte[] seed;
    private readonly byte[] secretKey; // libsodium form: seed ‖ public
    private readonly byte[] publicKey;
    private bool disposed;

    private Ed25519KeyPair(byte[] seed, byte[] secretKey, byte[] publicKey)
    {
        this.seed = seed;
        this.secretKey = secretKey;
        this.publicKey = publicKey;
    }

    /// <summary>The 32-byte ed25519 public key.</summary>
    public ReadOnlyMemory<byte> PublicKey => publicKey;

    /// <summary>The 32-byte seed.</summary>
    public ReadOnlyMemory<byte> Seed
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return seed;
        }
    }

    /// <summary>The key pair for a 32-byte seed.</summary>
    /// <exception cref="ArgumentException">The seed is not 32 bytes.</exception>
    public static unsafe Ed25519KeyPair FromSeed(ReadOnlySpan<byte> seed32)
    {
        if (seed32.Length != 32) throw new ArgumentException("an ed25519 seed must be 32 bytes", nameof(seed32));
        Sodium.EnsureInitialised();
        var seed = seed32.ToArray();
        var sk = new byte[64];
        var pk = new byte[32];
        fixed (byte* ps = seed)
        fixed (byte* psk = sk)
        fixed (byte* ppk = pk)
        {
            if (SodiumNative.crypto_sign_seed_keypair(ppk, psk, ps) != 0)
                throw new CryptographicException("ed25519 key generation failed");
        }
        return new Ed25519KeyPair(seed, sk, pk);
    }

    /// <summary>Signs <paramref name="message"/> (deterministic ed25519); 64 bytes.</summary>
    public unsafe byte[] Sign(ReadOnlySpan<byte> message)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var sig = new byte[64];
        byte dummy = 0;
        fixed (byte* pm = message)
        fixed (byte* psig = sig)
        fixed (byte* psk = secretKey)
        {
            if (SodiumNative.crypto_sign_detached(psig, null, pm == null ? &dummy : pm, (ulong)message.Length, psk) != 0)
                throw new CryptographicException("ed25519 signing failed");
        }
        return sig;
    }

    /// <summary>True for a valid ed25519 signature of <paramref name="message"/> by <paramref name="publicKey"/>.</summary>
    public static unsafe bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != 32 || signature.Length != 64) return false;
        Sodium.EnsureInitialised();
        byte dummy = 0;
        fixed (byte* pk = publicKey)
        fixed (byte* pm = message)
        fixed (byte* ps = signature)
            return SodiumNative.crypto_sign_verify_detached(ps, pm == null ? &dummy : pm, (ulong)message.Length, pk) == 0;
    }

    /// <summary>
    /// Substrate's hard junction: new seed = BLAKE2b-256(SCALE("Ed25519HDKD", seed, chain code)).
    /// (ed25519 has no soft derivation.)
    /// </summary>
    public Ed25519KeyPair DeriveHard(ReadOnlySpan<byte> chainCode)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (chainCode.Length != 32) throw new ArgumentException("a chain code must be 32 bytes", nameof(chainCode));
        Span<byte> tuple = stackalloc byte[1 + 11 + 32 + 32];
        tuple[0] = 11 << 2; // SCALE compact length of "Ed25519HDKD"
        "Ed25519HDKD"u8.CopyTo(tuple[1..]);
        seed.CopyTo(tuple[12..]);
        chainCode.CopyTo(tuple[44..]);
        Span<byte> newSeed = stackalloc byte[32];
        try
        {
            Blake2b.Hash(tuple, newSeed);
            return FromSeed(newSeed);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(tuple);
            CryptographicOperations.ZeroMemory(newSeed);
        }
    }

    /// <summary>SS58 address of the public key (prefix 42 by default).</summary>
    public string ToSs58(ushort prefix = Ss58.BittensorPrefix) => Ss58.Encode(publicKey, prefix);

    /// <summary>Shows the SS58 address only; never secret material.</summary>
    public override string ToString() => $"Ed25519KeyPair({ToSs58()})";

    /// <summary>Zeroes the seed and the expanded secret key.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        CryptographicOperations.ZeroMemory(seed);
        CryptographicOperations.ZeroMemory(secretKey);
    }
}
