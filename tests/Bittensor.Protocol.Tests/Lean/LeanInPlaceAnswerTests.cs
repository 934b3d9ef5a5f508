using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// Answers serialized in place around their pooled tensor buffer (session 22: <see cref="TensorCodec.RentFloat32"/>
/// leaves room around the buffer, the lean server writes the frames and the message's other fields there and sends from
/// that array instead of copying 64 KiB per answer into its output). The wire must not change: every frame of such an
/// answer is compared with the frames of the same answer sent by the copying path (the same message whose tensor is a
/// plain array), on the same connection, with the peer's default 16 KiB frames (the copying path is taken) and with a
/// 1 MiB SETTINGS_MAX_FRAME_SIZE (the in-place path is taken, as for this project's dendrite). Real loopback sockets.
/// </summary>
public sealed class LeanInPlaceAnswerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static byte[] Request() =>
        RawH2.Block([(":method", "POST"), (":scheme", "http"), (":path", "/Bittensor/Forward"), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers")]);

    [Theory]
    [InlineData(null, 0)] // the peer's frames are 16 KiB: the answer is split into DATA frames, copied
    [InlineData(1 << 20, 1)] // one DATA frame takes the answer: written in place
    public async Task An_answer_written_around_its_pooled_buffer_is_on_the_wire_byte_for_byte_the_copied_answer(int? maxFrame, int inPlace)
    {
        var transport = new LeanServerTransport(new DrivenClock());
        var pool = new CountingPool();
        var service = new Answers(pool);
        await using var binding = await transport.BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 16 * 1024 * 1024, 8, 64 * 1024,
            new ServerLimits(2048, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true)), service, CancellationToken.None);
        await using var h2 = await Connect(binding.Endpoint.Port, maxFrame);

        // One call at a time, each answer alone in its send (the in-place path needs an empty output): first the pooled
        // answer, then the same answer with its tensor in a plain array (the copying path), then a pooled one whose
        // message has fields after the tensor (return code, message).
        var pooled = await Call(h2, 1, "pooled:0");
        var copied = await Call(h2, 3, "copied:0");
        var pooledWithText = await Call(h2, 5, "pooled:1");
        var copiedWithText = await Call(h2, 7, "copied:1");

        Assert.Equal(Describe(copied), Describe(pooled));
        Assert.Equal(Describe(copiedWithText), Describe(pooledWithText));
        // The values arrive (a buffer returned to its pool before the send would be overwritten by the next rental).
        var answer = TensorMessage.Parser.ParseFrom(Data(pooled).AsSpan(5));
        Assert.Equal(Answers.Expected(0).ToByteArray(), answer.ToByteArray());
        Assert.Equal(inPlace * 2, transport.AnswersInPlace);

        // Every rented array went back to its pool after its send: a PING's ACK is sent after the last answer's send
        // ended (each output is reset, and an adopted array returned, right after its send and before the next).
        await PingAcknowledged(h2);
        Assert.Equal(2, pool.Rented);
        Assert.Equal(2, pool.Returned);
    }

    [Fact]
    public async Task Answers_that_share_a_send_with_one_written_in_place_arrive_whole_and_every_array_goes_back()
    {
        const int calls = 6;
        var transport = new LeanServerTransport(new DrivenClock());
        var pool = new CountingPool();
        var service = new Answers(pool);
        await using var binding = await transport.BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 16 * 1024 * 1024, calls, 64 * 1024,
            new ServerLimits(2048, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true)), service, CancellationToken.None);
        await using var h2 = await Connect(binding.Endpoint.Port, 1 << 20);

        // Six calls in one write: read together, answered in one turn. The first answer goes into the empty output in
        // place; the ones after it do not fit its array, which is then copied into the output's own buffer (and returned).
        for (var i = 0; i < calls; i++)
        {
            await h2.Frame(H2.Headers, H2.EndHeaders, (2 * i) + 1, Request(), flush: false);
            await h2.Frame(H2.Data, H2.EndStream, (2 * i) + 1, RawH2.Message(new TensorMessage { Hotkey = $"pooled:{i}" }), flush: false);
        }
        await h2.Flush();
        for (var i = 0; i < calls; i++)
        {
            var (headers, data, trailers) = await h2.Response((2 * i) + 1);
            Assert.Contains((":status", "200"), headers);
            Assert.Contains(("grpc-status", "0"), trailers);
            Assert.Equal(Answers.Expected(i).ToByteArray(), TensorMessage.Parser.ParseFrom(data.AsSpan(5)).ToByteArray());
        }
        Assert.InRange(transport.AnswersInPlace, 1, calls);
        await PingAcknowledged(h2);
        Assert.Equal(calls, pool.Rented);
        Assert.Equal(calls, pool.Returned);
    }

    [Fact]
    public async Task A_2021_python_grpcio_client_gets_its_answers_written_in_place_and_decodes_every_value()
    {
        // Debian's python3-grpcio (1.51) announces SETTINGS_MAX_FRAME_SIZE 4,194,303 and a 4 MiB stream window (session 23:
        // a raw listener read its first frames), not the 16 KiB default, so a 2021 peer's answer fits one DATA frame and
        // is written in place when the output is empty and the connection window open — grpcio opens it (WINDOW_UPDATE
        // +4,128,773) right after its first request, and a frame the server answers in the same read as a call (a
        // SETTINGS or PING acknowledgement) sends that call's answer by the copying path: on one connection 3 or 4 of 4
        // answers went in place (session 23). tests/python/bt2021_client.py, a real grpcio client, makes the calls one
        // after the other on one channel, decodes each answer (msgpack-numpy) and hashes every value: both paths' bytes
        // must decode the same.
        const int calls = 8;
        var transport = new LeanServerTransport(new DrivenClock());
        var pool = new CountingPool();
        await using var binding = await transport.BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 16 * 1024 * 1024, 8, 64 * 1024,
            new ServerLimits(2048, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true)), new Answers(pool), CancellationToken.None);
        var (exit, stdout, stderr) = await Task.Run(() => PythonInteropTests.Run(
            Path.Combine(PythonInteropTests.RepoRoot(), "tests", "python", "bt2021_client.py"),
            "--endpoint", $"127.0.0.1:{binding.Endpoint.Port}", "--hotkey", "pooled:0", "--signature", "unchecked", "--tokens", "4,5,6",
            "--calls", calls.ToString(CultureInfo.InvariantCulture)));
        Assert.True(exit == 0, $"bt2021_client.py exited {exit}: {stderr.Trim()}");
        var reply = System.Text.Json.JsonDocument.Parse(stdout).RootElement;
        Assert.Equal([1, 16, 1024], reply.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        var values = new float[16 * 1024];
        for (var k = 0; k < values.Length; k++) values[k] = k * 1e-6f; // Answers.Expected(0)
        var sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan())));
        Assert.Equal(Enumerable.Repeat<(string?, string?)>(("OK", sha256), calls),
            reply.GetProperty("answers").EnumerateArray().Select(e => (e.GetProperty("grpc_status").GetString(), e.GetProperty("sha256").GetString())));
        Assert.InRange(transport.AnswersInPlace, 1, calls);
        Assert.Equal(calls, pool.Rented);
    }

    // Windows wide open, as this project's dendrite opens them: a 64 KiB answer fits them whole.
    private static async Task<RawH2> Connect(int port, int? maxFrame)
    {
        var h2 = await RawH2.Connect(port, initialWindow: int.MaxValue, maxFrameSize: maxFrame);
        await h2.Frame(H2.WindowUpdate, 0, 0, BinaryPrimitives.ReverseEndianness(int.MaxValue - 65_535).ToBytes());
        // Everything the handshake made the server write (its SETTINGS ACK) is sent before the first call: an answer
        // goes in place only into an empty output.
        await PingAcknowledged(h2);
        return h2;
    }

    private static async Task<List<RawH2.Frame_>> Call(RawH2 h2, int stream, string hotkey)
    {
        await h2.Frame(H2.Headers, H2.EndHeaders, stream, Request(), flush: false);
        await h2.Frame(H2.Data, H2.EndStream, stream, RawH2.Message(new TensorMessage { Hotkey = hotkey }));
        var frames = new List<RawH2.Frame_>();
        var headers = 0;
        while (headers < 2)
        {
            var f = await h2.Read().WaitAsync(Wait) ?? throw new InvalidOperationException("the server closed the connection");
            if (f.Stream != stream) continue;
            frames.Add(f);
            if (f.Type == H2.Headers) headers++;
        }
        return frames;
    }

    private static async Task PingAcknowledged(RawH2 h2)
    {
        await h2.Frame(H2.Ping, 0, 0, new byte[8]);
        while (true)
        {
            var f = await h2.Read().WaitAsync(Wait) ?? throw new InvalidOperationException("the server closed the connection before acknowledging the PING");
            if (f.Type == H2.Ping && (f.Flags & H2.Ack) != 0) return;
        }
    }

    // Type, flags and payload of every frame of a stream (the stream id aside: it differs by design).
    private static List<string> Describe(List<RawH2.Frame_> frames) =>
        [.. frames.Select(f => $"{f.Type}/{f.Flags}/{f.Payload.Length}/{Convert.ToHexString(f.Payload)}")];

    private static byte[] Data(List<RawH2.Frame_> frames) => [.. frames.Where(f => f.Type == H2.Data).SelectMany(f => f.Payload)];

    /// <summary>
    /// Answers <c>pooled:i</c> with a tensor rented by <see cref="TensorCodec.RentFloat32"/> (registered for disposal, as
    /// the axon's inline model path does) and <c>copied:i</c> with the same message whose tensor buffer is a plain array;
    /// odd i also carry fields after the tensor.
    /// </summary>
    private sealed class Answers(CountingPool pool) : IBittensorService
    {
        private static readonly long[] Shape = [1, 16, 1024];

        public static TensorMessage Expected(int i)
        {
            var values = new float[16 * 1024];
            for (var k = 0; k < values.Length; k++) values[k] = (i * 1e-3f) + (k * 1e-6f);
            return Shell(i, TensorCodec.ToTensor(values, Shape, Modality.Tensor));
        }

        private static TensorMessage Shell(int i, Tensor tensor)
        {
            var m = new TensorMessage { Version = 150, Hotkey = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty" };
            m.Tensors.Add(tensor);
            if (i % 2 == 1)
            {
                m.ReturnCode = ReturnCode.Success;
                m.Message = $"answer {i}";
            }
            return m;
        }

        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            var (kind, number) = (request.Hotkey.Split(':')[0], int.Parse(request.Hotkey.Split(':')[1], CultureInfo.InvariantCulture));
            var expected = Expected(number);
            if (kind == "copied") return Task.FromResult(Shell(number, expected.Tensors[0].Clone()));
            var pooled = TensorCodec.RentFloat32(Shape, Modality.Tensor, pool);
            expected.Tensors[0].Buffer.Span[^pooled.Elements.Length..].CopyTo(pooled.Elements.Span);
            call.RegisterForDispose!(pooled);
            return Task.FromResult(Shell(number, pooled.Tensor));
        }

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(HeaderDecision.Proceed(null));
    }

    /// <summary>The shared pool, counting what was rented from it and given back.</summary>
    private sealed class CountingPool : ArrayPool<byte>
    {
        private int _rented;
        private int _returned;

        public int Rented => Volatile.Read(ref _rented);

        public int Returned => Volatile.Read(ref _returned);

        public override byte[] Rent(int minimumLength)
        {
            Interlocked.Increment(ref _rented);
            return Shared.Rent(minimumLength);
        }

        public override void Return(byte[] array, bool clearArray = false)
        {
            Interlocked.Increment(ref _returned);
            // Overwritten on return: bytes sent from an array already returned would arrive changed.
            array.AsSpan().Fill(0xEE);
            Shared.Return(array);
        }
    }
}
