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

    private static int Receive(int fd, Span<byte> first, Span<byte> second) => Receive(fd, first, second, []);

    private static unsafe int Receive(int fd, Span<byte> first, Span<byte> second, Span<byte> third)
    {
        fixed (byte* a = first)
        fixed (byte* b = second)
        fixed (byte* c = third)
        {
            var iov = stackalloc IoVec[3];
            iov[0] = new IoVec { Base = a, Length = (nuint)first.Length };
            iov[1] = new IoVec { Base = b, Length = (nuint)second.Length };
            iov[2] = new IoVec { Base = c, Length = (nuint)third.Length };
            var message = new MsgHdr { Iov = iov, IovLength = third.IsEmpty ? 2u : 3u };
            var n = RecvMsg(fd, &message, MsgDontWait);
            return n > 0 ? (int)n : 0;
        }
    }

    // ------------------------------------------------ one receive per answer: head, landing and tail together

    /// <summary>
    /// Least room behind a landing in the read buffer for a head read (<see cref="TryReceiveHead"/>): the message's tail
    /// and the trailers, which the peer sends in the same write as the floats, fit in it.
    /// </summary>
    private const int MinHeadTail = 4096;

    /// <summary>Answers whose head, landed floats and tail came in one receive at a frame start (tests and benchmarks).</summary>
    internal long HeadReads => Interlocked.Read(ref _headReads);

    private long _headReads;

    // A head read's landing, until the read loop reaches it: the stream whose landing holds _headLanded bytes, the end of
    // the head in the read buffer (_end while pending: nothing is appended to the buffer before Unscramble), and where the
    // bytes that came after the landing lie in the read buffer (a gap of the landing's length behind the head).
    private ClientStream? _headStream;
    private int _headLanded;
    private int _headEnd;
    private int _headTailAt;
    private int _headTailLength;

    // Whether the last read at a frame start found bytes waiting (its receive completed at once). Only then is a head read
    // tried first: it never waits, and on an idle socket it would be one system call more before the usual receive.
    private bool _lastHeadReady;

    /// <summary>
    /// At a frame start with nothing buffered and the landing hint known: when the next call in line (the open stream
    /// with the lowest id whose answer has not begun) has a landing, receives without waiting into [the read buffer up to
    /// the hint | the landing's array | the read buffer behind a gap of the landing's length], so that an answer whose
    /// head is as long as the last one's comes in one system call: head, floats and tail. The bytes are consumed as if
    /// contiguous: the read buffer shows only the head; when the read loop reaches the landing's first byte for that
    /// stream (<see cref="TakeHeadLanding"/>) the landed bytes count as received and the tail follows; anything else
    /// (another stream's answer, a head of another length, a frame split differently) first moves the landed bytes back
    /// between the head and the tail (<see cref="Unscramble"/>) and goes on as after one ordinary read. False when
    /// nothing was received this way (no candidate, no room, nothing waiting, or no such call here).
    /// </summary>
    private bool TryReceiveHead()
    {
        var hint = _landingHint;
        var s = HeadCandidate();
        if (s is null) return false;
        var length = s.Landing!.DataLength;
        if (hint + length + MinHeadTail > _buf.Length) return false;
        var landing = s.Landing.Bytes[..length];
        int n;
        if (_feed is not null)
        {
            n = _feed.ReadVectored(_buf.AsSpan(0, hint), landing.Span, _buf.AsSpan(hint + length));
        }
        else
        {
            if (!VectoredSupported || _socket is null) return false;
            var handle = _socket.SafeHandle;
            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                n = Receive((int)handle.DangerousGetHandle(), _buf.AsSpan(0, hint), landing.Span, _buf.AsSpan(hint + length));
            }
            catch (ObjectDisposedException)
            {
                return false; // closed meanwhile: the usual receive reports it
            }
            finally
            {
                if (added) handle.DangerousRelease();
            }
        }
        if (n <= 0) return false;
        Interlocked.Increment(ref _headReads);
        if (n <= hint)
        {
            _end = n; // only head bytes: an ordinary read
            return true;
        }
        LeanClientTransport.CountHeadRead(_port);
        _end = hint;
        _headStream = s;
        _headEnd = hint;
        _headLanded = Math.Min(n - hint, length);
        _headTailAt = hint + length;
        _headTailLength = n - hint - _headLanded;
        return true;
    }

    // The call next in line: the open stream with the lowest id whose answer has not begun, when it has a landing.
    private ClientStream? HeadCandidate()
    {
        ClientStream? s = null;
        lock (_lock)
        {
            if (_streams.Count is 0 or > 8) return null;
            foreach (var open in _streams.Values)
                if (!open.HeadersSeen && !open.MessageStarted && (s is null || open.Id < s.Id)) s = open;
        }
        return s?.Landing is not null && _landingHint + s.Landing.DataLength + MinHeadTail <= _buf.Length ? s : null;
    }

    private bool HasHeadCandidate() => (VectoredSupported || _feed is not null) && HeadCandidate() is not null;

    // No stream open: whatever the peer sends next (an answer) follows a call this side has yet to make, and by the time
    // its bytes arrive that call is open and (with a landing) the head read's candidate. Waiting with a zero-byte
    // receive then lets the answer come in one receive instead of a receive of the head alone and one of the rest.
    private bool AwaitsNextCall()
    {
        if (!VectoredSupported && _feed is null) return false;
        lock (_lock)
        {
            if (_streams.Count != 0 || _closed) return false;
        }
        Interlocked.Increment(ref _idleHeadWaits);
        return true;
    }

    /// <summary>Frame starts reached with no call open where the read loop waited for the next answer without receiving (tests).</summary>
    internal long IdleHeadWaits => Interlocked.Read(ref _idleHeadWaits);

    private long _idleHeadWaits;

    /// <summary>Zero-byte waits at a frame start that ended with nothing to receive and were waited again (tests and benchmarks).</summary>
    internal long EmptyHeadWaits => Interlocked.Read(ref _emptyHeadWaits);

    private long _emptyHeadWaits;

    private const int MaxEmptyHeadWaits = 8;

    /// <summary>
    /// In the read loop, with the buffer consumed up to the head's end: when <paramref name="s"/> is the head read's
    /// stream and wants its landed data from the first byte on (all of it within the frame's <paramref name="data"/> bytes left), the landed
    /// bytes count as received and the buffer goes on with the tail; returns the bytes taken (0: not so; the bytes were
    /// moved back instead).
    /// </summary>
    private int TakeHeadLanding(ClientStream? s, int data)
    {
        if (s is not null && ReferenceEquals(s, _headStream) && _start == _headEnd && s.AtLandingStart && s.BodyTarget(data).Length >= _headLanded)
        {
            var n = _headLanded;
            _headStream = null;
            s.Advance(n);
            Interlocked.Add(ref _bytesLandedDirectly, n);
            LeanClientTransport.CountLanded(_port, n);
            _start = _headTailAt;
            _end = _headTailAt + _headTailLength;
            _originValid = false;
            return n;
        }
        Unscramble();
        return 0;
    }

    /// <summary>
    /// Before the read loop copies bytes into <paramref name="s"/>'s landing (its head was not the expected length, so
    /// some of its floats came in the head): a head read's bytes in that array move back first.
    /// </summary>
    private void BeforeLandingWrite(ClientStream s)
    {
        if (ReferenceEquals(_headStream, s)) Unscramble();
    }

    /// <summary>Moves a pending head read's landed bytes and tail back behind the head, as one ordinary read would have left them.</summary>
    private void Unscramble()
    {
        var s = _headStream;
        if (s is null) return;
        _headStream = null;
        if (_end != _headEnd) throw new InvalidOperationException("the read buffer grew while a head read's landing was pending");
        s.Landing!.Bytes.Span[.._headLanded].CopyTo(_buf.AsSpan(_end));
        Buffer.BlockCopy(_buf, _headTailAt, _buf, _end + _headLanded, _headTailLength);
        _end += _headLanded + _headTailLength;
    }
}
