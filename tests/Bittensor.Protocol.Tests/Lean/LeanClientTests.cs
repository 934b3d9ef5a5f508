using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean HTTP/2 client against a scripted server on a real loopback socket (port 0): the server reads the client's
/// preface, SETTINGS and request, then writes what each test gives it, byte for byte. Hostile or broken answers must end
/// the call with a clear status (never a hang: every call has a 30 s deadline and no test accepts DeadlineExceeded
/// unless it is about deadlines), and odd-but-legal framing (padding, many small frames, CONTINUATION, a window the
/// server opens late) must still give the right answer.
/// </summary>
[Collection(AnswerPoolCollection.Name)]
public partial class LeanClientTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>Whether the client's connections wait on its own I/O loop (<see cref="LeanClientLoopTests"/>) or on .NET's sockets.</summary>
    protected virtual bool IoLoop => false;

    /// <summary>Whether, on the loop, the connections' writes go through their outboxes (<see cref="LeanClientBatchTests"/>).</summary>
    protected virtual bool IoBatch => false;

    private BittensorChannelOptions Options => TestChannel.Options with { ClientIoLoop = IoLoop, ClientIoBatch = IoBatch };

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>A one-connection scripted HTTP/2 server: collects the client's frames, writes raw bytes back.</summary>
    private sealed class ScriptedServer : IAsyncDisposable
    {
        private readonly Socket _listener = new(SocketType.Stream, ProtocolType.Tcp);
        private Socket? _peer;
        private readonly byte[] _buf = new byte[1 << 20];
        private int _have;
        private HpackDecoder _hpack = new();
        private bool _prefaceRead;

        public ScriptedServer(int? receiveBuffer = null)
        {
            if (receiveBuffer is { } size) _listener.ReceiveBufferSize = size; // inherited by the accepted socket
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(4);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

        public List<(byte Type, byte Flags, int Stream, byte[] Payload)> Received { get; } = [];

        public List<(string Name, string Value)> RequestHeaders { get; } = [];

        /// <summary>Accepts the client, reads its preface and frames until a request ended (END_STREAM), or until <paramref name="until"/>.</summary>
        public async Task ReadRequest(Func<(byte Type, byte Flags, int Stream, byte[] Payload), bool>? until = null)
        {
            _peer ??= await _listener.AcceptAsync().WaitAsync(Wait);
            if (!_prefaceRead)
            {
                await Fill(24);
                Assert.Equal(H2.Preface.ToArray(), _buf[..24]);
                _have -= 24;
                Buffer.BlockCopy(_buf, 24, _buf, 0, _have);
                _prefaceRead = true;
            }
            until ??= f => (f.Flags & H2.EndStream) != 0 && f.Type is H2.Data or H2.Headers;
            while (true)
            {
                await Fill(9);
                var length = (_buf[0] << 16) | (_buf[1] << 8) | _buf[2];
                await Fill(9 + length);
                var f = (_buf[3], _buf[4], BinaryPrimitives.ReadInt32BigEndian(_buf.AsSpan(5)) & 0x7FFFFFFF, _buf.AsSpan(9, length).ToArray());
                _have -= 9 + length;
                Buffer.BlockCopy(_buf, 9 + length, _buf, 0, _have);
                Received.Add(f);
                if (f.Item1 == H2.Headers)
                {
                    var fields = new List<(string, string)>();
                    _hpack.Decode(f.Item4, fields, 1 << 20);
                    RequestHeaders.Clear();
                    RequestHeaders.AddRange(fields);
                }
                if (until(f)) return;
            }
        }

        /// <summary>
        /// Everything the client has written up to now: sends a PING and reads the client's frames up to its ACK (the
        /// client writes its frames in order, so one written before the ACK is read before it). The frames, the ACK last.
        /// </summary>
        public async Task<List<(byte Type, byte Flags, int Stream, byte[] Payload)>> ReadUpToPingAck()
        {
            _peer ??= await _listener.AcceptAsync().WaitAsync(Wait);
            var from = Received.Count;
            await Send(Frame(H2.Ping, 0, 0, "written?"u8.ToArray()));
            await ReadRequest(f => f.Type == H2.Ping && (f.Flags & H2.Ack) != 0);
            return Received.GetRange(from, Received.Count - from);
        }

        private async Task Fill(int count)
        {
            while (_have < count)
            {
                var n = await _peer!.ReceiveAsync(_buf.AsMemory(_have), SocketFlags.None).AsTask().WaitAsync(Wait);
                if (n == 0) throw new EndOfStreamException("the client closed the connection");
                _have += n;
            }
        }

        public async Task Send(byte[] bytes)
        {
            var sent = 0;
            while (sent < bytes.Length) sent += await _peer!.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
        }

        public void Close() => _peer?.Close();

        /// <summary>Closes the connection with a TCP reset (SO_LINGER 0), not a FIN.</summary>
        public void Abort()
        {
            if (_peer is null) return;
            _peer.LingerState = new LingerOption(true, 0);
            _peer.Close();
        }

        /// <summary>Forgets the closed connection: the next <see cref="ReadRequest"/> accepts a new one.</summary>
        public void Reset()
        {
            _peer?.Dispose();
            _peer = null;
            _have = 0;
            _prefaceRead = false;
            _hpack = new HpackDecoder();
            Received.Clear();
        }

        public ValueTask DisposeAsync()
        {
            _peer?.Dispose();
            _listener.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    private static byte[] Frame(byte type, byte flags, int stream, byte[] payload)
    {
        var f = new byte[9 + payload.Length];
        H2Output.WriteFrameHeader(f, payload.Length, type, flags, stream);
        payload.CopyTo(f, 9);
        return f;
    }

    private static byte[] Block(params (string Name, string Value)[] fields)
    {
        var b = new List<byte>();
        foreach (var (n, v) in fields)
        {
            b.Add(0);
            H2Blocks.Int(b, n.Length, 7, 0);
            b.AddRange(Encoding.ASCII.GetBytes(n));
            H2Blocks.Int(b, v.Length, 7, 0);
            b.AddRange(Encoding.ASCII.GetBytes(v));
        }
        return [.. b];
    }

    private static readonly byte[] Ok = Block((":status", "200"), ("content-type", "application/grpc"));

    private static byte[] Grpc(byte[] message, byte flag = 0)
    {
        var m = new byte[5 + message.Length];
        m[0] = flag;
        BinaryPrimitives.WriteInt32BigEndian(m.AsSpan(1), message.Length);
        message.CopyTo(m, 5);
        return m;
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    private static byte[] Trailers(int stream, int status = 0, string? message = null) =>
        Frame(H2.Headers, H2.EndHeaders | H2.EndStream, stream, message is null ? Block(("grpc-status", $"{status}")) : Block(("grpc-status", $"{status}"), ("grpc-message", message)));

    private static TensorMessage Answer(int floats)
    {
        var values = new float[floats];
        for (var i = 0; i < values.Length; i++) values[i] = i * 0.25f;
        var m = new TensorMessage { Version = 150, Message = "ok" };
        m.Tensors.Add(TensorCodec.ToTensor(values, [1, floats / 1024 == 0 ? 1 : 16, floats / 16 == 0 ? 1 : floats / 16], Modality.Tensor));
        return m;
    }

    private static Metadata Headers() => new()
    {
        { AuthHeaders.AuthName, AuthHeaders.AuthValue },
        { AuthHeaders.SignatureName, "5Grw-sig" },
        { AuthHeaders.VersionName, "150" },
    };

    private static Task<TensorMessage> Call(IPeerConnection c, BittensorMethod method = BittensorMethod.Forward, TensorMessage? request = null,
        CancellationToken token = default) =>
        c.CallAsync(method, request ?? new TensorMessage { Version = 150, Hotkey = "5Grw" }, Headers(), DateTime.UtcNow.Add(Wait), token);

    private IPeerConnection Connect(ScriptedServer server, int? maxReceive = null, int? maxSend = null) =>
        LeanClientTransport.Instance.Connect("127.0.0.1", server.Port, Options with
        {
            MaxReceiveMessageSize = maxReceive ?? 16 * 1024 * 1024,
            MaxSendMessageSize = maxSend ?? BittensorChannelOptions.Default.MaxSendMessageSize,
        });

    // Serves one answer (the given bytes after the request) and returns the call's outcome.
    private async Task<(TensorMessage? Answer, RpcException? Error, ScriptedServer Server)> Scripted(Func<int, byte[]> answer, int? maxReceive = null,
        bool close = false, bool reader = false, long[]? landing = null)
    {
        var server = new ScriptedServer();
        using var c = Connect(server, maxReceive);
        // A reader call (the dendrite's fan-out) keeps a deep copy: the answer's own buffers are the transport's.
        var call = landing is not null ? Landed(c, new AnswerLanding(new Float32AnswerShape(landing)))
            : reader ? Read(c, a => TensorMessage.Parser.ParseFrom(a.ToByteArray())) : Call(c);
        await server.ReadRequest();
        await server.Send(Concat(Frame(H2.Settings, 0, 0, []), answer(1)));
        if (close) server.Close();
        try
        {
            return (await call.WaitAsync(Wait), null, server);
        }
        catch (RpcException e)
        {
            return (null, e, server);
        }
    }

    [Fact]
    public async Task The_request_carries_the_bittensor_headers_first_the_deadline_and_the_announced_frame_size_and_windows()
    {
        var expected = Answer(16 * 1024);
        var (answer, error, server) = await Scripted(id => Concat(Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Grpc(expected.ToByteArray())), Trailers(id)));
        await using var _ = server;

        Assert.Null(error);
        Assert.Equal(expected, answer);
        var names = server.RequestHeaders.Select(h => h.Name).ToArray();
        Assert.Equal([":method", ":scheme", ":path", ":authority", AuthHeaders.AuthName, AuthHeaders.SignatureName, AuthHeaders.VersionName], names[..7]);
        Assert.Contains(("te", "trailers"), server.RequestHeaders);
        Assert.Contains(("content-type", "application/grpc"), server.RequestHeaders);
        Assert.Contains(server.RequestHeaders, h => h.Name == "grpc-timeout" && h.Value.EndsWith('m'));
        Assert.DoesNotContain(server.RequestHeaders, h => h.Name == "user-agent");
        Assert.Equal(("/Bittensor/Forward"), server.RequestHeaders.Single(h => h.Name == ":path").Value);
        var settings = server.Received.First(f => f.Type == H2.Settings).Payload;
        var announced = Enumerable.Range(0, settings.Length / 6)
            .ToDictionary(i => BinaryPrimitives.ReadUInt16BigEndian(settings.AsSpan(i * 6)), i => BinaryPrimitives.ReadUInt32BigEndian(settings.AsSpan((i * 6) + 2)));
        Assert.Equal((uint)H2ClientConnection.MaxFrameSize, announced[H2.SettingsMaxFrameSize]);
        Assert.Equal((uint)H2ClientConnection.StreamWindow, announced[H2.SettingsInitialWindowSize]);
        Assert.Equal(0u, announced[H2.SettingsEnablePush]);
        var connectionUpdate = server.Received.First(f => f.Type == H2.WindowUpdate && f.Stream == 0).Payload;
        Assert.Equal(H2ClientConnection.ConnectionWindow - H2.DefaultWindow, BinaryPrimitives.ReadInt32BigEndian(connectionUpdate));
    }

    [Fact]
    public async Task An_answer_in_many_padded_frames_and_a_header_block_in_continuations_is_put_together_exactly()
    {
        var expected = Answer(16 * 1024);
        var grpc = Grpc(expected.ToByteArray());
        var (answer, error, server) = await Scripted(id =>
        {
            var parts = new List<byte[]>
            {
                Frame(H2.Headers, 0, id, Ok[..3]),
                Frame(H2.Continuation, H2.EndHeaders, id, Ok[3..]),
            };
            var rng = new Random(3);
            for (var at = 0; at < grpc.Length;)
            {
                var n = Math.Min(grpc.Length - at, rng.Next(1, 7000));
                var pad = rng.Next(0, 40);
                parts.Add(Frame(H2.Data, H2.Padded, id, [(byte)pad, .. grpc.AsSpan(at, n), .. new byte[pad]]));
                at += n;
            }
            parts.Add(Frame(H2.Ping, 0, 0, new byte[8]));
            parts.Add(Trailers(id));
            return Concat([.. parts]);
        });
        await using var _ = server;

        Assert.Null(error);
        Assert.Equal(expected, answer);
    }

    public static TheoryData<string, StatusCode> HostileAnswers => new()
    {
        { "oversized", StatusCode.ResourceExhausted },
        { "compressed", StatusCode.Internal },
        { "not-protobuf", StatusCode.Internal },
        { "two-messages", StatusCode.Internal },
        { "truncated-message", StatusCode.Internal },
        { "no-trailers", StatusCode.Internal },
        { "html", StatusCode.Internal },
        { "http-503", StatusCode.Unavailable },
        { "status-7", StatusCode.PermissionDenied },
        { "no-grpc-status", StatusCode.Internal },
        { "reset", StatusCode.Internal },
        { "refused", StatusCode.Unavailable },
        { "goaway-before", StatusCode.Unavailable },
        { "data-before-headers", StatusCode.Internal },
        { "huge-header-block", StatusCode.Internal },
        { "frame-over-announced", StatusCode.Internal },
        { "garbage", StatusCode.Internal },
        { "bad-hpack", StatusCode.Internal },
        { "push", StatusCode.Internal },
        { "closed-mid-answer", StatusCode.Unavailable },
    };

    [Theory]
    [MemberData(nameof(HostileAnswers))]
    public Task A_broken_or_hostile_answer_ends_the_call_with_a_clear_status(string kind, StatusCode expected) => Hostile(kind, expected, reader: false);

    /// <summary>The same answers to a call whose answer's floats may land in the caller's array (the dendrite's fan-out).</summary>
    [Theory]
    [MemberData(nameof(HostileAnswers))]
    public Task A_broken_or_hostile_answer_ends_a_landing_call_with_the_same_status(string kind, StatusCode expected) => Hostile(kind, expected, reader: true, landing: true);

    /// <summary>The same answers to a reader call (the dendrite's fan-out: read on the read loop, in place when whole in one frame).</summary>
    [Theory]
    [MemberData(nameof(HostileAnswers))]
    public Task A_broken_or_hostile_answer_ends_a_reader_call_with_the_same_status(string kind, StatusCode expected) => Hostile(kind, expected, reader: true);

    private async Task Hostile(string kind, StatusCode expected, bool reader, bool landing = false)
    {
        var message = Answer(1024).ToByteArray();
        var close = kind is "closed-mid-answer" or "truncated-message";
        var (answer, error, server) = await Scripted(id => kind switch
        {
            "oversized" => Concat(Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, [0, 0x7F, 0xFF, 0xFF, 0xFF])),
            "compressed" => Concat(Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Grpc(message, flag: 1)), Trailers(id)),
            "not-protobuf" => Concat(Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Grpc([0xFF, 0xFF, 0xFF, 0xFF])), Trailers(id)),
            "two-messages" => Concat(Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Concat(Grpc(message), Grpc(message))), Trailers(id)),
            "truncated-message" => Concat(Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Grpc(message)[..100]), Trailers(id)),
            "no-trailers" => Concat(Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, H2.EndStream, id, Grpc(message))),
            "html" => Frame(H2.Headers, H2.EndHeaders | H2.EndStream, id, Block((":status", "200"), ("content-type", "text/html"))),
            "http-503" => Frame(H2.Headers, H2.EndHeaders | H2.EndStream, id, Block((":status", "503"))),
            "status-7" => Frame(H2.Headers, H2.EndHeaders | H2.EndStream, id, Concat(Ok, Block(("grpc-status", "7"), ("grpc-message", "no%20entry %C3%A9")))),
            "no-grpc-status" => Concat(Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Grpc(message)),
                Frame(H2.Headers, H2.EndHeaders | H2.EndStream, id, Block(("x-other", "1")))),
            "reset" => Frame(H2.RstStream, 0, id, [0, 0, 0, 2]),
            "refused" => Frame(H2.RstStream, 0, id, [0, 0, 0, 7]),
            "goaway-before" => Frame(H2.GoAway, 0, 0, [0, 0, 0, 0, 0, 0, 0, 0]),
            "data-before-headers" => Concat(Frame(H2.Data, 0, id, Grpc(message)), Trailers(id)),
            "huge-header-block" => Concat(Frame(H2.Headers, 0, id, Ok),
                Concat([.. Enumerable.Range(0, 20).Select(_ => Frame(H2.Continuation, 0, id, Block(("x-fill", new string('a', 4000)))))])),
            "frame-over-announced" => Concat(Frame(H2.Headers, H2.EndHeaders, id, Ok), [0x20, 0, 0, H2.Data, 0, 0, 0, 0, (byte)id]),
            "garbage" => Encoding.ASCII.GetBytes("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
            "bad-hpack" => Frame(H2.Headers, H2.EndHeaders, id, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
            "push" => Frame(H2.PushPromise, H2.EndHeaders, id, [0, 0, 0, 2, .. Ok]),
            "closed-mid-answer" => Concat(Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Grpc(message))[..200]),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        }, maxReceive: 1024 * 1024, close: close, reader: reader, landing: landing ? [1, 16, 64] : null);
        await using var _ = server;

        Assert.Null(answer);
        Assert.NotNull(error);
        Assert.True(expected == error!.StatusCode, $"{kind}: expected {expected}, got {error.StatusCode}: {error.Status.Detail}");
        Assert.False(string.IsNullOrWhiteSpace(error.Status.Detail));
        if (kind == "status-7") Assert.Equal("no entry é", error.Status.Detail);
    }

    [Fact]
    public async Task A_request_larger_than_the_servers_window_waits_for_WINDOW_UPDATE_and_then_goes_out_whole()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        // A first call carries the server's SETTINGS to the client: a 1,000-byte stream window.
        var warm = Call(c);
        await server.ReadRequest();
        var hello = new TensorMessage { Message = "hello" };
        await server.Send(Concat(Frame(H2.Settings, 0, 0, [0, 4, 0, 0, 0x03, 0xE8]), Frame(H2.Headers, H2.EndHeaders, 1, Ok),
            Frame(H2.Data, 0, 1, Grpc(hello.ToByteArray())), Trailers(1)));
        Assert.Equal(hello, await warm.WaitAsync(Wait));

        var request = Answer(32 * 1024); // 128 KB of floats: far over the window
        var call = Call(c, BittensorMethod.Backward, request);
        var body = new List<byte>();
        await server.ReadRequest(f =>
        {
            if (f.Type == H2.Data && f.Stream == 3) body.AddRange(f.Payload);
            return body.Count >= 1000 || (f.Type == H2.Data && (f.Flags & H2.EndStream) != 0); // (a SETTINGS ACK has the same bit)
        });
        Assert.Equal(1000, body.Count); // the client stopped at the window
        Assert.False(call.IsCompleted);
        await server.Send(Concat(Frame(H2.WindowUpdate, 0, 3, [0, 0x10, 0, 0]), Frame(H2.WindowUpdate, 0, 0, [0, 0x10, 0, 0])));
        await server.ReadRequest(f =>
        {
            if (f.Type == H2.Data && f.Stream == 3) body.AddRange(f.Payload);
            return f.Type == H2.Data && (f.Flags & H2.EndStream) != 0;
        });
        var reply = new TensorMessage { Version = 150, Message = "got it" };
        await server.Send(Concat(Frame(H2.Headers, H2.EndHeaders, 3, Ok), Frame(H2.Data, 0, 3, Grpc(reply.ToByteArray())), Trailers(3)));

        Assert.Equal(reply, await call.WaitAsync(Wait));
        Assert.Equal(Grpc(request.ToByteArray()), body.ToArray());
        Assert.Equal("/Bittensor/Backward", server.RequestHeaders.Single(h => h.Name == ":path").Value);
    }

    [Fact]
    public async Task A_cancelled_call_resets_its_stream_and_the_connection_keeps_serving_the_next_call()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        using var cts = new CancellationTokenSource();
        var first = Call(c, token: cts.Token);
        await server.ReadRequest();
        await cts.CancelAsync();

        var error = await Assert.ThrowsAsync<RpcException>(() => first.WaitAsync(Wait));
        await server.ReadRequest(f => f.Type == H2.RstStream);
        var second = Call(c);
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
        // A late answer to the cancelled stream is dropped; the second stream's answer arrives.
        var late = new TensorMessage { Message = "late" };
        var reply = new TensorMessage { Message = "second" };
        await server.Send(Concat(Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, Grpc(late.ToByteArray())), Trailers(1),
            Frame(H2.Headers, H2.EndHeaders, 3, Ok), Frame(H2.Data, 0, 3, Grpc(reply.ToByteArray())), Trailers(3)));

        Assert.Equal(StatusCode.Cancelled, error.StatusCode);
        Assert.Equal(CancelCode, BinaryPrimitives.ReadUInt32BigEndian(server.Received.Last(f => f.Type == H2.RstStream).Payload));
        Assert.Equal(reply, await second.WaitAsync(Wait));
    }

    private const uint CancelCode = 8;

    // ---------------------------------------------------------------- what the client's own I/O loop adds (session 18),
    // on both paths: LeanClientTests (.NET's sockets) and LeanClientLoopTests (bittensor.dendrite.io = loop)

    [Fact]
    public async Task The_connection_waits_on_the_path_its_options_name()
    {
        await using var server = new ScriptedServer();
        var loopBefore = LeanClientTransport.LoopConnectionsTo(server.Port);
        using var c = Connect(server);
        var call = Call(c);
        await server.ReadRequest();
        var reply = new TensorMessage { Message = "path" };
        await server.Send(Concat(Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, Grpc(reply.ToByteArray())), Trailers(1)));

        Assert.Equal(reply, await call.WaitAsync(Wait));
        var onLoop = IoLoop && ClientIoLoop.Supported;
        Assert.Equal(onLoop, Current(c).OnIoLoop);
        Assert.Equal(onLoop ? 1 : 0, LeanClientTransport.LoopConnectionsTo(server.Port) - loopBefore);
    }

    [Fact]
    public async Task A_connection_reset_in_the_middle_of_an_answer_fails_that_call_Unavailable_and_another_connection_goes_on()
    {
        await using var a = new ScriptedServer();
        await using var b = new ScriptedServer();
        using var ca = Connect(a);
        using var cb = Connect(b);
        var callA = Call(ca);
        var callB = Call(cb);
        await a.ReadRequest();
        await b.ReadRequest();
        // Half of A's answer, then a PING: its ACK shows the client read that half; then a TCP reset.
        var grpc = Grpc(Answer(4096).ToByteArray());
        await a.Send(Concat(Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, grpc[..(grpc.Length / 2)]),
            Frame(H2.Ping, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8])));
        await a.ReadRequest(f => f.Type == H2.Ping && (f.Flags & 1) != 0);
        Assert.False(callA.IsCompleted);
        a.Abort();

        var lost = await Assert.ThrowsAsync<RpcException>(() => callA.WaitAsync(Wait));
        Assert.Equal(StatusCode.Unavailable, lost.StatusCode);
        Assert.False(callB.IsCompleted);
        var reply = Answer(4096);
        await b.Send(Concat(Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, Grpc(reply.ToByteArray())), Trailers(1)));
        Assert.Equal(reply, await callB.WaitAsync(Wait));
        var next = Call(cb);
        await b.ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
        await b.Send(Concat(Frame(H2.Headers, H2.EndHeaders, 3, Ok), Frame(H2.Data, 0, 3, Grpc(reply.ToByteArray())), Trailers(3)));
        Assert.Equal(reply, await next.WaitAsync(Wait));
    }

    [Fact]
    public async Task Cancelling_a_call_whose_answer_is_half_read_resets_its_stream_and_the_connection_serves_the_next_call()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        using var cts = new CancellationTokenSource();
        var first = Call(c, token: cts.Token);
        await server.ReadRequest();
        var grpc = Grpc(Answer(4096).ToByteArray());
        await server.Send(Concat(Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, grpc[..(grpc.Length / 2)]),
            Frame(H2.Ping, 0, 0, [8, 7, 6, 5, 4, 3, 2, 1])));
        await server.ReadRequest(f => f.Type == H2.Ping && (f.Flags & 1) != 0); // the half is read
        Assert.False(first.IsCompleted);
        await cts.CancelAsync();

        var error = await Assert.ThrowsAsync<RpcException>(() => first.WaitAsync(Wait));
        Assert.Equal(StatusCode.Cancelled, error.StatusCode);
        await server.ReadRequest(f => f.Type == H2.RstStream);
        Assert.Equal(1, server.Received.Last(f => f.Type == H2.RstStream).Stream);
        Assert.Equal(CancelCode, BinaryPrimitives.ReadUInt32BigEndian(server.Received.Last(f => f.Type == H2.RstStream).Payload));
        // The rest of the cancelled answer comes late and is dropped; the next call's answer arrives.
        var second = Call(c);
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
        var reply = new TensorMessage { Message = "second" };
        await server.Send(Concat(Frame(H2.Data, 0, 1, grpc[(grpc.Length / 2)..]), Trailers(1),
            Frame(H2.Headers, H2.EndHeaders, 3, Ok), Frame(H2.Data, 0, 3, Grpc(reply.ToByteArray())), Trailers(3)));
        Assert.Equal(reply, await second.WaitAsync(Wait));
    }

    [Fact]
    public async Task Disposing_connections_with_calls_in_flight_ends_every_call_Unavailable_and_a_new_connection_is_served()
    {
        var servers = new[] { new ScriptedServer(), new ScriptedServer(), new ScriptedServer() };
        try
        {
            var connections = servers.Select(s => Connect(s)).ToArray();
            var calls = new List<Task<TensorMessage>>();
            for (var i = 0; i < servers.Length; i++)
            {
                calls.Add(Call(connections[i]));
                calls.Add(Call(connections[i]));
                await servers[i].ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
            }
            Assert.All(calls, t => Assert.False(t.IsCompleted));
            foreach (var c in connections) c.Dispose();

            foreach (var call in calls)
            {
                var error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(Wait));
                Assert.Equal(StatusCode.Unavailable, error.StatusCode);
            }
            await using var fresh = new ScriptedServer();
            using var cf = Connect(fresh);
            var answered = Call(cf);
            await fresh.ReadRequest();
            var reply = new TensorMessage { Message = "fresh" };
            await fresh.Send(Concat(Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, Grpc(reply.ToByteArray())), Trailers(1)));
            Assert.Equal(reply, await answered.WaitAsync(Wait));
        }
        finally
        {
            foreach (var s in servers) await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_request_larger_than_the_sockets_buffers_waits_for_room_and_goes_out_whole_while_the_server_reads_late()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server, maxSend: 64 << 20);
        // A first call carries the server's SETTINGS: a 64 MiB stream window and 64 MiB more for the connection, so only
        // the sockets' buffers hold the request back (the client waits for room whenever the server has not read yet).
        var warm = Call(c);
        await server.ReadRequest();
        var hello = new TensorMessage { Message = "hello" };
        await server.Send(Concat(Frame(H2.Settings, 0, 0, [0, 4, 0x04, 0, 0, 0]), Frame(H2.WindowUpdate, 0, 0, [0x04, 0, 0, 0]),
            Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, Grpc(hello.ToByteArray())), Trailers(1)));
        Assert.Equal(hello, await warm.WaitAsync(Wait));

        var request = Answer(4 << 20); // 16 MiB of floats: far more than the sockets' buffers start with (16 KB to send, 128 KB to receive)
        var call = Call(c, BittensorMethod.Backward, request);
        var body = new List<byte>();
        await server.ReadRequest(f =>
        {
            if (f.Type == H2.Data && f.Stream == 3) body.AddRange(f.Payload);
            return f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0;
        });
        var reply = new TensorMessage { Version = 150, Message = "got it all" };
        await server.Send(Concat(Frame(H2.Headers, H2.EndHeaders, 3, Ok), Frame(H2.Data, 0, 3, Grpc(reply.ToByteArray())), Trailers(3)));

        Assert.Equal(reply, await call.WaitAsync(Wait));
        Assert.Equal(Grpc(request.ToByteArray()), body.ToArray());
    }

    /// <summary>
    /// A call the server never answers, whose deadline passed after its request went out. The deadline counts from the
    /// call, and on a starved machine 300 ms can pass before the request is written (then the call ends at its deadline
    /// without a stream, as it should, and owes no reset; the test waited 30 s for a request that never came). Such a
    /// call is made again with a deadline twice as long, until one's request went out first. <paramref name="call"/>
    /// makes the call with the given deadline. Returns its error and what the client wrote up to then (its request and
    /// its reset among them) and its stream.
    /// </summary>
    private static async Task<(RpcException Error, List<(byte Type, byte Flags, int Stream, byte[] Payload)> Written, int Stream)> UnansweredCall(
        ScriptedServer server, Func<TimeSpan, Task<Task<TensorMessage>>> call)
    {
        for (var deadline = TimeSpan.FromMilliseconds(300); ; deadline *= 2)
        {
            var pending = await call(deadline);
            var error = await Assert.ThrowsAsync<RpcException>(() => pending.WaitAsync(Wait));
            Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
            var written = await server.ReadUpToPingAck();
            if (written.FirstOrDefault(f => f.Type == H2.Headers) is { Payload: not null } headers) return (error, written, headers.Stream);
            Assert.DoesNotContain(written, f => f.Type == H2.RstStream); // no stream, no reset
            Assert.True(deadline < Wait, $"no request went out within a deadline of {deadline}");
        }
    }

    [Fact]
    public async Task A_call_the_server_never_answers_ends_at_its_deadline_with_DeadlineExceeded_and_a_reset()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var (error, written, stream) = await UnansweredCall(server, deadline =>
            Task.FromResult(c.CallAsync(BittensorMethod.Forward, new TensorMessage(), Headers(), DateTime.UtcNow.Add(deadline), CancellationToken.None)));

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Contains(written, f => f.Type == H2.Data && f.Stream == stream && (f.Flags & H2.EndStream) != 0); // the whole request went out
        var reset = Assert.Single(written, f => f.Type == H2.RstStream);
        Assert.Equal(stream, reset.Stream);
        Assert.Equal(H2.Cancel, BinaryPrimitives.ReadUInt32BigEndian(reset.Payload));
    }

    [Fact]
    public async Task A_call_reusing_a_finished_calls_deadline_source_ends_at_its_own_deadline_and_a_fired_one_is_not_reused()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var reply = new TensorMessage { Message = "first" };
        var next = 1; // the client's next stream
        H2ClientConnection? conn = null;
        var reused = -1L;
        var (error, written, silent) = await UnansweredCall(server, async deadline =>
        {
            var answered = Call(c); // 30 s deadline: answered long before, so its source goes back to the connection's pool
            var id = next;
            await server.ReadRequest(f => f.Type == H2.Data && f.Stream == id && (f.Flags & H2.EndStream) != 0);
            await server.Send(Concat(id == 1 ? Frame(H2.Settings, 0, 0, []) : [], Frame(H2.Headers, H2.EndHeaders, id, Ok),
                Frame(H2.Data, 0, id, Grpc(reply.ToByteArray())), Trailers(id)));
            Assert.Equal(reply, await answered.WaitAsync(Wait));
            conn = ((LeanPeerConnection)c).Current!;
            if (id == 1) Assert.Equal(0, conn.CancelsReused);
            reused = conn.CancelsReused;
            next = id + 2; // the silent call's stream, if its request goes out
            // The next call takes that source: its own deadline (never answered) ends it, and resets its own stream.
            return c.CallAsync(BittensorMethod.Forward, new TensorMessage(), Headers(), DateTime.UtcNow.Add(deadline), CancellationToken.None);
        });
        Assert.Equal(reused + 1, conn!.CancelsReused);
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Equal(next, silent);
        Assert.Equal(silent, Assert.Single(written, f => f.Type == H2.RstStream).Stream);

        // A source whose deadline fired is not reused: the third call gets a new one, and is answered.
        next = silent + 2;
        var third = Call(c);
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == next && (f.Flags & H2.EndStream) != 0);
        await server.Send(Concat(Frame(H2.Headers, H2.EndHeaders, next, Ok), Frame(H2.Data, 0, next, Grpc(reply.ToByteArray())), Trailers(next)));
        Assert.Equal(reply, await third.WaitAsync(Wait));
        Assert.Equal(reused + 1, conn.CancelsReused);
    }

    [Fact]
    public async Task After_the_connection_is_lost_the_next_call_connects_again()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var first = Call(c);
        await server.ReadRequest();
        server.Close();
        var lost = await Assert.ThrowsAsync<RpcException>(() => first.WaitAsync(Wait));

        server.Reset();
        var second = Call(c);
        await server.ReadRequest();
        var reply = new TensorMessage { Message = "again" };
        await server.Send(Concat(Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, Grpc(reply.ToByteArray())), Trailers(1)));

        Assert.Equal(StatusCode.Unavailable, lost.StatusCode);
        Assert.Equal(reply, await second.WaitAsync(Wait));
    }

    [Fact]
    public async Task Nothing_listening_is_Unavailable()
    {
        var free = new Socket(SocketType.Stream, ProtocolType.Tcp);
        free.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)free.LocalEndPoint!).Port;
        free.Dispose(); // bound, never listened, closed: connecting is refused
        using var c = LeanClientTransport.Instance.Connect("127.0.0.1", port, Options);

        var error = await Assert.ThrowsAsync<RpcException>(() => Call(c));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }
    // What a reader keeps of an answer: a copy of its bytes, and (to show reuse) the array its tensor's buffer lay in.
    private sealed record ReadCopy(byte[] Bytes, byte[]? Array);

    private static ReadCopy CopyOut(TensorMessage answer) =>
        new(answer.ToByteArray(), System.Runtime.InteropServices.MemoryMarshal.TryGetArray(answer.Tensors[0].Buffer.Memory, out var segment) ? segment.Array : null);

    private static Task<T> Read<T>(IPeerConnection c, Func<TensorMessage, T> read)
        where T : class =>
        c.CallAsync(BittensorMethod.Forward, new TensorMessage { Version = 150, Hotkey = "5Grw" }, Headers(), DateTime.UtcNow.Add(Wait), CancellationToken.None, read);

    // A message in two DATA frames: never read in place (that takes a message whole in one frame), so it is pooled.
    private static byte[][] TwoFrames(int id, byte[] grpc) => [Frame(H2.Data, 0, id, grpc[..(grpc.Length / 2)]), Frame(H2.Data, 0, id, grpc[(grpc.Length / 2)..])];

    private static H2ClientConnection Current(IPeerConnection c) => ((LeanPeerConnection)c).Current!;

    // A landing call whose reader gives back the answer as sent: taken from the landing (its floats put back into a
    // copy of the buffer) or, when the landing did not take it, as read.
    private static async Task<TensorMessage> Landed(IPeerConnection c, AnswerLanding landing) =>
        (await c.CallAsync(BittensorMethod.Forward, new TensorMessage { Version = 150, Hotkey = "5Grw" }, Headers(), DateTime.UtcNow.Add(Wait), CancellationToken.None,
            a =>
            {
                var took = a.Tensors.Count > 0 && landing.TryTake(a.Tensors[0]);
                var copy = TensorMessage.Parser.ParseFrom(a.ToByteArray());
                if (took)
                {
                    var buffer = copy.Tensors[0].Buffer.ToByteArray();
                    System.Runtime.InteropServices.MemoryMarshal.AsBytes(landing.Values.AsSpan()).CopyTo(buffer.AsSpan(buffer.Length - (landing.Values.Length * 4)));
                    copy.Tensors[0].Buffer = ByteString.CopyFrom(buffer);
                }
                return new LandedAnswer(copy, took);
            }, landing)).Answer;

    private sealed record LandedAnswer(TensorMessage Answer, bool Took);

    [Fact]
    public async Task A_landing_call_gets_its_answers_floats_from_the_socket_straight_into_its_own_array()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var shape = new Float32AnswerShape([1, 16, 1024]);

        for (var i = 0; i < 4; i++)
        {
            var expected = Answer(16 * 1024);
            expected.Hotkey = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
            expected.Message = $"answer {i}";
            var values = TensorCodec.Decode(expected.Tensors[0]).Tensor.ToFloat32Array();
            var landing = new AnswerLanding(shape);
            var took = false;
            var call = c.CallAsync(BittensorMethod.Forward, new TensorMessage { Version = 150, Hotkey = "5Grw" }, Headers(), DateTime.UtcNow.Add(Wait),
                CancellationToken.None, a =>
                {
                    took = landing.TryTake(a.Tensors[0]);
                    return a.Message;
                }, landing);
            var id = (2 * i) + 1;
            await server.ReadRequest(f => f.Type == H2.Data && f.Stream == id && (f.Flags & H2.EndStream) != 0);
            // Headers, the message in one DATA frame and the trailers in one write, as the lean server sends an answer.
            await server.Send(Concat(i == 0 ? Frame(H2.Settings, 0, 0, []) : [], Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Grpc(expected.ToByteArray())), Trailers(id)));

            Assert.Equal($"answer {i}", await call.WaitAsync(Wait));
            Assert.True(took, $"call {i}: the landing did not take the answer");
            Assert.Equal(values, landing.Values);
        }
        // After the first answer the read at a frame start stops where the answer's floats begin: from then on they come
        // from the socket straight into each call's array.
        Assert.True(Current(c).LandingHint > 0);
        Assert.True(Current(c).BytesLandedDirectly > 0, "no answer bytes were received straight into a landing");
        Assert.Equal(0, Current(c).ReadsInPlace);
    }

    [Fact]
    public async Task An_answer_whole_in_the_socket_has_its_floats_and_what_follows_them_received_in_one_call()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var shape = new Float32AnswerShape([1, 16, 1024]);
        byte[] AnswerBytes(int id, int seed, bool settings)
        {
            var m = Answer(16 * 1024);
            m.Hotkey = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
            m.Message = $"answer {seed}"; // the same length each time: the heads are alike, as an axon's are
            return Concat(settings ? Frame(H2.Settings, 0, 0, []) : [], Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Grpc(m.ToByteArray())), Trailers(id));
        }
        Task<string> LandingCall(AnswerLanding landing, Action? inReader = null) =>
            c.CallAsync(BittensorMethod.Forward, new TensorMessage { Version = 150, Hotkey = "5Grw" }, Headers(), DateTime.UtcNow.Add(Wait), CancellationToken.None,
                a =>
                {
                    inReader?.Invoke();
                    return landing.TryTake(a.Tensors[0]) ? a.Message : "not landed";
                }, landing);

        // The first answer tells the client where an answer's floats begin (the read at a frame start stops there).
        var first = LandingCall(new AnswerLanding(shape));
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 1 && (f.Flags & H2.EndStream) != 0);
        await server.Send(AnswerBytes(1, 1, settings: true));
        Assert.Equal("answer 1", await first.WaitAsync(Wait));
        Assert.True(Current(c).LandingHint > 0);

        // The second answer's reader holds the read loop until the third answer is whole in the client's socket.
        using var reading = new SemaphoreSlim(0);
        using var go = new ManualResetEventSlim();
        var (second, third) = (new AnswerLanding(shape), new AnswerLanding(shape));
        var secondCall = LandingCall(second, () =>
        {
            reading.Release();
            go.Wait(Wait);
        });
        var thirdCall = LandingCall(third);
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 5 && (f.Flags & H2.EndStream) != 0);
        await server.Send(AnswerBytes(3, 2, settings: false));
        Assert.True(await reading.WaitAsync(Wait));
        var (before, headsBefore) = (Current(c).VectoredReads, Current(c).HeadReads);
        var last = AnswerBytes(5, 3, settings: false);
        await server.Send(last);
        // The kernel has it all: a wait on the socket's own events (each arrival of data; the rest may come only after a
        // window update, tens of milliseconds later on a busy machine).
        Assert.True(SocketBytes.WaitFor(Current(c).SocketForTests, last.Length, Wait, out var wakeUps), "the third answer never was whole in the client's socket");
        output.WriteLine($"whole in the socket after {wakeUps} wake-up(s)");
        Assert.Equal(last.Length, Current(c).SocketBytesAvailable);
        go.Set();

        Assert.Equal("answer 2", await secondCall.WaitAsync(Wait));
        Assert.Equal("answer 3", await thirdCall.WaitAsync(Wait));
        Assert.Equal(TensorCodec.Decode(Answer(16 * 1024).Tensors[0]).Tensor.ToFloat32Array(), third.Values);
        // The floats, the message's tail and the trailers in one call that filled the landing and the read buffer: either
        // after a read of the head up to the landing hint, or (when the read before it found its answer waiting) in the
        // same call as the head (HeadReads); never in more.
        Assert.Equal(1, Current(c).VectoredReads - before + (Current(c).HeadReads - headsBefore));
    }

    [Fact]
    public async Task Answers_waiting_whole_in_the_socket_are_received_in_one_call_head_floats_and_tail()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var shape = new Float32AnswerShape([1, 16, 1024]);
        byte[] AnswerBytes(int id, int seed, bool settings)
        {
            var m = Answer(16 * 1024);
            m.Hotkey = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
            m.Message = $"answer {seed}"; // the same length each time: the heads are alike, as an axon's are
            return Concat(settings ? Frame(H2.Settings, 0, 0, []) : [], Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Grpc(m.ToByteArray())), Trailers(id));
        }
        using var reading = new SemaphoreSlim(0);
        using var go = new SemaphoreSlim(0);
        Task<string> LandingCall(AnswerLanding landing, bool hold) =>
            c.CallAsync(BittensorMethod.Forward, new TensorMessage { Version = 150, Hotkey = "5Grw" }, Headers(), DateTime.UtcNow.Add(Wait), CancellationToken.None,
                a =>
                {
                    if (hold)
                    {
                        reading.Release();
                        go.Wait(Wait);
                    }
                    return landing.TryTake(a.Tensors[0]) ? a.Message : "not landed";
                }, landing);

        // The first answer tells the client where an answer's floats begin.
        var first = LandingCall(new AnswerLanding(shape), hold: false);
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 1 && (f.Flags & H2.EndStream) != 0);
        await server.Send(AnswerBytes(1, 1, settings: true));
        Assert.Equal("answer 1", await first.WaitAsync(Wait));

        // Three calls. Each reader holds the read loop until the next answer is whole in the client's socket, so the next
        // read finds it waiting (the second's after a zero-byte receive that finds it there, the third's at once, as the
        // second's was waiting too): each of those comes in one receive, its head into the read buffer, its floats into
        // its array, its tail behind them, and needs no other receive at all.
        var landings = new[] { new AnswerLanding(shape), new AnswerLanding(shape), new AnswerLanding(shape) };
        var calls = new[] { LandingCall(landings[0], hold: true), LandingCall(landings[1], hold: true), LandingCall(landings[2], hold: false) };
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 7 && (f.Flags & H2.EndStream) != 0);
        await server.Send(AnswerBytes(3, 2, settings: false));
        var (heads, vectored, landed) = (0L, 0L, 0L);
        for (var i = 0; i < 2; i++)
        {
            Assert.True(await reading.WaitAsync(Wait), $"answer {i + 2}'s reader never ran");
            if (i == 0) (heads, vectored, landed) = (Current(c).HeadReads, Current(c).VectoredReads, Current(c).BytesLandedDirectly);
            var next = AnswerBytes(5 + (2 * i), 3 + i, settings: false);
            await server.Send(next);
            Assert.True(SocketBytes.WaitFor(Current(c).SocketForTests, next.Length, Wait, out _), $"answer {i + 3} never was whole in the client's socket");
            Assert.Equal(next.Length, Current(c).SocketBytesAvailable);
            go.Release();
        }

        for (var i = 0; i < 3; i++) Assert.Equal($"answer {i + 2}", await calls[i].WaitAsync(Wait));
        var floats = TensorCodec.Decode(Answer(16 * 1024).Tensors[0]).Tensor.ToFloat32Array();
        foreach (var l in landings) Assert.Equal(floats, l.Values);
        // Answers 3 and 4: nothing but the head read, every float received into its array. (Answer 2 may come either way:
        // its frame start may be reached before its call is made, with no call in line; and its head is shorter than the
        // hint, which counted the SETTINGS frame in front of answer 1, so its bytes are moved back and it is read as after
        // one ordinary receive. The hint is right from then on.)
        Assert.Equal(heads + 2, Current(c).HeadReads);
        Assert.Equal(vectored, Current(c).VectoredReads);
        Assert.Equal(2L * 16 * 1024 * 4, Current(c).BytesLandedDirectly - landed);
    }

    [Fact]
    public async Task A_landing_call_gets_an_answer_in_many_padded_frames_exactly()
    {
        var expected = Answer(16 * 1024);
        var grpc = Grpc(expected.ToByteArray());
        var (answer, error, server) = await Scripted(id =>
        {
            var parts = new List<byte[]> { Frame(H2.Headers, H2.EndHeaders, id, Ok) };
            var rng = new Random(5);
            for (var at = 0; at < grpc.Length;)
            {
                var n = Math.Min(grpc.Length - at, rng.Next(1, 300));
                var pad = rng.Next(0, 40);
                parts.Add(Frame(H2.Data, H2.Padded, id, [(byte)pad, .. grpc.AsSpan(at, n), .. new byte[pad]]));
                at += n;
            }
            parts.Add(Trailers(id));
            return Concat([.. parts]);
        }, landing: [1, 16, 1024]);
        await using var _ = server;

        Assert.Null(error);
        Assert.Equal(expected, answer);
    }

    [Fact]
    public async Task A_call_over_the_peers_SETTINGS_MAX_CONCURRENT_STREAMS_waits_for_a_stream_to_end_then_goes()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var answer = Answer(1024);

        var first = Call(c);
        await server.ReadRequest();
        await server.Send(Frame(H2.Settings, 0, 0, [0, 3, 0, 0, 0, 1])); // SETTINGS_MAX_CONCURRENT_STREAMS = 1
        await server.ReadRequest(f => f.Type == H2.Settings && (f.Flags & H2.Ack) != 0); // the client has applied it
        var second = Call(c);
        await server.Send(Concat(Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, Grpc(answer.ToByteArray())), Trailers(1)));
        Assert.Equal(answer, await first.WaitAsync(Wait));
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
        await server.Send(Concat(Frame(H2.Headers, H2.EndHeaders, 3, Ok), Frame(H2.Data, 0, 3, Grpc(answer.ToByteArray())), Trailers(3)));

        Assert.Equal(answer, await second.WaitAsync(Wait));
        Assert.Equal(1, Current(c).PeakOpenStreams); // the second stream opened only once the first had ended
    }

    [Fact]
    public async Task A_call_waiting_for_a_stream_slot_ends_at_its_deadline_with_DeadlineExceeded()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);

        var first = Call(c);
        await server.ReadRequest();
        await server.Send(Frame(H2.Settings, 0, 0, [0, 3, 0, 0, 0, 1]));
        await server.ReadRequest(f => f.Type == H2.Settings && (f.Flags & H2.Ack) != 0);
        var waiting = c.CallAsync(BittensorMethod.Forward, new TensorMessage { Version = 150, Hotkey = "5Grw" }, Headers(),
            DateTime.UtcNow.AddMilliseconds(200), CancellationToken.None);

        var error = await Assert.ThrowsAsync<RpcException>(() => waiting.WaitAsync(Wait));
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Equal(1, Current(c).PeakOpenStreams);
        Assert.False(first.IsCompleted); // the open call is untouched
    }

    [Fact]
    public async Task A_reader_reads_an_answer_that_came_whole_in_one_buffered_frame_where_it_lies_and_the_trailers_decide()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var expected = Answer(1024); // 4 KB, sent with its headers and trailers in one write: buffered whole when read

        var ok = Read(c, CopyOut);
        await server.ReadRequest();
        await server.Send(Concat(Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, Grpc(expected.ToByteArray())), Trailers(1)));
        var copy = await ok.WaitAsync(Wait);

        Assert.Equal(expected.ToByteArray(), copy.Bytes);
        Assert.Same(Current(c).ReadBuffer, copy.Array); // read in the connection's read buffer: no copy, no pooled array
        Assert.Equal(1, Current(c).ReadsInPlace);

        // Read on arrival, but the trailers that follow still decide: a non-zero grpc-status drops what was read.
        var refused = Read(c, CopyOut);
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
        await server.Send(Concat(Frame(H2.Headers, H2.EndHeaders, 3, Ok), Frame(H2.Data, 0, 3, Grpc(expected.ToByteArray())), Trailers(3, 7, "no")));
        var error = await Assert.ThrowsAsync<RpcException>(() => refused.WaitAsync(Wait));

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Equal(2, Current(c).ReadsInPlace);
    }

    [Fact]
    public async Task A_reader_gets_the_answer_from_a_pooled_array_that_the_next_answer_reuses()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var expected1 = Answer(16 * 1024); // a 64 KB answer, as a [1, 16, 1024] float32 representation
        var expected2 = Answer(16 * 1024);
        expected2.Message = "second";

        var first = Read(c, CopyOut);
        await server.ReadRequest();
        await server.Send(Concat([Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok), .. TwoFrames(1, Grpc(expected1.ToByteArray())), Trailers(1)]));
        var copy1 = await first.WaitAsync(Wait);
        var second = Read(c, CopyOut);
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
        await server.Send(Concat([Frame(H2.Headers, H2.EndHeaders, 3, Ok), .. TwoFrames(3, Grpc(expected2.ToByteArray())), Trailers(3)]));
        var copy2 = await second.WaitAsync(Wait);

        Assert.Equal(expected1.ToByteArray(), copy1.Bytes);
        Assert.Equal(expected2.ToByteArray(), copy2.Bytes);
        // The first answer's array went back to the pool once read, and the second answer was read into it: no array
        // per answer (and why a reader must copy out what it keeps).
        Assert.NotNull(copy1.Array);
        Assert.Same(copy1.Array, copy2.Array);
    }

    [Fact]
    public async Task A_reader_that_throws_ends_its_call_with_Internal_and_the_connection_serves_the_next_call()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var answer = Answer(1024);

        var failing = Read<object>(c, _ => throw new InvalidOperationException("reader bug"));
        await server.ReadRequest();
        await server.Send(Concat(Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, Grpc(answer.ToByteArray())), Trailers(1)));
        var error = await Assert.ThrowsAsync<RpcException>(() => failing.WaitAsync(Wait));
        var next = Call(c);
        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
        await server.Send(Concat(Frame(H2.Headers, H2.EndHeaders, 3, Ok), Frame(H2.Data, 0, 3, Grpc(answer.ToByteArray())), Trailers(3)));

        Assert.Equal(StatusCode.Internal, error.StatusCode);
        Assert.Contains("reading the answer failed (InvalidOperationException)", error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("reader bug", error.Status.Detail, StringComparison.Ordinal); // the exception's text stays local
        Assert.Equal(answer, await next.WaitAsync(Wait));
    }

    [Fact]
    public async Task A_reader_gets_an_answer_over_the_pooled_size_whole_from_an_array_of_its_own()
    {
        await using var server = new ScriptedServer();
        using var c = Connect(server);
        var expected = Answer(512 * 1024); // 2 MB of floats: over the 1 MiB the pool serves
        var grpc = Grpc(expected.ToByteArray());

        var call = Read(c, CopyOut);
        await server.ReadRequest();
        var parts = new List<byte[]> { Frame(H2.Settings, 0, 0, []), Frame(H2.Headers, H2.EndHeaders, 1, Ok) };
        for (var at = 0; at < grpc.Length; at += 512 * 1024) parts.Add(Frame(H2.Data, 0, 1, grpc[at..Math.Min(grpc.Length, at + (512 * 1024))]));
        parts.Add(Trailers(1));
        await server.Send(Concat([.. parts]));
        var copy = await call.WaitAsync(Wait);

        Assert.Equal(expected.ToByteArray(), copy.Bytes);
    }

    [Fact]
    public async Task Answers_to_calls_made_after_each_read_loop_went_idle_come_in_one_receive_each_on_every_connection()
    {
        // Four connections, as a fan-out round's endpoints: each read loop reaches its frame start with no call open (the
        // round's answer taken, the next round's call not made yet) and waits there without receiving; the next answers,
        // sent by the four servers together, then come in one receive each: head, floats into the call's array, tail.
        var shape = new Float32AnswerShape([1, 16, 1024]);
        byte[] AnswerBytes(int id, int seed, bool settings)
        {
            var m = Answer(16 * 1024);
            m.Hotkey = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
            m.Message = $"answer {seed}"; // the same length each time: the heads are alike, as an axon's are
            return Concat(settings ? Frame(H2.Settings, 0, 0, []) : [], Frame(H2.Headers, H2.EndHeaders, id, Ok), Frame(H2.Data, 0, id, Grpc(m.ToByteArray())), Trailers(id));
        }
        var servers = Enumerable.Range(0, 4).Select(_ => new ScriptedServer()).ToArray();
        var clients = servers.Select(s => Connect(s)).ToArray();
        try
        {
            Task<string> LandingCall(IPeerConnection c, AnswerLanding landing) =>
                c.CallAsync(BittensorMethod.Forward, new TensorMessage { Version = 150, Hotkey = "5Grw" }, Headers(), DateTime.UtcNow.Add(Wait), CancellationToken.None,
                    a => landing.TryTake(a.Tensors[0]) ? a.Message : "not landed", landing);

            // Two answers on each connection first: the first tells where an answer's floats begin (the SETTINGS frame
            // in front of it makes its head longer), the second has the head every later answer has.
            var idle = new long[clients.Length];
            for (var round = 0; round < 2; round++)
            {
                var calls = clients.Select(c => LandingCall(c, new AnswerLanding(shape))).ToArray();
                var id = 1 + (2 * round);
                for (var i = 0; i < servers.Length; i++) await servers[i].ReadRequest(f => f.Type == H2.Data && f.Stream == id && (f.Flags & H2.EndStream) != 0);
                // While a call is open a read loop never counts an idle wait; it counts one once the answer is taken.
                for (var i = 0; i < clients.Length; i++) idle[i] = Current(clients[i]).IdleHeadWaits;
                for (var i = 0; i < servers.Length; i++) await servers[i].Send(AnswerBytes(id, round, settings: round == 0));
                foreach (var call in calls) Assert.Equal($"answer {round}", await call.WaitAsync(Wait));
            }
            // Every read loop has gone back to its frame start and is waiting there with no call open (an event of the
            // read loop, counted; waited for, not timed). Waited for on a pool thread: this method may be running on a
            // read loop's own thread (an answered call's continuation runs there), which must get back to its loop.
            for (var i = 0; i < clients.Length; i++)
            {
                var (c, seen) = (Current(clients[i]), idle[i]);
                Assert.True(await Task.Run(() => SpinWait.SpinUntil(() => c.IdleHeadWaits > seen, Wait)), $"read loop {i} never waited at its frame start with no call open");
            }
            var before = clients.Select(c => (Current(c).HeadReads, Current(c).VectoredReads, Current(c).BytesLandedDirectly, Current(c).ReadsInPlace)).ToArray();

            var landings = clients.Select(_ => new AnswerLanding(shape)).ToArray();
            var last = clients.Select((c, i) => LandingCall(c, landings[i])).ToArray();
            for (var i = 0; i < servers.Length; i++) await servers[i].ReadRequest(f => f.Type == H2.Data && f.Stream == 5 && (f.Flags & H2.EndStream) != 0);
            await Task.WhenAll(servers.Select(s => s.Send(AnswerBytes(5, 2, settings: false))));

            var floats = TensorCodec.Decode(Answer(16 * 1024).Tensors[0]).Tensor.ToFloat32Array();
            for (var i = 0; i < clients.Length; i++)
            {
                Assert.Equal("answer 2", await last[i].WaitAsync(Wait));
                Assert.Equal(floats, landings[i].Values);
                var now = Current(clients[i]);
                output.WriteLine($"connection {i}: head reads {before[i].HeadReads} -> {now.HeadReads}, vectored {before[i].VectoredReads} -> {now.VectoredReads}, idle waits {now.IdleHeadWaits}, empty waits {now.EmptyHeadWaits}, hint {now.LandingHint}");
                // The head came in the same receive as the floats (a head read), never in a receive of its own; every float
                // went from the socket into the call's array; nothing was read in place from the read buffer.
                Assert.Equal(before[i].HeadReads + 1, now.HeadReads);
                Assert.Equal(before[i].BytesLandedDirectly + (16 * 1024 * 4), now.BytesLandedDirectly);
                Assert.Equal(before[i].ReadsInPlace, now.ReadsInPlace);
            }
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
            foreach (var s in servers) await s.DisposeAsync();
        }
    }
}

/// <summary>
/// Every test of <see cref="LeanClientTests"/> again with the connections on the client's own I/O loop
/// (<c>bittensor.dendrite.io = loop</c>, <see cref="ClientIoLoop"/>; on a platform without it the option falls back to
/// .NET's sockets and these run that path).
/// </summary>
[Collection(AnswerPoolCollection.Name)]
public sealed class LeanClientLoopTests(Xunit.Abstractions.ITestOutputHelper output) : LeanClientTests(output)
{
    protected override bool IoLoop => true;
}
