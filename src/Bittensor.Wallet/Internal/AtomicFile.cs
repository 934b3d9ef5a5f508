using System.Security.Cryptography;

namespace Bittensor.Wallet.Internal;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new one: a temporary file in the
/// same folder (mode 0600, flushed to disk), then a rename. Folders it creates get mode 0700.
/// </summary>
internal static class AtomicFile
{
    public const UnixFileMode FileMode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode DirMode700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public static void EnsureDirectory(string directory)
    {
        if (Directory.Exists(directory)) return;
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return;
        }
        // Directory.CreateDirectory(path, mode) applies the mode to the last folder only; every folder we create is 0700.
        if (Path.GetDirectoryName(directory) is { } parent) EnsureDirectory(parent);
        Directory.CreateDirectory(directory, DirMode700);
    }

    public static void Write(string path, ReadOnlySpan<byte> data, bool overwrite)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full) ?? throw new KeyfileException(path, KeyfileError.Io, "has no parent folder");
        try
        {
            EnsureDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KeyfileException(path, KeyfileError.Io, $"cannot create folder {directory}: {e.Message}", e);
        }
        if (!overwrite && File.Exists(full))
            throw new KeyfileException(path, KeyfileError.AlreadyExists, "already exists (use overwrite to replace it)");

        var temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.tmp");
        try
        {
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
            };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = FileMode600;
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(data);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            if (!overwrite && File.Exists(full))
                throw new KeyfileException(path, KeyfileError.AlreadyExists, "already exists (use overwrite to replace it)", e);
            throw new KeyfileException(path, KeyfileError.Io, $"cannot write: {e.Message}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
