using System.Security.Cryptography;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Bittensor.Wallet;

/// <summary>
/// Where a keyfile password comes from. A source is passed around instead of the password itself, so the
/// password exists only for the moment a key is derived; <see cref="object.ToString"/> names the source, never the
/// secret. <see cref="TryGetPassword"/> returns UTF-8 bytes the caller must zero, or null when the source has
/// nothing to offer (an unset variable), so sources can be chained with <see cref="FirstOf"/>.
/// </summary>
public abstract class PasswordSource
{
    /// <summary>Largest password accepted from a file, descriptor or variable.</summary>
    public const int MaxPasswordBytes = 4096;

    /// <summary>The plain variable read for coldkey passwords by <see cref="ForColdkey"/>.</summary>
    public const string ColdkeyPasswordVariable = "BT_COLDKEY_PASSWORD";

    /// <summary>The plain variable read for encrypted hotkey passwords by <see cref="ForHotkey"/>.</summary>
    public const string HotkeyPasswordVariable = "BT_HOTKEY_PASSWORD";

    /// <summary>The password as UTF-8 bytes (caller zeroes), or null when this source has none.</summary>
    /// <param name="keyfilePath">The keyfile being opened (some sources derive a variable name from it).</param>
    public abstract byte[]? TryGetPassword(string keyfilePath);

    /// <summary>A file holding the password; one trailing newline is ignored.</summary>
    public static PasswordSource FromFile(string path) => new FileSource(path);

    /// <summary>An inherited, already open file descriptor (e.g. <c>--password-fd 3</c> with <c>3&lt;file</c>), read to its end.</summary>
    public static PasswordSource FromFileDescriptor(int fd) => new DescriptorSource(fd);

    /// <summary>A plain environment variable holding the password.</summary>
    public static PasswordSource FromEnvironment(string variable) => new EnvironmentSource(variable);

    /// <summary>
    /// btwallet's variable <c>BT_PW_&lt;keyfile path, separators and dots as _, upper case&gt;</c>, holding
    /// base64(password XOR the variable name). Obfuscation, not protection.
    /// </summary>
    public static PasswordSource FromBtwalletEnvironment() => new BtwalletSource();

    /// <summary>A callback, e.g. an interactive prompt without echo. Returning null means "no password".</summary>
    public static PasswordSource FromCallback(Func<string, string?> prompt, string description = "prompt") => new CallbackSource(prompt, description);

    /// <summary>The first source that has a password.</summary>
    public static PasswordSource FirstOf(params PasswordSource[] sources) => new ChainSource(sources);

    /// <summary>Non-interactive sources for a coldkey: <c>BT_COLDKEY_PASSWORD</c>, then btwallet's <c>BT_PW_…</c>.</summary>
    public static PasswordSource ForColdkey() => FirstOf(FromEnvironment(ColdkeyPasswordVariable), FromBtwalletEnvironment());

    /// <summary>Non-interactive sources for an encrypted hotkey: <c>BT_HOTKEY_PASSWORD</c>, then btwallet's <c>BT_PW_…</c>.</summary>
    public static PasswordSource ForHotkey() => FirstOf(FromEnvironment(HotkeyPasswordVariable), FromBtwalletEnvironment());

    /// <summary>btwallet's variable name for a keyfile path.</summary>
    public static string BtwalletVariableName(string keyfilePath)
    {
        ArgumentNullException.ThrowIfNull(keyfilePath);
        var name = keyfilePath.Replace(Path.DirectorySeparatorChar, '_').Replace('.', '_');
        return "BT_PW_" + name.ToUpperInvariant();
    }

    /// <summary>btwallet's obfuscated value for a password (base64 of the password XOR the variable name).</summary>
    public static string BtwalletObfuscate(string variableName, string password)
    {
        var key = Encoding.UTF8.GetBytes(variableName);
        var data = Encoding.UTF8.GetBytes(password);
        for (var i = 0; i < data.Length; i++) data[i] ^= key[i % key.Length];
        var result = Convert.ToBase64String(data);
        CryptographicOperations.ZeroMemory(data);
        return result;
    }

    private static byte[] Utf8(string value) => Encoding.UTF8.GetBytes(value);

    private static byte[] StripNewline(byte[] bytes)
    {
        var length = bytes.Length;
        if (length > 0 && bytes[length - 1] == (byte)'\n') length--;
        if (length > 0 && bytes[length - 1] == (byte)'\r') length--;
        if (length == bytes.Length) return bytes;
        var result = bytes.AsSpan(0, length).ToArray();
        CryptographicOperations.ZeroMemory(bytes);
        return result;
    }

    private static byte[] ReadBounded(Stream stream, string what)
    {
        var buffer = new byte[MaxPasswordBytes + 1];
        var total = 0;
        int read;
        while (total < buffer.Length && (read = stream.Read(buffer, total, buffer.Length - total)) > 0) total += read;
        if (total > MaxPasswordBytes)
        {
            CryptographicOperations.ZeroMemory(buffer);
            throw new InvalidDataException($"{what} holds more than {MaxPasswordBytes} bytes; it is not a password");
        }
        var result = buffer.AsSpan(0, total).ToArray();
        CryptographicOperations.ZeroMemory(buffer);
        return StripNewline(result);
    }

    private sealed class FileSource(string path) : PasswordSource
    {
        public override byte[]? TryGetPassword(string keyfilePath)
        {
            try
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
                return ReadBounded(stream, $"password file {path}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidDataException($"cannot read password file {path}: {e.Message}", e);
            }
        }

        public override string ToString() => $"password file {path}";
    }

    private sealed class DescriptorSource(int fd) : PasswordSource
    {
        public override byte[]? TryGetPassword(string keyfilePath)
        {
            if (fd < 0) throw new InvalidDataException($"file descriptor {fd} is not valid");
            try
            {
                using var handle = new SafeFileHandle(fd, ownsHandle: false);
                using var stream = new FileStream(handle, FileAccess.Read, 1);
                return ReadBounded(stream, $"file descriptor {fd}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                throw new InvalidDataException($"cannot read password from file descriptor {fd}: {e.Message}", e);
            }
        }

        public override string ToString() => $"file descriptor {fd}";
    }

    private sealed class EnvironmentSource(string variable) : PasswordSource
    {
        public override byte[]? TryGetPassword(string keyfilePath) =>
            Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? Utf8(value) : null;

        public override string ToString() => $"environment variable {variable}";
    }

    private sealed class BtwalletSource : PasswordSource
    {
        public override byte[]? TryGetPassword(string keyfilePath)
        {
            var full = Path.GetFullPath(keyfilePath);
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            // btwallet names the variable after the path it was given, which may still start with "~".
            var candidates = new List<string> { full };
            if (home.Length > 0 && full.StartsWith(home + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                candidates.Add("~" + full[home.Length..]);
            foreach (var candidate in candidates)
            {
                var name = BtwalletVariableName(candidate);
                if (Environment.GetEnvironmentVariable(name) is { Length: > 0 } value) return Deobfuscate(name, value);
            }
            return null;
        }

        private static byte[] Deobfuscate(string name, string value)
        {
            var key = Encoding.UTF8.GetBytes(name);
            byte[] data;
            try { data = Convert.FromBase64String(value.Trim()); }
            catch (FormatException)
            {
                // btwallet 2.x stored the XOR-ed characters directly, without base64.
                data = Encoding.Latin1.GetBytes(value);
            }
            for (var i = 0; i < data.Length; i++) data[i] ^= key[i % key.Length];
            return data;
        }

        public override string ToString() => "btwallet BT_PW_* environment variable";
    }

    private sealed class CallbackSource(Func<string, string?> prompt, string description) : PasswordSource
    {
        public override byte[]? TryGetPassword(string keyfilePath) => prompt(keyfilePath) is { } value ? Utf8(value) : null;

        public override string ToString() => description;
    }

    private sealed class ChainSource(PasswordSource[] sources) : PasswordSource
    {
        public override byte[]? TryGetPassword(string keyfilePath)
        {
            foreach (var source in sources)
                if (source.TryGetPassword(keyfilePath) is { } password) return password;
            return null;
        }

        public override string ToString() => string.Join(", then ", sources.Select(s => s.ToString()));
    }
}
