namespace Bittensor.Wallet;

/// <summary>Why a keyfile could not be read or written.</summary>
public enum KeyfileError
{
    /// <summary>The file does not exist.</summary>
    NotFound,

    /// <summary>The file is encrypted and no password was supplied.</summary>
    PasswordRequired,

    /// <summary>The password does not open the file (or the ciphertext was tampered with).</summary>
    WrongPassword,

    /// <summary>The file's content is in no known format (unknown prefix, not JSON, not hex).</summary>
    UnknownFormat,

    /// <summary>The file is in a known format but damaged: truncated, bad JSON, bad hex, inconsistent keys.</summary>
    Corrupt,

    /// <summary>The target file exists and overwriting was not allowed.</summary>
    AlreadyExists,

    /// <summary>An operating-system error while reading or writing.</summary>
    Io,
}

/// <summary>
/// A keyfile could not be read or written. The message names the file and the reason and never contains
/// key material or passwords.
/// </summary>
public sealed class KeyfileException : Exception
{
    /// <summary>Creates the exception for <paramref name="path"/>.</summary>
    public KeyfileException(string path, KeyfileError error, string reason, Exception? inner = null)
        : base($"keyfile {path}: {reason}", inner)
    {
        Path = path;
        Error = error;
        Reason = reason;
    }

    /// <summary>The keyfile concerned.</summary>
    public string Path { get; }

    /// <summary>The kind of failure.</summary>
    public KeyfileError Error { get; }

    /// <summary>The reason without the path.</summary>
    public string Reason { get; }
}
