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

    // A head read's (or a frame-split read's) landed runs, until the read loop reaches them. The read buffer mirrors
    // the bytes' order: each run leaves a gap of its length in the buffer where an ordinary read would have put its bytes,
    // and the buffer pieces around it (the head, the 9-byte DATA frame headers between runs, the tail) lie where they
    // would. Per pending run: its gap's position in the buffer, its offset in the landing, the bytes received into it;
    // the next run to take; where the received bytes end in the buffer's layout.
    private ClientStream? _headStream;
    private const int MaxRuns = 16;
    private readonly int[] _runPos = new int[MaxRuns];
    private readonly int[] _runAt = new int[MaxRuns];
    private readonly int[] _runGot = new int[MaxRuns];
    private int _runCount;
    private int _runNext;
    private int _headEnd; // the next run's gap in the buffer (_end while a run is pending: nothing is appended before Unscramble)
    private int _headReceivedEnd;

    // How this peer splits an answer into DATA frames, as last seen on a landing stream: the payload of each frame but
    // the last (0: the answer came in one frame), and the landing's bytes in the frame where its data began. Kestrel and
    // grpcio send 16 KB frames whatever this side announces: a 64 KB answer's floats then lie in five runs, a 9-byte frame
    // header between two, and a receive into [head | run | header | run | … | tail] still lands them all.
    private int _splitFrame;
    private int _landingFirstRun;

    /// <summary>Smallest DATA frame payload taken as the peer's split size (smaller ones: the answer is read the usual way).</summary>
    private const int MinSplitFrame = 1024;

    /// <summary>The peer's DATA frame size for a split answer, as last seen (0: one frame per answer; tests).</summary>
    internal int SplitFrame => _splitFrame;

    /// <summary>One place a scattered receive writes to: the read buffer or the landing, from an offset, for a length.</summary>
    private readonly record struct Piece(bool InLanding, int At, int Length);

    /// <summary>
    /// The landing's runs from <paramref name="at"/> to <paramref name="total"/>: the first <paramref name="first"/> bytes
    /// in the DATA frame under way, then frames of <paramref name="frame"/> payload bytes each. Returns the run count (0:
    /// more than <see cref="MaxRuns"/>).
    /// </summary>
    private static int PlanRuns(int at, int total, int first, int frame, Span<int> lengths)
    {
        var k = 0;
        var left = total - at;
        var run = Math.Min(first, left);
        while (left > 0)
        {
            if (k == MaxRuns || run <= 0) return 0;
            lengths[k++] = run;
            left -= run;
            run = Math.Min(frame, left);
        }
        return k;
    }

    /// <summary>Read-buffer bytes a receive of <paramref name="runs"/> after <paramref name="head"/> bytes spans (gaps included), with room for a tail.</summary>
    private static long Room(int head, ReadOnlySpan<int> runs)
    {
        long sum = head + MinHeadTail + (9L * (runs.Length - 1));
        foreach (var r in runs) sum += r;
        return sum;
    }

    /// <summary>
    /// Without waiting, receives into [the read buffer from 0 up to <paramref name="head"/> | run 1 in the landing | the
    /// buffer's next 9 bytes | run 2 | … | the buffer from there to its end], where stream offset x lies at buffer position
    /// <paramref name="origin"/> + x (the runs leave gaps; origin −run 1 when run 1 is not mirrored: a frame's rest read
    /// straight into the landing). Returns the bytes received (0: none, or no such call here).
    /// </summary>
    private unsafe int ReceiveRuns(Span<byte> landing, int landingAt, int origin, int head, ReadOnlySpan<int> runs)
    {
        Span<Piece> pieces = stackalloc Piece[(2 * MaxRuns) + 2];
        var c = 0;
        if (head > 0) pieces[c++] = new Piece(false, 0, head);
        var pos = origin + head;
        var at = landingAt;
        for (var i = 0; i < runs.Length; i++)
        {
            pieces[c++] = new Piece(true, at, runs[i]);
            at += runs[i];
            pos += runs[i];
            if (i < runs.Length - 1)
            {
                pieces[c++] = new Piece(false, pos, 9);
                pos += 9;
            }
        }
        pieces[c++] = new Piece(false, pos, _buf.Length - pos);
        pieces = pieces[..c];
        if (_feed is not null) return _feed.ReadPieces(_buf, landing, pieces);
        if (!VectoredSupported || _socket is null) return 0;
        var handle = _socket.SafeHandle;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            fixed (byte* b = _buf)
            fixed (byte* l = landing)
            {
                var iov = stackalloc IoVec[c];
                for (var i = 0; i < c; i++) iov[i] = new IoVec { Base = (pieces[i].InLanding ? l : b) + pieces[i].At, Length = (nuint)pieces[i].Length };
                var message = new MsgHdr { Iov = iov, IovLength = (nuint)c };
                var n = RecvMsg((int)handle.DangerousGetHandle(), &message, MsgDontWait);
                return n > 0 ? (int)n : 0;
            }
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

    /// <summary>
    /// After a receive of <paramref name="n"/> stream bytes laid out by <see cref="ReceiveRuns"/>: the runs from
    /// <paramref name="from"/> on that received bytes become pending for <paramref name="s"/>. Returns their count.
    /// </summary>
    private int PendRuns(ClientStream s, int landingAt, int origin, int head, ReadOnlySpan<int> runs, int from, int n)
    {
        var offset = head; // stream offset of the run's first byte
        var at = landingAt;
        _runCount = 0;
        for (var i = 0; i < runs.Length; i++)
        {
            var got = Math.Clamp(n - offset, 0, runs[i]);
            if (got == 0) break;
            if (i >= from)
            {
                _runPos[_runCount] = origin + offset;
                _runAt[_runCount] = at;
                _runGot[_runCount] = got;
                _runCount++;
            }
            offset += runs[i] + 9;
            at += runs[i];
        }
        _runNext = 0;
        _headReceivedEnd = origin + n;
        if (_runCount == 0) return 0;
        _headStream = s;
        _headEnd = _runPos[0];
        return _runCount;
    }

    // Whether the last read at a frame start found bytes waiting (its receive completed at once). Only then is a head read
    // tried first: it never waits, and on an idle socket it would be one system call more before the usual receive.
    private bool _lastHeadReady;

    /// <summary>
    /// At a frame start with nothing buffered and the landing hint known: when the next call in line (the open stream
    /// with the lowest id whose answer has not begun) has a landing, receives without waiting into [the read buffer up to
    /// the hint | the landing's array | the read buffer behind a gap of the landing's length] — or, when the peer splits
    /// an answer into DATA frames (<see cref="_splitFrame"/>), [head | run 1 | the next frame's header | run 2 | … | tail]
    /// — so that an answer whose head is as long as the last one's comes in one system call: head, floats and tail. The
    /// bytes are consumed as if contiguous: the read buffer shows only the head; when the read loop reaches a run's first
    /// byte for that stream (<see cref="TakeHeadLanding"/>) the run counts as received and the buffer goes on behind its
    /// gap; anything else (another stream's answer, a head of another length, a frame split differently) first moves the
    /// landed bytes back into their gaps (<see cref="Unscramble"/>) and goes on as after one ordinary read. False when
    /// nothing was received this way (no candidate, no room, nothing waiting, or no such call here).
    /// </summary>
    private bool TryReceiveHead()
    {
        var hint = _landingHint;
        var s = HeadCandidate();
        if (s is null) return false;
        var length = s.Landing!.DataLength;
        // The answer's floats in the frames this peer sent the last one in (one run when it sends an answer in one frame).
        Span<int> runs = stackalloc int[MaxRuns];
        var k = _splitFrame > 0 && _landingFirstRun > 0 ? PlanRuns(0, length, _landingFirstRun, _splitFrame, runs) : 0;
        if (k == 0 || Room(hint, runs[..k]) > _buf.Length)
        {
            runs[0] = length;
            k = 1;
        }
        runs = runs[..k];
        var n = ReceiveRuns(s.Landing.Bytes.Span[..length], 0, 0, hint, runs);
        if (n <= 0) return false;
        Interlocked.Increment(ref _headReads);
        if (n <= hint)
        {
            _end = n; // only head bytes: an ordinary read
            return true;
        }
        Interlocked.Increment(ref _portCounters.HeadReads);
        _end = hint;
        PendRuns(s, 0, 0, hint, runs, 0, n);
        return true;
    }

    /// <summary>
    /// In a DATA frame of a landing stream whose floats go on in the peer's next frames (<see cref="_splitFrame"/>), with
    /// nothing buffered: receives without waiting the frame's rest (<paramref name="target"/>, the landing's next bytes)
    /// and the frames after it, their 9-byte headers into the read buffer and their floats into the landing (as
    /// <see cref="TryReceiveHead"/> does from a frame start). Returns the target's bytes received (the caller advances
    /// the stream by them; what came after is in the buffer from <c>_start</c>, its runs pending), 0 when nothing was
    /// received this way, −1 when the floats do not go on past this frame or do not fit (the caller receives as usual).
    /// </summary>
    private int TryReceiveFrames(ClientStream s, Memory<byte> target)
    {
        if (_splitFrame == 0 || s.Landing is null || s.LandingOffset < 0) return -1;
        Span<int> runs = stackalloc int[MaxRuns];
        var k = PlanRuns(s.LandingOffset, s.Landing.DataLength, target.Length, _splitFrame, runs);
        if (k < 2) return -1;
        runs = runs[..k];
        var first = runs[0];
        if (Room(0, runs) - first > _buf.Length) return -1;
        var n = ReceiveRuns(s.Landing.Bytes.Span, s.LandingOffset, -first, 0, runs);
        if (n <= 0) return 0;
        Interlocked.Increment(ref _vectoredReads);
        if (n <= first) return n;
        _start = 0;
        _end = n - first;
        if (PendRuns(s, s.LandingOffset, -first, 0, runs, 1, n) > 0) _end = _headEnd;
        return first;
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
    /// In the read loop, with the buffer consumed up to the next pending run's gap: when <paramref name="s"/> is the head
    /// read's stream and wants that run's bytes next (its landing filled up to the run's offset, all of the run within the
    /// frame's <paramref name="data"/> bytes left), the run's bytes count as received and the buffer goes on with what
    /// follows it (the next frame's header, or the tail); returns the bytes taken (0: not so; every pending run's bytes
    /// were moved back into the buffer instead).
    /// </summary>
    private int TakeHeadLanding(ClientStream? s, int data)
    {
        var i = _runNext;
        if (s is not null && ReferenceEquals(s, _headStream) && _start == _headEnd && s.LandingOffset == _runAt[i] && s.BodyTarget(data).Length >= _runGot[i])
        {
            var n = _runGot[i];
            s.Advance(n);
            Interlocked.Add(ref _bytesLandedDirectly, n);
            Interlocked.Add(ref _portCounters.Landed, n);
            _originValid = false;
            _start = _runPos[i] + n;
            if (i + 1 < _runCount)
            {
                // The next frame's header follows in the buffer, then the next run.
                _runNext = i + 1;
                _end = _headEnd = _runPos[i + 1];
            }
            else
            {
                _headStream = null;
                _end = _headReceivedEnd;
            }
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

    /// <summary>Moves a pending head read's landed bytes back into their gaps in the buffer, as one ordinary read would have left them.</summary>
    private void Unscramble()
    {
        var s = _headStream;
        if (s is null) return;
        _headStream = null;
        if (_end != _headEnd) throw new InvalidOperationException("the read buffer grew while a head read's landing was pending");
        var landing = s.Landing!.Bytes.Span;
        for (var i = _runNext; i < _runCount; i++) landing.Slice(_runAt[i], _runGot[i]).CopyTo(_buf.AsSpan(_runPos[i]));
        _end = _headReceivedEnd;
    }
}
