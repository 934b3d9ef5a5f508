using System.Buffers.Binary;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean server's calls-in-flight count (<see cref="ServerTransportOptions.MaxCallsInFlight"/>) over real loopback
/// sockets: calls a peer holds and then drops (TCP reset, close, RST_STREAM) give their slots back, so a long-running
/// axon does not go on shedding every call; a peer that stops reading (its windows closed) does not hold slots either.
/// Every state is reached by an event the test awaits (the model's entry, a frame, the count's own signal), never by a
/// sleep; nothing is timed.
/// </summary>
public sealed class CallsInFlightTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly LeanServerTransport _transport = new();

    /// <summary>Calls from hotkey "hold" wait in the model until <see cref="Open"/>; others are answered at once (synchronously).</summary>
    private sealed class GateService : IBittensorService
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SemaphoreSlim Entered { get; } = new(0);

        public void Open() => _gate.TrySetResult();

        /// <summary>A call with header x-block waits in its header check, on the connection's runner, until <see cref="OpenCheck"/>.</summary>
        public ManualResetEventSlim CheckGate { get; } = new(false);

        public SemaphoreSlim CheckEntered { get; } = new(0);

        public void OpenCheck() => CheckGate.Set();

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken)
        {
            if (headers.GetValue("x-block") is not null)
            {
                CheckEntered.Release();
                CheckGate.Wait(Wait, CancellationToken.None);
            }
            return ValueTask.FromResult(HeaderDecision.Proceed(null));
        }

        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            var answer = new TensorMessage { Version = 150, Message = $"{method}:{request.Hotkey}" };
            if (request.Hotkey != "hold") return Task.FromResult(answer);
            Entered.Release();
            return _gate.Task.ContinueWith(_ => answer, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
    }

    private async Task<LeanServer> Bind(IBittensorService service, int limit) =>
        (LeanServer)await _transport.BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8, 64 * 1024,
            new ServerLimits(2048, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true)) { MaxCallsInFlight = limit }, service, CancellationToken.None);

    private static byte[] Request(bool blockCheck = false) =>
        RawH2.Block([(":method", "POST"), (":scheme", "http"), (":path", "/Bittensor/Forward"), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers"), .. (blockCheck ? new[] { ("x-block", "1") } : [])]);

    private static byte[] Message(string hotkey) => RawH2.Message(new TensorMessage { Hotkey = hotkey });

    private static async Task Call(RawH2 h2, int stream, string hotkey, bool flush = true, bool blockCheck = false)
    {
        await h2.Frame(H2.Headers, H2.EndHeaders, stream, Request(blockCheck), flush: false);
        await h2.Frame(H2.Data, H2.EndStream, stream, Message(hotkey), flush);
    }

    /// <summary>A call on a new connection is admitted and answered in full (not shed).</summary>
    private static async Task AssertAdmitted(int port, string hotkey)
    {
        await using var h2 = await RawH2.Connect(port);
        await Call(h2, 1, hotkey);
        var (headers, data, trailers) = await h2.Response(1);
        Assert.Contains((":status", "200"), headers);
        Assert.Equal($"Forward:{hotkey}", TensorMessage.Parser.ParseFrom(data.AsSpan(5)).Message);
        Assert.Equal([("grpc-status", "0")], trailers);
    }

    [Theory]
    [InlineData("tcp reset")]
    [InlineData("close")]
    [InlineData("rst_stream")]
    public async Task Calls_a_peer_drops_while_the_model_holds_them_give_their_slots_back_and_the_next_call_is_admitted(string drop)
    {
        var service = new GateService();
        await using var server = await Bind(service, limit: 2);
        var port = server.Endpoint.Port;
        var peer = await RawH2.Connect(port);
        try
        {
            // Two calls admitted and in the model, not answered: the limit of 2 is held.
            await Call(peer, 1, "hold", flush: false);
            await Call(peer, 3, "hold");
            await service.Entered.WaitAsync(Wait);
            await service.Entered.WaitAsync(Wait);
            Assert.Equal(2, server.CallsHeld);

            // At the limit: a call from another connection is shed from its headers (the default overload answer).
            await using (var other = await RawH2.Connect(port))
            {
                await Call(other, 1, "shed");
                Assert.Contains(("grpc-status", "8"), await other.TrailersOnly(1)); // RESOURCE_EXHAUSTED
            }

            switch (drop)
            {
                case "tcp reset":
                    peer.Reset();
                    break;
                case "close":
                    await peer.DisposeAsync();
                    break;
                case "rst_stream":
                    // CANCEL on both streams; the connection stays open.
                    await peer.Frame(H2.RstStream, 0, 1, [0, 0, 0, 8], flush: false);
                    await peer.Frame(H2.RstStream, 0, 3, [0, 0, 0, 8]);
                    break;
            }

            // The model still holds both calls (its gate is shut), but their peer is gone: the count is 0 again.
            await server.WhenCallsHeldAtMost(0).WaitAsync(Wait);
            Assert.Equal(0, server.CallsHeld);
            await AssertAdmitted(port, "after");
            Assert.Equal(0, server.CallsHeld);
        }
        finally
        {
            service.Open();
            await peer.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_peer_whose_window_stays_closed_holds_no_slots_and_its_answers_still_come_when_it_opens()
    {
        var service = new GateService();
        await using var server = await Bind(service, limit: 3);
        var port = server.Endpoint.Port;
        // Stream windows of 0: no DATA can reach this peer until it sends WINDOW_UPDATEs.
        await using var peer = await RawH2.Connect(port, initialWindow: 0);

        // Three calls and a PING in one write: the first is answered (its HEADERS go, its DATA waits for the window),
        // the other two are parked behind it. The PING's ACK is written while the read's frames are handled, the
        // answer's HEADERS when its calls have run, and both leave in the send after the read: ACK, then HEADERS.
        await Call(peer, 1, "a", flush: false);
        await Call(peer, 3, "b", flush: false);
        await Call(peer, 5, "c", flush: false);
        await peer.Frame(H2.Ping, 0, 0, "stalled!"u8.ToArray());
        await peer.Until(f => f.Type == H2.Ping);
        var first = await peer.Until(f => f.Type == H2.Headers && f.Stream == 1);
        Assert.Equal(H2.EndHeaders, first.Flags);

        // Nothing of this peer's is counted: a limit of 3 still admits calls from others (before the fix: 3 held, shed).
        Assert.Equal(0, server.CallsHeld);
        await AssertAdmitted(port, "other");

        // Windows open: every answer arrives whole, and the count ends at 0 (released once each, not below).
        await peer.Frame(H2.WindowUpdate, 0, 1, BinaryPrimitives.ReverseEndianness(1 << 20).ToBytes(), flush: false);
        await peer.Frame(H2.WindowUpdate, 0, 3, BinaryPrimitives.ReverseEndianness(1 << 20).ToBytes(), flush: false);
        await peer.Frame(H2.WindowUpdate, 0, 5, BinaryPrimitives.ReverseEndianness(1 << 20).ToBytes());
        var (_, data1, trailers1) = await peer.Response(1, alreadyRead: []);
        var (headers3, data3, trailers3) = await peer.Response(3);
        var (_, data5, trailers5) = await peer.Response(5);
        Assert.Equal("Forward:a", TensorMessage.Parser.ParseFrom(data1.AsSpan(5)).Message);
        Assert.Equal("Forward:b", TensorMessage.Parser.ParseFrom(data3.AsSpan(5)).Message);
        Assert.Equal("Forward:c", TensorMessage.Parser.ParseFrom(data5.AsSpan(5)).Message);
        Assert.Contains((":status", "200"), headers3);
        Assert.Equal([("grpc-status", "0")], trailers1);
        Assert.Equal([("grpc-status", "0")], trailers3);
        Assert.Equal([("grpc-status", "0")], trailers5);
        Assert.Equal(0, server.CallsHeld);
    }

    [Fact]
    public async Task Calls_over_the_limit_are_shed_before_the_admitted_calls_of_their_read_run_and_later_arrivals_too()
    {
        var service = new GateService();
        await using var server = await Bind(service, limit: 1);
        var port = server.Endpoint.Port;
        await using var peer = await RawH2.Connect(port);
        try
        {
            // One write: G first (admitted; its header check then waits for the test, holding the connection's runner),
            // then four calls over the limit of 1.
            await Call(peer, 1, "hold", flush: false, blockCheck: true);
            await Call(peer, 3, "s1", flush: false);
            await Call(peer, 5, "s2", flush: false);
            await Call(peer, 7, "s3", flush: false);
            await Call(peer, 9, "s4");

            // Their shed answers arrive while G's check is shut: they did not wait for the admitted call ahead of them.
            foreach (var id in new[] { 3, 5, 7, 9 }) Assert.Contains(("grpc-status", "8"), await peer.TrailersOnly(id)); // RESOURCE_EXHAUSTED
            await service.CheckEntered.WaitAsync(Wait);

            // A call that comes while the runner is held (G still counted) is shed too; then G goes on into the model.
            await Call(peer, 11, "late");
            service.OpenCheck();
            Assert.Contains(("grpc-status", "8"), await peer.TrailersOnly(11));

            // G is answered once the model lets it go; then the slot is free and a call is admitted on the same connection.
            service.Open();
            var (_, data, trailers) = await peer.Response(1);
            Assert.Equal("Forward:hold", TensorMessage.Parser.ParseFrom(data.AsSpan(5)).Message);
            Assert.Equal([("grpc-status", "0")], trailers);
            await server.WhenCallsHeldAtMost(0).WaitAsync(Wait);
            await Call(peer, 13, "after");
            var (_, after, afterTrailers) = await peer.Response(13);
            Assert.Equal("Forward:after", TensorMessage.Parser.ParseFrom(after.AsSpan(5)).Message);
            Assert.Equal([("grpc-status", "0")], afterTrailers);
        }
        finally
        {
            service.OpenCheck();
            service.Open();
        }
    }
}
