using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean server's idle and minimum-data-rate rules (<c>limits.idle_timeout</c>, <c>limits.min_request_body_rate</c>,
/// <c>limits.min_response_rate</c>) over real loopback sockets, on a clock the test drives: time moves only when the test
/// says, and every step waits for an event the server sends (a WINDOW_UPDATE, a PING ACK, the answer) before it moves.
/// </summary>
public sealed class LeanDataRateTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>Kestrel's defaults (240 bytes/s after 5 s), idle timeout as given.</summary>
    private static ServerLimits Limits(TimeSpan idle = default) =>
        new(2048, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true)
        {
            IdleTimeout = idle,
            MinRequestBodyRate = 240,
            MinRequestBodyGrace = TimeSpan.FromSeconds(5),
            MinResponseRate = 240,
            MinResponseGrace = TimeSpan.FromSeconds(5),
        };

    private static async Task<IServerBinding> Serve(DrivenClock clock, IBittensorService service, int streams = 8, TimeSpan idle = default) =>
        await new LeanServerTransport(clock).BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, streams, 64 * 1024, Limits(idle)),
            service, CancellationToken.None);

    private static byte[] Request(string path = "/Bittensor/Forward") =>
        RawH2.Block([(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"), ("content-type", "application/grpc"),
            ("te", "trailers")]);

    private static byte[] Message(TensorMessage m) => RawH2.Message(m);

    /// <summary>
    /// Sends a PING and reads up to its ACK: every frame the server wrote before it handled the PING comes first (one
    /// output, in order), so what this returns is all the server said until then — an event, not a wait.
    /// </summary>
    private static async Task<List<RawH2.Frame_>> UntilPingAck(RawH2 h2)
    {
        await h2.Frame(H2.Ping, 0, 0, "sync0001"u8.ToArray());
        var before = new List<RawH2.Frame_>();
        while (true)
        {
            var f = await h2.Read() ?? throw new InvalidOperationException("the server closed the connection before the PING ACK");
            if (f.Type == H2.Ping && (f.Flags & H2.Ack) != 0) return before;
            before.Add(f);
        }
    }

    private static string Status(List<(string, string)> trailers) => trailers.Single(h => h.Item1 == "grpc-status").Item2;

    [Fact]
    public async Task A_request_body_that_slows_below_the_minimum_rate_is_answered_DEADLINE_EXCEEDED_and_its_stream_is_free_again()
    {
        var clock = new DrivenClock();
        var service = new Echo();
        // One stream per connection: the slow call holds the only one.
        await using var binding = await Serve(clock, service, streams: 1);
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port);

        // Headers, then 34,005 bytes of a declared 40,000-byte message, and nothing more for now (no END_STREAM).
        await h2.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        var part = new byte[34_005];
        BinaryPrimitives.WriteUInt32BigEndian(part.AsSpan(1), 40_000);
        for (var at = 0; at < part.Length; at += 16_384) await h2.Frame(H2.Data, 0, 1, part[at..Math.Min(part.Length, at + 16_384)], flush: false);
        await h2.Flush();
        // The server admitted the call and opened the stream's window for the rest: the rule's first period starts there.
        await h2.Until(f => f.Type == H2.WindowUpdate && f.Stream == 1);

        // Periods of 5 s (checked each second, so each ends at 6 s) must each bring 240 bytes/s: 34,005 in the first,
        // then 2,000 (≥ 1,440) in the second — the call stays; then 1,000 (< 1,440) in the third — answered.
        clock.Advance(TimeSpan.FromSeconds(6));
        await h2.Frame(H2.Data, 0, 1, new byte[2_000]);
        Assert.DoesNotContain(await UntilPingAck(h2), f => f.Stream == 1 && f.Type is H2.Headers or H2.RstStream);
        clock.Advance(TimeSpan.FromSeconds(6));
        await h2.Frame(H2.Data, 0, 1, new byte[1_000]);
        Assert.DoesNotContain(await UntilPingAck(h2), f => f.Stream == 1 && f.Type is H2.Headers or H2.RstStream);
        Assert.Empty(service.Refusals);
        clock.Advance(TimeSpan.FromSeconds(6));

        var trailers = await h2.TrailersOnly(1);
        Assert.Equal(((int)StatusCode.DeadlineExceeded).ToString(), Status(trailers));
        Assert.Contains("min_request_body_rate", Uri.UnescapeDataString(trailers.Single(h => h.Item1 == "grpc-message").Item2), StringComparison.Ordinal);
        Assert.Equal(new[] { new TransportRefusal(BittensorMethod.Forward, StatusCode.DeadlineExceeded, RefusalReasons.MinRequestBodyRate) }, service.Refusals.ToArray());

        // The connection's one stream is free again: the next call on it is served.
        await h2.Frame(H2.Headers, H2.EndHeaders, 3, Request());
        await h2.Frame(H2.Data, H2.EndStream, 3, Message(new TensorMessage { Hotkey = "next" }));
        var (_, data, ok) = await h2.Response(3);
        Assert.Equal("Forward:next", TensorMessage.Parser.ParseFrom(data.AsSpan(5)).Message);
        Assert.Equal("0", Status(ok));
    }

    [Fact]
    public async Task A_call_whose_body_never_comes_is_answered_after_the_grace_period_and_one_that_sent_its_body_is_not()
    {
        var clock = new DrivenClock();
        var service = new Echo();
        await using var binding = await Serve(clock, service);
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port);

        // Stream 1: headers only. Stream 3: a whole call.
        await h2.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        await h2.Frame(H2.Headers, H2.EndHeaders, 3, Request());
        var whole = Message(new TensorMessage { Hotkey = "whole" });
        await h2.Frame(H2.Data, H2.EndStream, 3, whole);
        var (_, data, ok) = await h2.Response(3);
        Assert.Equal("Forward:whole", TensorMessage.Parser.ParseFrom(data.AsSpan(5)).Message);
        // Stream 1 was admitted when its headers were handled (before stream 3's): within the grace period nothing happens.
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.DoesNotContain(await UntilPingAck(h2), f => f.Stream == 1);

        clock.Advance(TimeSpan.FromSeconds(2));
        var trailers = await h2.TrailersOnly(1);
        Assert.Equal(((int)StatusCode.DeadlineExceeded).ToString(), Status(trailers));
        Assert.Equal("0", Status(ok));
        Assert.Single(service.Refusals, r => r.Reason == RefusalReasons.MinRequestBodyRate);
    }

    [Fact]
    public async Task An_answer_the_peer_never_takes_is_reset_after_the_grace_period_and_its_stream_is_free_again()
    {
        var clock = new DrivenClock();
        var service = new Echo { AnswerBytes = 100_000 };
        // One stream per connection.
        await using var binding = await Serve(clock, service, streams: 1);
        // A peer whose stream windows are 0: it never lets an answer's DATA through.
        await using var stuck = await RawH2.Connect(binding.Endpoint.Port, initialWindow: 0);
        await stuck.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        await stuck.Frame(H2.Data, H2.EndStream, 1, Message(new TensorMessage { Hotkey = "big-stuck" }));
        // The answer's HEADERS went; its 100 KB wait for the window in the server's memory, and the stream stays open:
        // a second call on the connection is refused (SETTINGS_MAX_CONCURRENT_STREAMS 1).
        await stuck.Until(f => f.Type == H2.Headers && f.Stream == 1);
        await stuck.Frame(H2.Headers, H2.EndHeaders, 3, Request());
        await stuck.Frame(H2.Data, H2.EndStream, 3, Message(new TensorMessage { Hotkey = "refused" }));
        var refused = await stuck.Until(f => f.Type == H2.RstStream && f.Stream == 3);
        Assert.Equal(H2.RefusedStream, BinaryPrimitives.ReadUInt32BigEndian(refused.Payload));

        // Within the grace period the answer waits on.
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.DoesNotContain(await UntilPingAck(stuck), f => f.Stream == 1);
        Assert.Empty(service.Refusals);

        // Past it, nothing of the answer has left: reset ENHANCE_YOUR_CALM, counted, and the stream is free.
        clock.Advance(TimeSpan.FromSeconds(2));
        var reset = await stuck.Until(f => f.Type == H2.RstStream && f.Stream == 1);
        Assert.Equal(H2.EnhanceYourCalm, BinaryPrimitives.ReadUInt32BigEndian(reset.Payload));
        Assert.Equal(new[] { new TransportRefusal(BittensorMethod.Forward, StatusCode.ResourceExhausted, RefusalReasons.MinResponseRate) }, service.Refusals.ToArray());

        await stuck.Frame(H2.Headers, H2.EndHeaders, 5, Request());
        await stuck.Frame(H2.Data, H2.EndStream, 5, Message(new TensorMessage { Hotkey = "served" }), flush: false);
        await stuck.Frame(H2.WindowUpdate, 0, 5, BinaryPrimitives.ReverseEndianness(1_000).ToBytes());
        var (_, data, trailers) = await stuck.Response(5);
        Assert.Equal("Forward:served", TensorMessage.Parser.ParseFrom(data.AsSpan(5)).Message);
        Assert.Equal("0", Status(trailers));
    }

    [Fact]
    public async Task An_answer_the_peer_takes_slowly_but_above_the_minimum_is_not_reset()
    {
        var clock = new DrivenClock();
        var service = new Echo { AnswerBytes = 100_000 };
        await using var binding = await Serve(clock, service);
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port, initialWindow: 0);
        await h2.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        await h2.Frame(H2.Data, H2.EndStream, 1, Message(new TensorMessage { Hotkey = "big-slow" }));
        await h2.Until(f => f.Type == H2.Headers && f.Stream == 1);

        // 1,500 bytes of window every 5 s (300 bytes/s, above 240): every period brings at least 1,440 bytes. Each step's
        // DATA is awaited before time moves.
        var received = 0;
        for (var step = 0; step < 12; step++)
        {
            await h2.Frame(H2.WindowUpdate, 0, 1, BinaryPrimitives.ReverseEndianness(1_500).ToBytes());
            var f = await h2.Until(f => f.Stream == 1 && f.Type is H2.Data or H2.RstStream);
            Assert.Equal(H2.Data, f.Type);
            received += f.Payload.Length;
            clock.Advance(TimeSpan.FromSeconds(5));
        }
        Assert.DoesNotContain(await UntilPingAck(h2), f => f.Stream == 1 && f.Type == H2.RstStream);
        Assert.Equal(18_000, received);
        Assert.Empty(service.Refusals);

        // Then the window opens in full and the rest of the answer arrives.
        await h2.Frame(H2.WindowUpdate, 0, 1, BinaryPrimitives.ReverseEndianness(1_000_000).ToBytes());
        await h2.Frame(H2.WindowUpdate, 0, 0, BinaryPrimitives.ReverseEndianness(1_000_000).ToBytes());
        var (_, rest, trailers) = await h2.Response(1, alreadyRead: new byte[received]);
        Assert.Equal("0", Status(trailers));
        Assert.Equal(5 + service.AnswerSize("big-slow"), rest.Length);
    }

    [Fact]
    public async Task A_peer_that_stops_reading_its_socket_is_disconnected_once_a_write_outlasts_grace_plus_size_over_rate()
    {
        var clock = new DrivenClock();
        var service = new Echo { AnswerBytes = 8 * 1024 * 1024 };
        await using var binding = await new LeanServerTransport(clock).BindAsync(
            new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 16 * 1024 * 1024, 8, 64 * 1024, Limits()), service, CancellationToken.None);
        // Flow control lets the whole 8 MiB answer go; the socket's small receive buffer (and the server's send buffer,
        // a few MiB at most) cannot hold it, and this side reads only the answer's first frame.
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port, initialWindow: int.MaxValue, receiveBuffer: 4096);
        await h2.Frame(H2.WindowUpdate, 0, 0, BinaryPrimitives.ReverseEndianness(int.MaxValue - 65_535).ToBytes());
        await h2.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        await h2.Frame(H2.Data, H2.EndStream, 1, Message(new TensorMessage { Hotkey = "big-unread" }));
        // The answer's HEADERS left in the same write as its 8 MiB: that write has begun.
        await h2.Until(f => f.Type == H2.Headers && f.Stream == 1);

        // Its deadline is 5 s + 8 MiB / 240 bytes/s ≈ 9.7 h: an hour on, the connection stays (the sweep runs inside Advance).
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Empty(service.Refusals);
        // Ten hours on, the write has outlasted it: the connection is closed (no frame can reach a peer that does not read).
        clock.Advance(TimeSpan.FromHours(9));
        Assert.Equal(new[] { new TransportRefusal(null, StatusCode.Unavailable, RefusalReasons.MinResponseRate) }, service.Refusals.ToArray());
        Assert.True(await h2.Closed());
    }

    [Fact]
    public async Task A_connection_that_only_pings_is_closed_at_the_idle_timeout_counted_from_its_last_call()
    {
        var clock = new DrivenClock();
        var service = new Echo();
        await using var binding = await Serve(clock, service, idle: TimeSpan.FromSeconds(130));
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port);
        await h2.Frame(H2.Headers, H2.EndHeaders, 1, Request());
        await h2.Frame(H2.Data, H2.EndStream, 1, Message(new TensorMessage { Hotkey = "one" }));
        await h2.Response(1);

        // 100 s after the call the connection is still there...
        clock.Advance(TimeSpan.FromSeconds(100));
        Assert.DoesNotContain(await UntilPingAck(h2), f => f.Type == H2.GoAway);
        // ...and with a ping every second from then on (each awaited) it is closed once 130 s have passed since the call:
        // pings are not calls. (The sweep skips a connection while a send of its is still completing, so the close may
        // come a step later; 60 steps bound the loop.)
        (uint Code, string Debug)? goAway = null;
        var steps = 0;
        for (; steps < 60 && goAway is null; steps++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            await h2.Frame(H2.Ping, 0, 0, "probe001"u8.ToArray());
            while (await h2.Read() is { } f)
            {
                if (f.Type == H2.Ping && (f.Flags & H2.Ack) != 0) break;
                if (f.Type == H2.GoAway)
                {
                    goAway = (BinaryPrimitives.ReadUInt32BigEndian(f.Payload.AsSpan(4)), Encoding.ASCII.GetString(f.Payload, 8, f.Payload.Length - 8));
                    break;
                }
            }
        }
        Assert.NotNull(goAway);
        Assert.Equal((H2.NoError, "idle"), goAway.Value);
        Assert.InRange(steps, 30, 60); // not before 130 s after the call
        Assert.True(await h2.Closed());
        Assert.Contains(service.Refusals, r => r.Reason == RefusalReasons.Idle);
    }

    /// <summary>Echoes the caller's hotkey; to hotkeys starting "big", with a tensor of <see cref="AnswerBytes"/> bytes.</summary>
    private sealed class Echo : IBittensorService
    {
        public ConcurrentQueue<TransportRefusal> Refusals { get; } = new();

        public int AnswerBytes { get; init; }

        public int AnswerSize(string hotkey) => Answer(hotkey).CalculateSize();

        private TensorMessage Answer(string hotkey)
        {
            var m = new TensorMessage { Version = 150, Message = $"Forward:{hotkey}" };
            if (hotkey.StartsWith("big", StringComparison.Ordinal)) m.Tensors.Add(new Tensor { Buffer = ByteString.CopyFrom(new byte[AnswerBytes]) });
            return m;
        }

        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call) =>
            Task.FromResult(Answer(request.Hotkey));

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(HeaderDecision.Proceed(null));

        public void OnRefused(TransportRefusal refusal) => Refusals.Enqueue(refusal);
    }
}
