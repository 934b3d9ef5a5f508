using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Grpc.Core;

namespace Bittensor.Protocol.Lean;

/// <summary>HTTP/2 frame types, flags, error codes and settings (RFC 9113).</summary>
internal static class H2
{
    public const byte Data = 0, Headers = 1, Priority = 2, RstStream = 3, Settings = 4, PushPromise = 5, Ping = 6, GoAway = 7, WindowUpdate = 8,
        Continuation = 9;

    public const byte EndStream = 0x1, Ack = 0x1, EndHeaders = 0x4, Padded = 0x8, PriorityFlag = 0x20;

    public const uint NoError = 0, ProtocolError = 1, InternalError = 2, FlowControlError = 3, StreamClosed = 5, FrameSizeError = 6,
        RefusedStream = 7, Cancel = 8, CompressionError = 9, EnhanceYourCalm = 0xb;

    public const ushort SettingsHeaderTableSize = 1, SettingsEnablePush = 2, SettingsMaxConcurrentStreams = 3, SettingsInitialWindowSize = 4,
        SettingsMaxFrameSize = 5, SettingsMaxHeaderListSize = 6;

    public const int DefaultWindow = 65535;
    public const int DefaultMaxFrame = 16384;
    public const int FrameHeaderSize = 9;

    public static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>A snake_case name of an error code, for refusal counting.</summary>
    public static string Name(uint code) => code switch
    {
        NoError => "http2_no_error",
        ProtocolError => "http2_protocol_error",
        InternalError => "http2_internal_error",
        FlowControlError => "http2_flow_control_error",
        StreamClosed => "http2_stream_closed",
        FrameSizeError => "http2_frame_size_error",
        RefusedStream => "http2_refused_stream",
        CompressionError => "http2_compression_error",
        EnhanceYourCalm => "http2_enhance_your_calm",
        _ => "http2_error",
    };
}

/// <summary>A connection error (RFC 9113 §5.4.1): answered with GOAWAY and the connection closed.</summary>
internal sealed class H2ConnectionException(uint code, string message) : Exception(message)
{
    public uint Code { get; } = code;
}

/// <summary>
/// A connection's output: frames appended under the connection's lock and sent in one write. Plain arrays (not pooled):
/// a sender may still be writing one when the connection closes. Bounded so that it is reused, not reallocated: answers
/// are written only while the output holds less than <see cref="AnswerCap"/> (the connection holds the rest back until
/// a send has drained it, <see cref="H2Connection"/>), so the buffer grows once, from <see cref="Initial"/> (under the
/// large-object threshold) up to at most <see cref="Keep"/>. Past its first buffer a served connection borrows a
/// <see cref="Keep"/>-sized one from the transport (<see cref="LeanServerTransport.RentOutput"/>) and gives it back after
/// its send, so between bursts a connection holds 2 x 64 KiB, not 2 x 1 MiB. Only an answer larger than the cap on
/// its own, or small frames past the reserve, make it larger; such a buffer is let go after its send.
/// (Until session 12 the output took every answer as it came: under overload it grew to many MiB between two sends
/// and was replaced by a fresh 64 KiB after each, so every burst allocated the ladder 128 KiB … 16 MiB anew on the
/// large-object heap: the dead large arrays behind the RSS growth at 1,024 signed callers.)
/// </summary>
internal sealed class H2Output
{
    /// <summary>The first buffer: 64 KiB, below the 85,000 bytes from which arrays go to the large-object heap.</summary>
    public const int Initial = 64 * 1024;

    /// <summary>The largest buffer kept between sends.</summary>
    public const int Keep = 1024 * 1024;

    /// <summary>
    /// Answers (HEADERS, DATA, trailers) are appended only while they leave the output at most this long; the 64 KiB
    /// above it up to <see cref="Keep"/> are for the small frames that are never held back (shed and refused answers,
    /// resets, window updates, PING and SETTINGS acknowledgements).
    /// </summary>
    public const int AnswerCap = Keep - (64 * 1024);

    private readonly LeanServerTransport? _owner;
    private readonly byte[] _first;

    /// <param name="owner">Lends the <see cref="Keep"/>-sized buffers (<see cref="LeanServerTransport.RentOutput"/>) and counts
    /// every buffer an output allocates after its first (<see cref="LeanServerTransport.OutputsGrown"/>); without one an
    /// output grows its own buffers and keeps them.</param>
    public H2Output(LeanServerTransport? owner = null)
    {
        _owner = owner;
        Buffer = _first = GC.AllocateUninitializedArray<byte>(Initial);
    }

    public byte[] Buffer;

    /// <summary>Where the bytes to send begin in <see cref="Buffer"/>: 0, except in an adopted answer's array (<see cref="Adopt"/>).</summary>
    public int Start;

    /// <summary>Where the bytes to send end in <see cref="Buffer"/> (the next frame is appended here).</summary>
    public int Length;

    private PooledTensor? _adopted;

    /// <summary>
    /// An empty output takes <paramref name="answer"/>'s rented array as its buffer: an answer serialized in place around
    /// its tensor's buffer (H2Connection.TryWriteInPlace) is sent from there, its bytes <paramref name="start"/> up to
    /// <paramref name="length"/>; more frames are appended after them while the array has room. The array goes back to
    /// its pool after the send (<see cref="Reset"/>), or once its bytes were copied into a larger buffer (<see cref="Ensure"/>).
    /// </summary>
    public void Adopt(PooledTensor answer, byte[] array, int start, int length)
    {
        if (Length != 0) throw new InvalidOperationException("only an empty output adopts an answer's array");
        GiveBack();
        Buffer = array;
        Start = start;
        Length = length;
        _adopted = answer;
    }

    public void Ensure(int more)
    {
        if (Length + more <= Buffer.Length) return;
        if (_adopted is not null)
        {
            // An adopted answer's array is full: its bytes move to the output's own buffer (as a copied answer's would
            // have been written there) and the array goes back to its pool.
            var held = Length - Start;
            var array = Buffer;
            var from = Start;
            var adopted = _adopted;
            _adopted = null;
            Buffer = _first;
            Start = 0;
            Length = 0;
            Ensure(held + more);
            array.AsSpan(from, held).CopyTo(Buffer);
            Length = held;
            adopted.ReleaseAdopted();
            return;
        }
        var want = Length + more;
        byte[] bigger;
        if (want <= Keep && _owner is not null)
        {
            // Past the first 64 KiB a connection borrows one of the transport's kept 1 MiB buffers until its send: a
            // connection keeps only its two first buffers between bursts (session 15: 64 connections kept 2 x 1 MiB each).
            bigger = _owner.RentOutput();
        }
        else
        {
            var size = Math.Max(Buffer.Length * 2, want);
            // Up to the kept size the ladder stops at it (1 MiB, not 2), so a buffer kept is never grown past it again.
            if (want <= Keep) size = Math.Min(size, Keep);
            bigger = GC.AllocateUninitializedArray<byte>(size);
            _owner?.CountOutputGrown(size);
        }
        Buffer.AsSpan(0, Length).CopyTo(bigger);
        GiveBack();
        Buffer = bigger;
    }

    /// <summary>A borrowed buffer goes back to the transport (never one being sent: only the filled output grows, and
    /// only a sent one is reset).</summary>
    private void GiveBack()
    {
        if (_adopted is not null)
        {
            ReleaseAdopted();
            return;
        }
        if (_owner is not null && !ReferenceEquals(Buffer, _first) && Buffer.Length == Keep) _owner.ReturnOutput(Buffer);
    }

    /// <summary>True when an answer of <paramref name="bytes"/> may be appended now: the output is empty, or stays within <see cref="AnswerCap"/>.</summary>
    public bool RoomForAnswer(int bytes) => Length == 0 || Length + (long)bytes <= AnswerCap;

    /// <summary>
    /// Empties the buffer after a send (or when nothing can be sent): a borrowed buffer goes back to the transport and one
    /// grown past <see cref="Keep"/> (a single large answer) is let go, so the output holds its first buffer again.
    /// Without an owner a buffer up to <see cref="Keep"/> is kept.
    /// </summary>
    public void Reset()
    {
        Length = 0;
        Start = 0;
        if (_adopted is not null)
        {
            ReleaseAdopted();
            Buffer = _first;
            return;
        }
        if (ReferenceEquals(Buffer, _first) || (_owner is null && Buffer.Length <= Keep)) return;
        GiveBack();
        Buffer = _first;
    }

    private void ReleaseAdopted()
    {
        var adopted = _adopted;
        _adopted = null;
        adopted?.ReleaseAdopted();
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(Buffer.AsSpan(Length));
        Length += bytes.Length;
    }

    public void FrameHeader(int length, byte type, byte flags, int stream)
    {
        Ensure(H2.FrameHeaderSize);
        WriteFrameHeader(Buffer.AsSpan(Length), length, type, flags, stream);
        Length += H2.FrameHeaderSize;
    }

    public static void WriteFrameHeader(Span<byte> at, int length, byte type, byte flags, int stream)
    {
        at[0] = (byte)(length >> 16);
        at[1] = (byte)(length >> 8);
        at[2] = (byte)length;
        at[3] = type;
        at[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(at[5..], stream & 0x7FFFFFFF);
    }

    public void RstStream(int stream, uint code)
    {
        FrameHeader(4, H2.RstStream, 0, stream);
        Ensure(4);
        BinaryPrimitives.WriteUInt32BigEndian(Buffer.AsSpan(Length), code);
        Length += 4;
    }

    public void WindowUpdate(int stream, int increment)
    {
        FrameHeader(4, H2.WindowUpdate, 0, stream);
        Ensure(4);
        BinaryPrimitives.WriteInt32BigEndian(Buffer.AsSpan(Length), increment);
        Length += 4;
    }

    public void GoAway(int lastStream, uint code, string debug)
    {
        var text = Encoding.ASCII.GetBytes(debug.Length > 256 ? debug[..256] : debug);
        FrameHeader(8 + text.Length, H2.GoAway, 0, 0);
        Ensure(8 + text.Length);
        BinaryPrimitives.WriteInt32BigEndian(Buffer.AsSpan(Length), lastStream & 0x7FFFFFFF);
        BinaryPrimitives.WriteUInt32BigEndian(Buffer.AsSpan(Length + 4), code);
        text.CopyTo(Buffer.AsSpan(Length + 8));
        Length += 8 + text.Length;
    }
}

/// <summary>
/// Writes one gRPC message as DATA frames straight into the connection's output (<see cref="Google.Protobuf.MessageExtensions.WriteTo(Google.Protobuf.IMessage, IBufferWriter{byte})"/>
/// serializes into it): frames of at most the peer's SETTINGS_MAX_FRAME_SIZE, no intermediate copy of the message.
/// Used only when the stream and connection windows take the whole message.
/// </summary>
internal sealed class H2DataWriter : IBufferWriter<byte>
{
    private H2Output _out = null!;
    private int _stream;
    private int _max;
    private int _header = -1;
    private int _frame;

    public int Written { get; private set; }

    public void Begin(H2Output output, int stream, int maxFrame)
    {
        _out = output;
        _stream = stream;
        _max = maxFrame;
        _header = -1;
        _frame = 0;
        Written = 0;
    }

    public Span<byte> GetSpan(int sizeHint = 0) => Room(sizeHint).Span;

    public Memory<byte> GetMemory(int sizeHint = 0) => Room(sizeHint);

    private Memory<byte> Room(int sizeHint)
    {
        // A DATA frame may be any size up to the maximum: a hint that does not fit the current frame starts a new one.
        if (_header < 0 || _frame == _max || (sizeHint > _max - _frame && _frame > 0)) NewFrame();
        var room = _max - _frame;
        _out.Ensure(room);
        return _out.Buffer.AsMemory(_out.Length, room);
    }

    public void Advance(int count)
    {
        if (count < 0 || count > _max - _frame) throw new ArgumentOutOfRangeException(nameof(count));
        _out.Length += count;
        _frame += count;
        Written += count;
    }

    private void NewFrame()
    {
        Close();
        _out.Ensure(H2.FrameHeaderSize);
        _header = _out.Length;
        _out.Length += H2.FrameHeaderSize;
        _frame = 0;
    }

    private void Close()
    {
        if (_header >= 0) H2Output.WriteFrameHeader(_out.Buffer.AsSpan(_header), _frame, H2.Data, 0, _stream);
    }

    public void End()
    {
        Close();
        _header = -1;
        _out = null!;
    }
}

/// <summary>The few response header blocks this server sends, HPACK-encoded without the dynamic table or Huffman.</summary>
internal static class H2Blocks
{
    /// <summary>:status 200, content-type application/grpc.</summary>
    public static readonly byte[] ResponseHeaders = Build(200, null, null);

    /// <summary>grpc-status 0: the trailers of a successful call.</summary>
    public static readonly byte[] OkTrailers = BuildTrailers(StatusCode.OK, "");

    private static byte[] BuildTrailers(StatusCode code, string message)
    {
        var b = new List<byte>();
        Literal(b, "grpc-status", ((int)code).ToString(CultureInfo.InvariantCulture));
        if (message.Length > 0) Literal(b, "grpc-message", PercentEncode(message));
        return [.. b];
    }

    /// <summary>A trailers-only response (RFC: HEADERS with END_STREAM carrying the status), with <paramref name="httpStatus"/>.</summary>
    public static byte[] Build(int httpStatus, StatusCode? code, string? message)
    {
        var b = new List<byte>(64);
        if (httpStatus == 200)
        {
            b.Add(0x88); // static index 8: :status 200
        }
        else
        {
            b.Add(0x08); // literal without indexing, name = static index 8 (:status)
            String(b, httpStatus.ToString(CultureInfo.InvariantCulture));
        }
        b.Add(0x0F); // literal without indexing, name = static index 31 (content-type): 15 + 16
        b.Add(0x10);
        String(b, "application/grpc");
        if (code is { } c) b.AddRange(BuildTrailers(c, message is { Length: > 1024 } ? message[..1024] : message ?? ""));
        return [.. b];
    }

    private static void Literal(List<byte> b, string name, string value)
    {
        b.Add(0x00); // literal without indexing, new name
        String(b, name);
        String(b, value);
    }

    private static void String(List<byte> b, string value)
    {
        var bytes = Encoding.Latin1.GetBytes(value);
        Int(b, bytes.Length, 7, 0x00);
        b.AddRange(bytes);
    }

    /// <summary>§5.1 integer with an N-bit prefix; <paramref name="high"/> carries the bits above the prefix.</summary>
    public static void Int(List<byte> b, int value, int prefixBits, byte high)
    {
        var mask = (1 << prefixBits) - 1;
        if (value < mask)
        {
            b.Add((byte)(high | value));
            return;
        }
        b.Add((byte)(high | mask));
        value -= mask;
        while (value >= 0x80)
        {
            b.Add((byte)((value & 0x7F) | 0x80));
            value >>= 7;
        }
        b.Add((byte)value);
    }

    /// <summary>gRPC's percent-encoding of <c>grpc-message</c>: printable ASCII except '%' as is, every other UTF-8 byte as %XX.</summary>
    public static string PercentEncode(string message)
    {
        var plain = true;
        foreach (var ch in message)
        {
            if (ch is < ' ' or > '~' or '%')
            {
                plain = false;
                break;
            }
        }
        if (plain) return message;
        var sb = new StringBuilder(message.Length);
        foreach (var by in Encoding.UTF8.GetBytes(message))
        {
            if (by is >= 0x20 and <= 0x7E && by != (byte)'%') sb.Append((char)by);
            else sb.Append('%').Append(by.ToString("X2", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
