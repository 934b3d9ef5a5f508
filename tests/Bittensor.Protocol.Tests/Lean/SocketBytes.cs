using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The tests' wait (not the product's: it lives here since session 15, and the connections expose their sockets to it
/// through <c>SocketForTests</c>): waits, on the kernel's own events, until a connected socket holds a number of unread bytes — "the peer's
/// whole answer (or call) is in the socket before the read loop goes on" — instead of polling the count with sleeps.
/// The socket is added, edge-triggered, to an epoll set of this wait's own: each arrival of data (the kernel's
/// data-ready callback) is one wake-up, after which the count is read again. Level-triggered readiness would not do:
/// once some bytes are there the socket stays readable, and the receive low-water mark (<c>SO_RCVLOWAT</c>) is no
/// help either, since Linux reports a socket readable below it whenever its receive window is down to one segment
/// (64 KiB on loopback) — the sender then waits for a window update, and poll would return at once until it comes
/// (session 13 saw that: a wait on poll woke early). Never reads: the bytes stay for the connection.
/// </summary>
internal static partial class SocketBytes
{
    private const int EpollCloExec = 0x80000;
    private const int EpollCtlAdd = 1;
    private const uint EpollIn = 0x001, EpollErr = 0x008, EpollHup = 0x010, EpollRdHup = 0x2000, EpollEt = 1u << 31;
    private const int Interrupted = 4; // EINTR

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    // struct epoll_event is { u32 events; u64 data } (packed to 12 bytes on x86-64, 16 elsewhere): the events word is at 0
    // either way, and the data (unused here) is left zero.
    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static unsafe partial int EpollCtl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static unsafe partial int EpollWait(int epfd, byte* events, int maxEvents, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    /// <summary>
    /// True once <paramref name="socket"/> holds at least <paramref name="count"/> unread bytes, false when
    /// <paramref name="timeout"/> passed first or the peer closed (or the socket failed) with fewer there.
    /// <paramref name="wakeUps"/> counts the kernel's events the wait woke on (arrivals of data).
    /// </summary>
    public static bool WaitFor(Socket? socket, int count, TimeSpan timeout, out int wakeUps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        wakeUps = 0;
        if (socket is null) return false;
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("SocketBytes.WaitFor needs epoll (Linux)");
        var until = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var handle = socket.SafeHandle;
        var referenced = false;
        var epoll = -1;
        try
        {
            handle.DangerousAddRef(ref referenced);
            if (Available(socket) >= count) return true;
            epoll = EpollCreate1(EpollCloExec);
            if (epoll < 0) return false;
            // Added after the look above: data that came in between makes the first wait return at once (epoll checks
            // readiness when a socket is added), so no arrival is missed.
            if (!Add(epoll, (int)handle.DangerousGetHandle())) return false;
            while (Available(socket) < count)
            {
                var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), until);
                if (left <= TimeSpan.Zero) return false;
                var events = Wait(epoll, left, out var failed);
                if (failed) return false;
                if (events == 0) continue; // timed out (the loop looks at the clock) or interrupted
                wakeUps++;
                if ((events & (EpollErr | EpollHup | EpollRdHup)) != 0) return Available(socket) >= count; // no more is coming
            }
            return true;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (epoll >= 0) _ = Close(epoll);
            if (referenced) handle.DangerousRelease();
        }
    }

    private static int Available(Socket socket)
    {
        try
        {
            return socket.Available;
        }
        catch (SocketException)
        {
            return -1;
        }
    }

    private static unsafe bool Add(int epoll, int fd)
    {
        var ev = stackalloc byte[16];
        new Span<byte>(ev, 16).Clear();
        *(uint*)ev = EpollIn | EpollRdHup | EpollEt;
        return EpollCtl(epoll, EpollCtlAdd, fd, ev) == 0;
    }

    // The events of one wake-up; 0 when the wait timed out or was interrupted; failed when epoll_wait failed otherwise.
    private static unsafe uint Wait(int epoll, TimeSpan left, out bool failed)
    {
        var ev = stackalloc byte[16];
        var ms = (int)Math.Clamp(Math.Ceiling(left.TotalMilliseconds), 1, int.MaxValue);
        var n = EpollWait(epoll, ev, 1, ms);
        failed = n < 0 && Marshal.GetLastPInvokeError() != Interrupted;
        return n > 0 ? *(uint*)ev : 0;
    }
}
