namespace Bittensor.Wallet;

/// <summary>How a keyfile is stored, detected from its first bytes.</summary>
public enum KeyfileFormat
{
    /// <summary>Plain JSON (hotkeys, coldkeypub.txt).</summary>
    Json,

    /// <summary>A bare <c>0x</c> + 64 hex public key, as the 2021 <c>coldkeypub.txt</c> was written.</summary>
    PublicKeyHex,

    /// <summary><c>$NACL</c>: Argon2i + XSalsa20-Poly1305 (what btcli writes today, and what we write).</summary>
    Nacl,

    /// <summary><c>$ANSIBLE_VAULT;1.1;AES256</c> (read only).</summary>
    AnsibleVault,

    /// <summary>Legacy Fernet token <c>gAAAAA…</c> (read only).</summary>
    Fernet,

    /// <summary>None of the above.</summary>
    Unknown,
}

/// <summary>Format detection by prefix, as btcli does it.</summary>
public static class KeyfileFormats
{
    /// <summary>Detects the storage format of raw keyfile bytes.</summary>
    public static KeyfileFormat Detect(ReadOnlySpan<byte> data)
    {
        if (data.StartsWith("$NACL"u8)) return KeyfileFormat.Nacl;
        if (data.StartsWith("$ANSIBLE_VAULT"u8)) return KeyfileFormat.AnsibleVault;
        if (data.StartsWith("gAAAAA"u8)) return KeyfileFormat.Fernet;
        var trimmed = TrimAscii(data);
        if (trimmed.Length > 0 && trimmed[0] == (byte)'{') return KeyfileFormat.Json;
        if (trimmed.StartsWith("0x"u8) || trimmed.StartsWith("0X"u8)) return KeyfileFormat.PublicKeyHex;
        return KeyfileFormat.Unknown;
    }

    /// <summary>True for the encrypted formats.</summary>
    public static bool IsEncrypted(this KeyfileFormat format) =>
        format is KeyfileFormat.Nacl or KeyfileFormat.AnsibleVault or KeyfileFormat.Fernet;

    internal static ReadOnlySpan<byte> TrimAscii(ReadOnlySpan<byte> data)
    {
        // A UTF-8 byte order mark is not whitespace but some editors add it.
        if (data.StartsWith("\uFEFF"u8)) data = data[3..];
        var range = System.Text.Ascii.Trim(data);
        return data[range];
    }
}
