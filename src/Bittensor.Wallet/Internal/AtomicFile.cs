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
        var copy = data.ToArray();
        try
        {
            WriteAll([new FileWrite(path, copy, overwrite)]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(copy);
        }
    }

    /// <summary>One file of <see cref="WriteAll"/>. <see cref="Data"/> is the caller's: zero it after the write.</summary>
    public readonly record struct FileWrite(string Path, byte[] Data, bool Overwrite);

    /// <summary>
    /// Writes files that belong together (a key and its public file) so that a failure leaves none of them changed:
    /// every file is written to its temporary name and flushed first (this is where a full disk or a file-size limit
    /// fails, and then nothing has been renamed), then all are renamed into place. A rename that fails after another
    /// succeeded (rare: renames allocate no data) removes the files this call created and says which it replaced.
    /// <paramref name="beforeRename"/> runs between the two steps: if it throws, the temporary files are removed and
    /// nothing has changed.
    /// </summary>
    public static void WriteAll(IReadOnlyList<FileWrite> files, Action? beforeRename = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        var staged = new List<(FileWrite File, string Full, string Directory, string Temp)>(files.Count);
        try
        {
            foreach (var f in files)
            {
                var full = Path.GetFullPath(f.Path);
                var directory = Path.GetDirectoryName(full) ?? throw new KeyfileException(f.Path, KeyfileError.Io, "has no parent folder");
                try
                {
                    EnsureDirectory(directory);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new KeyfileException(f.Path, KeyfileError.Io, $"cannot create folder {directory}: {e.Message}{Unchanged(files)}", e);
                }
                if (!f.Overwrite && File.Exists(full))
                    throw new KeyfileException(f.Path, KeyfileError.AlreadyExists, "already exists (use overwrite to replace it)");
                var temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.tmp");
                staged.Add((f, full, directory, temp));
                try
                {
                    Stage(temp, f.Data);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
                {
                    throw new KeyfileException(f.Path, KeyfileError.Io, $"cannot write: {Reason(e)}{Unchanged(files)}", e);
                }
            }
        }
        catch
        {
            foreach (var s in staged) TryDelete(s.Temp);
            throw;
        }
        if (beforeRename is not null)
        {
            try
            {
                beforeRename();
            }
            catch
            {
                foreach (var s in staged) TryDelete(s.Temp);
                throw;
            }
        }

        var created = new List<string>();
        var replaced = new List<string>();
        for (var i = 0; i < staged.Count; i++)
        {
            var (f, full, _, temp) = staged[i];
            try
            {
                if (f.Overwrite || !TryLinkNoReplace(temp, full, f.Path)) File.Move(temp, full, f.Overwrite);
                (f.Overwrite ? replaced : created).Add(full);
            }
            catch (Exception e) when (e is KeyfileException or IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
            {
                for (var j = i; j < staged.Count; j++) TryDelete(staged[j].Temp);
                foreach (var c in created) TryDelete(c);
                var note = replaced.Count == 0 ? Unchanged(files)
                    : $"; already replaced: {string.Join(", ", replaced)} (the files written with it were not)";
                if (e is KeyfileException { Error: KeyfileError.AlreadyExists } || (!f.Overwrite && e is IOException && File.Exists(full)))
                    throw new KeyfileException(f.Path, KeyfileError.AlreadyExists, $"already exists (use overwrite to replace it){note}", e);
                throw new KeyfileException(f.Path, KeyfileError.Io, $"cannot write: {Reason(e)}{note}", e);
            }
            catch
            {
                for (var j = i; j < staged.Count; j++) TryDelete(staged[j].Temp);
                throw;
            }
        }
        foreach (var directory in staged.Select(s => s.Directory).Distinct(StringComparer.Ordinal)) SyncDirectory(directory);
    }

    private static void Stage(string temp, byte[] data)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
        };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = FileMode600;
        using var stream = new FileStream(temp, options);
        stream.Write(data);
        stream.Flush(flushToDisk: true);
    }

    // .NET reports EFBIG (over the process's file-size limit or the file system's) as ArgumentOutOfRangeException.
    private static string Reason(Exception e) =>
        e is ArgumentOutOfRangeException ? "file too large (over the process's file-size limit or the file system's; EFBIG)" : e.Message;

    private static string Unchanged(IReadOnlyList<FileWrite> files) =>
        files.Count > 1 ? $"; none of {string.Join(", ", files.Select(f => Path.GetFileName(f.Path)))} was changed" : "";

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
