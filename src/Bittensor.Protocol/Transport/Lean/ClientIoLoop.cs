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

    private readonly int _epoll;
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, Registration> _registrations = [];
    private ulong _nextId = 1;
    private int _broken; // the errno epoll_wait failed with (the loop stopped), or 0

    private ClientIoLoop()
    {
        _epoll = EpollCreate1(0x80000); // EPOLL_CLOEXEC
        if (_epoll < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        new Thread(Run) { IsBackground = true, Name = "dendrite-io" }.Start();
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
        while (true)
        {
            var n = EpollWait(_epoll, events, Max, -1);
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
                    _broken = error;
                    all = [.. _registrations.Values];
                }
                foreach (var r in all) r.Close();
                return;
            }
            Interlocked.Increment(ref _wakeups);
            for (var k = 0; k < n; k++)
            {
                Registration? r;
                lock (_lock) _registrations.TryGetValue(events[k].Data, out r);
                r?.Fire(events[k].Events);
            }
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

        /// <summary>Takes the socket off the loop (before it is closed) and wakes any wait.</summary>
        public unsafe void Close()
        {
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
            throw new SocketException(error);
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
            throw new SocketException(error);
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
