using System.Security.Cryptography;
using Bittensor.Wallet.Internal;

namespace Bittensor.Wallet;

/// <summary>
/// Reads and writes single btcli keyfiles. Reads every format btcli has written (plain JSON, bare-hex
/// <c>coldkeypub.txt</c>, <c>$NACL</c>, Ansible Vault, Fernet); writes plain JSON or <c>$NACL</c>, atomically and
/// with mode 0600. Every failure is a <see cref="KeyfileException"/> naming the file.
/// </summary>
public static class Keyfile
{
    /// <summary>Keyfiles are a few hundred bytes; anything over this is not one.</summary>
    public const int MaxFileBytes = 64 * 1024;

    /// <summary>The storage format of the file at <paramref name="path"/>.</summary>
    public static KeyfileFormat DetectFormat(string path)
    {
        var data = ReadRaw(path);
        try { return KeyfileFormats.Detect(data); }
        finally { CryptographicOperations.ZeroMemory(data); }
    }

    /// <summary>
    /// Opens a keyfile. <paramref name="password"/> is asked only when the file is encrypted; when it is null or
    /// has no password for an encrypted file, the read fails with <see cref="KeyfileError.PasswordRequired"/>.
    /// </summary>
    public static WalletKey Read(string path, PasswordSource? password = null)
    {
        var data = ReadRaw(path);
        byte[]? plain = null;
        try
        {
            var format = KeyfileFormats.Detect(data);
            switch (format)
            {
                case KeyfileFormat.Json:
                    return KeyfileJson.Parse(path, data);
                case KeyfileFormat.PublicKeyHex:
                    return KeyfileJson.ParsePublicHex(path, data);
                case KeyfileFormat.Unknown:
                    throw new KeyfileException(path, KeyfileError.UnknownFormat,
                        "unknown format (expected JSON, 0x hex, $NACL, $ANSIBLE_VAULT or a gAAAAA Fernet token)");
            }

            var pw = GetPassword(path, password);
            try
            {
                plain = format switch
                {
                    KeyfileFormat.Nacl => KeyfileCrypto.DecryptNacl(path, data, pw),
                    KeyfileFormat.AnsibleVault => KeyfileCrypto.DecryptAnsibleVault(path, data, pw),
                    _ => KeyfileCrypto.DecryptFernet(path, data, pw),
                };
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pw);
            }
            if (KeyfileFormats.Detect(plain) != KeyfileFormat.Json)
                throw new KeyfileException(path, KeyfileError.Corrupt, "decrypted content is not keyfile JSON");
            return KeyfileJson.Parse(path, plain);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(data);
            if (plain is not null) CryptographicOperations.ZeroMemory(plain);
        }
    }

    /// <summary>
    /// Writes <paramref name="key"/> with all six JSON keys. With <paramref name="encryptWith"/> the file is
    /// <c>$NACL</c>-encrypted (Argon2i, 512 MiB, ~2 s); without it, plain JSON. Refuses to replace an existing
    /// file unless <paramref name="overwrite"/>.
    /// </summary>
    public static void Write(string path, WalletKey key, PasswordSource? encryptWith, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!overwrite && File.Exists(path))
            throw new KeyfileException(path, KeyfileError.AlreadyExists, "already exists (use overwrite to replace it)");
        var output = Encode(path, key, encryptWith);
        try
        {
            AtomicFile.Write(path, output, overwrite);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(output);
        }
    }

    /// <summary>
    /// The bytes <see cref="Write"/> puts in the file (plain JSON, or <c>$NACL</c> with <paramref name="encryptWith"/>);
    /// the caller zeroes them. <paramref name="path"/> names the file in errors and to the password source.
    /// </summary>
    internal static byte[] Encode(string path, WalletKey key, PasswordSource? encryptWith)
    {
        var json = KeyfileJson.Serialize(key, publicOnly: !key.HasSecret);
        if (encryptWith is null) return json;
        try
        {
            var pw = GetPassword(path, encryptWith);
            try
            {
                if (pw.Length == 0) throw new KeyfileException(path, KeyfileError.PasswordRequired, "an empty password cannot encrypt a key");
                return KeyfileCrypto.EncryptNacl(json, pw);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pw);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(json);
        }
    }

    /// <summary>The bytes of a public file (<c>coldkeypub.txt</c>, <c>&lt;hotkey&gt;pub.txt</c>): plain JSON, no secret.</summary>
    internal static byte[] EncodePublic(WalletKey key) => KeyfileJson.Serialize(key, publicOnly: true);

    /// <summary>Writes the public parts only (plain JSON), as <c>coldkeypub.txt</c> and <c>&lt;hotkey&gt;pub.txt</c> are.</summary>
    public static void WritePublic(string path, WalletKey key, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(key);
        var json = KeyfileJson.Serialize(key, publicOnly: true);
        AtomicFile.Write(path, json, overwrite);
    }

    private static byte[] GetPassword(string path, PasswordSource? source)
    {
        if (source is null)
            throw new KeyfileException(path, KeyfileError.PasswordRequired, "is encrypted and no password source was given");
        try
        {
            return source.TryGetPassword(path)
                ?? throw new KeyfileException(path, KeyfileError.PasswordRequired, $"needs a password and none came from {source}");
        }
        catch (InvalidDataException e)
        {
            throw new KeyfileException(path, KeyfileError.PasswordRequired, e.Message, e);
        }
    }

    private static byte[] ReadRaw(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            if (stream.Length > MaxFileBytes)
                throw new KeyfileException(path, KeyfileError.UnknownFormat, $"is {stream.Length} bytes; a keyfile is at most {MaxFileBytes}");
            var data = new byte[stream.Length];
            stream.ReadExactly(data);
            if (data.Length == 0) throw new KeyfileException(path, KeyfileError.Corrupt, "is empty");
            return data;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new KeyfileException(path, KeyfileError.NotFound, "does not exist", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KeyfileException(path, KeyfileError.Io, $"cannot be read: {e.Message}", e);
        }
    }
}
