using System.Buffers.Binary;
using System.Collections.Concurrent;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean server's output bound (<see cref="H2Output.AnswerCap"/>, <see cref="H2Output.Keep"/>) over real loopback
/// sockets: answers made while the peer does not take what was sent wait unserialized instead of growing the output,
/// so the output's buffer grows a few times and is then reused (no large array allocated per burst); each answer still
/// arrives whole once the peer reads. The clock is driven (it never moves), so no data-rate rule fires.
/// </summary>
public sealed class LeanOutputTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static byte[] Request() =>
        RawH2.Block([(":method", "POST"), (":scheme", "http"), (":path", "/Bittensor/Forward"), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers")]);

    [Fact]
    public async Task Answers_made_while_the_peer_reads_nothing_wait_unserialized_and_the_output_stays_within_what_it_keeps()
    {
        const int calls = 48;
        const int answerBytes = 256 * 1024; // 48 answers: 12 MiB, far more than the kept output (1 MiB) and the socket buffers
        var transport = new LeanServerTransport(new DrivenClock());
        var service = new Gated(calls, answerBytes);
        await using var binding = await transport.BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 16 * 1024 * 1024, calls, 64 * 1024,
            new ServerLimits(2048, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true)), service, CancellationToken.None);
        // Windows wide open (flow control lets every answer go at once); a 4 KiB receive buffer, and nothing read until
        // every answer is made: what the kernel does not take waits in the server.
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port, initialWindow: int.MaxValue, receiveBuffer: 4096);
        await h2.Frame(H2.WindowUpdate, 0, 0, BinaryPrimitives.ReverseEndianness(int.MaxValue - 65_535).ToBytes());
        for (var i = 0; i < calls; i++)
        {
            await h2.Frame(H2.Headers, H2.EndHeaders, (2 * i) + 1, Request(), flush: false);
            await h2.Frame(H2.Data, H2.EndStream, (2 * i) + 1, RawH2.Message(new TensorMessage { Hotkey = $"big-{i}" }), flush: false);
        }
        await h2.Flush();

        // Every call is in its handler (held at the gate, each counted in the calls held). Once the gate opens, a call
        // stops being held when its answer is written into the output or held back: at 0 every answer exists.
        await service.AllArrived.Task.WaitAsync(Wait);
        service.Gate.SetResult();
        await ((LeanServer)binding).WhenCallsHeldAtMost(0).WaitAsync(Wait);

        // Now the peer reads: every answer arrives whole, each stream ends with grpc-status 0.
        var data = new Dictionary<int, MemoryStream>();
        var headers = new HashSet<int>();
        var finished = new Dictionary<int, string>();
        while (finished.Count < calls)
        {
            var f = await h2.Read() ?? throw new InvalidOperationException($"the server closed the connection after {finished.Count} answers");
            Assert.NotEqual(H2.RstStream, f.Type);
            Assert.NotEqual(H2.GoAway, f.Type);
            if (f.Type == H2.Data) (data.TryGetValue(f.Stream, out var d) ? d : data[f.Stream] = new MemoryStream()).Write(f.Payload);
            if (f.Type != H2.Headers) continue;
            if (headers.Add(f.Stream)) continue;
            Assert.Equal(H2.EndHeaders | H2.EndStream, f.Flags);
            finished.Add(f.Stream, "ended");
        }
        for (var i = 0; i < calls; i++)
        {
            var bytes = data[(2 * i) + 1].ToArray();
            Assert.Equal(5 + service.AnswerSize(i), bytes.Length);
            var answer = TensorMessage.Parser.ParseFrom(bytes.AsSpan(5));
            Assert.Equal($"Forward:big-{i}", answer.Message);
            // Serialized before its buffer was given back (a cleared buffer would arrive as zeros).
            var tensor = answer.Tensors.Single().Buffer.Span;
            Assert.Equal(answerBytes, tensor.Length);
            Assert.Equal(-1, tensor.IndexOfAnyExcept(Gated.Pattern(i)));
        }
        Assert.Equal(calls, service.Disposed);

        // The bound: no output buffer past the kept size, and each of the connection's two buffers grew at most
        // 64 KiB -> 128 -> 256 -> 512 KiB -> 1 MiB (before, 12 MiB of answers grew the output past 8 MiB).
        Assert.InRange(transport.LargestOutput, H2Output.Initial, H2Output.Keep);
        Assert.InRange(transport.OutputsGrown, 1, 8);
        Assert.Empty(service.Refusals);

        // After the burst the connection holds only its two first (64 KiB) buffers: the 1 MiB ones it borrowed went back
        // to the transport after their sends. A PING sent now is acknowledged in a send after the last answers' (each
        // buffer is given back right after its send, before the next send starts), so its ACK marks that point.
        await h2.Frame(H2.Ping, 0, 0, new byte[8]);
        while (true)
        {
            var f = await h2.Read().WaitAsync(Wait) ?? throw new InvalidOperationException("the server closed the connection before acknowledging the PING");
            if (f.Type == H2.Ping && (f.Flags & H2.Ack) != 0) break;
        }
        Assert.Equal(0, transport.OutputsLent);
    }

    [Fact]
    public async Task Held_back_answers_whose_streams_the_peer_resets_are_dropped_with_their_buffers_and_the_connection_goes_on()
    {
        const int calls = 48;
        const int answerBytes = 256 * 1024;
        var transport = new LeanServerTransport(new DrivenClock());
        var service = new Gated(calls, answerBytes);
        await using var binding = await transport.BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 16 * 1024 * 1024, calls + 1, 64 * 1024,
            new ServerLimits(2048, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true)), service, CancellationToken.None);
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port, initialWindow: int.MaxValue, receiveBuffer: 4096);
        await h2.Frame(H2.WindowUpdate, 0, 0, BinaryPrimitives.ReverseEndianness(int.MaxValue - 65_535).ToBytes());
        for (var i = 0; i < calls; i++)
        {
            await h2.Frame(H2.Headers, H2.EndHeaders, (2 * i) + 1, Request(), flush: false);
            await h2.Frame(H2.Data, H2.EndStream, (2 * i) + 1, RawH2.Message(new TensorMessage { Hotkey = $"big-{i}" }), flush: false);
        }
        await h2.Flush();
        await service.AllArrived.Task.WaitAsync(Wait);
        service.Gate.SetResult();
        await ((LeanServer)binding).WhenCallsHeldAtMost(0).WaitAsync(Wait);

        // 12 MiB of answers are made; the output (2 x 1 MiB), the server's socket buffer (at most 4 MiB, net.ipv4.tcp_wmem)
        // and this side's 4 KiB hold half of that at most, so about 24 are held back. The peer cancels every stream, then
        // pings: frames are handled in order, so the PING's ACK (a small frame, never held back) means every reset was
        // handled; a reset drops a held-back answer without serializing the next ones.
        for (var i = 0; i < calls; i++)
            await h2.Frame(H2.RstStream, 0, (2 * i) + 1, BinaryPrimitives.ReverseEndianness((int)H2.Cancel).ToBytes(), flush: false);
        await h2.Frame(H2.Ping, 0, 0, "afterrst"u8.ToArray());
        var data = new Dictionary<int, MemoryStream>();
        var headers = new HashSet<int>();
        var finished = new HashSet<int>();
        var acked = false;
        // Until the ACK, and until every answer that began has ended (answers in the output or the socket go whole).
        while (!acked || headers.Count > finished.Count)
        {
            var f = await h2.Read() ?? throw new InvalidOperationException($"the server closed the connection after {finished.Count} answers");
            Assert.NotEqual(H2.GoAway, f.Type);
            Assert.NotEqual(H2.RstStream, f.Type);
            if (f.Type == H2.Ping && (f.Flags & H2.Ack) != 0) acked = true;
            if (f.Type == H2.Data) (data.TryGetValue(f.Stream, out var d) ? d : data[f.Stream] = new MemoryStream()).Write(f.Payload);
            if (f.Type == H2.Headers && !headers.Add(f.Stream)) finished.Add(f.Stream);
        }
        // Every answer's pooled parts went back, the dropped ones' included, each once; what left before its reset
        // arrived whole, and some were dropped.
        Assert.Equal(calls, service.Disposed);
        Assert.InRange(finished.Count, 0, calls * 3 / 4);
        for (var i = 0; i < calls; i++)
        {
            var id = (2 * i) + 1;
            if (!finished.Contains(id)) continue;
            var tensor = TensorMessage.Parser.ParseFrom(data[id].ToArray().AsSpan(5)).Tensors.Single().Buffer.Span;
            Assert.Equal(-1, tensor.IndexOfAnyExcept(Gated.Pattern(i)));
        }

        // The connection goes on: nothing is held back or parked any more, and a new call is served.
        const int next = (2 * calls) + 1;
        await h2.Frame(H2.Headers, H2.EndHeaders, next, Request(), flush: false);
        await h2.Frame(H2.Data, H2.EndStream, next, RawH2.Message(new TensorMessage { Hotkey = $"big-{calls}" }));
        var (_, last, trailers) = await h2.Response(next);
        Assert.Equal(-1, TensorMessage.Parser.ParseFrom(last.AsSpan(5)).Tensors.Single().Buffer.Span.IndexOfAnyExcept(Gated.Pattern(calls)));
        Assert.Contains(("grpc-status", "0"), trailers);
        Assert.Equal(calls + 1, service.Disposed);
        Assert.InRange(transport.LargestOutput, H2Output.Initial, H2Output.Keep);
    }

    /// <summary>
    /// Holds every call at a gate until <c>calls</c> have arrived; answers a tensor of <c>answerBytes</c> whose bytes (a
    /// pattern of the call's number) live in an array registered for disposal, cleared when disposed: an answer
    /// serialized after its disposal arrives as zeros.
    /// </summary>
    private sealed class Gated(int calls, int answerBytes) : IBittensorService
    {
        private int _arrived;
        private int _disposed;

        public ConcurrentQueue<TransportRefusal> Refusals { get; } = new();

        public TaskCompletionSource AllArrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Disposed => Volatile.Read(ref _disposed);

        public static byte Pattern(int call) => (byte)((call % 251) + 1);

        public int AnswerSize(int i) => Answer($"big-{i}", new byte[answerBytes]).CalculateSize();

        private static TensorMessage Answer(string hotkey, byte[] bytes)
        {
            var m = new TensorMessage { Version = 150, Message = $"Forward:{hotkey}" };
            m.Tensors.Add(new Tensor { Buffer = UnsafeByteOperations.UnsafeWrap(bytes) });
            return m;
        }

        public async Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            if (Interlocked.Increment(ref _arrived) == calls) AllArrived.SetResult();
            await Gate.Task;
            var bytes = new byte[answerBytes];
            bytes.AsSpan().Fill(Pattern(int.Parse(request.Hotkey.AsSpan(4), System.Globalization.CultureInfo.InvariantCulture)));
            call.RegisterForDispose!(new Clears(this, bytes));
            return Answer(request.Hotkey, bytes);
        }

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(HeaderDecision.Proceed(null));

        public void OnRefused(TransportRefusal refusal) => Refusals.Enqueue(refusal);

        private sealed class Clears(Gated owner, byte[] bytes) : IDisposable
        {
            public void Dispose()
            {
                Array.Clear(bytes);
                Interlocked.Increment(ref owner._disposed);
            }
        }
    }
}
