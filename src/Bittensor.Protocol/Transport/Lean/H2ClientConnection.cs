using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// One HTTP/2 cleartext (prior knowledge) connection of the lean client transport to one axon: unary gRPC calls to
/// <c>/Bittensor/Forward</c> and <c>/Bittensor/Backward</c> multiplexed as streams. It announces a 1 MiB
/// SETTINGS_MAX_FRAME_SIZE, a 4 MiB stream window and a 64 MiB connection window, so a 64 KB answer arrives in one DATA
/// frame without a WINDOW_UPDATE round trip; the answer's bytes go from the socket straight into one array of the
/// message's size (read into it directly when nothing else is buffered; a pooled one when the caller reads the answer on
/// the read loop: <see cref="CallAsync{T}"/>) and are parsed there; a reader call whose whole message came in one DATA
/// frame (up to the 128 KB read buffer: a 64 KB answer is one frame, as this side announces a 1 MiB frame size) is
/// buffered whole and parsed and read right there, with no copy at all (the trailers that follow still decide: a
/// non-zero grpc-status discards what was read). Bounded: a message over
/// the receive limit is refused from its length prefix (the array grows only as bytes arrive, at most 1 MiB ahead of
/// them), header blocks over 64 KB, frames over the announced size and flow-control violations are connection errors.
/// Completions run on the read loop (the awaiting continuation runs inline: keep it short).
/// </summary>
internal sealed partial class H2ClientConnection : IDisposable
{
    /// <summary>SETTINGS_MAX_FRAME_SIZE this side announces.</summary>
    internal const int MaxFrameSize = 1 << 20;

    /// <summary>SETTINGS_INITIAL_WINDOW_SIZE this side announces (per stream).</summary>
    internal const int StreamWindow = 4 << 20;

    /// <summary>The connection's receive window (raised from 65,535 by a WINDOW_UPDATE right after the preface).</summary>
    internal const int ConnectionWindow = 64 << 20;

    /// <summary>Largest header block (HEADERS + CONTINUATION) accepted; also SETTINGS_MAX_HEADER_LIST_SIZE.</summary>
    internal const int MaxHeaderBlock = 64 * 1024;

    private const int ReadBufferSize = 128 * 1024;
    private const int FirstChunk = 1 << 20; // a message array grows at most this far ahead of the bytes that arrived

    private readonly Socket? _socket; // null: socket-free (Feed: the fuzz target), the peer's bytes come from _feed
    private readonly ClientIoLoop.Registration? _io; // the client's own I/O loop (bittensor.dendrite.io = loop), else null
    private FeedInput? _feed;
    private readonly int _port;
    private readonly LeanClientTransport.PortCounters _portCounters; // this port's test/benchmark counters, looked up once
    private readonly int _maxReceive;
    private readonly int _maxSend;
    private readonly byte[] _forwardPrefix;
    private readonly byte[] _backwardPrefix;
    private readonly object _lock = new();
    private readonly Dictionary<int, ClientStream> _streams = [];
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly HpackDecoder _hpack = new();
    private readonly List<(string Name, string Value)> _fields = [];
    private readonly byte[] _buf = GC.AllocateUninitializedArray<byte>(ReadBufferSize);
    private int _start;
    private int _end;
    private readonly byte[] _block = new byte[MaxHeaderBlock];
    private int _blockLength;
    private int _blockStream;
    private byte _blockFlags;
    private int _nextStreamId = 1;
    private long _sendConnWindow = H2.DefaultWindow;
    private int _peerInitialWindow = H2.DefaultWindow;
    private int _peerMaxFrame = H2.DefaultMaxFrame;
    private long _peerMaxStreams = long.MaxValue; // SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until the peer says)
    private long _recvConnWindow = ConnectionWindow;
    private long _recvConnUnacked;
    private TaskCompletionSource? _windowChanged;
    private bool _closed;
    private bool _goingAway;
    private int _landingHint; // bytes from a frame start to an answer's first landed byte, as last seen (0: none yet)
    private bool _originValid; // _buf[0] is where a read at a frame start with nothing buffered began, no compaction since
    private string _closeReason = "connection closed";

    // Writes up to this size go through the outbox when batched; larger ones (a big request's DATA) are sent by the writer.
    private const int BatchedWriteMax = 64 * 1024;

    private readonly bool _batched; // io = batch: writes queued in the registration's outbox, sent by the loop thread

    private H2ClientConnection(Socket? socket, int port, string authority, BittensorChannelOptions options, ClientIoLoop.Registration? io = null)
    {
        _socket = socket;
        _io = io;
        _batched = io is not null && options.ClientIoBatch;
        if (_batched) io!.SendFailed = e => Close($"connection lost while sending ({e})", StatusCode.Unavailable);
        _port = port;
        _portCounters = LeanClientTransport.CountersFor(port);
        _maxReceive = options.MaxReceiveMessageSize ?? int.MaxValue;
        _maxSend = options.MaxSendMessageSize ?? int.MaxValue;
        _forwardPrefix = RequestPrefix("/Bittensor/Forward", authority);
        _backwardPrefix = RequestPrefix("/Bittensor/Backward", authority);
    }

    /// <summary>True while new calls may start on this connection (not closed, no GOAWAY, stream ids left).</summary>
    public bool IsUsable
    {
        get
        {
            lock (_lock) return !_closed && !_goingAway && _nextStreamId < int.MaxValue - 2;
        }
    }

    /// <summary>Whether this connection waits on the client's own I/O loop (<see cref="ClientIoLoop"/>) rather than .NET's sockets.</summary>
    internal bool OnIoLoop => _io is not null;

    /// <summary>The socket's local address and port (null socket-free, or once it is closed).</summary>
    internal System.Net.IPEndPoint? LocalEndPoint
    {
        get
        {
            try
            {
                return _socket?.LocalEndPoint as System.Net.IPEndPoint;
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
        }
    }

    /// <summary>Whether this connection's writes are queued for the loop thread to send (<c>io = batch</c>).</summary>
    internal bool Batched => _batched;

    /// <summary>The connection's registration on the loop, or null (tests).</summary>
    internal ClientIoLoop.Registration? IoRegistration => _io;

    /// <summary>DATA frames received on this connection (tests: a 64 KB answer should be one frame).</summary>
    internal long DataFramesReceived => Interlocked.Read(ref _dataFrames);

    private long _dataFrames;

    /// <summary>Answers a reader read in place in the read buffer (tests).</summary>
    internal long ReadsInPlace => Interlocked.Read(ref _readsInPlace);

    private long _readsInPlace;

    /// <summary>The connection's read buffer (tests: an answer read in place lies in it).</summary>
    internal byte[] ReadBuffer => _buf;

    /// <summary>What a call read in place completes its task with (the caller gets the reader's result, never this).</summary>
    private static readonly TensorMessage ReadInPlaceAnswer = new();

    /// <summary>Most streams open at once so far (tests: the peer's SETTINGS_MAX_CONCURRENT_STREAMS is honoured).</summary>
    internal int PeakOpenStreams
    {
        get
        {
            lock (_lock) return _peakStreams;
        }
    }

    private int _peakStreams;

    /// <summary>Streams open now (tests).</summary>
    internal int OpenStreams
    {
        get
        {
            lock (_lock) return _streams.Count;
        }
    }

    /// <summary>
    /// Connects, sends the preface, this side's SETTINGS and the connection window, and starts the read loop (and the
    /// keep-alive pings, when <paramref name="keepAlive"/> enables them).
    /// </summary>
    /// <exception cref="RpcException">Unavailable: the TCP connection could not be made within the connect timeout.</exception>
    public static async Task<H2ClientConnection> ConnectAsync(string host, int port, BittensorChannelOptions options, KeepAlivePolicy? keepAlive = null)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        ClientIoLoop.Registration? io = null;
        try
        {
            using var timeout = new CancellationTokenSource(options.ConnectTimeout);
            if (options.ClientIoLoop && ClientIoLoop.Supported)
            {
                // On the client's own loop: no async Socket operation ever (.NET's engine would then watch the socket
                // too); a non-blocking connect whose end the loop waits for.
                var address = System.Net.IPAddress.TryParse(host, out var ip) ? ip
                    : (await System.Net.Dns.GetHostAddressesAsync(host, timeout.Token).ConfigureAwait(false))
                        .FirstOrDefault(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
                      ?? throw new SocketException((int)SocketError.HostNotFound);
                if (address.AddressFamily != socket.AddressFamily && !socket.DualMode)
                {
                    socket.Dispose();
                    socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                }
                io = ClientIoLoop.Shared.Register(socket);
                await io.ConnectAsync(new System.Net.IPEndPoint(address, port), timeout.Token).ConfigureAwait(false);
            }
            else
            {
                await socket.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ArgumentException or ObjectDisposedException)
        {
            io?.Close();
            socket.Dispose();
            var why = e switch
            {
                SocketException s => s.SocketErrorCode.ToString(),
                OperationCanceledException or ObjectDisposedException => $"no answer within {options.ConnectTimeout.TotalMilliseconds:F0} ms",
                _ => e.Message,
            };
            throw new RpcException(new Status(StatusCode.Unavailable, $"could not connect to {host}:{port} ({why})"));
        }
        var authority = host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]:{port}" : $"{host}:{port}";
        var conn = new H2ClientConnection(socket, port, authority, options, io);
        var hello = new byte[24 + 9 + 24 + 9 + 4];
        H2.Preface.CopyTo(hello);
        var at = 24;
        H2Output.WriteFrameHeader(hello.AsSpan(at), 24, H2.Settings, 0, 0);
        at += 9;
        at = Setting(hello, at, H2.SettingsEnablePush, 0);
        at = Setting(hello, at, H2.SettingsInitialWindowSize, StreamWindow);
        at = Setting(hello, at, H2.SettingsMaxFrameSize, MaxFrameSize);
        at = Setting(hello, at, H2.SettingsMaxHeaderListSize, MaxHeaderBlock);
        H2Output.WriteFrameHeader(hello.AsSpan(at), 4, H2.WindowUpdate, 0, 0);
        BinaryPrimitives.WriteInt32BigEndian(hello.AsSpan(at + 9), ConnectionWindow - H2.DefaultWindow);
        try
        {
            if (io is not null) await io.SendAsync(hello).ConfigureAwait(false);
            else await socket.SendAsync(hello, SocketFlags.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            io?.Close();
            socket.Dispose();
            throw new RpcException(new Status(StatusCode.Unavailable, $"connection to {host}:{port} lost ({(e as SocketException)?.SocketErrorCode.ToString() ?? "closed"})"));
        }
        if (io is not null) LeanClientTransport.CountLoopConnection(port);
        if (conn._batched) LeanClientTransport.CountBatchConnection(port);
        conn.StartKeepAlive(keepAlive);
        _ = Task.Run(conn.ReadLoopAsync);
        return conn;
    }

    private static int Setting(byte[] to, int at, ushort id, int value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(to.AsSpan(at), id);
        BinaryPrimitives.WriteInt32BigEndian(to.AsSpan(at + 2), value);
        return at + 6;
    }

    // :method POST, :scheme http, :path, :authority (HPACK: static indices, literals without indexing, no Huffman).
    private static byte[] RequestPrefix(string path, string authority)
    {
        var b = new List<byte>(64) { 0x83, 0x86 };
        LiteralIndexedName(b, 4, path);
        LiteralIndexedName(b, 1, authority);
        return [.. b];
    }

    private static void LiteralIndexedName(List<byte> b, int nameIndex, string value)
    {
        H2Blocks.Int(b, nameIndex, 4, 0x00);
        var bytes = Encoding.Latin1.GetBytes(value);
        H2Blocks.Int(b, bytes.Length, 7, 0x00);
        b.AddRange(bytes);
    }

    // ---------------------------------------------------------------- calls

    /// <summary>
    /// Arrays answers are read into when the caller reads them on the read loop (<see cref="CallAsync{T}"/>): rented when
    /// the message's length prefix arrives (answers up to 1 MiB; larger ones get their own array), returned once the
    /// reader is done. Up to 256 per size kept, so a round to hundreds of peers rents without allocating once warm (the
    /// shared pool keeps ~32 per core and would allocate a large-object-heap array per answer beyond that).
    /// </summary>
    private static readonly ArrayPool<byte> AnswerPool = ArrayPool<byte>.Create(FirstChunk, 256);

    /// <summary>One unary call. Every failure is an <see cref="RpcException"/> (see <see cref="IPeerConnection.CallAsync(BittensorMethod, TensorMessage, Metadata, DateTime, CancellationToken)"/>).</summary>
    public Task<TensorMessage> CallAsync(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline,
        CancellationToken cancellationToken) => CallAsync<TensorMessage>(method, request, headers, deadline, cancellationToken, null);

    /// <summary>
    /// One unary call whose answer <paramref name="read"/> reads on the read loop while it sits in a pooled array (null:
    /// the answer is returned, in an array of its own). Every failure is an <see cref="RpcException"/>; a throwing reader
    /// ends the call as <c>Internal</c>. With <paramref name="landing"/> (a reader call), the answer's tensor data is
    /// received into the landing's array where the message is recognised (ClientStream.Feed): straight from
    /// the socket when nothing else is buffered, and the reader finds it there (<see cref="AnswerLanding.TryTake"/>).
    /// </summary>
    public async Task<T> CallAsync<T>(BittensorMethod method, TensorMessage request, Metadata headers, DateTime deadline,
        CancellationToken cancellationToken, Func<TensorMessage, T>? read, AnswerLanding? landing = null)
        where T : class
    {
        var size = request.CalculateSize();
        if (size > _maxSend)
            throw new RpcException(new Status(StatusCode.ResourceExhausted, TransportStatus.SendTooLarge));
        var remaining = deadline == DateTime.MaxValue ? Timeout.InfiniteTimeSpan : deadline.ToUniversalTime() - DateTime.UtcNow;
        if (remaining != Timeout.InfiniteTimeSpan && remaining <= TimeSpan.Zero)
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, TransportStatus.DeadlineExceeded));
        if (cancellationToken.IsCancellationRequested) throw new RpcException(new Status(StatusCode.Cancelled, TransportStatus.Cancelled));

        var s = new ClientStream(this, cancellationToken, _maxReceive)
        {
            Reader = read,
            Landing = read is not null && AnswerLanding.Supported ? landing : null,
        };
        if (remaining != Timeout.InfiniteTimeSpan || cancellationToken.CanBeCanceled)
        {
            // One source for both: the caller's token (linked) and the deadline (a timer); which one fired decides the status.
            s.Cancel = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken) : RentCancel();
            if (remaining != Timeout.InfiniteTimeSpan) s.Cancel.CancelAfter(remaining);
            s.Registration = s.Cancel.Token.UnsafeRegister(static o => ((ClientStream)o!).OnCancel(), s);
        }

        // Header block: pseudo-headers, then the call's metadata in its order (the bittensor headers first: a 2021 axon
        // reads them by position), then content-type, te and grpc-timeout (which gRPC servers take out of the metadata).
        var prefix = method == BittensorMethod.Backward ? _backwardPrefix : _forwardPrefix;
        var blockSize = prefix.Length + 64;
        foreach (var e in headers) blockSize += e.Key.Length + (e.IsBinary ? ((e.ValueBytes.Length + 2) / 3 * 4) : e.Value.Length * 3) + 12;
        var bodyLength = 5 + size;
        var frames = 9 * (4 + (bodyLength / H2.DefaultMaxFrame) + (blockSize / H2.DefaultMaxFrame));
        var buffer = ArrayPool<byte>.Shared.Rent(frames + blockSize + bodyLength + blockSize);
        try
        {
            // The body ([flag, length, message]) sits at the end of the buffer; frames are assembled at its start.
            var bodyAt = buffer.Length - bodyLength;
            buffer[bodyAt] = 0;
            BinaryPrimitives.WriteInt32BigEndian(buffer.AsSpan(bodyAt + 1), size);
            request.WriteTo(buffer.AsSpan(bodyAt + 5, size));
            var blockAt = bodyAt - blockSize;
            var blockLength = WriteHeaderBlock(buffer.AsSpan(blockAt, blockSize), prefix, headers, remaining);

            var sent = 0;
            var first = true;
            while (true)
            {
                try
                {
                    await _writeLock.WaitAsync(s.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Not yet registered, or waiting to send more: OnCancel has answered (or will) through the stream.
                    if (first) s.FailUnregistered();
                    break;
                }
                Task? wait = null;
                try
                {
                    var length = 0;
                    var finished = false;
                    var gone = false;
                    var waitForStream = false;
                    Status? refusal = null;
                    lock (_lock)
                    {
                        if (first && (_closed || _goingAway))
                        {
                            refusal = new Status(StatusCode.Unavailable, _closeReason);
                        }
                        else if (first && s.Token.IsCancellationRequested)
                        {
                            gone = true;
                        }
                        else if (first && _streams.Count >= _peerMaxStreams)
                        {
                            waitForStream = true; // the peer's SETTINGS_MAX_CONCURRENT_STREAMS: wait until one of ours ends
                        }
                        else if (first)
                        {
                            s.Id = _nextStreamId;
                            _nextStreamId += 2;
                            s.SendWindow = _peerInitialWindow;
                            _streams[s.Id] = s;
                            if (_streams.Count > _peakStreams) _peakStreams = _streams.Count;
                            length = WriteHeaders(buffer, s.Id, blockAt, blockLength);
                            // Tests and the fan-out harness: a request written by the I/O loop's own thread (the dendrite's
                            // actors on it, bittensor.dendrite.dispatcher = loop).
                            if (_io is not null && ClientIoLoop.Shared.IsLoopThread) Interlocked.Increment(ref _portCounters.LoopThreadRequests);
                        }
                        else if (!_streams.ContainsKey(s.Id))
                        {
                            gone = true; // answered (reset, cancelled, closed) meanwhile
                        }
                        // DATA frames as far as both send windows allow; the last one ends the stream.
                        while (!gone && !waitForStream && refusal is null && sent < bodyLength)
                        {
                            var chunk = (int)Math.Min(Math.Min(bodyLength - sent, _peerMaxFrame), Math.Min(s.SendWindow, _sendConnWindow));
                            if (chunk <= 0) break;
                            s.SendWindow -= chunk;
                            _sendConnWindow -= chunk;
                            var end = sent + chunk == bodyLength;
                            H2Output.WriteFrameHeader(buffer.AsSpan(length), chunk, H2.Data, end ? H2.EndStream : (byte)0, s.Id);
                            // Frames grow at the front of the buffer; body bytes move from the back (never overlapping:
                            // the frames written so far are shorter than blockAt + the body bytes already moved).
                            Buffer.BlockCopy(buffer, bodyAt + sent, buffer, length + 9, chunk);
                            length += 9 + chunk;
                            sent += chunk;
                        }
                        finished = sent == bodyLength;
                        if (!finished && !gone && refusal is null)
                            wait = (_windowChanged ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                    }
                    if (refusal is { } r) s.FailUnregistered(r);
                    if (first && gone) s.FailUnregistered();
                    if (refusal is not null || gone) break;
                    if (!waitForStream) first = false;
                    if (length > 0) await SendAllAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
                    if (finished) break;
                }
                catch (SocketException e)
                {
                    Close($"connection lost while sending ({e.SocketErrorCode})", StatusCode.Unavailable);
                    break;
                }
                catch (ObjectDisposedException)
                {
                    Close("connection closed while sending", StatusCode.Unavailable);
                    break;
                }
                finally
                {
                    _writeLock.Release();
                }
                try
                {
                    await wait!.WaitAsync(s.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break; // OnCancel answered through the stream
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        try
        {
            var answer = await s.Done.Task.ConfigureAwait(false);
            return read is null ? (T)(object)answer : (T)s.ReadResult!;
        }
        finally
        {
            if (s.Cancel is { } used)
            {
                if (cancellationToken.CanBeCanceled) used.Dispose();
                else ReturnCancel(used, s.Registration);
            }
        }
    }

    // Deadline sources of finished calls whose deadline never fired, reused (TryReset stops the timer and drops the
    // registrations; a source whose timer ever fired cannot be reset and is disposed): a call's timer and registration
    // then cost no allocation. A linked source (a caller's token) is never pooled.
    private const int MaxIdleCancels = 64;
    private readonly Stack<CancellationTokenSource> _idleCancels = new();

    private long _cancelsReused;

    /// <summary>Calls whose deadline source was one a finished call gave back (tests).</summary>
    internal long CancelsReused
    {
        get
        {
            lock (_idleCancels) return _cancelsReused;
        }
    }

    private CancellationTokenSource RentCancel()
    {
        lock (_idleCancels)
        {
            if (_idleCancels.TryPop(out var cts))
            {
                _cancelsReused++;
                return cts;
            }
        }
        return new CancellationTokenSource();
    }

    private void ReturnCancel(CancellationTokenSource cts, CancellationTokenRegistration registration)
    {
        registration.Dispose(); // waits for a callback running now (the deadline firing) to finish
        if (cts.TryReset())
        {
            lock (_idleCancels)
            {
                if (_idleCancels.Count < MaxIdleCancels)
                {
                    _idleCancels.Push(cts);
                    return;
                }
            }
        }
        cts.Dispose();
    }

    // HEADERS (+ CONTINUATION when the block is over the peer's frame size) moved to the buffer's start; returns the length.
    private int WriteHeaders(byte[] buffer, int id, int blockAt, int blockLength)
    {
        if (blockLength <= _peerMaxFrame)
        {
            Buffer.BlockCopy(buffer, blockAt, buffer, 9, blockLength);
            H2Output.WriteFrameHeader(buffer, blockLength, H2.Headers, H2.EndHeaders, id);
            return 9 + blockLength;
        }
        // Rare (a block over 16 KB): assemble the frames in a copy, then move them to the front.
        var frames = new byte[blockLength + (9 * ((blockLength / _peerMaxFrame) + 1))];
        var at = 0;
        var done = 0;
        var type = H2.Headers;
        while (done < blockLength)
        {
            var chunk = Math.Min(_peerMaxFrame, blockLength - done);
            H2Output.WriteFrameHeader(frames.AsSpan(at), chunk, type, done + chunk == blockLength ? H2.EndHeaders : (byte)0, id);
            Buffer.BlockCopy(buffer, blockAt + done, frames, at + 9, chunk);
            at += 9 + chunk;
            done += chunk;
            type = H2.Continuation;
        }
        Buffer.BlockCopy(frames, 0, buffer, 0, at);
        return at;
    }

    private static int WriteHeaderBlock(Span<byte> to, byte[] prefix, Metadata headers, TimeSpan remaining)
    {
        prefix.CopyTo(to);
        var at = prefix.Length;
        foreach (var e in headers)
        {
            to[at++] = 0x00; // literal without indexing, new name
            at += Str(to[at..], e.Key);
            at += Str(to[at..], e.IsBinary ? Convert.ToBase64String(e.ValueBytes).TrimEnd('=') : e.Value);
        }
        to[at++] = 0x0F; // content-type: static index 31 (4-bit prefix 15 + 16)
        to[at++] = 0x10;
        at += Str(to[at..], "application/grpc");
        to[at++] = 0x00;
        at += Str(to[at..], "te");
        at += Str(to[at..], "trailers");
        if (remaining != Timeout.InfiniteTimeSpan)
        {
            GrpcTimeout.CopyTo(to[at..]);
            at += GrpcTimeout.Length;
            // The value ("<ms>m", or "<s>S" past 8 digits) straight into the block: at most 9 octets, its length first.
            var ms = (long)Math.Ceiling(remaining.TotalMilliseconds);
            var (amount, unit) = ms <= 99_999_999 ? (ms, (byte)'m') : (Math.Min(99_999_999, (long)Math.Ceiling(remaining.TotalSeconds)), (byte)'S');
            System.Buffers.Text.Utf8Formatter.TryFormat(amount, to[(at + 1)..], out var digits);
            to[at + 1 + digits] = unit;
            to[at] = (byte)(digits + 1); // < 127: a one-octet length, no Huffman
            at += digits + 2;
        }
        return at;
    }

    // "grpc-timeout" as a literal without indexing, new name (its value follows).
    private static readonly byte[] GrpcTimeout = [0x00, 12, .. "grpc-timeout"u8];

    // An HPACK string literal (no Huffman); header values are Latin-1 octets, as HTTP/2 field values are (a character
    // outside Latin-1 becomes '?'; the metadata a caller gives is ASCII).
    private static int Str(Span<byte> to, string value)
    {
        var at = Int(to, value.Length, 7, 0x00);
        return at + Encoding.Latin1.GetBytes(value, to[at..]);
    }

    private static int Int(Span<byte> to, int value, int prefixBits, byte high)
    {
        var mask = (1 << prefixBits) - 1;
        if (value < mask)
        {
            to[0] = (byte)(high | value);
            return 1;
        }
        to[0] = (byte)(high | mask);
        value -= mask;
        var at = 1;
        while (value >= 0x80)
        {
            to[at++] = (byte)((value & 0x7F) | 0x80);
            value >>= 7;
        }
        to[at++] = (byte)value;
        return at;
    }

    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> bytes)
    {
        if (_socket is null) return; // socket-free (Feed): what this side says is dropped
        if (_io is not null)
        {
            // Batched (io = batch): small writes go to the outbox, which the loop thread sends (with a round's other
            // requests, once the round's last call is in). A large one waits for the outbox to empty, then goes out here.
            if (_batched)
            {
                if (bytes.Length <= BatchedWriteMax && _io.TryQueue(bytes.Span)) return;
                await _io.DrainedAsync().ConfigureAwait(false);
            }
            await _io.SendAsync(bytes).ConfigureAwait(false);
            return;
        }
        while (!bytes.IsEmpty)
        {
            var n = await _socket.SendAsync(bytes, SocketFlags.None).ConfigureAwait(false);
            bytes = bytes[n..];
        }
    }

    // Control frames the read loop owes the peer (SETTINGS ACK, PING ACK, WINDOW_UPDATE, RST_STREAM, GOAWAY): sent from
    // another task so the read loop never waits for the write lock (a sender blocked on a full socket would stall it).
    private void SendControl(byte[] frame) => _ = SendControlAsync(frame);

    private async Task SendControlAsync(byte[] frame)
    {
        try
        {
            await _writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                await SendAllAsync(frame).ConfigureAwait(false);
            }
            finally
            {
                _writeLock.Release();
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Close("connection lost", StatusCode.Unavailable);
        }
    }

    private static byte[] Frame4(byte type, int stream, uint value)
    {
        var f = new byte[13];
        H2Output.WriteFrameHeader(f, 4, type, 0, stream);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(9), value);
        return f;
    }

    /// <summary>Answers <paramref name="s"/> with <paramref name="status"/> and resets its stream (the peer stops sending).</summary>
    private void Reset(ClientStream s, Status status)
    {
        if (!Remove(s)) return;
        if (!_closed) SendControl(Frame4(H2.RstStream, s.Id, H2.Cancel));
        s.Fail(status);
    }

    private bool Remove(ClientStream s)
    {
        bool removed, closeNow;
        lock (_lock)
        {
            removed = s.Id != 0 && _streams.TryGetValue(s.Id, out var found) && ReferenceEquals(found, s) && _streams.Remove(s.Id);
            closeNow = removed && _goingAway && _streams.Count == 0;
            if (removed) WindowChangedLocked(); // a call waiting for a stream slot (the peer's concurrency limit) may go
        }
        if (closeNow) Close("peer sent GOAWAY and every stream ended", StatusCode.Unavailable);
        return removed;
    }

    /// <summary>Closes the socket; every open call answers <paramref name="code"/> with <paramref name="reason"/>.</summary>
    internal void Close(string reason, StatusCode code)
    {
        ClientStream[] open;
        lock (_lock)
        {
            if (_closed) return;
            _closed = true;
            _closeReason = reason;
            open = [.. _streams.Values];
            _streams.Clear();
            _windowChanged?.TrySetResult();
            _windowChanged = null;
        }
        try
        {
            _socket?.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        _io?.Close(); // off the loop before the descriptor is freed; a wait in progress wakes and finds the socket closed
        _socket?.Dispose();
        foreach (var s in open) s.Fail(new Status(code, reason));
    }

    public void Dispose() => Close("connection disposed", StatusCode.Unavailable);

    // ---------------------------------------------------------------- read loop

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                if (!await FillAsync(9, atFrameStart: true).ConfigureAwait(false)) return;
                if (_keepAlive is not null) FrameArrived();
                var h = _buf.AsSpan(_start, 9);
                var length = (h[0] << 16) | (h[1] << 8) | h[2];
                var type = h[3];
                var flags = h[4];
                var id = BinaryPrimitives.ReadInt32BigEndian(h[5..]) & 0x7FFFFFFF;
                _start += 9;
                if (length > MaxFrameSize) throw new H2ConnectionException(H2.FrameSizeError, $"peer sent a {length}-byte frame over the announced {MaxFrameSize}");
                if (_blockLength > 0 || _blockStream != 0)
                {
                    if (type != H2.Continuation || id != _blockStream)
                        throw new H2ConnectionException(H2.ProtocolError, "peer interrupted a header block (expected CONTINUATION)");
                }
                if (type == H2.Data)
                {
                    await OnDataAsync(length, flags, id).ConfigureAwait(false);
                    continue;
                }
                if (length > _buf.Length)
                {
                    // Only a GOAWAY's debug text or an unknown frame type may be this long and still be ignored.
                    if (type is H2.GoAway or > H2.Continuation)
                    {
                        if (type == H2.GoAway)
                        {
                            await FillAsync(8, false).ConfigureAwait(false);
                            OnGoAway(_buf.AsSpan(_start, 8));
                            _start += 8;
                            length -= 8;
                        }
                        await SkipAsync(length).ConfigureAwait(false);
                        continue;
                    }
                    throw new H2ConnectionException(H2.FrameSizeError, $"peer sent a {length}-byte frame of type {type}");
                }
                await FillAsync(length, false).ConfigureAwait(false);
                var payload = _buf.AsSpan(_start, length);
                _start += length;
                OnControl(type, flags, id, payload);
            }
        }
        catch (H2ConnectionException e)
        {
            GoAwayAndClose(e.Code, $"peer broke HTTP/2 ({H2.Name(e.Code)}): {e.Message}");
        }
        catch (HpackException e)
        {
            GoAwayAndClose(H2.CompressionError, $"peer sent a header block that is not valid HPACK: {e.Message}");
        }
        catch (EndOfStreamException)
        {
            Close("peer closed the connection in the middle of a frame", StatusCode.Unavailable);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            Close("connection lost", StatusCode.Unavailable);
        }
        catch (Exception e)
        {
            // A bug of this side; still answer every call instead of leaving it hanging.
            Bug = e;
            Close($"client transport failed ({e.GetType().Name})", StatusCode.Internal);
        }
        finally
        {
            Close("peer closed the connection", StatusCode.Unavailable);
        }
    }

    private void GoAwayAndClose(uint code, string reason)
    {
        var f = new byte[17];
        H2Output.WriteFrameHeader(f, 8, H2.GoAway, 0, 0);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(9), 0); // a client accepts no streams from the server
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(13), code);
        if (_writeLock.Wait(0))
        {
            try
            {
                _socket?.Send(f, SocketFlags.None); // best effort, 17 bytes; the socket closes next
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
            finally
            {
                _writeLock.Release();
            }
        }
        Close(reason, StatusCode.Internal);
    }

    // Ensures `count` bytes are buffered from _start. At a frame start, a clean end of stream returns false.
    // The read loop's async helpers complete asynchronously once per answer (waiting for the socket); their state
    // machines come from a pool instead of a new box each time (each is awaited once, directly).
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FillAsync(int count, bool atFrameStart)
    {
        if (_end - _start >= count) return true;
        if (_headStream is not null)
        {
            Unscramble(); // more is needed than the head: the landed bytes come first, behind it
            if (_end - _start >= count) return true;
        }
        if (_start == _end)
        {
            _start = _end = 0; // nothing buffered: the whole buffer is free for the next receive
            _originValid = atFrameStart;
        }
        else if (_start > 0 && _start + count > _buf.Length)
        {
            Buffer.BlockCopy(_buf, _start, _buf, 0, _end - _start);
            _end -= _start;
            _start = 0;
            _originValid = false;
        }
        // At a frame start with nothing buffered, after answers whose data landed (AnswerLanding): read only up to where
        // the last answer's data began, so the next one's data is left in the socket for the landing's array.
        var headRead = atFrameStart && _end == 0 && _landingHint >= count;
        var limit = headRead ? _landingHint : _buf.Length;
        if (headRead && (HasHeadCandidate() || AwaitsNextCall()))
        {
            // Head, floats and tail in one receive. Tried at once when the last answer was waiting already; otherwise
            // after waiting for the socket to be readable (a zero-byte receive: it takes nothing) instead of receiving
            // the head alone when it comes and the rest in a second call. Also with no call open at all (a fan-out
            // round's connection between its answer and the next round's call): the next answer can only follow a call
            // of this side, whose stream is open by the time its bytes are here, so the wait is a zero-byte one too.
            // A wait that ends with nothing to take (the socket engine may call a socket readable whose bytes a receive of
            // ours took) is waited again while no byte is there and the call is still to come or in line: at most
            // MaxEmptyHeadWaits times, then the usual receive (which reports the end of the stream and errors).
            var got = _lastHeadReady && TryReceiveHead();
            for (var empty = 0; !got && empty < MaxEmptyHeadWaits; empty++)
            {
                if (_feed is null)
                {
                    var ready = ReceiveAsync(Memory<byte>.Empty);
                    _lastHeadReady = ready.IsCompleted;
                    await ready.ConfigureAwait(false);
                }
                got = TryReceiveHead();
                if (got || _feed is not null || _socket!.Available > 0 || !(HasHeadCandidate() || AwaitsNextCall())) break;
                Interlocked.Increment(ref _emptyHeadWaits);
            }
            if (got && _end - _start >= count) return true;
        }
        while (_end - _start < count)
        {
            var receive = ReceiveAsync(_buf.AsMemory(_end, (limit > _end ? limit : _buf.Length) - _end));
            if (atFrameStart && _end == 0) _lastHeadReady = receive.IsCompleted;
            var n = await receive.ConfigureAwait(false);
            if (n == 0)
            {
                if (atFrameStart && _end == _start) return false;
                throw new EndOfStreamException();
            }
            _end += n;
        }
        return true;
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SkipAsync(int count)
    {
        while (count > 0)
        {
            if (_end == _start)
            {
                if (_headStream is not null)
                {
                    Unscramble();
                    continue;
                }
                _start = _end = 0;
                _originValid = false;
                await FillAsync(1, false).ConfigureAwait(false);
            }
            var k = Math.Min(count, _end - _start);
            _start += k;
            count -= k;
        }
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask OnDataAsync(int length, byte flags, int id)
    {
        if (id == 0) throw new H2ConnectionException(H2.ProtocolError, "DATA on stream 0");
        Interlocked.Increment(ref _dataFrames);
        ClientStream? s;
        lock (_lock)
        {
            if ((id & 1) == 0 || id >= _nextStreamId) throw new H2ConnectionException(H2.ProtocolError, $"DATA on stream {id}, which this side never opened");
            _streams.TryGetValue(id, out s);
            _recvConnWindow -= length;
            if (_recvConnWindow < 0) throw new H2ConnectionException(H2.FlowControlError, "peer sent past the connection window");
            if (s is not null)
            {
                s.RecvWindow -= length;
                if (s.RecvWindow < 0) throw new H2ConnectionException(H2.FlowControlError, $"peer sent past stream {id}'s window");
            }
        }
        if (s is not null && !s.HeadersSeen)
        {
            Reset(s, new Status(StatusCode.Internal, "peer sent DATA before response headers"));
            s = null;
        }
        var data = length;
        var pad = 0;
        var startedBefore = s?.MessageStarted ?? false;
        if ((flags & H2.Padded) != 0)
        {
            if (length < 1) throw new H2ConnectionException(H2.FrameSizeError, "padded DATA frame without its pad length");
            await FillAsync(1, false).ConfigureAwait(false);
            pad = _buf[_start++];
            if (pad >= length) throw new H2ConnectionException(H2.ProtocolError, "DATA padding longer than the frame");
            data = length - 1 - pad;
        }
        if (s is not null && s.Reader is not null && s.Landing is null && !s.MessageStarted && data > 5 && data <= _buf.Length)
        {
            // A reader call whose whole message is this frame's data (what an axon sends when it may use large frames):
            // buffer the frame and read the message where it lies, instead of copying it into a message array. Only for
            // a stream whose message has not begun: DATA after it goes to Feed byte by byte, which refuses a second
            // message at its first byte, as for a landing stream (else a frame cut short by the connection's end would
            // be Unavailable here and Internal there: fuzz finding 8).
            await FillAsync(5, false).ConfigureAwait(false);
            if (s.IsWholeMessage(_buf.AsSpan(_start, 5), data))
            {
                await FillAsync(data, false).ConfigureAwait(false);
                s.ReadInPlace(_buf, _start, data);
                Interlocked.Increment(ref _readsInPlace);
                _start += data;
                data = 0;
            }
        }
        while (data > 0)
        {
            var buffered = _end - _start;
            if (buffered > 0)
            {
                var k = Math.Min(data, buffered);
                if (s is not null)
                {
                    if (!s.Feed(_buf.AsSpan(_start, k), out var failure, out var gapAt)) s = FailFromFeed(s, failure);
                    else if (gapAt >= 0 && _originValid) NoteLandingStart(_start + gapAt, data - gapAt);
                }
                _start += k;
                data -= k;
                continue;
            }
            if (_headStream is not null)
            {
                // A head read's landing: this stream's floats already in its array (the tail follows in the buffer), or
                // the bytes moved back behind the head.
                data -= TakeHeadLanding(s, data);
                continue;
            }
            _start = _end = 0;
            _originValid = false;
            if (s is not null && s.BodyTarget(data) is { Length: > 0 } target)
            {
                // Nothing buffered and the stream wants message bytes: read them straight into the message's array, and
                // what follows them (the message's tail, the trailers) into the read buffer in the same call when it is
                // there already; otherwise wait for the socket as usual. A landing whose floats go on in the peer's next
                // DATA frames (16 KB frames) takes those frames' floats in the same call, their headers into the buffer.
                var n = target.Length == data ? TryReceiveFrames(s, target) : -1;
                if (n < 0)
                {
                    n = TryReceiveVectored(target);
                    if (n > target.Length)
                    {
                        _end = n - target.Length; // the read buffer (reset above) holds what came after the target
                        n = target.Length;
                    }
                }
                if (n == 0)
                {
                    n = await ReceiveAsync(target).ConfigureAwait(false);
                    if (n == 0) throw new EndOfStreamException();
                }
                if (s.Landing is not null)
                {
                    Interlocked.Add(ref _bytesLandedDirectly, n);
                    Interlocked.Add(ref _portCounters.Landed, n);
                }
                s.Advance(n);
                data -= n;
                continue;
            }
            await FillAsync(1, false).ConfigureAwait(false);
        }
        if (pad > 0) await SkipAsync(pad).ConfigureAwait(false);
        if (s is not null && s.Landing is not null && pad == 0 && (flags & H2.Padded) == 0)
        {
            // How this peer frames an answer (the next head read plans its runs by it): a frame that ends inside the
            // message is the peer's split size; a message whole in one frame means one frame per answer.
            if (s.MessageStarted && !s.MessageComplete) _splitFrame = length >= MinSplitFrame ? length : 0;
            else if (!startedBefore && s.MessageComplete) _splitFrame = 0;
        }

        // Flow control: give the bytes back (connection: once half the window is used; stream: while it stays open).
        if (length > 0)
        {
            var connIncrement = 0L;
            lock (_lock)
            {
                _recvConnUnacked += length;
                if (_recvConnUnacked >= ConnectionWindow / 2)
                {
                    connIncrement = _recvConnUnacked;
                    _recvConnWindow += _recvConnUnacked;
                    _recvConnUnacked = 0;
                }
            }
            if (connIncrement > 0) SendControl(Frame4(H2.WindowUpdate, 0, (uint)connIncrement));
            if (s is not null && (flags & H2.EndStream) == 0)
            {
                var streamIncrement = 0;
                lock (_lock)
                {
                    s.RecvUnacked += length;
                    if (s.RecvUnacked >= StreamWindow / 2 && _streams.ContainsKey(id))
                    {
                        streamIncrement = s.RecvUnacked;
                        s.RecvWindow += s.RecvUnacked;
                        s.RecvUnacked = 0;
                    }
                }
                if (streamIncrement > 0) SendControl(Frame4(H2.WindowUpdate, id, (uint)streamIncrement));
            }
        }
        if (s is not null && (flags & H2.EndStream) != 0)
        {
            // The stream ended without trailers: no grpc-status.
            Ended(s, new Status(StatusCode.Internal, "peer ended the response without grpc-status trailers"));
        }
    }

    // Where, counted from a frame start with nothing buffered, an answer's landed data began: the next such read stops
    // there; and how many landed bytes the DATA frame where they began carried (the first run of a head read over frames).
    private void NoteLandingStart(int at, int inFrame)
    {
        if (at is > 9 and <= MaxLandingHint)
        {
            _landingHint = at;
            _landingFirstRun = inFrame;
        }
    }

    private const int MaxLandingHint = 8192;

    /// <summary>Bytes the next read at a frame start takes at most (0: the whole buffer; tests).</summary>
    internal int LandingHint => _landingHint;

    /// <summary>Answer bytes received from the socket straight into a landing's array (tests).</summary>
    internal long BytesLandedDirectly => Interlocked.Read(ref _bytesLandedDirectly);

    private long _bytesLandedDirectly;

    private ClientStream? FailFromFeed(ClientStream s, Status failure)
    {
        Reset(s, failure);
        return null;
    }

    // The peer ended the stream: answered without RST_STREAM.
    private void Ended(ClientStream s, Status failure)
    {
        if (Remove(s)) s.Fail(failure);
    }

    private void OnControl(byte type, byte flags, int id, ReadOnlySpan<byte> payload)
    {
        switch (type)
        {
            case H2.Headers:
            case H2.Continuation:
                OnHeaderFragment(type, flags, id, payload);
                break;
            case H2.Settings:
                if (id != 0) throw new H2ConnectionException(H2.ProtocolError, "SETTINGS on a stream");
                if ((flags & H2.Ack) != 0)
                {
                    if (payload.Length != 0) throw new H2ConnectionException(H2.FrameSizeError, "SETTINGS ACK with a payload");
                    break;
                }
                if (payload.Length % 6 != 0) throw new H2ConnectionException(H2.FrameSizeError, "SETTINGS length not a multiple of 6");
                OnSettings(payload);
                SendControl(SettingsAck);
                break;
            case H2.Ping:
                if (id != 0) throw new H2ConnectionException(H2.ProtocolError, "PING on a stream");
                if (payload.Length != 8) throw new H2ConnectionException(H2.FrameSizeError, "PING payload is not 8 bytes");
                if ((flags & H2.Ack) == 0)
                {
                    var f = new byte[17];
                    H2Output.WriteFrameHeader(f, 8, H2.Ping, H2.Ack, 0);
                    payload.CopyTo(f.AsSpan(9));
                    SendControl(f);
                }
                else
                {
                    OnPingAck(payload);
                }
                break;
            case H2.WindowUpdate:
                if (payload.Length != 4) throw new H2ConnectionException(H2.FrameSizeError, "WINDOW_UPDATE payload is not 4 bytes");
                OnWindowUpdate(id, BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7FFFFFFF);
                break;
            case H2.RstStream:
                if (id == 0) throw new H2ConnectionException(H2.ProtocolError, "RST_STREAM on stream 0");
                if (payload.Length != 4) throw new H2ConnectionException(H2.FrameSizeError, "RST_STREAM payload is not 4 bytes");
                OnReset(id, BinaryPrimitives.ReadUInt32BigEndian(payload));
                break;
            case H2.GoAway:
                if (id != 0) throw new H2ConnectionException(H2.ProtocolError, "GOAWAY on a stream");
                if (payload.Length < 8) throw new H2ConnectionException(H2.FrameSizeError, "GOAWAY shorter than 8 bytes");
                OnGoAway(payload);
                break;
            case H2.PushPromise:
                throw new H2ConnectionException(H2.ProtocolError, "PUSH_PROMISE although this side disabled push");
            case H2.Priority:
                if (payload.Length != 5) throw new H2ConnectionException(H2.FrameSizeError, "PRIORITY payload is not 5 bytes");
                break;
            default:
                break; // unknown frame types are ignored (RFC 9113 §4.1)
        }
    }

    private static readonly byte[] SettingsAck = SettingsAckFrame();

    private static byte[] SettingsAckFrame()
    {
        var f = new byte[9];
        H2Output.WriteFrameHeader(f, 0, H2.Settings, H2.Ack, 0);
        return f;
    }

    private void OnSettings(ReadOnlySpan<byte> payload)
    {
        lock (_lock)
        {
            for (var i = 0; i < payload.Length; i += 6)
            {
                var key = BinaryPrimitives.ReadUInt16BigEndian(payload[i..]);
                var value = BinaryPrimitives.ReadUInt32BigEndian(payload[(i + 2)..]);
                switch (key)
                {
                    case H2.SettingsInitialWindowSize:
                        if (value > int.MaxValue) throw new H2ConnectionException(H2.FlowControlError, "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1");
                        var delta = (int)value - _peerInitialWindow;
                        _peerInitialWindow = (int)value;
                        foreach (var s in _streams.Values)
                        {
                            s.SendWindow += delta;
                            if (s.SendWindow > int.MaxValue) throw new H2ConnectionException(H2.FlowControlError, "a stream's send window over 2^31-1");
                        }
                        break;
                    case H2.SettingsMaxFrameSize:
                        if (value is < H2.DefaultMaxFrame or > 16_777_215) throw new H2ConnectionException(H2.ProtocolError, $"SETTINGS_MAX_FRAME_SIZE {value}");
                        _peerMaxFrame = (int)value;
                        break;
                    case H2.SettingsMaxConcurrentStreams:
                        _peerMaxStreams = value; // new calls wait for a slot; streams already open stay
                        break;
                    case H2.SettingsEnablePush:
                        if (value > 1) throw new H2ConnectionException(H2.ProtocolError, "SETTINGS_ENABLE_PUSH not 0 or 1");
                        break;
                    default:
                        break; // header table size (this side's encoder uses no dynamic table), list size, unknown
                }
            }
            WindowChangedLocked();
        }
    }

    private void OnWindowUpdate(int id, int increment)
    {
        if (increment == 0)
        {
            if (id == 0) throw new H2ConnectionException(H2.ProtocolError, "WINDOW_UPDATE of 0 on the connection");
            ClientStream? zero;
            lock (_lock) _streams.TryGetValue(id, out zero);
            if (zero is not null) Reset(zero, new Status(StatusCode.Internal, "peer sent a WINDOW_UPDATE of 0"));
            return;
        }
        lock (_lock)
        {
            if (id == 0)
            {
                _sendConnWindow += increment;
                if (_sendConnWindow > int.MaxValue) throw new H2ConnectionException(H2.FlowControlError, "connection send window over 2^31-1");
            }
            else if (_streams.TryGetValue(id, out var s))
            {
                s.SendWindow += increment;
                if (s.SendWindow > int.MaxValue) throw new H2ConnectionException(H2.FlowControlError, $"stream {id}'s send window over 2^31-1");
            }
            WindowChangedLocked();
        }
    }

    private void WindowChangedLocked()
    {
        _windowChanged?.TrySetResult();
        _windowChanged = null;
    }

    private void OnReset(int id, uint code)
    {
        ClientStream? s;
        lock (_lock) _streams.TryGetValue(id, out s);
        if (s is null) return;
        var status = code switch
        {
            H2.RefusedStream => new Status(StatusCode.Unavailable, "peer refused the stream (REFUSED_STREAM)"),
            H2.Cancel => new Status(StatusCode.Cancelled, "peer cancelled the stream (CANCEL)"),
            _ => new Status(StatusCode.Internal, $"peer reset the stream ({H2.Name(code)})"),
        };
        Ended(s, status);
    }

    private void OnGoAway(ReadOnlySpan<byte> payload)
    {
        var last = BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7FFFFFFF;
        var code = BinaryPrimitives.ReadUInt32BigEndian(payload[4..]);
        List<ClientStream> refused = [];
        bool closeNow;
        lock (_lock)
        {
            _goingAway = true;
            _closeReason = $"peer sent GOAWAY ({H2.Name(code)})";
            NoteGoAwayLocked(code, payload[8..]);
            foreach (var s in _streams.Values)
                if (s.Id > last) refused.Add(s);
            foreach (var s in refused) _streams.Remove(s.Id);
            WindowChangedLocked(); // a call waiting for a stream slot wakes and is refused
            closeNow = _streams.Count == 0;
        }
        foreach (var s in refused) s.Fail(new Status(StatusCode.Unavailable, $"peer sent GOAWAY ({H2.Name(code)}) before processing the call"));
        if (closeNow) Close(_closeReason, StatusCode.Unavailable);
    }

    private void OnHeaderFragment(byte type, byte flags, int id, ReadOnlySpan<byte> payload)
    {
        if (id == 0) throw new H2ConnectionException(H2.ProtocolError, "HEADERS on stream 0");
        if (type == H2.Headers)
        {
            if (_blockStream != 0) throw new H2ConnectionException(H2.ProtocolError, "HEADERS inside a header block");
            var from = 0;
            var to = payload.Length;
            if ((flags & H2.Padded) != 0)
            {
                if (payload.Length < 1) throw new H2ConnectionException(H2.FrameSizeError, "padded HEADERS without its pad length");
                var pad = payload[0];
                from = 1;
                to -= pad;
            }
            if ((flags & H2.PriorityFlag) != 0) from += 5;
            if (from > to) throw new H2ConnectionException(H2.ProtocolError, "HEADERS padding or priority longer than the frame");
            payload = payload[from..to];
            _blockStream = id;
            _blockFlags = flags;
            _blockLength = 0;
        }
        else if (_blockStream == 0)
        {
            throw new H2ConnectionException(H2.ProtocolError, "CONTINUATION without HEADERS");
        }
        if (_blockLength + payload.Length > _block.Length)
            throw new H2ConnectionException(H2.EnhanceYourCalm, $"peer's header block is over {MaxHeaderBlock} bytes");
        payload.CopyTo(_block.AsSpan(_blockLength));
        _blockLength += payload.Length;
        if ((flags & H2.EndHeaders) == 0) return;

        var streamId = _blockStream;
        var endStream = (_blockFlags & H2.EndStream) != 0;
        _blockStream = 0;
        var within = _hpack.Decode(_block.AsSpan(0, _blockLength), _fields, MaxHeaderBlock); // always decoded: keeps the table in step
        _blockLength = 0;
        ClientStream? s;
        lock (_lock)
        {
            if ((streamId & 1) == 0 || streamId >= _nextStreamId) throw new H2ConnectionException(H2.ProtocolError, $"HEADERS on stream {streamId}, which this side never opened");
            _streams.TryGetValue(streamId, out s);
        }
        if (s is null) return; // a stream this side cancelled or reset
        if (!within)
        {
            Reset(s, new Status(StatusCode.Internal, $"peer's response headers are over {MaxHeaderBlock} bytes"));
            return;
        }
        OnHeaders(s, endStream);
    }

    private void OnHeaders(ClientStream s, bool endStream)
    {
        // A head read's landing is this stream's, but its trailers come first (no message, or one that did not land):
        // the bytes go back behind the head before anything reads the stream's answer or hands its landing on.
        if ((s.HeadersSeen || endStream) && ReferenceEquals(_headStream, s)) Unscramble();
        string? status = null, contentType = null, grpcStatus = null, grpcMessage = null;
        foreach (var (name, value) in _fields)
        {
            switch (name)
            {
                case ":status": status = value; break;
                case "content-type": contentType = value; break;
                case "grpc-status": grpcStatus = value; break;
                case "grpc-message": grpcMessage = value; break;
            }
        }
        if (!s.HeadersSeen)
        {
            s.HeadersSeen = true;
            if (status != "200")
            {
                var http = int.TryParse(status, NumberStyles.None, CultureInfo.InvariantCulture, out var st) ? st : 0;
                var code = http switch
                {
                    400 => StatusCode.Internal,
                    401 => StatusCode.Unauthenticated,
                    403 => StatusCode.PermissionDenied,
                    404 => StatusCode.Unimplemented,
                    429 or 502 or 503 or 504 => StatusCode.Unavailable,
                    _ => StatusCode.Unknown,
                };
                Finish(s, endStream, new Status(code, $"peer answered HTTP status {status ?? "(none)"}"));
                return;
            }
            if (contentType is null || !contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase))
            {
                Finish(s, endStream, new Status(StatusCode.Internal, $"peer answered content-type '{Clip(contentType ?? "(none)")}', not application/grpc"));
                return;
            }
            if (!endStream) return; // the message and the trailers follow
        }
        else if (!endStream)
        {
            Finish(s, false, new Status(StatusCode.Internal, "peer sent a second header block without ending the stream"));
            return;
        }

        // Trailers (or a trailers-only answer): the call's status.
        if (grpcStatus is null || !int.TryParse(grpcStatus, NumberStyles.None, CultureInfo.InvariantCulture, out var grpc))
        {
            Finish(s, true, new Status(StatusCode.Internal, grpcStatus is null ? "peer's response has no grpc-status" : $"peer's grpc-status '{Clip(grpcStatus)}' is not a number"));
            return;
        }
        if (grpc != 0)
        {
            Finish(s, true, new Status((StatusCode)grpc, PercentDecode(grpcMessage ?? "")));
            return;
        }
        if (!Remove(s)) return;
        if (!s.MessageComplete)
        {
            s.Fail(new Status(StatusCode.Internal, s.MessageStarted ? "peer ended the response in the middle of its message" : "Failed to deserialize response message."));
            return;
        }
        if (s.WasReadInPlace)
        {
            // Read when it arrived (ClientStream.ReadInPlace); the trailers say OK, so that read is the answer.
            if (s.ReadFailure is { } failed) s.Fail(failed);
            else s.Succeed(ReadInPlaceAnswer);
            return;
        }
        TensorMessage answer;
        try
        {
            answer = TensorMessageReader.Parse(s.Message, s.MessageLength); // tensors' buffers stay in s.Message (no copy)
        }
        catch (InvalidDataException e)
        {
            s.ReturnMessage();
            s.Fail(new Status(StatusCode.Internal, $"Failed to deserialize response message ({e.Message})"));
            return;
        }
        if (s.Reader is { } read)
        {
            // The stream is complete and removed: only this loop touches its array, which goes back once read.
            s.MarkLanded();
            try
            {
                s.ReadResult = read(answer);
            }
            catch (Exception e)
            {
                s.Landing?.Release();
                s.ReturnMessage();
                s.Fail(new Status(StatusCode.Internal, $"reading the answer failed ({e.GetType().Name})"));
                return;
            }
            s.Landing?.Release();
            s.ReturnMessage();
        }
        s.Succeed(answer);
    }

    // Answers the stream; resets it unless the peer ended it.
    private void Finish(ClientStream s, bool endStream, Status status)
    {
        if (endStream) Ended(s, status);
        else Reset(s, status);
    }

    private static string Clip(string value) => value.Length > 64 ? value[..64] + "…" : value;

    /// <summary>gRPC's percent-decoding of <c>grpc-message</c> (UTF-8 bytes as %XX); malformed escapes are kept as they are.</summary>
    internal static string PercentDecode(string value)
    {
        if (!value.Contains('%', StringComparison.Ordinal)) return value;
        var bytes = new List<byte>(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '%' && i + 2 < value.Length && byte.TryParse(value.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else
            {
                bytes.Add((byte)value[i]);
            }
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    // ---------------------------------------------------------------- one call

    internal sealed class ClientStream(H2ClientConnection owner, CancellationToken token, int maxReceive)
    {
        // Landing (AnswerLanding): message bytes are taken in pieces of at most ProbeChunk until the head tells where the
        // first tensor's buffer field ends (FindGap); a head longer than ProbeLimit is not looked at further.
        private const int ProbeChunk = 256;
        private const int ProbeLimit = 4096;
        private int _gapStart = -1; // message offset of the first landed byte; -1 while not known
        private bool _landingOff; // this message is not landed (not recognised, too large, or no landing)

        /// <summary>Where the answer's tensor data may go (null: none).</summary>
        public AnswerLanding? Landing;

        private readonly H2ClientConnection _owner = owner;
        private readonly int _maxReceive = maxReceive;
        private int _prefixFilled;
        private uint _prefixLength;
        private byte _flag;

        public readonly TaskCompletionSource<TensorMessage> Done = new();
        public readonly CancellationToken CallerToken = token;
        public CancellationTokenSource? Cancel;
        public CancellationTokenRegistration Registration;
        public int Id;
        public long SendWindow;
        public long RecvWindow = StreamWindow;
        public int RecvUnacked;
        public bool HeadersSeen;
        public byte[] Message = [];
        public int MessageLength = -1;
        public int Filled;

        /// <summary>Reads the answer on the read loop (its buffers pooled); null: the answer is the call's result.</summary>
        public Func<TensorMessage, object>? Reader;

        /// <summary>What <see cref="Reader"/> returned.</summary>
        public object? ReadResult;

        private bool _pooled;

        /// <summary>The answer was read in place when it arrived (<see cref="ReadInPlace"/>); its outcome waits for the trailers.</summary>
        public bool WasReadInPlace;

        /// <summary>Why the read in place failed (the status the call ends with if the trailers say OK).</summary>
        public Status? ReadFailure;

        /// <summary>
        /// True when a DATA frame of <paramref name="count"/> bytes starting with <paramref name="prefix"/> is this stream's
        /// whole message: nothing of a message taken yet, an uncompressed gRPC prefix announcing exactly the rest, within
        /// the receive limit. Anything else goes to <see cref="Feed(ReadOnlySpan{byte}, out Status)"/>, which also reports what is wrong with it.
        /// </summary>
        public bool IsWholeMessage(ReadOnlySpan<byte> prefix, int count)
        {
            if (_prefixFilled != 0 || MessageLength >= 0 || prefix[0] != 0) return false;
            var length = BinaryPrimitives.ReadUInt32BigEndian(prefix[1..5]);
            return length == (uint)(count - 5) && length <= (uint)_maxReceive;
        }

        /// <summary>
        /// Reads the whole message (<see cref="IsWholeMessage"/>) of <paramref name="count"/> bytes at
        /// <paramref name="at"/> where it lies: the reader runs now, on the read loop, while the bytes are valid; a parse
        /// or reader failure is kept for the trailers, which decide the call's outcome.
        /// </summary>
        public void ReadInPlace(byte[] buffer, int at, int count)
        {
            var length = (uint)(count - 5);
            _flag = 0;
            _prefixLength = length;
            _prefixFilled = 5;
            MessageLength = (int)length;
            Filled = MessageLength;
            WasReadInPlace = true;
            TensorMessage answer;
            try
            {
                answer = TensorMessageReader.Parse(buffer, at + 5, MessageLength);
            }
            catch (InvalidDataException e)
            {
                ReadFailure = new Status(StatusCode.Internal, $"Failed to deserialize response message ({e.Message})");
                return;
            }
            try
            {
                ReadResult = Reader!(answer);
            }
            catch (Exception e)
            {
                ReadFailure = new Status(StatusCode.Internal, $"reading the answer failed ({e.GetType().Name})");
            }
        }

        /// <summary>
        /// Gives a pooled message array back (read loop only, once the stream is complete and removed: nothing writes into it
        /// any more). A stream that fails elsewhere (cancelled, reset, closed) leaves its array to the GC: the read loop may
        /// still be receiving into it.
        /// </summary>
        public void ReturnMessage()
        {
            if (!_pooled) return;
            _pooled = false;
            var array = Message;
            Message = [];
            AnswerPool.Return(array);
        }

        /// <summary>Fires on cancellation or at the deadline (waits for the write lock and the send windows end with it).</summary>
        public CancellationToken Token => Cancel?.Token ?? CancellationToken.None;

        public bool MessageStarted => _prefixFilled > 0;

        public bool MessageComplete => MessageLength >= 0 && Filled == MessageLength;

        private Status CancelStatus() => CallerToken.IsCancellationRequested
            ? new Status(StatusCode.Cancelled, TransportStatus.Cancelled)
            : new Status(StatusCode.DeadlineExceeded, TransportStatus.DeadlineExceeded);

        public void OnCancel()
        {
            int id;
            lock (_owner._lock)
            {
                id = Id;
                _owner.WindowChangedLocked(); // a sender waiting for window wakes and sees the stream gone
            }
            if (id != 0) _owner.Reset(this, CancelStatus());
            else Fail(CancelStatus());
        }

        /// <summary>Answers a call that never got a stream (cancelled before it was sent, or the connection closed).</summary>
        public void FailUnregistered(Status? status = null) => Fail(status ?? CancelStatus());

        public void Fail(Status status)
        {
            Release();
            Done.TrySetException(new RpcException(status));
        }

        public void Succeed(TensorMessage answer)
        {
            Release();
            Done.TrySetResult(answer);
        }

        // The source itself is disposed by the call (CallAsync's finally), once nothing waits on its token any more.
        private void Release() => Registration.Dispose();

        /// <summary>Takes DATA bytes (the gRPC length-prefixed message); false with a status when the answer is refused.</summary>
        public bool Feed(ReadOnlySpan<byte> bytes, out Status failure) => Feed(bytes, out failure, out _);

        /// <summary>
        /// Takes DATA bytes (the gRPC length-prefixed message); false with a status when the answer is refused. A landing
        /// stream's tensor data goes to the landing's array, the rest of the message to the message array;
        /// <paramref name="gapAt"/> is the offset in <paramref name="bytes"/> where the landed data begins (or would, when
        /// they end there), -1 when not within them.
        /// </summary>
        public bool Feed(ReadOnlySpan<byte> bytes, out Status failure, out int gapAt)
        {
            failure = default;
            gapAt = -1;
            var total = bytes.Length;
            int Consumed(ReadOnlySpan<byte> rest) => total - rest.Length;
            while (!bytes.IsEmpty)
            {
                if (_prefixFilled < 5)
                {
                    if (MessageLength >= 0)
                    {
                        failure = new Status(StatusCode.Internal, "peer sent more than one response message");
                        return false;
                    }
                    if (_prefixFilled == 0) _flag = bytes[0];
                    else _prefixLength = (_prefixLength << 8) | bytes[0];
                    _prefixFilled++;
                    bytes = bytes[1..];
                    if (_prefixFilled < 5) continue;
                    if (_flag != 0)
                    {
                        failure = new Status(StatusCode.Internal, "peer sent a compressed message although no grpc-encoding was offered");
                        return false;
                    }
                    if (_prefixLength > (uint)_maxReceive)
                    {
                        failure = new Status(StatusCode.ResourceExhausted,
                            $"{TransportStatus.ReceiveTooLarge} (peer announced {_prefixLength} bytes, limit {_maxReceive})");
                        return false;
                    }
                    MessageLength = (int)_prefixLength;
                    if (MessageLength == 0)
                    {
                        Message = [];
                    }
                    else if (Reader is not null && MessageLength <= FirstChunk)
                    {
                        Message = AnswerPool.Rent(MessageLength); // never grows: at least MessageLength long
                        _pooled = true;
                    }
                    else
                    {
                        Message = GC.AllocateUninitializedArray<byte>(Math.Min(MessageLength, FirstChunk));
                    }
                    if (Landing is null || !_pooled || MessageLength < Landing.DataLength) _landingOff = true;
                    continue;
                }
                if (Filled == MessageLength)
                {
                    failure = new Status(StatusCode.Internal, "peer sent more than one response message");
                    return false;
                }
                var k = Math.Min(bytes.Length, MessageLength - Filled);
                if (_gapStart >= 0)
                {
                    if (Filled == _gapStart && gapAt < 0) gapAt = Consumed(bytes);
                    var gapEnd = _gapStart + Landing!.DataLength;
                    if (Filled >= _gapStart && Filled < gapEnd)
                    {
                        k = Math.Min(k, gapEnd - Filled);
                        _owner?.BeforeLandingWrite(this); // null: a stream fed alone (tests)
                        bytes[..k].CopyTo(Landing.Bytes.Span[(Filled - _gapStart)..]);
                        Filled += k;
                        bytes = bytes[k..];
                        continue;
                    }
                    if (Filled < _gapStart) k = Math.Min(k, _gapStart - Filled);
                }
                else if (!_landingOff)
                {
                    k = Math.Min(k, ProbeChunk);
                }
                Grow(k);
                bytes[..k].CopyTo(Message.AsSpan(Filled));
                Filled += k;
                bytes = bytes[k..];
                if (_gapStart < 0 && !_landingOff)
                {
                    Decide();
                    if (_gapStart >= 0 && Filled >= _gapStart && gapAt < 0 && Consumed(bytes) - (Filled - _gapStart) >= 0)
                        gapAt = Consumed(bytes) - (Filled - _gapStart);
                }
            }
            if (_gapStart >= 0 && Filled == _gapStart && gapAt < 0) gapAt = total;
            return true;
        }

        /// <summary>
        /// Finds where the first tensor's data goes (<see cref="FindGap"/>) once enough of the head is here; bytes of it
        /// already taken into the message array move to the landing's array.
        /// </summary>
        private void Decide()
        {
            var dataLength = Landing!.DataLength;
            var at = FindGap(Message.AsSpan(0, Filled), MessageLength, dataLength);
            if (at == NeedMore)
            {
                if (Filled >= ProbeLimit || Filled == MessageLength) _landingOff = true;
                return;
            }
            if (at < 0)
            {
                _landingOff = true;
                return;
            }
            _gapStart = at;
            if (Filled > at)
            {
                _owner?.BeforeLandingWrite(this); // null: a stream fed alone (tests)
                Message.AsSpan(at, Math.Min(Filled, at + dataLength) - at).CopyTo(Landing.Bytes.Span);
            }
        }

        /// <summary>Before the reader runs (the message complete): tells the landing where its bytes were taken from.</summary>
        public void MarkLanded()
        {
            if (Landing is not null && _gapStart >= 0 && Filled == MessageLength) Landing.Landed(Message, _gapStart);
        }

        /// <summary>The message offset of the first landed byte (-1: not landed; tests).</summary>
        internal int GapStart => _gapStart;

        private const int NeedMore = -1;
        private const int NoGap = -2;

        /// <summary>
        /// Scans the head of a <see cref="TensorMessage"/> (the first <paramref name="m"/>.Length of its
        /// <paramref name="messageLength"/> bytes) for its first tensor's <c>buffer</c> field: the message offset of the
        /// field's last <paramref name="dataLength"/> bytes (where the 2021 layout keeps the elements), <see cref="NeedMore"/>
        /// when the head is not all here yet, <see cref="NoGap"/> when the message has no such field (or is malformed:
        /// the parser reports that later).
        /// </summary>
        internal static int FindGap(ReadOnlySpan<byte> m, int messageLength, int dataLength)
        {
            var pos = 0;
            long end = messageLength; // of the message, then of its first tensor; every read stays before it
            var inTensor = false;
            while (true)
            {
                if (pos >= end) return NoGap; // the message (or the first tensor) ended without a buffer field
                var r = Varint(m, ref pos, end, out var tag);
                if (r != 0) return r;
                if (!inTensor && tag == 42)
                {
                    r = Varint(m, ref pos, end, out var length);
                    if (r != 0) return r;
                    if (length > (ulong)(end - pos)) return NoGap;
                    end = pos + (long)length; // the first tensor's fields
                    inTensor = true;
                    continue;
                }
                if (inTensor && tag == 18)
                {
                    r = Varint(m, ref pos, end, out var length);
                    if (r != 0) return r;
                    if (length > (ulong)(end - pos) || length < (ulong)dataLength) return NoGap;
                    return (int)(pos + (long)length - dataLength);
                }
                if (tag >> 3 == 0) return NoGap;
                ulong skip;
                switch (tag & 7)
                {
                    case 0:
                        r = Varint(m, ref pos, end, out _);
                        if (r != 0) return r;
                        continue;
                    case 1: skip = 8; break;
                    case 5: skip = 4; break;
                    case 2:
                        r = Varint(m, ref pos, end, out skip);
                        if (r != 0) return r;
                        break;
                    default: return NoGap;
                }
                if (skip > (ulong)(end - pos)) return NoGap;
                pos += (int)skip;
            }
        }

        // 0 with the value; NeedMore when the bytes here stop inside it; NoGap when it runs past `end` or over 10 bytes.
        private static int Varint(ReadOnlySpan<byte> m, ref int pos, long end, out ulong value)
        {
            value = 0;
            for (var shift = 0; shift < 70; shift += 7)
            {
                if (pos >= end) return NoGap;
                if (pos >= m.Length) return NeedMore;
                var b = m[pos++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return 0;
            }
            return NoGap;
        }

        /// <summary>Where up to <paramref name="available"/> message bytes may be read directly; empty outside a message body.</summary>
        public Memory<byte> BodyTarget(int available)
        {
            if (_prefixFilled < 5 || Filled >= MessageLength) return Memory<byte>.Empty;
            var k = Math.Min(available, MessageLength - Filled);
            if (!_landingOff)
            {
                // A landing stream reads straight from the socket only into the landing's array; its head and tail go
                // through the connection's buffer (small), so a read never takes its data into the message array.
                if (_gapStart < 0 || Filled < _gapStart || Filled >= _gapStart + Landing!.DataLength) return Memory<byte>.Empty;
                return Landing.Bytes.Slice(Filled - _gapStart, Math.Min(k, _gapStart + Landing.DataLength - Filled));
            }
            Grow(k);
            return Message.AsMemory(Filled, Math.Min(k, Message.Length - Filled));
        }

        public void Advance(int n) => Filled += n;

        /// <summary>True when the next message byte is the first landed one (a head read's landing may be taken whole).</summary>
        public bool AtLandingStart => !_landingOff && _gapStart >= 0 && Filled == _gapStart;

        /// <summary>Landing bytes filled so far when the next message byte is a landed one; −1 otherwise.</summary>
        public int LandingOffset => !_landingOff && _gapStart >= 0 && Filled >= _gapStart && Filled < _gapStart + Landing!.DataLength ? Filled - _gapStart : -1;

        // The array grows with the bytes that arrived (never more than FirstChunk ahead), up to the announced length.
        private void Grow(int more)
        {
            if (Filled + more <= Message.Length) return;
            var size = (int)Math.Min(MessageLength, Math.Max((long)Message.Length * 2, (long)Filled + more + FirstChunk));
            var bigger = GC.AllocateUninitializedArray<byte>(size);
            Message.AsSpan(0, Filled).CopyTo(bigger);
            Message = bigger;
        }
    }
}
