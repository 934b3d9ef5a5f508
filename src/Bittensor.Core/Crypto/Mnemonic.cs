namespace Bittensor.Core.Crypto;

/// <summary>BIP39 English mnemonics with Substrate's entropy-based mini secret.</summary>
public static class Bip39
{
    /// <summary>A new mnemonic of 12, 15, 18, 21 or 24 words from the OS CSPRNG.</summary>
    public static string Generate(int words = 12) => throw new NotImplementedException();

    /// <summary>Mnemonic → entropy; throws <see cref="FormatException"/> on unknown words, bad count or checksum.</summary>
    public static byte[] ToEntropy(string mnemonic) => throw new NotImplementedException();

    /// <summary>True when the words, their count and the checksum are valid.</summary>
    public static bool IsValid(string mnemonic) => throw new NotImplementedException();

    /// <summary>Substrate's mini secret: PBKDF2-HMAC-SHA512(entropy, "mnemonic"+passphrase, 2048)[0..32].</summary>
    public static byte[] ToMiniSecret(string mnemonic, string passphrase = "") => throw new NotImplementedException();
}

/// <summary>Substrate secret URIs: <c>phrase[/soft|//hard]*[///password]</c>, <c>//Alice</c>, <c>0x&lt;mini&gt;</c>.</summary>
public static class SecretUri
{
    /// <summary>The public development phrase used when a URI starts with '/'.</summary>
    public const string DevPhrase = "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

    /// <summary>Parses a SURI and returns the sr25519 key pair it names; throws <see cref="FormatException"/>.</summary>
    public static Sr25519KeyPair ToSr25519(string suri) => throw new NotImplementedException();
}
