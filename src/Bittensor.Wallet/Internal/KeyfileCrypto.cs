using System.Security.Cryptography;
using System.Text;
using Bittensor.Core.Crypto;

namespace Bittensor.Wallet.Internal;

/// <summary>
/// The three at-rest encryptions btcli has used. Every method returns plaintext the caller must zero, and fails
/// with <see cref="KeyfileException"/> whose text names the file but never any secret.
/// </summary>
internal static class KeyfileCrypto
{
    /// <summary>libsodium <c>crypto_pwhash_OPSLIMIT_SENSITIVE</c>.</summary>
    public const ulong NaclOpsLimit = 8;

    /// <summary>libsodium <c>crypto_pwhash_MEMLIMIT_SENSITIVE</c> (512 MiB).</summary>
    public const ulong NaclMemLimit = 536_870_912;

    /// <summary>btcli's fixed Argon2i salt.</summary>
    public static ReadOnlySpan<byte> NaclSalt => [0x13, 0x71, 0x83, 0xdf, 0xf1, 0x5a, 0x09, 0xbc, 0x9c, 0x90, 0xb5, 0x51, 0x87, 0x39, 0xe9, 0xb1];

    private static ReadOnlySpan<byte> NaclPrefix => "$NACL"u8;

    private static ReadOnlySpan<byte> FernetSalt => "Iguesscyborgslikemyselfhaveatendencytobeparanoidaboutourorigins"u8;

    // Argon2i with 512 MiB per call: one at a time, so parallel unlocks cannot multiply the peak memory.
    private static readonly SemaphoreSlim OneArgon2AtATime = new(1, 1);

    private const int FernetIterations = 10_000_000;
    private const int VaultIterations = 10_000;

    /// <summary>The 32-byte secretbox key btcli derives from a password.</summary>
    public static byte[] DeriveNaclKey(ReadOnlySpan<byte> password)
    {
        var key = new byte[Sodium.SecretBoxKeyBytes];
        OneArgon2AtATime.Wait();
        try
        {
            Sodium.Argon2i(password, NaclSalt, NaclOpsLimit, (nuint)NaclMemLimit, key);
        }
        catch (CryptographicException e)
        {
            throw new InvalidOperationException("$NACL key derivation needs 512 MiB of memory and failed: " + e.Message, e);
        }
        finally
        {
            OneArgon2AtATime.Release();
        }
        return key;
    }

    /// <summary><c>$NACL</c> ‖ random nonce ‖ secretbox(plaintext) under the Argon2i key of <paramref name="password"/>.</summary>
    public static byte[] EncryptNacl(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> password)
    {
        var key = DeriveNaclKey(password);
        try
        {
            Span<byte> nonce = stackalloc byte[Sodium.SecretBoxNonceBytes];
            Sodium.RandomBytes(nonce);
            return EncryptNaclWithKey(plaintext, key, nonce);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary><c>$NACL</c> ‖ <paramref name="nonce"/> ‖ secretbox(plaintext) under an already derived key.</summary>
    public static byte[] EncryptNaclWithKey(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce)
    {
        var result = new byte[NaclPrefix.Length + Sodium.SecretBoxNonceBytes + Sodium.SecretBoxMacBytes + plaintext.Length];
        NaclPrefix.CopyTo(result);
        nonce.CopyTo(result.AsSpan(NaclPrefix.Length, Sodium.SecretBoxNonceBytes));
        Sodium.SecretBoxSeal(plaintext, nonce, key, result.AsSpan(NaclPrefix.Length + Sodium.SecretBoxNonceBytes));
        return result;
    }

    public static byte[] DecryptNacl(string path, ReadOnlySpan<byte> data, ReadOnlySpan<byte> password)
    {
        var headerLength = NaclPrefix.Length + Sodium.SecretBoxNonceBytes;
        if (data.Length < headerLength + Sodium.SecretBoxMacBytes)
            throw new KeyfileException(path, KeyfileError.Corrupt, "$NACL file is truncated");
        var nonce = data.Slice(NaclPrefix.Length, Sodium.SecretBoxNonceBytes);
        var box = data[headerLength..];
        var key = DeriveNaclKey(password);
        var plain = new byte[box.Length - Sodium.SecretBoxMacBytes];
        try
        {
            if (!Sodium.SecretBoxOpen(box, nonce, key, plain))
                throw new KeyfileException(path, KeyfileError.WrongPassword, "wrong password (or the file was modified)");
            return plain;
        }
        catch
        {
            CryptographicOperations.ZeroMemory(plain);
            throw;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Legacy Fernet: key = PBKDF2-SHA256(password, fixed salt, 10,000,000) — slow by design.</summary>
    public static byte[] DecryptFernet(string path, ReadOnlySpan<byte> data, ReadOnlySpan<byte> password)
    {
        byte[] token;
        try
        {
            var text = Encoding.ASCII.GetString(KeyfileFormats.TrimAscii(data));
            token = Base64UrlDecode(text);
        }
        catch (FormatException)
        {
            throw new KeyfileException(path, KeyfileError.Corrupt, "Fernet token is not base64url");
        }
        // version(1) ‖ timestamp(8) ‖ iv(16) ‖ ciphertext(16·n, n ≥ 1) ‖ hmac(32)
        if (token.Length < 1 + 8 + 16 + 16 + 32 || token[0] != 0x80 || (token.Length - 57) % 16 != 0)
            throw new KeyfileException(path, KeyfileError.Corrupt, "Fernet token is truncated or malformed");

        var key = Rfc2898DeriveBytes.Pbkdf2(password, FernetSalt, FernetIterations, HashAlgorithmName.SHA256, 32);
        try
        {
            var signingKey = key.AsSpan(0, 16);
            var encryptionKey = key.AsSpan(16, 16);
            var signed = token.AsSpan(0, token.Length - 32);
            Span<byte> mac = stackalloc byte[32];
            HMACSHA256.HashData(signingKey, signed, mac);
            if (!CryptographicOperations.FixedTimeEquals(mac, token.AsSpan(token.Length - 32)))
                throw new KeyfileException(path, KeyfileError.WrongPassword, "wrong password (or the file was modified)");
            var aesKey = encryptionKey.ToArray();
            using var aes = Aes.Create();
            aes.Key = aesKey;
            try
            {
                return aes.DecryptCbc(token.AsSpan(25, token.Length - 57), token.AsSpan(9, 16), PaddingMode.PKCS7);
            }
            catch (CryptographicException)
            {
                throw new KeyfileException(path, KeyfileError.Corrupt, "Fernet ciphertext has bad padding");
            }
            finally
            {
                CryptographicOperations.ZeroMemory(aesKey);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Ansible Vault 1.1 AES256: PBKDF2-SHA256 10,000 → AES-256-CTR + HMAC-SHA256 (verified first).</summary>
    public static byte[] DecryptAnsibleVault(string path, ReadOnlySpan<byte> data, ReadOnlySpan<byte> password)
    {
        var text = Encoding.ASCII.GetString(data);
        var lines = text.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length < 2)
            throw new KeyfileException(path, KeyfileError.Corrupt, "Ansible Vault file is truncated");
        var header = lines[0].Split(';');
        if (header.Length < 3 || header[0] != "$ANSIBLE_VAULT" || header[2] != "AES256" || header[1] is not ("1.1" or "1.2"))
            throw new KeyfileException(path, KeyfileError.UnknownFormat, "unsupported Ansible Vault header (expected 1.1;AES256)");

        byte[] salt, hmac, cipher;
        try
        {
            var inner = Encoding.ASCII.GetString(Convert.FromHexString(string.Concat(lines.Skip(1))));
            var parts = inner.Split('\n');
            if (parts.Length != 3) throw new FormatException();
            salt = Convert.FromHexString(parts[0]);
            hmac = Convert.FromHexString(parts[1]);
            cipher = Convert.FromHexString(parts[2].Trim());
        }
        catch (FormatException)
        {
            throw new KeyfileException(path, KeyfileError.Corrupt, "Ansible Vault body is not the expected hex layout (truncated?)");
        }
        if (hmac.Length != 32 || cipher.Length == 0 || cipher.Length % 16 != 0)
            throw new KeyfileException(path, KeyfileError.Corrupt, "Ansible Vault body is truncated");

        var derived = Rfc2898DeriveBytes.Pbkdf2(password, salt, VaultIterations, HashAlgorithmName.SHA256, 80);
        try
        {
            Span<byte> mac = stackalloc byte[32];
            HMACSHA256.HashData(derived.AsSpan(32, 32), cipher, mac);
            if (!CryptographicOperations.FixedTimeEquals(mac, hmac))
                throw new KeyfileException(path, KeyfileError.WrongPassword, "wrong password (or the file was modified)");
            var plain = AesCtr(derived.AsSpan(0, 32), derived.AsSpan(64, 16), cipher);
            var pad = plain[^1];
            if (pad is 0 or > 16 || plain.AsSpan(plain.Length - pad).ContainsAnyExcept(pad))
            {
                CryptographicOperations.ZeroMemory(plain);
                throw new KeyfileException(path, KeyfileError.Corrupt, "Ansible Vault plaintext has bad padding");
            }
            var result = plain.AsSpan(0, plain.Length - pad).ToArray();
            CryptographicOperations.ZeroMemory(plain);
            return result;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(derived);
        }
    }

    // AES-256-CTR with a 128-bit big-endian counter starting at the IV (the Python `Counter.new(128, initial_value=iv)`).
    private static byte[] AesCtr(ReadOnlySpan<byte> key, ReadOnlySpan<byte> iv, ReadOnlySpan<byte> input)
    {
        var aesKey = key.ToArray();
        using var aes = Aes.Create();
        aes.Key = aesKey;
        CryptographicOperations.ZeroMemory(aesKey);
        var counter = iv.ToArray();
        var output = new byte[input.Length];
        Span<byte> stream = stackalloc byte[16];
        for (var offset = 0; offset < input.Length; offset += 16)
        {
            aes.EncryptEcb(counter, stream, PaddingMode.None);
            var n = Math.Min(16, input.Length - offset);
            for (var i = 0; i < n; i++) output[offset + i] = (byte)(input[offset + i] ^ stream[i]);
            for (var i = 15; i >= 0 && ++counter[i] == 0; i--) { }
        }
        CryptographicOperations.ZeroMemory(stream);
        return output;
    }

    private static byte[] Base64UrlDecode(string text)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        s = s.PadRight(s.Length + (4 - s.Length % 4) % 4, '=');
        return Convert.FromBase64String(s);
    }
}
