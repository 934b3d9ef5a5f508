using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Akka.Configuration;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Tests.Axon;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Tests.Lean;
using Bittensor.Protocol.Wire;
using DendriteClient = Bittensor.Actors.Dendrite.Dendrite;

namespace Bittensor.Actors.Tests.Dendrite;

/// <summary>
/// <c>bittensor.dendrite.keepalive_*</c>: read, checked, and used by the dendrite's connections. The role-level case: a
/// dendrite (the lean client, its keep-alive timer on a clock the test drives) talks to a real axon through a TCP relay;
/// the relay then goes silent for the connections it carries (bytes swallowed both ways, sockets open: an axon that
/// vanished behind a dropped NAT entry), and the dendrite's next forward must still be answered — on a new connection,
/// because the old one was found dead by its unanswered PING. Without the keep-alive that forward would wait its whole
/// deadline on the silent connection (Timeout).
/// </summary>
public sealed class DendriteKeepAliveSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    private const int Dim = 8;

    private static DendriteSettings FromHocon(string hocon) =>
        DendriteSettings.Create(BittensorRuntime.Section(ConfigurationFactory.ParseString(hocon).WithFallback(BittensorRuntime.ReferenceConfig),
            DendriteSettings.SectionPath));

    [Fact]
    public void The_keepalive_keys_default_to_20s_5s_and_off()
    {
        var s = DendriteSettings.Default;

        Assert.Equal((TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(5), false), (s.KeepAliveTime, s.KeepAliveTimeout, s.KeepAliveWithoutCalls));
        var off = FromHocon("bittensor.dendrite.keepalive_time = 0s");
        Assert.Equal(TimeSpan.Zero, off.KeepAliveTime);
    }

    [Theory]
    [InlineData("bittensor.dendrite.keepalive_time = 5s", "bittensor.dendrite.keepalive_time")]
    [InlineData("bittensor.dendrite.keepalive_time = 2d", "bittensor.dendrite.keepalive_time")]
    [InlineData("bittensor.dendrite.keepalive_time = soon", "bittensor.dendrite.keepalive_time")]
    [InlineData("bittensor.dendrite.keepalive_timeout = 0s", "bittensor.dendrite.keepalive_timeout")]
    [InlineData("bittensor.dendrite.keepalive_timeout = 500ms", "bittensor.dendrite.keepalive_timeout")]
    [InlineData("bittensor.dendrite.keepalive_without_calls = maybe", "bittensor.dendrite.keepalive_without_calls")]
    public void Bad_keepalive_values_are_refused_naming_the_key(string hocon, string key)
    {
        var error = Assert.Throws<ConfigurationException>(() => FromHocon(hocon));

        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dendrite_whose_axon_went_silent_is_answered_on_a_fresh_connection_once_the_ping_went_unanswered()
    {
        var (_, axonPort) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        await using var relay = new SilentRelay(axonPort);
        var clock = new DrivenClock();
        var settings = FromHocon("bittensor.dendrite { keepalive_time = 10s, keepalive_timeout = 2s, keepalive_without_calls = on }")
            with { NetworkDim = Dim, Timeout = TimeSpan.FromSeconds(30) };
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), settings, new DendriteOptions { Transport = new LeanClientTransport(clock) });
        var axon = new EndpointInfo(Bob.ToSs58(), "127.0.0.1", relay.Port);
        // The count is process-wide by port number: an earlier test's connections to a server that had this ephemeral
        // port (since freed and given to the relay) are in it too, so only this test's own connections are counted.
        var before = LeanClientTransport.ConnectionsTo(relay.Port);

        Assert.Equal(ReturnCode.Success, (await dendrite.ForwardText([axon], new long[,] { { 1, 2, 3 } }))[0].Code);
        Assert.Equal(before + 1, LeanClientTransport.ConnectionsTo(relay.Port));

        relay.Silence(); // the connection stays open; nothing gets through it any more
        clock.Advance(TimeSpan.FromSeconds(10)); // PING (swallowed)
        clock.Advance(TimeSpan.FromSeconds(2)); // no ACK: the dendrite's connection closes
        await relay.FirstLinkClosedByClient.WaitAsync(Wait);

        var again = (await dendrite.ForwardText([axon], new long[,] { { 4, 5 } }))[0];
        Assert.Equal(ReturnCode.Success, again.Code);
        Assert.Equal(before + 2, LeanClientTransport.ConnectionsTo(relay.Port));
    }

    /// <summary>
    /// The same with <c>transport = grpc</c> (Grpc.Net.Client over SocketsHttpHandler, whose keep-alive runs on the real
    /// clock: 10 s, the shortest keepalive_time the settings take, then 1 s for the ACK). The wait is for the dendrite's
    /// own event (its silent connection closed by the unanswered PING), bounded by a guard far above it; without the
    /// keep-alive nothing would close the connection and the guard fails the test.
    /// </summary>
    [Fact]
    public async Task With_the_grpc_transport_too_a_silent_axon_connection_is_closed_by_its_unanswered_ping_and_the_next_forward_is_answered()
    {
        var (_, axonPort) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        await using var relay = new SilentRelay(axonPort);
        var settings = FromHocon("bittensor.dendrite { transport = grpc, keepalive_time = 10s, keepalive_timeout = 1s, keepalive_without_calls = on }")
            with { NetworkDim = Dim, Timeout = TimeSpan.FromSeconds(60), IdleTimeout = TimeSpan.FromMinutes(10) }; // only the PING closes it
        Assert.Equal("grpc", settings.Transport);
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), settings);
        var axon = new EndpointInfo(Bob.ToSs58(), "127.0.0.1", relay.Port);

        Assert.Equal(ReturnCode.Success, (await dendrite.ForwardText([axon], new long[,] { { 1, 2, 3 } }))[0].Code);
        Assert.Equal(1, relay.Links);

        relay.Silence(); // the connection stays open; nothing gets through it any more
        await relay.FirstLinkClosedByClient.WaitAsync(TimeSpan.FromMinutes(2)); // a hang guard: the PING goes after 10 s idle

        var again = (await dendrite.ForwardText([axon], new long[,] { { 4, 5 } }))[0];
        Assert.Equal(ReturnCode.Success, again.Code);
        Assert.Equal(2, relay.Links);
    }

    /// <summary>A TCP relay to the axon; <see cref="Silence"/> makes the links it carries swallow every byte (sockets stay open).</summary>
    private sealed class SilentRelay : IAsyncDisposable
    {
        private readonly Socket _listener = new(SocketType.Stream, ProtocolType.Tcp);
        private readonly int _target;
        private readonly List<(Socket Client, Socket Server, StrongBox<bool> Silent)> _links = [];
        private readonly TaskCompletionSource _firstClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public SilentRelay(int target)
        {
            _target = target;
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(8);
            _ = AcceptLoop();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

        /// <summary>Links (client connections) accepted so far.</summary>
        public int Links
        {
            get { lock (_links) return _links.Count; }
        }

        /// <summary>The first link's client side ended (the dendrite closed its connection).</summary>
        public Task FirstLinkClosedByClient => _firstClosed.Task;

        public void Silence()
        {
            lock (_links)
                foreach (var link in _links) Volatile.Write(ref link.Silent.Value, true);
        }

        private async Task AcceptLoop()
        {
            try
            {
                for (var index = 0; ; index++)
                {
                    var client = await _listener.AcceptAsync();
                    var server = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    await server.ConnectAsync(IPAddress.Loopback, _target);
                    var silent = new StrongBox<bool>(false);
                    lock (_links) _links.Add((client, server, silent));
                    var first = index == 0;
                    _ = Pump(client, server, silent, first ? _firstClosed : null);
                    _ = Pump(server, client, silent, null);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }

        private static async Task Pump(Socket from, Socket to, StrongBox<bool> silent, TaskCompletionSource? ended)
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    var n = await from.ReceiveAsync(buffer, SocketFlags.None);
                    if (n == 0) break;
                    if (Volatile.Read(ref silent.Value)) continue;
                    for (var sent = 0; sent < n;) sent += await to.SendAsync(buffer.AsMemory(sent, n - sent), SocketFlags.None);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
            finally
            {
                ended?.TrySetResult();
            }
        }

        public ValueTask DisposeAsync()
        {
            _listener.Dispose();
            lock (_links)
            {
                foreach (var (client, server, _) in _links)
                {
                    client.Dispose();
                    server.Dispose();
                }
            }
            return ValueTask.CompletedTask;
        }
    }
}
