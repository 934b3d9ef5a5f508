using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Bittensor.Protocol;

/// <summary>
/// The nonce store's files: a snapshot (<c>path</c>, written atomically) and a write-ahead journal (<c>path.journal</c>)
/// to which every accepted nonce is appended before the request is answered. Appends from concurrent requests are
/// written together (group commit: one <c>write</c> per batch). With fsync on, a nonce that is not inside its caller's
/// reservation on disk adds a reservation line (<c>r &lt;ss58&gt; &lt;nonce + 10 s&gt;</c>) and its batch is fsynced
/// before its calls are answered; the caller's later nonces inside the reservation are only written (the kernel keeps
/// them when the process dies). After a reboot (another boot id in the journal, or none known) reservations count as
/// used nonces, so a batch lost with the machine reopens nothing. Batches are written with no
/// thread of its own: the call that finds no write under way queues the write on the thread pool (<see cref="Commit"/>),
/// behind the request work already waiting there; calls that queue meanwhile are written as the next batch, so a batch
/// is whatever queued before its turn and during the previous write (until session 7 a dedicated writer thread, woken per append, wrote them: a thread switch
/// there and back per batch, and a hop for every call). At most one write runs at a time. When the journal outgrows the
/// snapshot it is compacted by a rotation that never holds the writes (session 20): the other journal file is prepared
/// (header and the reservations on disk, fsynced), appends switch to it between two writes, the store is written as a
/// new snapshot (temp file, fsync, rename, fsync of the folder), and only then is the old file emptied. At start and at
/// a clean stop the whole compaction runs instead (a clean stop's leaves the reservations out). The files are mode
/// 0600; both journal files are held with an exclusive lock, so two processes cannot share one store.
/// <para>
/// No large objects per batch or per compaction (session 13): a batch's text is encoded piecewise through one kept
/// 32 KiB buffer, and a compaction copies the store's entries (references and numbers) into a kept array under the
/// owner's lock and encodes them into the file through the same buffer. Until session 13 both built the whole text
/// as a string and then as a byte array: at 1,024 signed callers a compaction every few seconds put three large
/// objects (≈ 290, 140 and 70 KB) on the LOH, and a large batch two more.
/// </para>
/// </summary>
internal sealed partial class NonceJournal : IDisposable
{
    /// <summary>
    /// Copies the store's entries, oldest first, into <paramref name="entries"/> (replacing it with a larger array when
    /// they do not fit) under the owner's lock, and returns how many there are.
    /// </summary>
    internal delegate int SnapshotSource(ref (string Ss58, long NonceTicks)[] entries);

    internal const string JournalHeader = "bittensor-nonce-journal v1";
    internal const string JournalSuffix = ".journal";
    private const long MinCompactBytes = 1 << 20;
    private const int IoBufferBytes = 32 * 1024;
    private const int KeepChars = 16 * 1024;
    private static readonly UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _snapshotPath;
    private readonly bool _fsync;
    private readonly SnapshotSource _snapshot;
    // Kept between turns (one turn at a time uses them): the encoding buffer (small-object heap) and the compaction's
    // copy of the entries (cleared after each use, so it keeps no caller alive).
    private readonly byte[] _io = new byte[IoBufferBytes];
    private readonly Encoder _utf8 = new UTF8Encoding(false).GetEncoder();
    private (string Ss58, long NonceTicks)[] _entries = new (string, long)[64];
    private readonly Action<string>? _report;
    private bool _failing;
    // The two journal files (JournalPath and SecondJournalPath): appends go to the active one; a rotation prepares the
    // standby, switches (between two batches, under _queueGate) and, once a snapshot holding everything the old active
    // file holds is durable, empties the old one, which is the standby then. Both are held locked.
    private JournalFile _journal;
    private JournalFile _standby;
    private readonly Lock _queueGate = new();
    private readonly ManualResetEventSlim _idle = new(true); // set while no write or compaction runs or is queued
    private readonly ManualResetEventSlim _rotationIdle = new(true); // set while no rotation runs or is queued
    private readonly Action<object?> _passCallback;
    private readonly Action<object?> _rotateCallback;
    private readonly Action<object?> _finishRotationCallback;
    private bool _rotating; // under _queueGate: a rotation runs or is queued
    private bool _switchReady; // under _queueGate: the standby is prepared; the turn's holder switches when its write ends
    private List<(string Ss58, long UpTo)>? _switchReservations; // under _queueGate: the reservations written into the standby
    private bool _standbyDirty; // the standby holds lines no durable snapshot covers yet (a rotation's snapshot failed)
    private long _rotations;
    private StringBuilder _buffer = new(4096);
    private StringBuilder _spare = new(4096);
    // Reservations (see Reserve) queued with the batch in _buffer / in the batch being written, swapped with it.
    private List<(string Ss58, long UpTo)> _reservations = [];
    private List<(string Ss58, long UpTo)> _spareReservations = [];
    // Per caller, the newest nonce covered by a reservation that is on disk (fsynced); under _queueGate. Bounded: at
    // MaxReserved callers it is emptied (callers then reserve again: one more fsync, never one less).
    private readonly Dictionary<string, long> _reserved = new(StringComparer.Ordinal);
    private readonly string? _bootId;
    private long _syncs;
    private TaskCompletionSource _batch = NewBatch();
    private bool _committing; // a write or compaction runs or is queued on the thread pool (the turn is taken)
    private bool _stopping;
    private bool _crashed;
    private Exception? _broken;
    private long _batchesWritten;

    /// <summary>Batches written since open (each one <c>write</c>; see <see cref="Syncs"/> for those also fsynced); tests read it.</summary>
    internal long BatchesWritten => Interlocked.Read(ref _batchesWritten);

    /// <summary>Batches fsynced since open (those carrying a reservation); tests read it.</summary>
    internal long Syncs => Interlocked.Read(ref _syncs);

    /// <summary>How far ahead of a caller's nonce a reservation reaches (in the caller's nonce time).</summary>
    internal static readonly long ReserveAhead = TimeSpan.FromSeconds(10).Ticks;

    /// <summary>Most callers with a reservation remembered.</summary>
    internal const int MaxReserved = 100_000;

    private long _compactAt = MinCompactBytes;

    /// <summary>Test hook: when set, every write runs on the thread pool and waits for it before taking its batch (holds answers back).</summary>
    internal ManualResetEventSlim? HoldWrites { get; set; }


    private NonceJournal(string snapshotPath, bool fsync, SnapshotSource snapshot, JournalFile journal, JournalFile standby, Action<string>? report, string? bootId)
    {
        _bootId = bootId;
        _report = report;
        _snapshotPath = snapshotPath;
        _fsync = fsync;
        _snapshot = snapshot;
        _journal = journal;
        _standby = standby;
        _passCallback = _ => Pass();
        _rotateCallback = _ => Rotate();
        _finishRotationCallback = _ => FinishRotation();
    }

    /// <summary>The journal's path for a snapshot path.</summary>
    public static string JournalPath(string snapshotPath) => snapshotPath + JournalSuffix;

    /// <summary>The second journal file's path (a rotation alternates appends between the two; both are loaded at start).</summary>
    public static string SecondJournalPath(string snapshotPath) => snapshotPath + JournalSuffix + "2";

    /// <summary>Rotations finished since open (snapshot durable, old journal file emptied); tests read it.</summary>
    internal long Rotations => Interlocked.Read(ref _rotations);

    /// <summary>The path of the file appends go to now, and how many of its bytes are known to be on disk (fsynced); tests cut it.</summary>
    internal (string Path, long Synced) ActiveFile
    {
        get { lock (_queueGate) return (_journal.Path, _journal.Synced); }
    }

    /// <summary>As <see cref="ActiveFile"/> for the other file (the old active one while a rotation's snapshot is being written).</summary>
    internal (string Path, long Synced) StandbyFile
    {
        get { lock (_queueGate) return (_standby.Path, _standby.Synced); }
    }

    /// <summary>Test hook: a rotation waits for it after its switch, before its snapshot (the old file stays full meanwhile).</summary>
    internal ManualResetEventSlim? HoldRotation { get; set; }

    /// <summary>Test hook: runs on a rotation's thread once the standby is prepared, before the switch.</summary>
    internal Action? BeforeSwitch { get; set; }

    /// <summary>Test hook: runs (outside the locks) right after a rotation switched the files.</summary>
    internal Action? AfterSwitch { get; set; }

    /// <summary>One journal file, its length and the part of it known to be on disk.</summary>
    private sealed class JournalFile(FileStream stream, string path)
    {
        public FileStream Stream { get; } = stream;
        public string Path { get; } = path;
        public long Bytes;
        public long Synced;
    }

    private static FileStream OpenJournalFile(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 0 };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = Private;
        FileStream stream;
        try
        {
            stream = new FileStream(path, options);
        }
        catch (IOException e)
        {
            throw new IOException($"the nonce store {path} is in use by another process or cannot be opened ({e.Message})", e);
        }
        try
        {
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(stream.SafeFileHandle, Private);
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private static string ReadAll(FileStream stream)
    {
        var bytes = new byte[stream.Length];
        stream.Position = 0;
        stream.ReadExactly(bytes);
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>
    /// Opens (creating when absent, folder 0700, files 0600) the store at <paramref name="snapshotPath"/>: loads the
    /// snapshot and every complete journal line into <paramref name="store"/> (a torn last line, from a batch whose
    /// write never finished and so was never answered, is dropped), writes a fresh snapshot, empties the journal and
    /// is ready for appends. <paramref name="snapshot"/> serialises the store under the caller's lock (so <see cref="Commit"/>
    /// must not be called holding that lock).
    /// </summary>
    /// <exception cref="InvalidDataException">A file is not a nonce store (nothing is overwritten).</exception>
    /// <exception cref="IOException">The store is locked by another process, or cannot be read or written (disk full and
    /// the file-size limit included).</exception>
    public static NonceJournal Open(string snapshotPath, bool fsync, NonceStore store, long dropBelowTicks, SnapshotSource snapshot,
        Action<string>? report = null, string? bootId = null)
    {
        var full = Path.GetFullPath(snapshotPath);
        var directory = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(directory))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(directory);
            else Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var journal = OpenJournalFile(JournalPath(full));
        FileStream? second = null;
        try
        {
            second = OpenJournalFile(SecondJournalPath(full));
            if (File.Exists(full))
            {
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(full, Private);
                store.Load(File.ReadAllText(full, Encoding.UTF8), dropBelowTicks);
            }
            // Both files: a rotation switches appends from one to the other, and until its snapshot is durable the old one
            // holds nonces the snapshot on disk does not.
            ReplayJournal(ReadAll(journal), store, dropBelowTicks, bootId);
            ReplayJournal(ReadAll(second), store, dropBelowTicks, bootId);
            var result = new NonceJournal(full, fsync, snapshot, new JournalFile(journal, JournalPath(full)), new JournalFile(second, SecondJournalPath(full)),
                report, bootId);
            try
            {
                result.Compact();
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw TooLarge(full, e);
            }
            return result;
        }
        catch
        {
            journal.Dispose();
            second?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Queues an accepted nonce (cheap; callable under the caller's lock). The task completes when its batch is written
    /// (and fsynced when it carries a reservation): only then may the request be answered. It faults when the write failed; the
    /// request must then be refused. Follow it with <see cref="Commit"/> once outside that lock.
    /// </summary>
    public Task Append(string ss58, long nonceTicks)
    {
        lock (_queueGate)
        {
            if (_broken is not null) return Task.FromException(_broken);
            if (_stopping) return Task.FromException(new ObjectDisposedException(nameof(NonceJournal)));
            _buffer.Append(ss58).Append(' ').Append(nonceTicks).Append('\n');
            // Covered by a reservation on disk: the write alone makes this nonce survive a killed process, the reservation a
            // lost machine. Else this batch carries a reservation and is fsynced before its calls are answered.
            if (_fsync && !(_reserved.TryGetValue(ss58, out var upTo) && nonceTicks <= upTo))
            {
                var reserve = nonceTicks + ReserveAhead;
                _buffer.Append("r ").Append(ss58).Append(' ').Append(reserve).Append('\n');
                _reservations.Add((ss58, reserve));
            }
            return _batch.Task;
        }
    }

    /// <summary>
    /// Takes the turn when no write is under way and queues the write of everything queued on the thread pool (behind
    /// the request work already waiting there); otherwise returns at once and the write under way hands the turn on to
    /// the thread pool for what queued meanwhile.
    /// </summary>
    public void Commit()
    {
        bool inline;
        lock (_queueGate)
        {
            if (_committing || _stopping || _buffer.Length == 0) return;
            TakeTurn();
            // A batch that needs no fsync (no reservation in it) is written on the calling thread: one write into the
            // kernel's page cache, and the call goes on at once (no task to await, no hop). An fsync never runs there:
            // writing inline with an fsync per batch (session 7) blocked the call's pool thread in it, and on a one-core
            // axon the other calls waited (16 callers: p99 46–60 vs 11–13 ms, 2.4–2.9k vs 4.6–4.7k req/s).
            inline = _reservations.Count == 0 && HoldWrites is null;
        }
        if (inline) Pass(inline: true);
        else ThreadPool.UnsafeQueueUserWorkItem(_passCallback, null, preferLocal: false);
    }

    /// <summary>Asks for a compaction now (a rotation on the thread pool: a snapshot, the old journal file emptied), unless one runs.</summary>
    public void RequestCompaction()
    {
        lock (_queueGate)
        {
            _compactAt = 0;
            StartRotation();
        }
    }

    /// <summary>Test hook: waits until no write, compaction or rotation runs or is queued.</summary>
    internal void WaitIdle()
    {
        _rotationIdle.Wait();
        _idle.Wait();
    }

    /// <summary>Test hook: once no turn runs, compacts on the calling thread (as a turn) and returns the snapshot's size in bytes.</summary>
    internal long CompactNow()
    {
        while (true)
        {
            _rotationIdle.Wait();
            _idle.Wait();
            lock (_queueGate)
            {
                if (_stopping) throw new ObjectDisposedException(nameof(NonceJournal));
                if (_committing || _rotating) continue;
                TakeTurn();
                // No rotation may start while this compaction rewrites both files.
                _rotating = true;
                _rotationIdle.Reset();
            }
            try
            {
                return Compact();
            }
            finally
            {
                lock (_queueGate) EndRotation();
                Release();
            }
        }
    }

    /// <summary>Writes what is queued, compacts and closes (a clean stop).</summary>
    public void Dispose()
    {
        lock (_queueGate)
        {
            if (_stopping) return;
            _stopping = true;
        }
        _idle.Wait(); // the turn under way (it hands nothing on once stopping)
        _rotationIdle.Wait(); // a rotation under way (one that has not switched yet gives up)
        _idle.Wait(); // a switch made by the turn's end may have queued nothing more; this only confirms it
        Pass(final: true);
        CloseFiles();
    }

    private void CloseFiles()
    {
        _journal.Stream.Dispose();
        _standby.Stream.Dispose();
        _idle.Dispose();
        _rotationIdle.Dispose();
    }

    /// <summary>
    /// Test hook: stops as <c>kill -9</c> would: queued (unanswered) nonces are dropped, nothing is compacted, the
    /// files stay as the last answered batch left them.
    /// </summary>
    internal void SimulateCrash(Action? afterCrashMarked = null)
    {
        lock (_queueGate)
        {
            if (_stopping) return;
            _stopping = true;
            _crashed = true;
        }
        // Test hook: runs once a held write will see the crash (e.g. releases HoldWrites), before waiting for it.
        afterCrashMarked?.Invoke();
        _idle.Wait();
        _rotationIdle.Wait(); // a rotation sees the crash and stops where it is (its snapshot is never written)
        _idle.Wait();
        Pass(final: true);
        CloseFiles();
    }

    private static TaskCompletionSource NewBatch() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Under _queueGate.
    private void TakeTurn()
    {
        _committing = true;
        _idle.Reset();
    }

    /// <summary>
    /// One turn (the caller holds it): writes the queued batch and completes its calls, compacts when due (not in an
    /// inline turn: a call's own, for a batch without reservations), then hands the turn on to the thread pool when more
    /// is queued or a compaction is due, or releases it. The final turn (stop or crash, after every other turn ended)
    /// writes (or, crashed, fails) what is left and compacts.
    /// </summary>
    private void Pass(bool inline = false, bool final = false)
    {
        if (!final && !inline) HoldWrites?.Wait();
        StringBuilder text;
        TaskCompletionSource batch;
        List<(string Ss58, long UpTo)> reservations;
        bool crashed;
        lock (_queueGate)
        {
            if (inline && _reservations.Count > 0)
            {
                // A reservation joined the batch since Commit looked: its fsync goes to the thread pool, as the turn.
                ThreadPool.UnsafeQueueUserWorkItem(_passCallback, null, preferLocal: false);
                return;
            }
            text = _buffer;
            batch = _batch;
            reservations = _reservations;
            if (text.Length > 0)
            {
                // Only calls that appended hold the batch's task: an empty buffer keeps it.
                _buffer = _spare;
                _spare = text;
                _reservations = _spareReservations;
                _spareReservations = reservations;
                _batch = NewBatch();
            }
            crashed = _crashed;
        }
        if (crashed)
        {
            // As kill -9: what is queued is never written, and its calls are never accepted.
            if (text.Length > 0) batch.TrySetException(new ObjectDisposedException(nameof(NonceJournal)));
            Recycle(text);
            reservations.Clear();
            if (!final) Release();
            return;
        }
        try
        {
            if (text.Length > 0) WriteBatch(text, reservations, batch);
            Recycle(text);
            reservations.Clear();
            if (final)
            {
                // A clean stop: nothing is answered after it, so no reservation is needed on disk (a restart after a
                // reboot must not refuse the callers' next 10 s).
                TryCompact(keepReservations: false);
                return;
            }
        }
        catch (Exception e)
        {
            // Not an I/O failure (those are handled above): fail closed for good rather than leave the turn taken
            // (every later call would wait forever) or end the process from a thread-pool thread.
            Recycle(text);
            reservations.Clear();
            batch.TrySetException(e);
            lock (_queueGate) _broken ??= new IOException("the nonce journal failed", e);
            Report(true, $"nonce journal {JournalPath(_snapshotPath)} failed ({e.GetType().Name}); every call is refused until the axon is restarted", always: true);
            if (!final) Release();
            return;
        }
        var finish = false;
        lock (_queueGate)
        {
            // A rotation whose standby is ready switches here, between two writes; the journal outgrowing max(1 MiB,
            // 2 × snapshot) starts one. Neither holds the turn: the calls' writes go on while a rotation runs.
            finish = EndOfWrite();
            var more = !_stopping && _buffer.Length > 0;
            // More queued: the turn stays taken and moves to the thread pool.
            if (!more)
            {
                _committing = false;
                _idle.Set();
            }
            else ThreadPool.UnsafeQueueUserWorkItem(_passCallback, null, preferLocal: false);
        }
        if (finish) AfterSwitched();
    }

    /// <summary>
    /// Empties a written batch's builder for reuse. A builder that grew past <see cref="KeepChars"/> (a batch of some
    /// 250+ callers) is replaced by a small one instead: clearing a builder of several chunks allocates one array of its
    /// whole length (StringBuilder keeps its capacity), which from ~42,500 characters on goes to the LOH.
    /// </summary>
    private void Recycle(StringBuilder text)
    {
        lock (_queueGate)
        {
            if (!ReferenceEquals(text, _spare)) return; // not swapped out (nothing was queued): still the live buffer
            if (text.Capacity > KeepChars) _spare = new StringBuilder(4096);
            else text.Clear();
        }
    }

    private void Release()
    {
        bool finish;
        lock (_queueGate)
        {
            finish = EndOfWrite();
            _committing = false;
            _idle.Set();
        }
        if (finish) AfterSwitched();
    }

    // Under _queueGate, by the turn's holder once its write is done: switches when a rotation's standby is ready (true:
    // the caller queues the rotation's second half), else starts a rotation when the journal is due one.
    private bool EndOfWrite()
    {
        if (_switchReady)
        {
            Switch();
            return true;
        }
        if (!_stopping && _journal.Bytes >= _compactAt) StartRotation();
        return false;
    }

    private void WriteBatch(StringBuilder text, List<(string Ss58, long UpTo)> reservations, TaskCompletionSource batch)
    {
        if (_broken is not null)
        {
            batch.TrySetException(_broken);
            return;
        }
        long written = 0;
        var began = Lean.ShedProbe.On ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        try
        {
            written = WriteText(_journal.Stream, text, _io, _utf8);
            if (_fsync && reservations.Count > 0)
            {
                _journal.Stream.Flush(flushToDisk: true);
                _journal.Synced = _journal.Bytes + written;
                Interlocked.Increment(ref _syncs);
                // On disk now: later calls inside these reservations need no fsync. Batches are written one after another,
                // so a call that relies on one is written after the fsync that made it durable.
                lock (_queueGate)
                {
                    if (_reserved.Count + reservations.Count > MaxReserved) _reserved.Clear();
                    foreach (var (ss58, upTo) in reservations)
                        if (!_reserved.TryGetValue(ss58, out var had) || had < upTo) _reserved[ss58] = upTo;
                }
            }
            _journal.Bytes += written;
            Interlocked.Increment(ref _batchesWritten);
            if (Lean.ShedProbe.On)
                Lean.ShedProbe.Add(reservations.Count > 0 && _fsync ? Lean.ShedProbe.FsyncBatch : Lean.ShedProbe.InlineBatch, began,
                    System.Diagnostics.Stopwatch.GetTimestamp(), Environment.CurrentManagedThreadId, reservations.Count, written, 0, 0, 0, 0);
            batch.TrySetResult();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            // .NET reports EFBIG (over the process's file-size limit, RLIMIT_FSIZE, or the file system's largest file)
            // as ArgumentOutOfRangeException; it is a write failure like ENOSPC and must not end the journal.
            if (e is ArgumentOutOfRangeException) e = TooLarge(JournalPath(_snapshotPath), e);
            batch.TrySetException(e);
            Report(true, $"nonce journal {JournalPath(_snapshotPath)} cannot be written ({e.Message}); calls are refused (UnknownException) until it can");
            // Cut a partly written batch off, so the next batch starts on a line boundary; if even that fails,
            // refuse every later request rather than answer one whose nonce may not be on disk.
            try
            {
                _journal.Stream.SetLength(_journal.Bytes);
                _journal.Stream.Position = _journal.Bytes;
            }
            catch (Exception cut) when (cut is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
            {
                lock (_queueGate) _broken = new IOException("the nonce journal cannot be written", cut);
                Report(true, $"nonce journal {JournalPath(_snapshotPath)} cannot be cut back to its last whole batch ({cut.Message}); every call is refused until the axon is restarted", always: true);
            }
            return;
        }
        // Its message made only when it is reported (every batch made two strings before).
        if (_failing) Report(false, $"nonce journal {JournalPath(_snapshotPath)} is writable again");
    }

    /// <summary>Tells the owner once per change between writable and not (never throws).</summary>
    private void Report(bool failing, string message, bool always = false)
    {
        if (_failing == failing && !always) return;
        _failing = failing;
        try
        {
            _report?.Invoke(message);
        }
        catch (Exception)
        {
            // Reporting must not stop the journal.
        }
    }

    private static IOException TooLarge(string path, Exception e) =>
        new($"cannot write {path}: file too large (over the process's file-size limit or the file system's; EFBIG)", e);

    private void TryCompact(bool keepReservations = true)
    {
        var began = Lean.ShedProbe.On ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        try
        {
            Compact(keepReservations);
            if (Lean.ShedProbe.On) Lean.ShedProbe.Add(Lean.ShedProbe.Compaction, began, System.Diagnostics.Stopwatch.GetTimestamp(), Environment.CurrentManagedThreadId, 0, 0, 0, 0, 0, 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            // The journal still holds every nonce; try again once it has doubled.
            lock (_queueGate) _compactAt = Math.Max(MinCompactBytes, _journal.Bytes * 2);
        }
    }

    /// <summary>
    /// Snapshot first (durably), then empty both journal files: a crash in between leaves them all, which load to the same
    /// store. The turn's holder runs it with no rotation under way (at start, at a clean stop, tests). Returns the
    /// snapshot's size in bytes.
    /// </summary>
    private long Compact(bool keepReservations = true)
    {
        // The journal's reservations would go with it: they are taken out of _reserved before the snapshot (so no call
        // relies on one while the journal is emptied; a call meanwhile reserves again), written again into the emptied
        // journal behind its header and fsynced with it, and only then given back. Until session 16 they were dropped,
        // so after every compaction each caller reserved again: at 1,024 signed callers a compaction came about every
        // second and each was followed by ~1,000 reservations, i.e. an fsync in nearly every batch and every admitted
        // call's header check waiting for one (benchmarks/results/axon.md "Session 16, h4-verif").
        var kept = TakeReservations(keepReservations);
        var size = WriteSnapshotOfStore(_io);
        _standby.Stream.SetLength(0);
        _standby.Stream.Position = 0;
        _standby.Bytes = _standby.Synced = 0;
        var bytes = Rewrite(_journal, kept, _io, _utf8, ref _keptText);
        lock (_queueGate)
        {
            _standbyDirty = false;
            // The rewritten reservations are not growth: the next compaction comes after as much new journal as before.
            _compactAt = Math.Max(MinCompactBytes, 2L * size) + bytes;
            // On disk again: calls inside them need no fsync. A newer reservation made meanwhile (none: the turn is ours) wins.
            if (_reserved.Count + kept.Count > MaxReserved) _reserved.Clear();
            foreach (var (ss58, upTo) in kept)
                if (!_reserved.TryGetValue(ss58, out var had) || had < upTo) _reserved[ss58] = upTo;
        }
        kept.Clear();
        return size;
    }

    /// <summary>
    /// Empties <paramref name="file"/> and writes the header and <paramref name="reservations"/> into it, fsynced (with fsync
    /// on); returns its length.
    /// </summary>
    private long Rewrite(JournalFile file, List<(string Ss58, long UpTo)> reservations, byte[] io, Encoder utf8, ref StringBuilder text)
    {
        file.Stream.SetLength(0);
        file.Stream.Position = 0;
        file.Bytes = file.Synced = 0;
        var header = Encoding.UTF8.GetBytes(_bootId is null ? JournalHeader + "\n" : $"{JournalHeader}\nboot {_bootId}\n");
        file.Stream.Write(header);
        long reservationBytes = 0;
        if (reservations.Count > 0)
        {
            text.Clear();
            foreach (var (ss58, upTo) in reservations) text.Append("r ").Append(ss58).Append(' ').Append(upTo).Append('\n');
            reservationBytes = WriteText(file.Stream, text, io, utf8);
            if (text.Capacity > KeepChars) text = new StringBuilder(4096);
            else text.Clear();
        }
        if (_fsync) file.Stream.Flush(flushToDisk: true);
        file.Bytes = header.Length + reservationBytes;
        if (_fsync) file.Synced = file.Bytes;
        return file.Bytes;
    }

    /// <summary>Copies the store (under the owner's lock) and writes it as the snapshot, atomically and durably; returns its size.</summary>
    private long WriteSnapshotOfStore(byte[] io)
    {
        var count = _snapshot(ref _entries);
        try
        {
            return WriteAtomically(_snapshotPath, _entries.AsSpan(0, count), io);
        }
        finally
        {
            Array.Clear(_entries, 0, count);
        }
    }

    // A rotation's own buffers (it writes beside the turn's batches, which use _io and _utf8).
    private readonly byte[] _rotationIo = new byte[IoBufferBytes];
    private readonly Encoder _rotationUtf8 = new UTF8Encoding(false).GetEncoder();
    private StringBuilder _rotationText = new(4096);
    private readonly List<(string Ss58, long UpTo)> _rotationReservations = [];
    private long _switchBase;

    // Under _queueGate.
    private void StartRotation()
    {
        if (_rotating || _stopping) return;
        _rotating = true;
        _rotationIdle.Reset();
        ThreadPool.UnsafeQueueUserWorkItem(_rotateCallback, null, preferLocal: false);
    }

    // Under _queueGate.
    private void EndRotation()
    {
        _switchReady = false;
        _switchReservations = null;
        _rotating = false;
        _rotationIdle.Set();
    }

    /// <summary>
    /// A compaction that never holds the calls' writes (session 20; until then the turn's holder compacted, and every
    /// admitted call's nonce write waited 3–6 ms for the snapshot's and the journal's fsyncs, 9–12 times per 5 s at 1,024
    /// verified callers). First half, on the thread pool beside the writes: the standby file is emptied and given the
    /// header and every reservation on disk now (fsynced), then appends switch to it between two writes (<see cref="Switch"/>).
    /// Second half (<see cref="FinishRotation"/>): the snapshot, then the old file is emptied.
    /// </summary>
    private void Rotate()
    {
        try
        {
            // A rotation whose snapshot failed left lines in the standby that only it holds: cover them first.
            if (_standbyDirty) SnapshotAndEmptyStandby();
            var kept = _rotationReservations;
            kept.Clear();
            lock (_queueGate)
            {
                if (_stopping)
                {
                    EndRotation();
                    return;
                }
                if (_fsync) foreach (var pair in _reserved) kept.Add((pair.Key, pair.Value));
            }
            // Only a rotation writes the standby; these reservations are also in the active file (durably): a crash now
            // loads them twice.
            Rewrite(_standby, kept, _rotationIo, _rotationUtf8, ref _rotationText);
            BeforeSwitch?.Invoke();
            lock (_queueGate)
            {
                if (_stopping)
                {
                    EndRotation();
                    return;
                }
                _switchReservations = kept;
                if (_committing)
                {
                    // A write is under way: its turn's holder switches when that write ends (Pass, EndOfWrite).
                    _switchReady = true;
                    return;
                }
                Switch();
            }
            AfterSwitch?.Invoke();
            FinishRotation();
        }
        catch (Exception e)
        {
            // The active file still holds every nonce; try again once it has doubled. (Not only I/O failures: an exception
            // must not end the process from a thread-pool thread, and no file was emptied whose lines no snapshot holds.)
            RotationFailed(e);
        }
    }

    /// <summary>
    /// Under <see cref="_queueGate"/>, with no write under way: appends go to the prepared standby from now on. Only the
    /// reservations written into it count from now on (a caller that reserved in the old file since then reserves again):
    /// the old file is emptied once the snapshot holds every nonce in it, and every nonce written to it was recorded in
    /// the store before this switch, so the snapshot, copied after it, holds them all.
    /// </summary>
    private void Switch()
    {
        var kept = _switchReservations!;
        _switchReady = false;
        _switchReservations = null;
        (_journal, _standby) = (_standby, _journal);
        _switchBase = _journal.Bytes;
        _reserved.Clear();
        foreach (var (ss58, upTo) in kept)
            if (!_reserved.TryGetValue(ss58, out var had) || had < upTo) _reserved[ss58] = upTo;
        _standbyDirty = true;
    }

    // The turn's holder switched at its write's end: the rotation's second half goes to the thread pool.
    private void AfterSwitched()
    {
        AfterSwitch?.Invoke();
        ThreadPool.UnsafeQueueUserWorkItem(_finishRotationCallback, null, preferLocal: false);
    }

    /// <summary>The rotation's second half: the snapshot (durable), then the old file, now the standby, is emptied.</summary>
    private void FinishRotation()
    {
        var began = Lean.ShedProbe.On ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        try
        {
            HoldRotation?.Wait();
            lock (_queueGate)
            {
                if (_crashed)
                {
                    // As kill -9: the snapshot is never written; both files stay as they are.
                    EndRotation();
                    return;
                }
            }
            SnapshotAndEmptyStandby();
            Interlocked.Increment(ref _rotations);
            if (Lean.ShedProbe.On) Lean.ShedProbe.Add(Lean.ShedProbe.Compaction, began, System.Diagnostics.Stopwatch.GetTimestamp(), Environment.CurrentManagedThreadId, 0, 0, 0, 0, 0, 0);
            lock (_queueGate) EndRotation();
        }
        catch (Exception e)
        {
            // The standby stays as it is (dirty): the next rotation writes the snapshot before it empties it.
            RotationFailed(e);
        }
    }

    private void RotationFailed(Exception e)
    {
        lock (_queueGate)
        {
            _compactAt = Math.Max(MinCompactBytes, _journal.Bytes * 2);
            EndRotation();
        }
        if (e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException) return;
        try
        {
            _report?.Invoke($"nonce journal {JournalPath(_snapshotPath)}: a compaction failed ({e.GetType().Name}); the journal keeps every nonce and grows until one succeeds");
        }
        catch (Exception)
        {
            // Reporting must not stop the journal.
        }
    }

    private void SnapshotAndEmptyStandby()
    {
        var size = WriteSnapshotOfStore(_rotationIo);
        // Every line of the standby is in that snapshot now. Not fsynced: if the emptying is lost, its lines load again.
        _standby.Stream.SetLength(0);
        _standby.Stream.Position = 0;
        _standby.Bytes = _standby.Synced = 0;
        lock (_queueGate)
        {
            _standbyDirty = false;
            _compactAt = Math.Max(MinCompactBytes, 2L * size) + _switchBase;
        }
    }

    private StringBuilder _keptText = new(4096);
    private readonly List<(string Ss58, long UpTo)> _keptReservations = [];

    /// <summary>Empties <see cref="_reserved"/> into the kept list (the compaction's; one turn at a time uses it).</summary>
    private List<(string Ss58, long UpTo)> TakeReservations(bool keep)
    {
        var kept = _keptReservations;
        kept.Clear();
        lock (_queueGate)
        {
            // Without fsync no reservation is ever made or relied on.
            if (_fsync && keep) foreach (var pair in _reserved) kept.Add((pair.Key, pair.Value));
            _reserved.Clear();
        }
        return kept;
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 piecewise through <paramref name="io"/>; returns the bytes written.</summary>
    private static long WriteText(FileStream file, StringBuilder text, byte[] io, Encoder utf8)
    {
        long written = 0;
        utf8.Reset();
        foreach (var chunk in text.GetChunks())
        {
            var chars = chunk.Span;
            while (true)
            {
                utf8.Convert(chars, io, flush: false, out var used, out var bytes, out _);
                if (bytes > 0) file.Write(io, 0, bytes);
                written += bytes;
                chars = chars[used..];
                if (chars.IsEmpty) break;
            }
        }
        utf8.Convert(ReadOnlySpan<char>.Empty, io, flush: true, out _, out var tail, out _);
        if (tail > 0) file.Write(io, 0, tail);
        return written + tail;
    }

    /// <summary>
    /// Writes the snapshot file's text (<see cref="NonceStore.FileHeader"/>, then one <c>ss58 ticks</c> line per entry, as
    /// <see cref="NonceStore.Serialize"/>) through the kept buffer; returns the bytes written.
    /// </summary>
    private static long WriteSnapshot(FileStream file, ReadOnlySpan<(string Ss58, long NonceTicks)> entries, byte[] io)
    {
        long written = 0;
        var used = Encoding.UTF8.GetBytes(NonceStore.FileHeader + "\n", io);
        foreach (var (ss58, ticks) in entries)
        {
            // A line: at most 3 bytes per char of the address (its chars are ASCII in practice), a space, 20 digits, \n.
            var most = (3 * ss58.Length) + 22;
            if (IoBufferBytes - used < most)
            {
                file.Write(io, 0, used);
                written += used;
                used = 0;
                if (most > IoBufferBytes) throw new InvalidDataException("a nonce store entry is too long to write");
            }
            used += Encoding.UTF8.GetBytes(ss58, io.AsSpan(used));
            io[used++] = (byte)' ';
            if (!ticks.TryFormat(io.AsSpan(used), out var digits, provider: CultureInfo.InvariantCulture)) throw new InvalidOperationException("unreachable: 20 digits fit");
            used += digits;
            io[used++] = (byte)'\n';
        }
        file.Write(io, 0, used);
        return written + used;
    }

    /// <summary>
    /// Loads the journal's nonces. Reservation lines (<c>r &lt;ss58&gt; &lt;ticks&gt;</c>) count as used nonces only when the
    /// journal was written under another boot (or the boot is unknown): then the machine went down, batches written but not
    /// fsynced may be lost, and every nonce answered without an fsync lies at or below its caller's reservation on disk.
    /// Under the same boot every written batch is in the file (the kernel kept it), so reservations are ignored.
    /// </summary>
    private static void ReplayJournal(string text, NonceStore store, long dropBelowTicks, string? bootId)
    {
        if (text.Length == 0) return;
        var end = text.IndexOf('\n', StringComparison.Ordinal);
        if (end < 0 || !text.AsSpan(0, end).SequenceEqual(JournalHeader))
        {
            // A header torn by a crash during compaction is the only unheaded journal we write; anything else is not ours.
            if (end < 0 && JournalHeader.StartsWith(text, StringComparison.Ordinal)) return;
            throw new InvalidDataException($"not a nonce journal (expected header '{JournalHeader}')");
        }
        var position = end + 1;
        var sameBoot = false;
        List<(string, long)>? reserved = null;
        while (position < text.Length)
        {
            var next = text.IndexOf('\n', position);
            if (next < 0) break; // torn last line: its batch was never answered
            var line = text.AsSpan(position, next - position);
            position = next + 1;
            if (line.StartsWith("boot "))
            {
                sameBoot = bootId is not null && line[5..].SequenceEqual(bootId.AsSpan());
                continue;
            }
            if (line.StartsWith("r "))
            {
                line = line[2..];
                var gap = line.IndexOf(' ');
                if (gap > 0 && gap <= 64 && long.TryParse(line[(gap + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var upTo))
                    (reserved ??= []).Add((line[..gap].ToString(), upTo));
                continue;
            }
            var space = line.IndexOf(' ');
            if (space <= 0 || space > 64) continue;
            if (!long.TryParse(line[(space + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)) continue;
            store.Restore(line[..space].ToString(), ticks, dropBelowTicks);
        }
        if (sameBoot || reserved is null) return;
        foreach (var (ss58, upTo) in reserved) store.Restore(ss58, upTo, dropBelowTicks);
    }

    /// <summary>The kernel's id of this boot (Linux); null elsewhere or when unreadable.</summary>
    internal static string? KernelBootId()
    {
        try
        {
            if (!OperatingSystem.IsLinux()) return null;
            var id = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
            return id.Length is > 0 and <= 64 && !id.Contains(' ', StringComparison.Ordinal) ? id : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static long WriteAtomically(string path, ReadOnlySpan<(string Ss58, long NonceTicks)> entries, byte[] io)
    {
        var directory = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0 };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = Private;
        try
        {
            long size;
            using (var stream = new FileStream(temp, options))
            {
                size = WriteSnapshot(stream, entries, io);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
            // The journal is emptied next; the rename must be on disk first.
            SyncDirectory(directory);
            return size;
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static void SyncDirectory(string folder)
    {
        // .NET has no API for fsync on a directory.
        if (OperatingSystem.IsWindows()) return;
        var fd = NativeOpen(folder, 0);
        if (fd < 0) throw new IOException($"cannot open {folder} to sync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (NativeFsync(fd) != 0) throw new IOException($"cannot sync {folder} (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = NativeClose(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int NativeOpen(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int NativeFsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int NativeClose(int fd);
}
