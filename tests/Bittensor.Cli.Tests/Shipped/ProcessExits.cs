using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Bittensor.Cli.Tests.Shipped;

/// <summary>
/// Waits for the exit of processes that are not this process's children (a killed parent's orphans, which only init
/// may reap): each is opened as a pidfd (<c>pidfd_open</c>, Linux 5.3+), which the kernel makes readable when the
/// process exits, and one thread blocks in <c>poll</c> on all of them and an eventfd that cancellation signals. No
/// timer and no re-reading of /proc: the wait ends on the exit itself.
/// </summary>
internal static partial class ProcessExits
{
    private const int SysPidfdOpen = 434; // the same number on x86-64 and arm64
    private const int Esrch = 3;
    private const short PollIn = 0x1;
    private const int Eintr = 4;
    private const int EfdCloexec = 0x80000;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long SysCall(long number, long pid, long flags);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int Poll(PollFd* fds, ulong count, int timeout);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    /// <summary>Completes when every process of <paramref name="pids"/> has exited (a zombie counts as exited); cancelled by <paramref name="ct"/>.</summary>
    /// <exception cref="Win32Exception">pidfd_open, eventfd or poll failed (not a process that is gone already).</exception>
    public static async Task WaitAsync(IReadOnlyCollection<int> pids, CancellationToken ct)
    {
        var fds = new List<int>();
        var cancel = -1;
        try
        {
            foreach (var pid in pids)
            {
                var fd = SysCall(SysPidfdOpen, pid, 0);
                if (fd >= 0) fds.Add((int)fd);
                else if (Marshal.GetLastPInvokeError() != Esrch) throw new Win32Exception(Marshal.GetLastPInvokeError(), $"pidfd_open({pid})");
                // ESRCH: gone (and reaped) already.
            }
            if (fds.Count == 0) return;
            cancel = EventFd(0, EfdCloexec);
            if (cancel < 0) throw new Win32Exception(Marshal.GetLastPInvokeError(), "eventfd");
            var signal = cancel;
            using var registration = ct.Register(() => Signal(signal));
            await Task.Factory.StartNew(() => PollUntilExited(fds, signal), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)
                .ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
        }
        finally
        {
            foreach (var fd in fds) Close(fd);
            if (cancel >= 0) Close(cancel);
        }
    }

    private static unsafe void Signal(int eventFd)
    {
        ulong one = 1;
        Write(eventFd, &one, sizeof(ulong));
    }

    // Blocks until each pidfd is readable (its process exited) or the eventfd is (cancelled).
    private static unsafe void PollUntilExited(List<int> pidfds, int cancel)
    {
        var waiting = new List<int>(pidfds);
        var set = new PollFd[pidfds.Count + 1];
        while (waiting.Count > 0)
        {
            set[0] = new PollFd { Fd = cancel, Events = PollIn };
            for (var i = 0; i < waiting.Count; i++) set[i + 1] = new PollFd { Fd = waiting[i], Events = PollIn };
            int ready;
            fixed (PollFd* p = set) ready = Poll(p, (ulong)(waiting.Count + 1), -1);
            if (ready < 0)
            {
                if (Marshal.GetLastPInvokeError() == Eintr) continue;
                throw new Win32Exception(Marshal.GetLastPInvokeError(), "poll");
            }
            if (set[0].Revents != 0) return; // cancelled
            var exited = new HashSet<int>();
            for (var i = 0; i < waiting.Count; i++)
                if (set[i + 1].Revents != 0) exited.Add(waiting[i]);
            waiting.RemoveAll(exited.Contains);
        }
    }
}
