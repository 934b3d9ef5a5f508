using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// One receive into two places (Linux <c>recvmsg</c> with two iovecs): a message body's target (the answer's floats in
/// the caller's array, <see cref="AnswerLanding"/>, or the message array) and, behind it, the connection's read buffer,
/// so the rest of the answer (its tail and the trailers, which the peer sent in the same write) comes in the same system
/// call instead of a read of its own. Taken only where the read loop would otherwise receive straight into the target
/// with nothing buffered; it never waits (<c>MSG_DONTWAIT</c>): when nothing is there, or the platform has no such call,
/// the read loop receives the usual way (<see cref="ReceiveAsync"/>), which waits for the socket.
/// </summary>
internal sealed partial class H2ClientConnection
{
    /// <summary>Whether this process may call <c>recvmsg</c> with the layout below (64-bit Linux).</summary>
    private static readonly bool VectoredSupported = OperatingSystem.IsLinux() && Environment.Is64BitProcess;

    private const int MsgDontWait = 0x40;

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [LibraryImport("libc", EntryPoint = "recvmsg")]
    private static unsafe partial nint RecvMsg(int fd, MsgHdr* message, int flags);

    /// <summary>Receives that filled a target and the read buffer in one call (tests and benchmarks).</summary>
    internal long VectoredReads => Interlocked.Read(ref _vectoredReads);

    private long _vectoredReads;

    /// <summary>Bytes waiting in the socket's receive queue (tests: an answer is whole in the kernel before the read loop goes on).</summary>
    internal int SocketBytesAvailable => _socket?.Available ?? 0;

    /// <summary>Tests: the connection's socket (the tests' SocketBytes.WaitFor waits on it for an answer to be whole there).</summary>
    internal System.Net.Sockets.Socket? SocketForTests => _socket;

    /// <summary>
    /// Without waiting, receives into <paramref name="target"/> and then into the read buffer from its start (which
    /// must hold nothing: the caller reset it). Returns the bytes received in all (those past <paramref name="target"/>'s
    /// length are in the read buffer), or 0 when nothing was received this way (no data now, an error, the end of the
    /// stream, or no such call here): the caller then receives the usual way, which reports errors and the end.
    /// </summary>
    private int TryReceiveVectored(Memory<byte> target)
    {
        if (_feed is not null)
        {
            // Socket-free (Feed): one read of the input's size, spanning the target and the buffer as recvmsg would.
            var n = _feed.ReadVectored(target.Span, _buf);
            if (n > 0) Interlocked.Increment(ref _vectoredReads);
            return n;
        }
        if (!VectoredSupported || _socket is null) return 0;
        var handle = _socket.SafeHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            var n = Receive((int)handle.DangerousGetHandle(), target.Span, _buf);
            if (n > 0) Interlocked.Increment(ref _vectoredReads);
            return n;
        }
        catch (ObjectDisposedException)
        {
            return 0; // closed meanwhile: the usual receive reports it
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    private static unsafe int Receive(int fd, Span<byte> first, Span<byte> second)
    {
        fixed (byte* a = first)
        fixed (byte* b = second)
        {
            var iov = stackalloc IoVec[2];
            iov[0] = new IoVec { Base = a, Length = (nuint)first.Length };
            iov[1] = new IoVec { Base = b, Length = (nuint)second.Length };
            var message = new MsgHdr { Iov = iov, IovLength = 2 };
            var n = RecvMsg(fd, &message, MsgDontWait);
            return n > 0 ? (int)n : 0;
        }
    }
}
