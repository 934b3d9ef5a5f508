using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Bittensor.Wallet.Internal;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new one: a temporary file in the
/// same folder (mode 0600, flushed to disk), then a rename. Folders it creates get mode 0700.
/// </summary>
internal static partial class AtomicFile
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
            if (overwrite || !TryLinkNoReplace(temp, full, path)) File.Move(temp, full, overwrite);
            SyncDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            TryDelete(temp);
            if (!overwrite && File.Exists(full))
                throw new KeyfileException(path, KeyfileError.AlreadyExists, "already exists (use overwrite to replace it)", e);
            // .NET reports EFBIG (over the process's file-size limit or the file system's) as ArgumentOutOfRangeException.
            var reason = e is ArgumentOutOfRangeException ? "file too large (over the process's file-size limit or the file system's; EFBIG)" : e.Message;
            throw new KeyfileException(path, KeyfileError.Io, $"cannot write: {reason}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    // File.Move(overwrite: false) checks and renames in two steps; link(2) fails atomically when the name exists,
    // so two writers can never both believe they created the key. False when the file system has no hard links.
    private static bool TryLinkNoReplace(string temp, string full, string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return false;
        int rc;
        try
        {
            rc = link(temp, full);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
        if (rc != 0)
        {
            if (Marshal.GetLastPInvokeError() == 17 /* EEXIST */)
                throw new KeyfileException(path, KeyfileError.AlreadyExists, "already exists (use overwrite to replace it)");
            return false;
        }
        File.Delete(temp);
        return true;
    }

    // The rename is durable only once the folder's entry is on disk; .NET has no API for that, so ask libc.
    private static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        try
        {
            var fd = open(directory, 0 /* O_RDONLY */);
            if (fd < 0) return;
            _ = fsync(fd);
            _ = close(fd);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Best effort: the file itself was flushed before the rename.
        }
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int link(string oldPath, string newPath);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
