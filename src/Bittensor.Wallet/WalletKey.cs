using System.Security.Cryptography;
using Bittensor.Core;
using Bittensor.Core.Crypto;

namespace Bittensor.Wallet;

/// <summary>
/// One sr25519 key as a keyfile holds it: either a full key pair (with the mnemonic and mini secret when
/// known, so they can be written back as btcli does) or a public key only (<c>coldkeypub.txt</c>).
/// Dispose it to zero the secret material. Its <see cref="ToString"/> shows the address only.
/// </summary>
public sealed class WalletKey : IDisposable
{
    private readonly byte[] _publicKey;
    private Sr25519KeyPair? _pair;
    private byte[]? _miniSecret;

    private WalletKey(byte[] publicKey, Sr25519KeyPair? pair, string? mnemonic, byte[]? miniSecret)
    {
        if (publicKey.Length != 32) throw new ArgumentException("a public key is 32 bytes", nameof(publicKey));
        _publicKey = publicKey;
        _pair = pair;
        Mnemonic = mnemonic;
        _miniSecret = miniSecret;
        Ss58Address = Ss58.Encode(publicKey);
    }

    /// <summary>The 32-byte public key (AccountId32).</summary>
    public ReadOnlyMemory<byte> PublicKey => _publicKey;

    /// <summary>The SS58 address (prefix 42).</summary>
    public string Ss58Address { get; }

    /// <summary>True when the secret key is present (false for <c>coldkeypub.txt</c> and after dispose).</summary>
    public bool HasSecret => _pair is not null;

    /// <summary>The mnemonic this key was made from, when known. Show it to the user once; never log it.</summary>
    internal string? Mnemonic { get; private set; }

    internal ReadOnlySpan<byte> MiniSecret => _miniSecret;

    /// <summary>
    /// The mnemonic, for showing to the user once right after the key was generated (that is its purpose);
    /// null when unknown. Never log it.
    /// </summary>
    public string? RevealMnemonic() => Mnemonic;

    internal Sr25519KeyPair? Pair => _pair;

    /// <summary>A key from a BIP39 mnemonic (Substrate's entropy-based derivation).</summary>
    public static WalletKey FromMnemonic(string mnemonic)
    {
        ArgumentNullException.ThrowIfNull(mnemonic);
        var normalized = string.Join(' ', mnemonic.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        var mini = Bip39.ToMiniSecret(normalized);
        try
        {
            var pair = Sr25519KeyPair.FromMiniSecret(mini);
            return new WalletKey(pair.PublicKey.ToArray(), pair, normalized, mini.ToArray());
        }
        finally
        {
            CryptographicOperations.ZeroMemory(mini);
        }
    }

    /// <summary>A key from a 32-byte mini secret (<c>secretSeed</c>).</summary>
    public static WalletKey FromMiniSecret(ReadOnlySpan<byte> miniSecret)
    {
        if (miniSecret.Length != 32) throw new FormatException("a seed is 32 bytes (0x + 64 hex digits)");
        var pair = Sr25519KeyPair.FromMiniSecret(miniSecret);
        return new WalletKey(pair.PublicKey.ToArray(), pair, null, miniSecret.ToArray());
    }

    /// <summary>
    /// A key from a 64-byte <c>privateKey</c> in either serialisation: canonical (scalar ‖ nonce, what
    /// btwallet and we write) or Ed25519 form (scalar·8 ‖ nonce, found in older keyfiles and polkadot-js).
    /// They cannot be confused: a canonical scalar is below ℓ &lt; 2^253, while the Ed25519 form always has
    /// bit 254 set by clamping.
    /// </summary>
    public static WalletKey FromPrivateKey(ReadOnlySpan<byte> secret64)
    {
        if (secret64.Length != 64) throw new FormatException("a private key is 64 bytes (0x + 128 hex digits)");
        var pair = (secret64[31] & 0x40) != 0
            ? Sr25519KeyPair.FromEd25519Secret(secret64)
            : Sr25519KeyPair.FromCanonicalSecret(secret64);
        return new WalletKey(pair.PublicKey.ToArray(), pair, null, null);
    }

    /// <summary>A key from a Substrate secret URI (<c>//Alice</c>, <c>mnemonic//hard/soft///password</c>, <c>0x…</c>).</summary>
    public static WalletKey FromUri(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var pair = SecretUri.ToSr25519(uri);
        var mini = pair.MiniSecret?.ToArray();
        return new WalletKey(pair.PublicKey.ToArray(), pair, null, mini);
    }

    /// <summary>A public-only key.</summary>
    public static WalletKey FromPublicKey(ReadOnlySpan<byte> publicKey) => new(publicKey.ToArray(), null, null, null);

    /// <summary>A public-only key from an SS58 address; throws <see cref="FormatException"/>.</summary>
    public static WalletKey FromSs58(string address) => new(Ss58.Decode(address), null, null, null);

    /// <summary>A new random key and its mnemonic of <paramref name="words"/> words (12, 15, 18, 21 or 24).</summary>
    public static WalletKey Generate(int words = 12)
    {
        if (words is not (12 or 15 or 18 or 21 or 24)) throw new ArgumentOutOfRangeException(nameof(words), words, "words must be 12, 15, 18, 21 or 24");
        return FromMnemonic(Bip39.Generate(words));
    }

    /// <summary>Signs with signing context <c>substrate</c>; throws when only the public key is known.</summary>
    public byte[] Sign(ReadOnlySpan<byte> message)
    {
        var pair = _pair ?? throw new InvalidOperationException($"key {Ss58Address} has no secret (public key only)");
        return pair.Sign(message);
    }

    /// <summary>Verifies an sr25519 signature against this key.</summary>
    public bool Verify(ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature) => Sr25519.Verify(_publicKey, message, signature);

    /// <summary>The public-only twin of this key.</summary>
    public WalletKey ToPublic() => FromPublicKey(_publicKey);

    /// <summary>Zeroes the secret material.</summary>
    public void Dispose()
    {
        _pair?.Dispose();
        _pair = null;
        if (_miniSecret is not null) CryptographicOperations.ZeroMemory(_miniSecret);
        _miniSecret = null;
        Mnemonic = null;
    }

    /// <inheritdoc />
    public override string ToString() => HasSecret ? $"WalletKey({Ss58Address})" : $"WalletKey({Ss58Address}, public only)";

    internal string PublicHex => Hex.Encode(_publicKey);
}
