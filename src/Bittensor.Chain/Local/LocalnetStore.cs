using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using Bittensor.Core.Crypto;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Local;

/// <summary>A localnet folder cannot be used: another process owns it, or its state is unreadable.</summary>
public sealed class LocalnetException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The localnet's folder: an exclusive lock (<c>localnet.lock</c>, held open with FileShare.None, which .NET
/// implements with flock on Unix, so the kernel releases it when the process dies) plus <c>localnet.pid</c>, and the
/// state snapshot <c>state.bin</c> with the previous one kept as <c>state.bin.prev</c>.
/// <para>
/// File format: magic <c>BTLN</c>, u32 format version, u64 payload length, payload (SCALE, see
/// <see cref="LocalnetState.Write"/>), BLAKE2b-256 of everything before it. A commit writes <c>state.bin.tmp</c>,
/// fsyncs it, renames the current file to <c>.prev</c>, renames the temp file over <c>state.bin</c> and fsyncs the
/// folder; so after a crash at any point one of the two files holds the last or the one-before-last whole block.
/// </para>
/// </summary>
internal sealed partial class LocalnetStore : IDisposable
{
    public const uint FormatVersion = 1;
    private static readonly byte[] Magic = "BTLN"u8.ToArray();
    private const int HeaderSize = 4 + 4 + 8;
    private const int ChecksumSize = 32;
    private const long MaxStateBytes = 1L << 30;

    private readonly FileStream _lock;

    private LocalnetStore(string folder, FileStream lockStream)
    {
        Folder = folder;
        _lock = lockStream;
    }

    public string Folder { get; }

    private string StatePath => Path.Combine(Folder, "state.bin");
    private string PrevPath => Path.Combine(Folder, "state.bin.prev");
    private string TempPath => Path.Combine(Folder, "state.bin.tmp");
    private string PidPath => Path.Combine(Folder, "localnet.pid");

    /// <summary>Creates the folder (mode 0700) if needed and takes the lock; a second owner gets "in use by PID n".</summary>
    public static LocalnetStore Open(string folder)
    {
        var full = Path.GetFullPath(folder);
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(full);
        else Directory.CreateDirectory(full, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var lockPath = Path.Combine(full, "localnet.lock");
        FileStream stream;
        try
        {
            stream = new FileStream(lockPath, PrivateFile(FileMode.OpenOrCreate, FileAccess.ReadWrite));
        }
        catch (IOException e)
        {
            throw new LocalnetException($"localnet at {full} is in use by PID {ReadPid(full)}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new LocalnetException($"localnet at {full} cannot be opened: {e.Message}", e);
        }
        var store = new LocalnetStore(full, stream);
        try
        {
            var pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            stream.SetLength(0);
            stream.Write(System.Text.Encoding.ASCII.GetBytes(pid));
            stream.Flush(true);
            store.WriteAtomically(store.PidPath, System.Text.Encoding.ASCII.GetBytes(pid));
        }
        catch (Exception e) when (e is IOException or ArgumentOutOfRangeException)
        {
            store.Dispose();
            throw new LocalnetException($"localnet at {full} cannot be written: {WriteError(e)}", e);
        }
        catch
        {
            store.Dispose();
            throw;
        }
        return store;
    }

    private static string ReadPid(string folder)
    {
        try
        {
            var text = File.ReadAllText(Path.Combine(folder, "localnet.pid")).Trim();
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? text : "unknown";
        }
        catch (IOException)
        {
            return "unknown";
        }
        catch (UnauthorizedAccessException)
        {
            return "unknown";
        }
    }

    /// <summary>
    /// Loads the newest whole snapshot: <c>state.bin</c>, or <c>state.bin.prev</c> when the former is missing,
    /// torn or corrupt (then <paramref name="warning"/> says so). Null when neither exists (a new chain).
    /// Throws <see cref="LocalnetException"/> when state exists but no copy is readable.
    /// </summary>
    public LocalnetState? Load(out string? warning)
    {
        warning = null;
        var hasState = File.Exists(StatePath);
        var hasPrev = File.Exists(PrevPath);
        if (!hasState && !hasPrev) return null;
        string? firstError = null;
        if (hasState)
        {
            try { return Decode(File.ReadAllBytes(StatePath)); }
            catch (LocalnetException e) { firstError = e.Message; }
        }
        if (hasPrev)
        {
            try
            {
                var state = Decode(File.ReadAllBytes(PrevPath));
                warning = firstError is null
                    ? $"state.bin was missing; restarted from state.bin.prev (block {state.Block})"
                    : $"state.bin is unusable ({firstError}); restarted from state.bin.prev (block {state.Block})";
                return state;
            }
            catch (LocalnetException e)
            {
                throw new LocalnetException($"localnet state at {Folder} is corrupt: state.bin: {firstError ?? "missing"}; state.bin.prev: {e.Message}");
            }
        }
        throw new LocalnetException($"localnet state at {Folder} is corrupt: {firstError}");
    }

    /// <summary>Encodes a snapshot with header and checksum.</summary>
    public static byte[] Encode(LocalnetState state)
    {
        var payload = new ScaleWriter(4096);
        state.Write(payload);
        var body = payload.WrittenSpan;
        var file = new byte[HeaderSize + body.Length + ChecksumSize];
        Magic.CopyTo(file, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(4), FormatVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(8), (ulong)body.Length);
        body.CopyTo(file.AsSpan(HeaderSize));
        Blake2b.Hash(file.AsSpan(0, HeaderSize + body.Length), file.AsSpan(HeaderSize + body.Length));
        return file;
    }

    /// <summary>Checks magic, version, length and checksum, then decodes; every failure is a <see cref="LocalnetException"/>.</summary>
    public static LocalnetState Decode(ReadOnlySpan<byte> file)
    {
        if (file.Length < HeaderSize + ChecksumSize) throw new LocalnetException($"file is truncated ({file.Length} bytes)");
        if (!file[..4].SequenceEqual(Magic)) throw new LocalnetException("not a localnet state file (bad magic)");
        var version = BinaryPrimitives.ReadUInt32LittleEndian(file[4..]);
        if (version != FormatVersion) throw new LocalnetException($"state format version {version} is not supported (expected {FormatVersion})");
        var length = BinaryPrimitives.ReadUInt64LittleEndian(file[8..]);
        if (length > MaxStateBytes || (long)length != file.Length - HeaderSize - ChecksumSize)
            throw new LocalnetException($"file is torn: header says {length} payload bytes, file holds {file.Length - HeaderSize - ChecksumSize}");
        Span<byte> sum = stackalloc byte[ChecksumSize];
        Blake2b.Hash(file[..^ChecksumSize], sum);
        if (!sum.SequenceEqual(file[^ChecksumSize..])) throw new LocalnetException("checksum mismatch (file is corrupt)");
        try
        {
            return LocalnetState.Read(file.Slice(HeaderSize, (int)length));
        }
        catch (ScaleException e)
        {
            throw new LocalnetException($"state payload is malformed: {e.Message}", e);
        }
    }

    /// <summary>Writes one block's snapshot durably (see the class remarks for the sequence).</summary>
    public void Commit(LocalnetState state)
    {
        var bytes = Encode(state);
        try
        {
            WriteFileSynced(TempPath, bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            // Nothing was renamed: state.bin (and .prev) still hold the last committed block.
            throw new IOException($"cannot write {TempPath}: {WriteError(e)}; the state on disk is unchanged", e);
        }
        if (File.Exists(StatePath)) File.Move(StatePath, PrevPath, overwrite: true);
        File.Move(TempPath, StatePath);
        SyncDirectory(Folder);
    }

    /// <summary>Deletes the state files (the lock stays held).</summary>
    public void Reset()
    {
        foreach (var p in new[] { StatePath, PrevPath, TempPath })
            if (File.Exists(p)) File.Delete(p);
        SyncDirectory(Folder);
    }

    private void WriteAtomically(string path, byte[] bytes)
    {
        var tmp = path + ".tmp";
        WriteFileSynced(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
        SyncDirectory(Folder);
    }

    private static void WriteFileSynced(string path, byte[] bytes)
    {
        try
        {
            using var fs = new FileStream(path, PrivateFile(FileMode.Create, FileAccess.Write));
            fs.Write(bytes);
            fs.Flush(flushToDisk: true);
        }
        catch
        {
            // A part-written temp file is no use to anyone (disk full, file-size limit): do not leave it behind.
            try { File.Delete(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The reason of a failed write in words; .NET reports EFBIG (over the file-size limit) as ArgumentOutOfRangeException.</summary>
    private static string WriteError(Exception e) => e is ArgumentOutOfRangeException
        ? "file too large (over the process's file-size limit or the file system's; EFBIG)"
        : e.Message;

    /// <summary>Exclusive access; created with mode 0600 on Unix.</summary>
    private static FileStreamOptions PrivateFile(FileMode mode, FileAccess access)
    {
        var o = new FileStreamOptions { Mode = mode, Access = access, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) o.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        return o;
    }

    private static void SyncDirectory(string folder)
    {
        // A rename is only durable once the directory entry is; .NET has no API for fsync on a directory.
        if (OperatingSystem.IsWindows()) return;
        var fd = NativeOpen(folder, 0);
        if (fd < 0) return;
        try { _ = NativeFsync(fd); }
        finally { _ = NativeClose(fd); }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeOpen(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int NativeFsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int NativeClose(int fd);

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _lock.Dispose();
}
