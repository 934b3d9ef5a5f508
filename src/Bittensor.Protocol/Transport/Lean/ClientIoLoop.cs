using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// The lean client's own I/O loop (<c>bittensor.dendrite.io = loop</c>, issue 11, session 18): one thread of the
/// process with its own epoll, which waits for the lean client's connections to become readable or writable, outside
/// .NET's socket engine. A connection on it never makes an async <see cref="Socket"/> operation (so the engine never
/// registers it, and its edge-triggered EPOLLOUT edges never wake the engine's thread): it connects, sends and receives
/// with non-blocking system calls, and waits only through <see cref="Registration.WaitAsync"/>, whose continuation runs
/// on the loop thread (as inline socket completions run on the engine's thread: keep it short, never block).
/// Each wait arms the socket once (<c>EPOLLONESHOT</c>, level-triggered: data already there reports at once), so one
/// wait is one <c>epoll_ctl</c>. Linux on x86-64 only (the packed <c>epoll_event</c>); elsewhere
/// <see cref="Supported"/> is false and connections use .NET's sockets.
/// </summary>
internal sealed partial class ClientIoLoop
{
    /// <summary>Whether this process can run the loop (Linux, x86-64).</summary>
    public static readonly bool Supported = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;

    private static readonly Lazy<ClientIoLoop> Lazy = new(() => new ClientIoLoop(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The process's loop, started on first use.</summary>
    public static ClientIoLoop Shared => Lazy.Value;

    private const uint EpollIn = 0x001, EpollOut = 0x004, EpollErr = 0x008, EpollHup = 0x010, EpollRdHup = 0x2000;
    private const uint EpollOneShot = 1u << 30;
    private const int EpollCtlAdd = 1, EpollCtlDel = 2, EpollCtlMod = 3;
    private const int EIntr = 4, EAgain = 11, EInProgress = 115;
    private const int MsgDontWait = 0x40, MsgNoSignal = 0x4000, MsgPeek = 0x2;

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    private struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static unsafe partial int EpollCtl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static unsafe partial int EpollWait(int epfd, EpollEvent* events, int max, int timeout);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static unsafe partial nint Send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static unsafe partial nint Recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFd(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "timerfd_create", SetLastError = true)]
    private static partial int TimerFdCreate(int clockid, int flags);

    [LibraryImport("libc", EntryPoint = "timerfd_settime", SetLastError = true)]
    private static unsafe partial int TimerFdSetTime(int fd, int flags, long* newValue, long* oldValue);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint Write(int fd, byte* buffer, nuint length);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint Read(int fd, byte* buffer, nuint length);

    // Registration ids start at 1; these two are the loop's own descriptors.
    private const ulong WakeId = 0, FallbackId = ulong.MaxValue;

    /// <summary>
    /// How long a batched send (<see cref="SendBatch"/>) waits at most for its batch's last call before the loop flushes it
    /// anyway: only when a call of the batch never arrives (a message lost with a stopping actor), never in the usual round.
    /// </summary>
    internal static TimeSpan BatchFallback { get; set; } = TimeSpan.FromMilliseconds(2); // tests set it long to see a batch held

    private readonly int _epoll;
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, Registration> _registrations = [];
    private ulong _nextId = 1;
    private int _broken; // the errno epoll_wait failed with (the loop stopped), or 0
    private readonly int _wake; // eventfd: a batched send's flush is due (one write per batch, not per call)
    private readonly int _fallback; // timerfd: the flush of a batch whose last call did not come
    private int _wakePending; // 1 from a wake's eventfd write until the loop takes it
    private readonly Lock _dirtyLock = new();
    private List<Registration> _dirty = new(64); // registrations whose queued bytes the next flush sends
    private List<Registration> _flushing = new(64);
    private readonly HashSet<SendBatch> _openBatches = []; // batches holding queued registrations (the fallback's)

    // Work run on the loop thread (Post): an Akka dispatcher's mailbox runs (the dendrite's actors, bittensor.dendrite.dispatcher
    // = loop), so that the thread that reads an answer also runs the actor that handles it and writes the next call.
    private readonly System.Collections.Concurrent.ConcurrentQueue<(Action<object?> Work, object? State)> _runs = new();
    private int _threadId = -1; // the loop thread's managed id
    private bool _flushDue; // loop thread only: a write queued by the loop thread itself (batch) waits for this turn's flush

    /// <summary>
    /// Most queued runs (<see cref="Post"/>) one turn of the loop runs before it looks at its sockets again (without waiting
    /// when runs are left): work posted here never holds the connections' reads for longer than this many runs.
    /// </summary>
    internal static int RunsPerTurn { get; set; } = 64; // benchmarks set it (fanout --loop_runs)

    /// <summary>Runs the loop thread made of posted work so far (tests and benchmarks).</summary>
    internal long Runs => Interlocked.Read(ref _runsDone);

    private long _runsDone;

    /// <summary>Turns that left posted work for the next one (<see cref="RunsPerTurn"/> reached), tests.</summary>
    internal long RunTurnsCut => Interlocked.Read(ref _runTurnsCut);

    private long _runTurnsCut;

    /// <summary>True on the loop's own thread.</summary>
    public bool IsLoopThread => Environment.CurrentManagedThreadId == Volatile.Read(ref _threadId);

    /// <summary>
    /// Runs <paramref name="work"/> on the loop thread, after the socket events of its current turn (or at once when it
    /// waits): from the loop thread itself without any system call, from another thread with one eventfd write unless a
    /// wake is pending. Work runs in order of posting, at most <see cref="RunsPerTurn"/> per turn, and like every
    /// continuation on this thread it must be short and never block (it holds every connection's reads meanwhile).
    /// An exception thrown by <paramref name="work"/> is not caught (as for a thread-pool work item).
    /// </summary>
    public unsafe void Post(Action<object?> work, object? state)
    {
        if (Volatile.Read(ref _broken) != 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(work, state, preferLocal: false); // the loop stopped: the pool runs it
            return;
        }
        _runs.Enqueue((work, state));
        if (Volatile.Read(ref _broken) != 0)
        {
            // The loop stopped while this was queued: whatever it did not take goes to the pool.
            while (_runs.TryDequeue(out var run)) ThreadPool.UnsafeQueueUserWorkItem(run.Work, run.State, preferLocal: false);
            return;
        }
        if (Environment.CurrentManagedThreadId == _threadId) return; // the loop runs its queue before it next waits
        if (Interlocked.Exchange(ref _wakePending, 1) != 0) return;
        Interlocked.Increment(ref _wakeWrites);
        ulong one = 1;
        Write(_wake, (byte*)&one, 8);
    }

    // On the loop thread: runs what was posted, at most RunsPerTurn.
    private void RunPosted()
    {
        var ran = 0;
        while (ran < RunsPerTurn && _runs.TryDequeue(out var run))
        {
            run.Work(run.State);
            ran++;
        }
        if (ran == 0) return;
        Interlocked.Add(ref _runsDone, ran);
        if (ran == RunsPerTurn && !_runs.IsEmpty) Interlocked.Increment(ref _runTurnsCut);
    }

    private unsafe ClientIoLoop()
    {
        _epoll = EpollCreate1(0x80000); // EPOLL_CLOEXEC
        if (_epoll < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        _wake = EventFd(0, 0x80000 | 0x800); // EFD_CLOEXEC | EFD_NONBLOCK
        if (_wake < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        _fallback = TimerFdCreate(1, 0x80000 | 0x800); // CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK
        if (_fallback < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        var ev = new EpollEvent { Events = EpollIn, Data = WakeId };
        if (EpollCtl(_epoll, EpollCtlAdd, _wake, &ev) != 0) throw new SocketException(Marshal.GetLastPInvokeError());
        ev = new EpollEvent { Events = EpollIn, Data = FallbackId };
        if (EpollCtl(_epoll, EpollCtlAdd, _fallback, &ev) != 0) throw new SocketException(Marshal.GetLastPInvokeError());
        new Thread(Run) { IsBackground = true, Name = "dendrite-io" }.Start();
    }

    /// <summary>Batched flushes the loop thread made (each sends every outbox queued since the last), tests and benchmarks.</summary>
    internal long BatchFlushes => Interlocked.Read(ref _batchFlushes);

    private long _batchFlushes;

    /// <summary>Batches whose held sends the fallback timer flushed (a batch whose last call did not come in time), tests.</summary>
    internal long FallbackFlushes => Interlocked.Read(ref _fallbackFlushes);

    private long _fallbackFlushes;

    /// <summary>Eventfd writes made to wake the loop (a flush: one per batch, or per unbatched send; work posted from another thread), tests and benchmarks.</summary>
    internal long WakeWrites => Interlocked.Read(ref _wakeWrites);

    private long _wakeWrites;

    // The calling thread's open batch (SendBatch.Enter): a send queued meanwhile leaves the loop's wake-up to the batch.
    [ThreadStatic]
    private static SendBatch? t_batch;

    internal static SendBatch? CurrentBatch
    {
        get => t_batch;
        set => t_batch = value;
    }

    /// <summary>
    /// <paramref name="r"/>'s outbox has bytes and no flush is scheduled: with a batch open on this thread, the batch
    /// holds it until its last call (or chunk) arrives, or the fallback fires; otherwise the loop is woken now (one
    /// eventfd write, unless one is pending already).
    /// </summary>
    private void Schedule(Registration r)
    {
        if (t_batch is { } batch)
        {
            if (batch.Hold(r))
            {
                // The batch's first held registration (since its last chunk): the fallback covers it from now.
                lock (_dirtyLock) _openBatches.Add(batch);
                ArmFallback();
            }
            return;
        }
        lock (_dirtyLock) _dirty.Add(r);
        Wake();
    }

    /// <summary>
    /// A batch's chunk or last call arrived: what it held goes to the next flush, and the loop is woken. (The batch stays
    /// in the fallback's set until the timer next fires and finds it empty: a chunk may hold more meanwhile.)
    /// </summary>
    internal void Release(List<Registration> held)
    {
        lock (_dirtyLock) _dirty.AddRange(held);
        Wake();
    }

    /// <summary>
    /// Wakes the loop to flush every queued outbox (one eventfd write while none is pending). On the loop thread itself no
    /// write is made: the loop flushes before it next waits.
    /// </summary>
    internal unsafe void Wake()
    {
        if (Environment.CurrentManagedThreadId == _threadId)
        {
            _flushDue = true;
            return;
        }
        if (Interlocked.Exchange(ref _wakePending, 1) != 0) return;
        Interlocked.Increment(ref _wakeWrites);
        ulong one = 1;
        Write(_wake, (byte*)&one, 8); // EAGAIN only when the counter is full: a wake is pending anyway
    }

    private unsafe void ArmFallback()
    {
        // struct itimerspec { it_interval; it_value } of { tv_sec; tv_nsec }: one shot, BatchFallback from now
        // (re-arming pushes it on).
        var spec = stackalloc long[4];
        var ticks = Math.Max(1, BatchFallback.Ticks);
        spec[0] = 0;
        spec[1] = 0;
        spec[2] = ticks / TimeSpan.TicksPerSecond;
        spec[3] = ticks % TimeSpan.TicksPerSecond * 100;
        TimerFdSetTime(_fallback, 0, spec, null);
    }

    // On the loop thread: sends what every dirty registration queued.
    private void FlushDirty()
    {
        List<Registration> flushing;
        lock (_dirtyLock)
        {
            if (_dirty.Count == 0) return;
            flushing = _dirty;
            _dirty = _flushing;
            _flushing = flushing;
        }
        Interlocked.Increment(ref _batchFlushes);
        foreach (var r in flushing) r.FlushOutbox();
        flushing.Clear();
    }

    private unsafe void Drain(int fd)
    {
        ulong value;
        Read(fd, (byte*)&value, 8);
    }

    /// <summary>Waits (epoll_wait) handled by the loop thread so far (tests and benchmarks).</summary>
    internal long Wakeups => Interlocked.Read(ref _wakeups);

    private long _wakeups;

    /// <summary>Puts <paramref name="socket"/> (non-blocking from now on) on the loop; nothing is armed until a wait.</summary>
    public unsafe Registration Register(Socket socket)
    {
        socket.Blocking = false;
        Registration r;
        lock (_lock)
        {
            if (_broken != 0) throw new SocketException(_broken);
            r = new Registration(this, socket, _nextId++);
            _registrations[r.Id] = r;
        }
        var ev = new EpollEvent { Events = EpollOneShot, Data = r.Id };
        if (EpollCtl(_epoll, EpollCtlAdd, r.Fd, &ev) != 0)
        {
            var error = Marshal.GetLastPInvokeError();
            lock (_lock) _registrations.Remove(r.Id);
            throw new SocketException(error);
        }
        return r;
    }

    private unsafe void Run()
    {
        const int Max = 256;
        var events = stackalloc EpollEvent[Max];
        Volatile.Write(ref _threadId, Environment.CurrentManagedThreadId);
        while (true)
        {
            // Posted work left over (RunsPerTurn reached), or a flush asked for on this thread after the last one (Wake
            // makes no eventfd write here): look at the sockets without waiting, then run and flush.
            var n = EpollWait(_epoll, events, Max, _runs.IsEmpty && !_flushDue ? -1 : 0);
            if (n < 0)
            {
                var error = Marshal.GetLastPInvokeError();
                if (error == EIntr) continue;
                // Not expected (a bad descriptor or argument of ours): stop serving waits rather than the process. Every
                // registered connection is woken and finds itself closed (its calls answer Unavailable), and the next
                // connect fails with this error (Unavailable too).
                Registration[] all;
                lock (_lock)
                {
                    Volatile.Write(ref _broken, error);
                    all = [.. _registrations.Values];
                }
                foreach (var r in all) r.Close();
                // Posted work goes to the thread pool from now on (Post checks _broken), and so does what is queued.
                while (_runs.TryDequeue(out var run)) ThreadPool.UnsafeQueueUserWorkItem(run.Work, run.State, preferLocal: false);
                return;
            }
            Interlocked.Increment(ref _wakeups);
            var flush = false;
            for (var k = 0; k < n; k++)
            {
                var id = events[k].Data;
                if (id == WakeId)
                {
                    Drain(_wake);
                    Volatile.Write(ref _wakePending, 0); // before the flush: a send queued after it wakes the loop again
                    flush = true;
                    continue;
                }
                if (id == FallbackId)
                {
                    Drain(_fallback);
                    FallBack();
                    flush = true;
                    continue;
                }
                Registration? r;
                lock (_lock) _registrations.TryGetValue(id, out r);
                r?.Fire(events[k].Events);
            }
            // Posted work (the dendrite's actors on this thread): after the answers above were read, before the flush, so
            // that the requests they queue (io = batch) go out in this turn's one pass.
            RunPosted();
            // The round's requests go out here, on this thread, in one pass.
            if (flush || _flushDue)
            {
                _flushDue = false;
                FlushDirty();
            }
        }
    }

    /// <summary>A send or receive's errno as the <see cref="SocketError"/> .NET's sockets report for it (Linux numbers).</summary>
    internal static SocketError FromErrno(int errno) => errno switch
    {
        104 => SocketError.ConnectionReset,
        32 => SocketError.Shutdown, // EPIPE: the connection was reset or shut down before
        103 => SocketError.ConnectionAborted,
        110 => SocketError.TimedOut,
        111 => SocketError.ConnectionRefused,
        113 => SocketError.HostUnreachable,
        101 => SocketError.NetworkUnreachable,
        107 => SocketError.NotConnected,
        105 => SocketError.NoBufferSpaceAvailable,
        12 => SocketError.NoBufferSpaceAvailable,
        _ => SocketError.SocketError,
    };

    // The fallback fired: every batch still holding registrations (one whose last call has not come within BatchFallback
    // of its first held send) gives them to this flush; its later calls go on queuing as before.
    private void FallBack()
    {
        SendBatch[] open;
        lock (_dirtyLock)
        {
            if (_openBatches.Count == 0) return;
            open = [.. _openBatches];
            _openBatches.Clear();
        }
        foreach (var batch in open)
        {
            var held = batch.TakeHeld();
            if (held is null) continue;
            Interlocked.Increment(ref _fallbackFlushes);
            lock (_dirtyLock) _dirty.AddRange(held);
        }
    }

    private void Forget(Registration r)
    {
        lock (_lock) _registrations.Remove(r.Id);
    }

    /// <summary>One socket on the loop: at most one read wait and one write wait at a time.</summary>
    internal sealed class Registration
    {
        private readonly ClientIoLoop _loop;
        private readonly Socket _socket;
        private readonly Lock _lock = new();
        private readonly Waiter _read = new();
        private readonly Waiter _write = new();
        private uint _armed; // EpollIn / EpollOut wanted now
        private bool _closed;

        internal Registration(ClientIoLoop loop, Socket socket, ulong id)
        {
            _loop = loop;
            _socket = socket;
            Id = id;
            Fd = (int)socket.SafeHandle.DangerousGetHandle();
        }

        internal ulong Id { get; }

        internal int Fd { get; }

        /// <summary>
        /// Completes once the socket is readable (<paramref name="write"/> false) or writable, or has an error or was
        /// hung up, or this registration was closed (then the next system call reports it). The continuation runs on
        /// the loop thread when the wait did not complete at once.
        /// </summary>
        public ValueTask WaitAsync(bool write)
        {
            var waiter = write ? _write : _read;
            var bit = write ? EpollOut : EpollIn;
            bool read = false, written = false;
            lock (_lock)
            {
                if (_closed) return ValueTask.CompletedTask;
                waiter.Reset();
                _armed |= bit;
                if (!Arm()) (read, written) = TakeAll();
            }
            if (read) _read.Complete();
            if (written) _write.Complete();
            return new ValueTask(waiter, waiter.Version);
        }

        // Under _lock: re-arms the one-shot registration with what is wanted now; false when the socket is gone under
        // us (closed): the caller wakes every waiter and the next system call reports it.
        private unsafe bool Arm()
        {
            // RDHUP only with a read armed: it stays raised once the peer half-closed, and a write alone re-armed with it
            // would be reported again at once, over and over (the peer may close its side and still not read).
            var ev = new EpollEvent { Events = _armed | ((_armed & EpollIn) != 0 ? EpollRdHup : 0) | EpollOneShot, Data = Id };
            if (EpollCtl(_loop._epoll, EpollCtlMod, Fd, &ev) == 0) return true;
            _closed = true;
            return false;
        }

        // Under _lock: every armed wait, disarmed.
        private (bool Read, bool Write) TakeAll()
        {
            var taken = ((_armed & EpollIn) != 0, (_armed & EpollOut) != 0);
            _armed = 0;
            return taken;
        }

        internal void Fire(uint events)
        {
            bool read, write;
            lock (_lock)
            {
                // An error or a hang-up wakes both directions; the peer's half-close (RDHUP) only a read (a write may
                // still wait for room).
                var error = (events & (EpollErr | EpollHup)) != 0;
                read = (_armed & EpollIn) != 0 && (error || (events & (EpollIn | EpollRdHup)) != 0);
                write = (_armed & EpollOut) != 0 && (error || (events & EpollOut) != 0);
                if (read) _armed &= ~EpollIn;
                if (write) _armed &= ~EpollOut;
                if (_armed != 0 && !_closed && !Arm())
                {
                    var (r, w) = TakeAll();
                    read |= r;
                    write |= w;
                }
            }
            if (read) _read.Complete();
            if (write) _write.Complete();
        }

        // The outbox (bittensor.dendrite.io = batch): bytes the connection's writers queue (under the connection's write
        // lock) and the loop thread sends at its next flush, so that a round's requests go out in one pass of the loop.
        private readonly Lock _outLock = new();
        private byte[] _out = [];
        private int _outStart;
        private int _outEnd;
        private bool _outScheduled; // in the loop's dirty list, or waiting for writable: a flush will come
        private SocketError _outError; // a flush failed (the connection is lost): the next write reports it
        private TaskCompletionSource? _drained;
        private Action? _flushWhenWritable;

        /// <summary>Most bytes the outbox holds (a write that would go beyond waits until it is empty and sends itself).</summary>
        internal const int OutboxCapacity = 256 * 1024;

        /// <summary>Called on the loop thread when a flush fails (the connection is lost): the connection closes itself.</summary>
        internal Action<SocketError>? SendFailed { get; set; }

        /// <summary>Flushes that found the socket's buffer full and waited for room (tests).</summary>
        internal int FullWaits { get; private set; }

        private TaskCompletionSource? _fullWaited;

        /// <summary>Completes once a flush has found the socket's buffer full (tests: <see cref="FullWaits"/> as an event).</summary>
        internal Task FullWaitAsync()
        {
            lock (_outLock)
            {
                if (FullWaits > 0) return Task.CompletedTask;
                return (_fullWaited ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
        }

        /// <summary>The socket (tests: its buffer sizes).</summary>
        internal Socket SocketForTests => _socket;

        /// <summary>Bytes queued and not yet sent (tests).</summary>
        internal int Queued
        {
            get
            {
                lock (_outLock) return _outEnd - _outStart;
            }
        }

        /// <summary>
        /// Queues <paramref name="bytes"/> for the loop thread to send; the loop is woken now, or by the batch open on this
        /// thread when its last call arrives (<see cref="SendBatch"/>). False when the outbox holds other bytes and these
        /// would take it past <see cref="OutboxCapacity"/>: the caller waits for <see cref="DrainedAsync"/> and sends them
        /// itself. A closed registration throws <see cref="ObjectDisposedException"/>, one whose last flush failed
        /// <see cref="SocketException"/> with that error.
        /// </summary>
        public bool TryQueue(ReadOnlySpan<byte> bytes)
        {
            bool schedule;
            lock (_outLock)
            {
                if (Volatile.Read(ref _closed)) throw new ObjectDisposedException(nameof(Socket));
                if (_outError != SocketError.Success) throw new SocketException((int)_outError);
                var pending = _outEnd - _outStart;
                if (pending > 0 && pending + bytes.Length > OutboxCapacity) return false;
                if (_outEnd + bytes.Length > _out.Length)
                {
                    var into = pending + bytes.Length <= _out.Length ? _out : new byte[Math.Max(pending + bytes.Length, Math.Max(4096, _out.Length * 2))];
                    Buffer.BlockCopy(_out, _outStart, into, 0, pending);
                    _out = into;
                    _outStart = 0;
                    _outEnd = pending;
                }
                bytes.CopyTo(_out.AsSpan(_outEnd));
                _outEnd += bytes.Length;
                schedule = !_outScheduled;
                _outScheduled = true;
            }
            if (schedule) _loop.Schedule(this);
            return true;
        }

        /// <summary>Completes once the outbox is empty (sent, or dropped because the connection failed or closed).</summary>
        public Task DrainedAsync()
        {
            lock (_outLock)
            {
                if (_outStart == _outEnd) return Task.CompletedTask;
                return (_drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
        }

        /// <summary>On the loop thread: sends what the outbox holds, as far as the socket takes it; the rest once writable.</summary>
        internal void FlushOutbox()
        {
            var failed = SocketError.Success;
            var disposed = false;
            var waitWritable = false;
            TaskCompletionSource? drained = null, full = null;
            lock (_outLock)
            {
                while (_outStart < _outEnd)
                {
                    int n;
                    try
                    {
                        n = TrySend(_out.AsSpan(_outStart, _outEnd - _outStart));
                    }
                    catch (SocketException e)
                    {
                        failed = e.SocketErrorCode;
                        break;
                    }
                    catch (ObjectDisposedException)
                    {
                        failed = SocketError.Shutdown; // closed meanwhile: its calls are answered by the close
                        disposed = true;
                        break;
                    }
                    if (n == 0)
                    {
                        waitWritable = true; // the socket's buffer is full: the rest goes once it has room
                        FullWaits++;
                        full = _fullWaited;
                        _fullWaited = null;
                        break;
                    }
                    _outStart += n;
                }
                if (failed != SocketError.Success)
                {
                    _outError = failed;
                    _outStart = _outEnd;
                }
                if (_outStart == _outEnd)
                {
                    _outStart = _outEnd = 0;
                    if (_out.Length > 64 * 1024) _out = []; // a large write passed: do not keep its room per connection
                    _outScheduled = false;
                    drained = _drained;
                    _drained = null;
                }
            }
            drained?.TrySetResult();
            full?.TrySetResult();
            if (waitWritable)
            {
                var wait = WaitAsync(write: true);
                var again = _flushWhenWritable ??= FlushOutbox;
                if (wait.IsCompleted) again(); // closed meanwhile: the next send reports it
                else wait.GetAwaiter().UnsafeOnCompleted(again); // runs on the loop thread when writable
            }
            if (failed != SocketError.Success && !disposed) SendFailed?.Invoke(failed);
        }

        /// <summary>Takes the socket off the loop (before it is closed) and wakes any wait.</summary>
        public unsafe void Close()
        {
            TaskCompletionSource? drained;
            lock (_outLock)
            {
                _outStart = _outEnd = 0; // never sent: the connection's calls are answered by its close
                drained = _drained;
                _drained = null;
            }
            drained?.TrySetResult();
            bool read, write;
            lock (_lock)
            {
                (read, write) = TakeAll();
                if (!_closed)
                {
                    _closed = true;
                    var ev = default(EpollEvent);
                    EpollCtl(_loop._epoll, EpollCtlDel, Fd, &ev);
                }
            }
            _loop.Forget(this);
            if (read) _read.Complete();
            if (write) _write.Complete();
        }

        /// <summary>
        /// Receives into <paramref name="into"/> as <see cref="Socket.ReceiveAsync(Memory{byte}, SocketFlags, CancellationToken)"/>
        /// does: the bytes received (0 at the end of the stream), waiting on the loop while none are there; a zero-length
        /// receive completes once the socket is readable (or at its end). Errors throw <see cref="SocketException"/>, a
        /// closed connection <see cref="ObjectDisposedException"/>.
        /// </summary>
        public ValueTask<int> ReceiveAsync(Memory<byte> into)
        {
            var n = TryReceive(into.Span);
            return n >= 0 ? ValueTask.FromResult(n) : ReceiveWaitingAsync(into);
        }

        // Once per answer that has to wait (most): the state machine comes from a pool instead of a new box each time.
        [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
        private async ValueTask<int> ReceiveWaitingAsync(Memory<byte> into)
        {
            while (true)
            {
                await WaitAsync(write: false).ConfigureAwait(false);
                var n = TryReceive(into.Span);
                if (n >= 0) return n;
            }
        }

        // Bytes received, 0 at the end of the stream (or, for an empty target, when something is there), -1 when nothing
        // is there yet. A zero-length receive peeks one byte (what .NET's engine does for it too).
        private unsafe int TryReceive(Span<byte> into)
        {
            if (Volatile.Read(ref _closed)) throw new ObjectDisposedException(nameof(Socket));
            // A reference on the socket's handle while the call runs: a Close meanwhile cannot free the descriptor (and
            // let another socket reuse its number) under the call; once closed, DangerousAddRef throws ObjectDisposed.
            var handle = _socket.SafeHandle;
            var added = false;
            byte one;
            nint r;
            try
            {
                handle.DangerousAddRef(ref added);
                fixed (byte* p = into)
                {
                    r = into.IsEmpty ? Recv(Fd, &one, 1, MsgDontWait | MsgPeek) : Recv(Fd, p, (nuint)into.Length, MsgDontWait);
                }
            }
            finally
            {
                if (added) handle.DangerousRelease();
            }
            if (r >= 0) return into.IsEmpty ? 0 : (int)r;
            var error = Marshal.GetLastPInvokeError();
            if (error is EAgain or EIntr) return -1;
            throw new SocketException((int)FromErrno(error));
        }

        /// <summary>Sends every byte of <paramref name="bytes"/>, waiting on the loop while the socket's buffer is full.</summary>
        public async ValueTask SendAsync(ReadOnlyMemory<byte> bytes)
        {
            while (!bytes.IsEmpty)
            {
                var n = TrySend(bytes.Span);
                if (n > 0)
                {
                    bytes = bytes[n..];
                    continue;
                }
                await WaitAsync(write: true).ConfigureAwait(false);
            }
        }

        private unsafe int TrySend(ReadOnlySpan<byte> bytes)
        {
            if (Volatile.Read(ref _closed)) throw new ObjectDisposedException(nameof(Socket));
            var handle = _socket.SafeHandle;
            var added = false;
            nint r;
            try
            {
                handle.DangerousAddRef(ref added);
                fixed (byte* p = bytes) r = ClientIoLoop.Send(Fd, p, (nuint)bytes.Length, MsgDontWait | MsgNoSignal);
            }
            finally
            {
                if (added) handle.DangerousRelease();
            }
            if (r >= 0) return (int)r;
            var error = Marshal.GetLastPInvokeError();
            if (error is EAgain or EIntr) return 0;
            throw new SocketException((int)FromErrno(error));
        }

        /// <summary>
        /// Connects the (registered, non-blocking) socket: the connect call, then a wait for writable and SO_ERROR.
        /// </summary>
        public async ValueTask ConnectAsync(System.Net.IPEndPoint to, CancellationToken cancel)
        {
            try
            {
                _socket.Connect(to);
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
            {
            }
            using (cancel.Register(static s => ((Registration)s!).Close(), this))
            {
                await WaitAsync(write: true).ConfigureAwait(false);
            }
            cancel.ThrowIfCancellationRequested();
            var error = (int)_socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
            if (error != 0) throw new SocketException(error);
        }
    }

    // A reusable awaitable: one wait at a time; completing it runs the continuation here (the loop thread, or the closer).
    private sealed class Waiter : IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = false };
        private int _pending;

        public short Version => _core.Version;

        public void Reset()
        {
            _core.Reset();
            Volatile.Write(ref _pending, 1);
        }

        public void Complete()
        {
            if (Interlocked.Exchange(ref _pending, 0) == 1) _core.SetResult(true);
        }

        public void GetResult(short token) => _core.GetResult(token);

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
