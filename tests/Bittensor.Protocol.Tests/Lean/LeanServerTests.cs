using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean HTTP/2 server over real loopback sockets (port 0): hostile frames and HPACK get the RFC 9113 error (GOAWAY
/// or RST_STREAM with its code) while the server keeps serving other connections (checked with the project's gRPC
/// client each time), and gRPC-level refusals get their status. Raw frames come from <see cref="RawH2"/>.
/// </summary>
public sealed class LeanServerTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly EchoService _service = new();
    private IServerBinding _binding = null!;
    private readonly LeanServerTransport _transport = new();

    private int Port => _binding.Endpoint.Port;

    public async Task InitializeAsync() =>
        _binding = await _transport.BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8, 64 * 1024,
            new ServerLimits(2048, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true)), _service, CancellationToken.None);

    public async Task DisposeAsync() => await _binding.DisposeAsync();

    /// <summary>Answers the caller's hotkey back in the message field; refuses "refuse-me" from the headers.</summary>
    private sealed class EchoService : IBittensorService
    {
        public ConcurrentQueue<TransportRefusal> Refusals { get; } = new();

        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call) =>
            Task.FromResult(new TensorMessage { Version = 150, Message = $"{method}:{request.Hotkey}" });

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(headers.GetValue("x-refuse") is not null
                ? HeaderDecision.Refuse(new Status(StatusCode.Unauthenticated, "refused from the headers"))
                : HeaderDecision.Proceed(null));

        public void OnRefused(TransportRefusal refusal) => Refusals.Enqueue(refusal);
    }

    private async Task AssertStillServing()
    {
        using var connection = GrpcClientTransport.Instance.Connect("127.0.0.1", Port, TestChannel.Options);
        var answer = await connection.CallAsync(BittensorMethod.Forward, new TensorMessage { Hotkey = "still" }, new Metadata(),
            DateTime.UtcNow.Add(Wait), CancellationToken.None);
        Assert.Equal("Forward:still", answer.Message);
    }

    private static byte[] Request(string path = "/Bittensor/Forward", params (string Name, string Value)[] extra) =>
        RawH2.Block([(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"), ("content-type", "application/grpc"),
            ("te", "trailers"), .. extra]);

    private static byte[] Message(TensorMessage m) => RawH2.Message(m);

    [Fact]
    public async Task A_raw_call_gets_headers_data_and_ok_trailers_and_ping_is_answered()
    {
        await using var h2 = await RawH2.Connect(Port);
        await h2.Frame(H2.Ping, 0, 0, "12345678"u8.ToArray());
        var ping = await h2.Until(f => f.Type == H2.Ping);
        await h2.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        await h2.Frame(H2.Data, H2.EndStream, 1, Message(new TensorMessage { Hotkey = "raw" }));

        var (headers, data, trailers) = await h2.Response(1);

        Assert.Contains((":status", "200"), headers);
        Assert.Contains(("content-type", "application/grpc"), headers);
        Assert.Equal("Forward:raw", TensorMessage.Parser.ParseFrom(data.AsSpan(5)).Message);
        Assert.Equal([("grpc-status", "0")], trailers);
        Assert.Equal(H2.Ack, ping.Flags);
        Assert.Equal("12345678"u8.ToArray(), ping.Payload);
    }

    [Fact]
    public async Task An_answer_larger_than_the_clients_window_waits_for_window_updates()
    {
        var service = new BigAnswer();
        await using var binding = await _transport.BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8), service, CancellationToken.None);
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port, initialWindow: 1000);
        await h2.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        await h2.Frame(H2.Data, H2.EndStream, 1, Message(new TensorMessage()));

        // 1000 bytes arrive, then nothing until the window opens (the trailers wait too).
        var first = await h2.Until(f => f.Type == H2.Data);
        Assert.Equal(1000, first.Payload.Length);
        await h2.Frame(H2.WindowUpdate, 0, 1, BinaryPrimitives.ReverseEndianness(200_000).ToBytes());
        await h2.Frame(H2.WindowUpdate, 0, 0, BinaryPrimitives.ReverseEndianness(200_000).ToBytes());
        var (_, data, trailers) = await h2.Response(1, alreadyRead: first.Payload);

        Assert.Equal(100_000, TensorMessage.Parser.ParseFrom(data.AsSpan(5)).Tensors[0].Buffer.Length);
        Assert.Equal([("grpc-status", "0")], trailers);
    }

    [Fact]
    public async Task Calls_behind_an_answer_waiting_for_the_window_run_only_once_it_has_gone()
    {
        var service = new BigAnswer();
        await using var binding = await _transport.BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8), service, CancellationToken.None);
        // Stream windows of 1 MiB; the connection's window stays at its 65,535 bytes, less than one 100 KB answer.
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port, initialWindow: 1024 * 1024);
        await h2.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        await h2.Frame(H2.Data, H2.EndStream, 1, Message(new TensorMessage()));
        // The answer's first 65,535 bytes (frames of at most 16 KiB), then it waits for the connection's window.
        var first = new MemoryStream();
        while (first.Length < 65535) first.Write((await h2.Until(f => f.Type == H2.Data && f.Stream == 1)).Payload);
        Assert.Equal(65535, first.Length);

        // A second call, then a PING: its ACK leaves after the read that carried the call has run its ready calls.
        await h2.Frame(H2.Headers, H2.EndHeaders, 3, Request(), flush: false);
        await h2.Frame(H2.Data, H2.EndStream, 3, Message(new TensorMessage()), flush: false);
        await h2.Frame(H2.Ping, 0, 0, "parked!!"u8.ToArray());
        await h2.Until(f => f.Type == H2.Ping);
        Assert.Equal(1, service.Handled); // parked: its answer could not have been sent

        await h2.Frame(H2.WindowUpdate, 0, 0, BinaryPrimitives.ReverseEndianness(1_000_000).ToBytes());
        var (_, data1, trailers1) = await h2.Response(1, alreadyRead: first.ToArray());
        var (_, data3, trailers3) = await h2.Response(3);

        Assert.Equal(100_000, TensorMessage.Parser.ParseFrom(data1.AsSpan(5)).Tensors[0].Buffer.Length);
        Assert.Equal(100_000, TensorMessage.Parser.ParseFrom(data3.AsSpan(5)).Tensors[0].Buffer.Length);
        Assert.Equal([("grpc-status", "0")], trailers1);
        Assert.Equal([("grpc-status", "0")], trailers3);
        Assert.Equal(2, service.Handled);
    }

    private sealed class BigAnswer : IBittensorService
    {
        private int _handled;

        public int Handled => Volatile.Read(ref _handled);

        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            Interlocked.Increment(ref _handled);
            var m = new TensorMessage();
            m.Tensors.Add(new Tensor { Buffer = ByteString.CopyFrom(new byte[100_000]) });
            return Task.FromResult(m);
        }
    }

    [Fact]
    public async Task Unknown_paths_wrong_content_types_and_header_refusals_get_trailers_only_statuses()
    {
        await using var h2 = await RawH2.Connect(Port);
        await h2.Frame(H2.Headers, H2.EndHeaders | H2.EndStream, 1, Request("/Other/Thing"));
        await h2.Frame(H2.Headers, H2.EndHeaders | H2.EndStream, 3, RawH2.Block([(":method", "POST"), (":scheme", "http"), (":path", "/Bittensor/Forward"),
            ("content-type", "text/plain")]));
        await h2.Frame(H2.Headers, H2.EndHeaders, 5, Request(extra: ("x-refuse", "1")));

        var unknown = await h2.TrailersOnly(1);
        var wrongType = await h2.TrailersOnly(3);
        var refused = await h2.TrailersOnly(5);

        Assert.Contains(("grpc-status", "12"), unknown);
        Assert.Contains((":status", "415"), wrongType);
        Assert.Contains(("grpc-status", "16"), refused);
        Assert.Contains(("grpc-message", "refused from the headers"), refused);
        // The refused call's body was never sent: the server tells the client not to (RST_STREAM NO_ERROR).
        Assert.Equal(H2.NoError, BinaryPrimitives.ReadUInt32BigEndian((await h2.Until(f => f.Type == H2.RstStream && f.Stream == 5)).Payload));
    }

    [Fact]
    public async Task A_length_prefix_over_the_forward_limit_is_ResourceExhausted_before_the_body_arrives()
    {
        await using var h2 = await RawH2.Connect(Port);
        await h2.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        var prefix = new byte[5];
        BinaryPrimitives.WriteUInt32BigEndian(prefix.AsSpan(1), 10_000_000);
        await h2.Frame(H2.Data, 0, 1, prefix);

        var trailers = await h2.TrailersOnly(1);

        Assert.Contains(("grpc-status", "8"), trailers);
        Assert.Contains(_service.Refusals, r => r.Reason == RefusalReasons.MessageSize);
        await AssertStillServing();
    }

    [Fact]
    public async Task Headers_over_the_limit_are_refused_on_their_stream_and_the_connection_goes_on()
    {
        await using var h2 = await RawH2.Connect(Port);
        await h2.Frame(H2.Headers, H2.EndHeaders | H2.EndStream, 1, Request(extra: ("x-padding", new string('p', 3000))));
        await h2.Frame(H2.Headers, H2.EndHeaders, 3, Request());
        await h2.Frame(H2.Data, H2.EndStream, 3, Message(new TensorMessage { Hotkey = "after" }));

        var refused = await h2.TrailersOnly(1);
        var (_, data, _) = await h2.Response(3);

        Assert.Contains(("grpc-status", "8"), refused);
        Assert.Equal("Forward:after", TensorMessage.Parser.ParseFrom(data.AsSpan(5)).Message);
        Assert.Contains(_service.Refusals, r => r.Reason == "request_headers_too_large");
    }

    public static TheoryData<string, uint> ConnectionErrors => new()
    {
        { "bad-huffman", H2.CompressionError },
        { "table-size-overflow", H2.CompressionError },
        { "data-before-headers", H2.ProtocolError },
        { "window-overflow", H2.FlowControlError },
        { "rst-flood", H2.EnhanceYourCalm },
        { "continuation-flood", H2.EnhanceYourCalm },
        { "frame-too-large", H2.FrameSizeError },
        { "headers-on-stream-0", H2.ProtocolError },
        { "even-stream", H2.ProtocolError },
        { "settings-not-first", H2.ProtocolError },
        { "bad-settings-length", H2.FrameSizeError },
        { "bad-max-frame-size", H2.ProtocolError },
        { "ping-on-stream", H2.ProtocolError },
        { "stream-id-going-back", H2.StreamClosed },
        { "continuation-without-headers", H2.ProtocolError },
        { "push-promise", H2.ProtocolError },
        { "bad-preface", H2.ProtocolError },
    };

    [Theory]
    [MemberData(nameof(ConnectionErrors))]
    public async Task Hostile_frames_end_their_connection_with_the_rfc_error_and_others_are_still_served(string attack, uint code)
    {
        await using var h2 = await RawH2.Connect(Port, handshake: attack is not ("settings-not-first" or "bad-preface"));
        switch (attack)
        {
            case "bad-huffman":
                // A literal name whose Huffman string holds EOS.
                await h2.Frame(H2.Headers, H2.EndHeaders, 1, [0x40, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x61]);
                break;
            case "table-size-overflow":
                await h2.Frame(H2.Headers, H2.EndHeaders, 1, [0x3F, 0xE2, 0x1F, .. Request()]);
                break;
            case "data-before-headers":
                await h2.Frame(H2.Data, 0, 1, [1, 2, 3]);
                break;
            case "window-overflow":
                await h2.Frame(H2.WindowUpdate, 0, 0, BinaryPrimitives.ReverseEndianness(0x7FFFFFFF).ToBytes());
                break;
            case "rst-flood":
                for (var id = 1; id < 2 * 5000; id += 2)
                {
                    await h2.Frame(H2.Headers, H2.EndHeaders, id, Request(), flush: false);
                    await h2.Frame(H2.RstStream, 0, id, [0, 0, 0, 8], flush: id % 64 == 1);
                }
                await h2.Flush();
                break;
            case "continuation-flood":
                await h2.Frame(H2.Headers, 0, 1, Request(), flush: false);
                for (var i = 0; i < 1000; i++) await h2.Frame(H2.Continuation, 0, 1, [], flush: false);
                await h2.Flush();
                break;
            case "frame-too-large":
                await h2.Frame(H2.Data, 0, 1, new byte[20_000]);
                break;
            case "headers-on-stream-0":
                await h2.Frame(H2.Headers, H2.EndHeaders, 0, Request());
                break;
            case "even-stream":
                await h2.Frame(H2.Headers, H2.EndHeaders, 2, Request());
                break;
            case "settings-not-first":
                await h2.Send(H2.Preface.ToArray());
                await h2.Frame(H2.Ping, 0, 0, new byte[8]);
                break;
            case "bad-settings-length":
                await h2.Frame(H2.Settings, 0, 0, [0, 4, 0, 0, 0]);
                break;
            case "bad-max-frame-size":
                await h2.Frame(H2.Settings, 0, 0, [0, 5, 0, 0, 0, 1]);
                break;
            case "ping-on-stream":
                await h2.Frame(H2.Ping, 0, 1, new byte[8]);
                break;
            case "stream-id-going-back":
                await h2.Frame(H2.Headers, H2.EndHeaders | H2.EndStream, 5, Request());
                await h2.Frame(H2.Headers, H2.EndHeaders | H2.EndStream, 3, Request());
                break;
            case "continuation-without-headers":
                await h2.Frame(H2.Continuation, H2.EndHeaders, 1, Request());
                break;
            case "push-promise":
                await h2.Frame(H2.PushPromise, H2.EndHeaders, 1, [0, 0, 0, 2, .. Request()]);
                break;
            case "bad-preface":
                await h2.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
                break;
        }

        var (error, debug) = await h2.GoAway();

        Assert.True(error == code, $"{attack}: GOAWAY {error} ({debug}), expected {code}");
        Assert.True(await h2.Closed(), $"{attack}: the connection stays open after GOAWAY");
        Assert.Contains(_service.Refusals, r => r.Method is null && r.Code == StatusCode.Internal && r.Reason == H2.Name(code));
        await AssertStillServing();
    }

    [Fact]
    public async Task Streams_beyond_max_concurrent_streams_are_refused_and_stream_errors_reset_only_their_stream()
    {
        await using var h2 = await RawH2.Connect(Port);
        // Eight open (the limit), a ninth refused.
        for (var id = 1; id <= 17; id += 2) await h2.Frame(H2.Headers, H2.EndHeaders, id, Request(), flush: false);
        await h2.Flush();
        var refused = await h2.Until(f => f.Type == H2.RstStream && f.Stream == 17);
        Assert.Equal(H2.RefusedStream, BinaryPrimitives.ReadUInt32BigEndian(refused.Payload));

        // A zero WINDOW_UPDATE on a stream and DATA past its end are stream errors.
        await h2.Frame(H2.WindowUpdate, 0, 1, [0, 0, 0, 0]);
        var reset = await h2.Until(f => f.Type == H2.RstStream && f.Stream == 1);
        Assert.Equal(H2.ProtocolError, BinaryPrimitives.ReadUInt32BigEndian(reset.Payload));
        // Malformed: upper-case header name.
        await h2.Frame(H2.Headers, H2.EndHeaders | H2.EndStream, 19, Request(extra: ("X-Upper", "1")));
        var malformed = await h2.Until(f => f.Type == H2.RstStream && f.Stream == 19);
        Assert.Equal(H2.ProtocolError, BinaryPrimitives.ReadUInt32BigEndian(malformed.Payload));

        // The connection still serves: stream 3 completes.
        await h2.Frame(H2.Data, H2.EndStream, 3, Message(new TensorMessage { Hotkey = "three" }));
        var (_, data, _) = await h2.Response(3);
        Assert.Equal("Forward:three", TensorMessage.Parser.ParseFrom(data.AsSpan(5)).Message);
    }

    [Fact]
    public async Task Streams_opened_before_the_client_acknowledged_the_settings_are_served_up_to_100()
    {
        // A client cannot know the limit of 8 before it has the SETTINGS (clients assume 100 until then): its early
        // streams are served, not refused. After its acknowledgement the limit holds (the test above).
        await using var h2 = await RawH2.Connect(Port, ackSettings: false);
        for (var id = 1; id <= 31; id += 2) await h2.Frame(H2.Headers, H2.EndHeaders, id, Request(), flush: false);
        for (var id = 1; id <= 31; id += 2) await h2.Frame(H2.Data, H2.EndStream, id, Message(new TensorMessage { Hotkey = $"s{id}" }), flush: false);
        await h2.Flush();
        var data = new Dictionary<int, MemoryStream>();
        var ended = new HashSet<int>();
        while (ended.Count < 16)
        {
            // Answers may interleave: every stream's frames are collected until each has ended.
            var f = await h2.Until(f => f.Stream != 0 && f.Type is H2.Headers or H2.Data or H2.RstStream);
            Assert.True(f.Type != H2.RstStream, $"stream {f.Stream} reset with {BinaryPrimitives.ReadUInt32BigEndian(f.Payload)}");
            if (f.Type == H2.Data) (data.TryGetValue(f.Stream, out var d) ? d : data[f.Stream] = new MemoryStream()).Write(f.Payload);
            if ((f.Flags & H2.EndStream) != 0) ended.Add(f.Stream);
        }
        for (var id = 1; id <= 31; id += 2)
            Assert.Equal($"Forward:s{id}", TensorMessage.Parser.ParseFrom(data[id].ToArray().AsSpan(5)).Message);
    }

    [Fact]
    public async Task A_grpc_net_client_and_concurrent_calls_are_served()
    {
        using var connection = GrpcClientTransport.Instance.Connect("127.0.0.1", Port, TestChannel.Options);
        var answers = await Task.WhenAll(Enumerable.Range(0, 64).Select(i => connection.CallAsync(i % 2 == 0 ? BittensorMethod.Forward : BittensorMethod.Backward,
            new TensorMessage { Hotkey = $"c{i}" }, new Metadata(), DateTime.UtcNow.Add(Wait), CancellationToken.None)));

        for (var i = 0; i < answers.Length; i++) Assert.Equal($"{(i % 2 == 0 ? "Forward" : "Backward")}:c{i}", answers[i].Message);
    }

    [Fact]
    public async Task A_silent_connection_is_closed_at_the_idle_timeout_and_gives_its_slot_back_while_one_with_a_call_open_stays()
    {
        // On a clock the test drives (the rule's sweep runs inside Advance): with a real 200 ms timeout, a busy machine
        // that paused this test between the busy connection's handshake and its call closed that connection as idle too.
        var clock = new DrivenClock();
        var service = new HeldService();
        // Two connections at most, 10 s idle timeout (swept every second of the driven clock).
        await using var binding = await new LeanServerTransport(clock).BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8,
            64 * 1024, new ServerLimits(2048, 2, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true) { IdleTimeout = TimeSpan.FromSeconds(10) }),
            service, CancellationToken.None);
        var port = binding.Endpoint.Port;

        // A peer that connects and sends nothing, not even the preface. It connects first: the server accepts in order, so
        // once the next connection's handshake is answered, this one is registered (from the clock's start).
        await using var silent = await RawH2.Connect(port, handshake: false);
        // A call held open in its handler: this connection has a call open when the time comes.
        await using var busy = await RawH2.Connect(port);
        await busy.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        await busy.Frame(H2.Data, H2.EndStream, 1, Message(new TensorMessage { Hotkey = "held" }));
        await service.Entered.Task.WaitAsync(Wait);

        // The idle timeout passes: the silent connection gets GOAWAY NO_ERROR "idle", then is closed.
        clock.Advance(TimeSpan.FromSeconds(11));
        var (code, debug) = await silent.GoAway();
        Assert.Equal(H2.NoError, code);
        Assert.Equal("idle", debug);
        Assert.True(await silent.Closed());
        Assert.Contains(service.Refusals, r => r.Method is null && r.Code == StatusCode.Unavailable && r.Reason == RefusalReasons.Idle);

        // Its slot is free again: a new connection is served beside the busy one (two at most).
        using (var connection = GrpcClientTransport.Instance.Connect("127.0.0.1", port, TestChannel.Options))
        {
            service.Release();
            var answer = await connection.CallAsync(BittensorMethod.Forward, new TensorMessage { Hotkey = "next" }, new Metadata(),
                DateTime.UtcNow.Add(Wait), CancellationToken.None);
            Assert.Equal("Forward:next", answer.Message);
        }
        // The busy connection was not closed while its call ran: the held call's answer arrives on it.
        var (_, data, trailers) = await busy.Response(1);
        Assert.Equal("Forward:held", TensorMessage.Parser.ParseFrom(data.AsSpan(5)).Message);
        Assert.Equal([("grpc-status", "0")], trailers);
    }

    /// <summary>Holds every call in its handler until <see cref="Release"/>.</summary>
    private sealed class HeldService : IBittensorService
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<TransportRefusal> Refusals { get; } = new();

        public void Release() => _gate.TrySetResult();

        public async Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            Entered.TrySetResult();
            await _gate.Task.ConfigureAwait(false);
            return new TensorMessage { Version = 150, Message = $"{method}:{request.Hotkey}" };
        }

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(HeaderDecision.Proceed(null));

        public void OnRefused(TransportRefusal refusal) => Refusals.Enqueue(refusal);
    }

    [Fact]
    public void Grpc_timeouts_parse_as_the_spec_says()
    {
        Assert.True(H2Connection.TryTimeout("100m", out var t) && t == TimeSpan.FromMilliseconds(100));
        Assert.True(H2Connection.TryTimeout("2S", out t) && t == TimeSpan.FromSeconds(2));
        Assert.True(H2Connection.TryTimeout("99999999H", out t) && t == TimeSpan.FromDays(365));
        Assert.False(H2Connection.TryTimeout("100", out _));
        Assert.False(H2Connection.TryTimeout("-1S", out _));
        Assert.False(H2Connection.TryTimeout("123456789S", out _));
    }
}

internal static class IntBytes
{
    public static byte[] ToBytes(this int value) => BitConverter.GetBytes(value);
}

/// <summary>A raw HTTP/2 client for tests: writes frames as given, reads frames as they come.</summary>
internal sealed class RawH2 : IAsyncDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly MemoryStream _pending = new();
    private readonly HpackDecoder _hpack = new();

    private RawH2(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    /// <param name="ackSettings">Read the server's SETTINGS and acknowledge them, as a client does (with <paramref name="handshake"/>).</param>
    /// <param name="receiveBuffer">This side's socket receive buffer (set before connecting, so the kernel does not grow it).</param>
    /// <param name="maxFrameSize">SETTINGS_MAX_FRAME_SIZE this side announces (default: none sent, 16 KiB).</param>
    public static async Task<RawH2> Connect(int port, bool handshake = true, int? initialWindow = null, bool ackSettings = true, int? receiveBuffer = null,
        int? maxFrameSize = null)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBuffer is { } size) socket.ReceiveBufferSize = size;
        await socket.ConnectAsync("127.0.0.1", port);
        var h2 = new RawH2(socket);
        if (handshake)
        {
            await h2.Send(H2.Preface.ToArray());
            var settings = new List<byte>();
            if (initialWindow is { } w)
            {
                settings.AddRange([0, 4]);
                settings.AddRange(BitConverter.GetBytes(BinaryPrimitives.ReverseEndianness(w)));
            }
            if (maxFrameSize is { } m)
            {
                settings.AddRange([0, 5]);
                settings.AddRange(BitConverter.GetBytes(BinaryPrimitives.ReverseEndianness(m)));
            }
            await h2.Frame(H2.Settings, 0, 0, [.. settings]);
            if (ackSettings)
            {
                var first = await h2.Read() ?? throw new InvalidOperationException("the server closed before its SETTINGS");
                Assert.True(first.Type == H2.Settings && first.Flags == 0, $"the server's first frame is type {first.Type} flags {first.Flags}, not SETTINGS");
                await h2.Frame(H2.Settings, H2.Ack, 0, []);
            }
        }
        return h2;
    }

    public record Frame_(byte Type, byte Flags, int Stream, byte[] Payload);

    /// <summary>This side's port (the server's connection of this client is the one whose peer port it is).</summary>
    public int LocalPort => ((System.Net.IPEndPoint)_socket.LocalEndPoint!).Port;

    /// <summary>A header block of literals without indexing (no Huffman).</summary>
    /// <summary>A gRPC length-prefixed message (uncompressed): the bytes of a request's DATA.</summary>
    public static byte[] Message(TensorMessage m)
    {
        var body = m.ToByteArray();
        var framed = new byte[5 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1), (uint)body.Length);
        body.CopyTo(framed, 5);
        return framed;
    }

    public static byte[] Block(IEnumerable<(string Name, string Value)> fields)
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

    public async Task Send(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    public async Task Frame(byte type, byte flags, int stream, byte[] payload, bool flush = true)
    {
        var header = new byte[9];
        H2Output.WriteFrameHeader(header, payload.Length, type, flags, stream);
        _pending.Write(header);
        _pending.Write(payload);
        if (flush) await Flush();
    }

    public async Task Flush()
    {
        var bytes = _pending.ToArray();
        _pending.SetLength(0);
        try
        {
            await Send(bytes);
        }
        catch (IOException)
        {
            // The server closed the connection mid-write (after its GOAWAY): what it said is still readable.
        }
    }

    /// <summary>The next frame, or null once the server closed the connection.</summary>
    public async Task<Frame_?> Read()
    {
        var header = new byte[9];
        if (!await Fill(header)) return null;
        var length = (header[0] << 16) | (header[1] << 8) | header[2];
        var payload = new byte[length];
        if (!await Fill(payload)) return null;
        return new Frame_(header[3], header[4], BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) & 0x7FFFFFFF, payload);
    }

    private async Task<bool> Fill(byte[] buffer)
    {
        try
        {
            await _stream.ReadExactlyAsync(buffer).AsTask().WaitAsync(Wait);
            return true;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            return false;
        }
    }

    public async Task<Frame_> Until(Func<Frame_, bool> match)
    {
        while (true)
        {
            var f = await Read() ?? throw new InvalidOperationException("connection closed before the frame came");
            if (f.Type == H2.GoAway && !match(f))
                throw new InvalidOperationException($"GOAWAY {BinaryPrimitives.ReadUInt32BigEndian(f.Payload.AsSpan(4))}: {Encoding.ASCII.GetString(f.Payload, 8, f.Payload.Length - 8)}");
            if (match(f)) return f;
        }
    }

    public async Task<(uint Code, string Debug)> GoAway()
    {
        var f = await Until(f => f.Type == H2.GoAway);
        return (BinaryPrimitives.ReadUInt32BigEndian(f.Payload.AsSpan(4)), Encoding.ASCII.GetString(f.Payload, 8, f.Payload.Length - 8));
    }

    /// <summary>True when the server closes the connection (reads end) — awaited, never timed.</summary>
    public async Task<bool> Closed()
    {
        while (await Read() is not null)
        {
        }
        return true;
    }

    private List<(string, string)> Fields(byte[] block)
    {
        var fields = new List<(string, string)>();
        _hpack.Decode(block, fields, 1 << 20);
        return fields;
    }

    /// <summary>A trailers-only answer on <paramref name="stream"/>: one HEADERS frame ending the stream.</summary>
    public async Task<List<(string, string)>> TrailersOnly(int stream)
    {
        var f = await Until(f => f.Type == H2.Headers && f.Stream == stream);
        Assert.Equal(H2.EndStream | H2.EndHeaders, f.Flags);
        return Fields(f.Payload);
    }

    /// <summary>HEADERS, all DATA, then trailers of <paramref name="stream"/> (other streams' frames are skipped).</summary>
    public async Task<(List<(string, string)> Headers, byte[] Data, List<(string, string)> Trailers)> Response(int stream, byte[]? alreadyRead = null)
    {
        var data = new MemoryStream();
        List<(string, string)>? headers = alreadyRead is null ? null : [];
        if (alreadyRead is not null) data.Write(alreadyRead);
        while (true)
        {
            var f = await Until(f => f.Stream == stream && f.Type is H2.Headers or H2.Data);
            if (f.Type == H2.Data)
            {
                data.Write(f.Payload);
                continue;
            }
            if (headers is null)
            {
                headers = Fields(f.Payload);
                continue;
            }
            return (headers, data.ToArray(), Fields(f.Payload));
        }
    }

    /// <summary>Drops the connection with a TCP reset (SO_LINGER 0: RST instead of FIN), as a crashed or killed peer's kernel may.</summary>
    public void Reset()
    {
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Close();
    }

    public async ValueTask DisposeAsync() => await _stream.DisposeAsync();
}
