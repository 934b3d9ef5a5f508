using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean client's keep-alive PINGs over real loopback sockets, on a clock the test drives (the connection's timer
/// fires inside <see cref="DrivenClock.Advance"/>, on the test's thread): a peer that stops answering (a raw TCP peer
/// that keeps the socket open and says nothing more) is found dead after keepalive_time + keepalive_timeout and its
/// calls answer Unavailable instead of waiting their whole deadline; the next call connects anew; a live peer's ACK
/// (the lean server's) keeps the connection; GOAWAY ENHANCE_YOUR_CALM "too_many_pings" doubles the interval of the next
/// connection. Every step waits for an event (a frame the peer reads, the client's SETTINGS ACK, a call's answer, the
/// socket's end) before the clock moves; no call has a deadline, so only the keep-alive can end one.
/// </summary>
public class LeanKeepAliveTests
{
    /// <summary>Whether the connections wait on the client's own I/O loop (<see cref="LeanKeepAliveLoopTests"/>).</summary>
    protected virtual bool IoLoop => false;

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    /// <summary>keepalive_time 10 s, keepalive_timeout 5 s: the connection looks at its clock every second.</summary>
    private BittensorChannelOptions Options(bool withoutCalls = false) => TestChannel.Options with
    {
        ClientIoLoop = IoLoop,
        KeepAlivePingDelay = TimeSpan.FromSeconds(10),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
        KeepAlivePingWithoutCalls = withoutCalls,
    };

    private static Metadata Headers() => new() { { AuthHeaders.AuthName, AuthHeaders.AuthValue } };

    private static Task<TensorMessage> Call(IPeerConnection c, string hotkey = "5Grw") =>
        c.CallAsync(BittensorMethod.Forward, new TensorMessage { Version = 150, Hotkey = hotkey }, Headers(), DateTime.MaxValue, CancellationToken.None);

    private static H2ClientConnection Current(IPeerConnection c) => ((LeanPeerConnection)c).Current ?? throw new InvalidOperationException("no connection yet");

    private static byte[] Frame(byte type, byte flags, int stream, byte[] payload)
    {
        var f = new byte[9 + payload.Length];
        H2Output.WriteFrameHeader(f, payload.Length, type, flags, stream);
        payload.CopyTo(f, 9);
        return f;
    }

    /// <summary>A whole successful answer on <paramref name="stream"/> (the lean server's own header blocks).</summary>
    private static byte[] Answer(int stream, string message) =>
        [.. Frame(H2.Headers, H2.EndHeaders, stream, H2Blocks.ResponseHeaders),
            .. Frame(H2.Data, 0, stream, RawH2.Message(new TensorMessage { Version = 150, Message = message })),
            .. Frame(H2.Headers, H2.EndHeaders | H2.EndStream, stream, H2Blocks.OkTrailers)];

    [Fact]
    public async Task A_call_on_a_peer_that_stops_answering_ends_Unavailable_after_keepalive_time_and_timeout_and_the_next_call_connects_anew()
    {
        var clock = new DrivenClock();
        await using var peer = new RawPeer();
        // The count is process-wide by port number: an earlier test's connections to a server that had this ephemeral
        // port are in it too (seen in a fresh-clone CI: 3 for 2), so only this test's own connections are counted.
        var before = LeanClientTransport.ConnectionsTo(peer.Port);
        using var c = new LeanClientTransport(clock).Connect("127.0.0.1", peer.Port, Options());

        var first = Call(c);
        var one = await peer.Accept();
        await one.Until(f => f.Type == H2.Data && (f.Flags & H2.EndStream) != 0);
        // The peer's SETTINGS are the last thing it says; the client's ACK shows they were read (at the clock's start).
        await one.Send(Frame(H2.Settings, 0, 0, []));
        await one.Until(f => f.Type == H2.Settings && (f.Flags & H2.Ack) != 0);
        var lean = Current(c);

        clock.Advance(9 * Second);
        Assert.Equal(0, lean.PingsSent);
        clock.Advance(Second); // 10 s without a frame, a call open: PING
        Assert.Equal(1, lean.PingsSent);
        var ping = await one.Until(f => f.Type == H2.Ping);
        Assert.Equal(0, ping.Flags & H2.Ack);
        clock.Advance(4 * Second);
        Assert.True(lean.IsUsable, "closed before keepalive_timeout");
        clock.Advance(Second); // 5 s without the ACK: closed

        Assert.False(lean.IsUsable);
        var error = await Assert.ThrowsAsync<RpcException>(() => first.WaitAsync(Wait));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("keepalive PING", error.Status.Detail, StringComparison.Ordinal);
        Assert.True(await one.Closed());

        // The next call gets a fresh connection, which works.
        var second = Call(c, "again");
        var two = await peer.Accept();
        await two.Until(f => f.Type == H2.Data && (f.Flags & H2.EndStream) != 0);
        await two.Send([.. Frame(H2.Settings, 0, 0, []), .. Answer(1, "fresh")]);
        Assert.Equal("fresh", (await second.WaitAsync(Wait)).Message);
        Assert.NotSame(lean, Current(c));
        Assert.Equal(before + 2, LeanClientTransport.ConnectionsTo(peer.Port));
    }

    [Fact]
    public async Task With_keepalive_without_calls_an_idle_pooled_connection_to_a_vanished_peer_is_closed_before_the_next_call_which_connects_anew()
    {
        var clock = new DrivenClock();
        await using var peer = new RawPeer();
        // The count is process-wide by port number: an earlier test's connections to a server that had this ephemeral
        // port are in it too (seen in a fresh-clone CI: 3 for 2), so only this test's own connections are counted.
        var before = LeanClientTransport.ConnectionsTo(peer.Port);
        using var c = new LeanClientTransport(clock).Connect("127.0.0.1", peer.Port, Options(withoutCalls: true));
        var first = Call(c);
        var one = await peer.Accept();
        await one.Until(f => f.Type == H2.Data && (f.Flags & H2.EndStream) != 0);
        await one.Send([.. Frame(H2.Settings, 0, 0, []), .. Answer(1, "ok")]);
        Assert.Equal("ok", (await first.WaitAsync(Wait)).Message);
        var lean = Current(c);

        // No call open; the peer vanishes (says nothing more, no FIN, no RST).
        clock.Advance(10 * Second);
        Assert.Equal(1, lean.PingsSent);
        await one.Until(f => f.Type == H2.Ping);
        clock.Advance(5 * Second);
        Assert.False(lean.IsUsable);
        Assert.True(await one.Closed());

        var second = Call(c, "again");
        var two = await peer.Accept();
        await two.Until(f => f.Type == H2.Data && (f.Flags & H2.EndStream) != 0);
        await two.Send([.. Frame(H2.Settings, 0, 0, []), .. Answer(1, "fresh")]);
        Assert.Equal("fresh", (await second.WaitAsync(Wait)).Message);
        Assert.Equal(before + 2, LeanClientTransport.ConnectionsTo(peer.Port));
    }

    [Fact]
    public async Task By_default_an_idle_connection_is_not_pinged_and_the_first_call_on_it_after_keepalive_time_checks_it()
    {
        var clock = new DrivenClock();
        await using var peer = new RawPeer();
        using var c = new LeanClientTransport(clock).Connect("127.0.0.1", peer.Port, Options());
        var first = Call(c);
        var one = await peer.Accept();
        await one.Until(f => f.Type == H2.Data && (f.Flags & H2.EndStream) != 0);
        await one.Send([.. Frame(H2.Settings, 0, 0, []), .. Answer(1, "ok")]);
        Assert.Equal("ok", (await first.WaitAsync(Wait)).Message);
        var lean = Current(c);

        clock.Advance(60 * Second); // idle, no call: no pings (gRPC servers do not permit them by default)
        Assert.Equal(0, lean.PingsSent);
        Assert.True(lean.IsUsable);

        // A call on the connection, quiet for 60 s: the next look at the clock pings; the vanished peer never answers.
        var second = Call(c, "late");
        await one.Until(f => f.Type == H2.Data && (f.Flags & H2.EndStream) != 0 && f.Stream == 3);
        clock.Advance(Second);
        Assert.Equal(1, lean.PingsSent);
        await one.Until(f => f.Type == H2.Ping);
        clock.Advance(5 * Second);
        var error = await Assert.ThrowsAsync<RpcException>(() => second.WaitAsync(Wait));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("keepalive PING", error.Status.Detail, StringComparison.Ordinal);
    }

    private sealed class Echo : IBittensorService
    {
        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call) =>
            Task.FromResult(new TensorMessage { Version = 150, Message = $"echo:{request.Hotkey}" });

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(HeaderDecision.Proceed(null));
    }

    [Fact]
    public async Task A_live_lean_server_answers_the_pings_and_the_connection_stays()
    {
        var clock = new DrivenClock();
        await using var binding = await new LeanServerTransport().BindAsync(
            new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8, 64 * 1024, ServerLimits.None), new Echo(), CancellationToken.None);
        var before = LeanClientTransport.ConnectionsTo(binding.Endpoint.Port); // (process-wide by port number, as above)
        using var c = new LeanClientTransport(clock).Connect("127.0.0.1", binding.Endpoint.Port, Options(withoutCalls: true));
        Assert.Equal("echo:a", (await Call(c, "a").WaitAsync(Wait)).Message);
        var lean = Current(c);

        clock.Advance(10 * Second); // quiet for 10 s since the answer: PING
        for (var round = 1; round <= 3; round++)
        {
            Assert.Equal(round, lean.PingsSent);
            // The server answers frames in order: this call's answer comes after the PING's ACK.
            Assert.Equal($"echo:r{round}", (await Call(c, $"r{round}").WaitAsync(Wait)).Message);
            Assert.Equal(round, lean.PingAcks);
            clock.Advance(5 * Second); // keepalive_timeout after the PING: the ACK came, the connection stays
            Assert.True(lean.IsUsable);
            Assert.Equal(round, lean.PingsSent);
            clock.Advance(5 * Second); // 10 s after the answer: the next PING
        }
        Assert.Same(lean, Current(c));
        Assert.Equal(before + 1, LeanClientTransport.ConnectionsTo(binding.Endpoint.Port));
    }

    [Fact]
    public async Task A_GOAWAY_too_many_pings_doubles_the_interval_of_the_next_connection()
    {
        var clock = new DrivenClock();
        await using var peer = new RawPeer();
        using var c = new LeanClientTransport(clock).Connect("127.0.0.1", peer.Port, Options(withoutCalls: true));
        var first = Call(c);
        var one = await peer.Accept();
        await one.Until(f => f.Type == H2.Data && (f.Flags & H2.EndStream) != 0);
        await one.Send([.. Frame(H2.Settings, 0, 0, []), .. Answer(1, "ok")]);
        await first.WaitAsync(Wait);
        var lean = Current(c);

        clock.Advance(10 * Second);
        await one.Until(f => f.Type == H2.Ping);
        // What a gRPC server says to pings more frequent than its policy: GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
        await one.Send(Frame(H2.GoAway, 0, 0, [0, 0, 0, 1, 0, 0, 0, (byte)H2.EnhanceYourCalm, .. "too_many_pings"u8.ToArray()]));
        Assert.True(await one.Closed()); // the client read the GOAWAY and, with no call open, closed
        Assert.True(lean.TooManyPings);

        var second = Call(c, "again");
        var two = await peer.Accept();
        await two.Until(f => f.Type == H2.Data && (f.Flags & H2.EndStream) != 0);
        await two.Send([.. Frame(H2.Settings, 0, 0, []), .. Answer(1, "fresh")]);
        Assert.Equal("fresh", (await second.WaitAsync(Wait)).Message);
        var next = Current(c);
        Assert.NotSame(lean, next);
        Assert.Equal(TimeSpan.FromSeconds(20), next.KeepAlive!.Time);

        clock.Advance(10 * Second);
        Assert.Equal(0, next.PingsSent); // 10 s quiet: no longer enough
        clock.Advance(10 * Second);
        Assert.Equal(1, next.PingsSent);
        await two.Until(f => f.Type == H2.Ping);
    }

    [Fact]
    public void Keepalive_time_zero_or_infinite_starts_no_pings_and_the_interval_doubles_up_to_a_day()
    {
        Assert.False(new KeepAlivePolicy(Timeout.InfiniteTimeSpan, Second, false, TimeProvider.System).Enabled);
        Assert.False(new KeepAlivePolicy(TimeSpan.Zero, Second, true, TimeProvider.System).Enabled);
        var p = new KeepAlivePolicy(TimeSpan.FromHours(16), Second, false, TimeProvider.System);
        Assert.Equal(TimeSpan.FromDays(1), p.Calmer().Time);
        Assert.Equal(TimeSpan.FromMilliseconds(250), (p with { Time = TimeSpan.FromSeconds(10), Timeout = Second }).Tick);
        Assert.Equal(Second, (p with { Time = TimeSpan.FromSeconds(20), Timeout = TimeSpan.FromSeconds(5) }).Tick);
    }

    /// <summary>A raw TCP peer: accepts connections and reads the client's frames; says only what a test sends.</summary>
    private sealed class RawPeer : IAsyncDisposable
    {
        private readonly Socket _listener = new(SocketType.Stream, ProtocolType.Tcp);
        private readonly List<Socket> _accepted = [];

        public RawPeer()
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(4);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

        /// <summary>The next connection, its preface read.</summary>
        public async Task<Conn> Accept()
        {
            var s = await _listener.AcceptAsync().WaitAsync(Wait);
            _accepted.Add(s);
            var conn = new Conn(s);
            var preface = await conn.ReadExactly(24);
            Assert.Equal(H2.Preface.ToArray(), preface);
            return conn;
        }

        public ValueTask DisposeAsync()
        {
            foreach (var s in _accepted) s.Dispose();
            _listener.Dispose();
            return ValueTask.CompletedTask;
        }

        public sealed class Conn(Socket socket)
        {
            public async Task<byte[]?> ReadExactlyOrEnd(int count)
            {
                var buffer = new byte[count];
                var have = 0;
                while (have < count)
                {
                    int n;
                    try
                    {
                        n = await socket.ReceiveAsync(buffer.AsMemory(have), SocketFlags.None).AsTask().WaitAsync(Wait);
                    }
                    catch (SocketException)
                    {
                        return null;
                    }
                    if (n == 0) return null;
                    have += n;
                }
                return buffer;
            }

            public async Task<byte[]> ReadExactly(int count) => await ReadExactlyOrEnd(count) ?? throw new EndOfStreamException("the client closed the connection");

            public async Task<RawH2.Frame_?> Read()
            {
                var h = await ReadExactlyOrEnd(9);
                if (h is null) return null;
                var length = (h[0] << 16) | (h[1] << 8) | h[2];
                byte[]? payload = length == 0 ? [] : await ReadExactlyOrEnd(length);
                return payload is null ? null : new RawH2.Frame_(h[3], h[4], BinaryPrimitives.ReadInt32BigEndian(h.AsSpan(5)) & 0x7FFFFFFF, payload);
            }

            /// <summary>Reads the client's frames up to the first that matches.</summary>
            public async Task<RawH2.Frame_> Until(Func<RawH2.Frame_, bool> match)
            {
                while (true)
                {
                    var f = await Read() ?? throw new InvalidOperationException("the client closed the connection before the frame came");
                    if (match(f)) return f;
                }
            }

            /// <summary>True once the client closed the connection (its frames until then are read and dropped) — awaited, never timed.</summary>
            public async Task<bool> Closed()
            {
                while (await Read() is not null)
                {
                }
                return true;
            }

            public async Task Send(byte[] bytes)
            {
                var sent = 0;
                while (sent < bytes.Length) sent += await socket.SendAsync(bytes.AsMemory(sent), SocketFlags.None);
            }
        }
    }
}

/// <summary>Every keep-alive test again with the connections on the client's own I/O loop (<c>bittensor.dendrite.io = loop</c>).</summary>
public sealed class LeanKeepAliveLoopTests : LeanKeepAliveTests
{
    protected override bool IoLoop => true;
}
