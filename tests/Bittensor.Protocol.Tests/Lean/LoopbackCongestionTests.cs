using System.Net;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// <see cref="ServerTransportOptions.LoopbackCongestionControl"/> over real loopback sockets (port 0): the lean server
/// sets the named congestion control on a connection from a loopback peer (read back from the accepted socket with
/// getsockopt), leaves the system's when the setting is empty, and when the kernel refuses the name it counts the
/// refusal, keeps the system's and serves the connection as before.
/// </summary>
public sealed class LoopbackCongestionTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private sealed class Echo : IBittensorService
    {
        public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call) =>
            Task.FromResult(new TensorMessage { Version = 150, Message = request.Hotkey });

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(HeaderDecision.Proceed(null));

        public void OnRefused(TransportRefusal refusal)
        {
        }
    }

    /// <summary>The system's congestion control for new connections (what a socket gets when nobody sets one).</summary>
    private static string SystemDefault => File.ReadAllText("/proc/sys/net/ipv4/tcp_congestion_control").Trim();

    /// <summary>Binds a server with <paramref name="congestion"/>, makes one call, and returns the accepted socket's congestion control.</summary>
    private static async Task<(string? Congestion, LeanServerTransport Transport)> OneCall(string? congestion)
    {
        var transport = new LeanServerTransport();
        await using var server = (LeanServer)await transport.BindAsync(
            new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8) { LoopbackCongestionControl = congestion }, new Echo(), CancellationToken.None);
        using var connection = GrpcClientTransport.Instance.Connect("127.0.0.1", server.Endpoint.Port, TestChannel.Options);
        var answer = await connection.CallAsync(BittensorMethod.Forward, new TensorMessage { Hotkey = "served" }, new Metadata(),
            DateTime.UtcNow.Add(Wait), CancellationToken.None);
        Assert.Equal("served", answer.Message);
        return (Assert.Single(server.Connections()).CongestionControl, transport);
    }

    [Fact]
    public async Task A_loopback_connection_gets_the_named_congestion_control()
    {
        var (congestion, transport) = await OneCall("reno");

        Assert.Equal("reno", congestion);
        Assert.Equal((1L, 0L), (transport.LoopbackCongestionSet, transport.LoopbackCongestionRefused));
    }

    [Fact]
    public async Task Without_a_name_a_loopback_connection_keeps_the_systems_congestion_control()
    {
        var (congestion, transport) = await OneCall("");

        Assert.Equal(SystemDefault, congestion);
        Assert.Equal((0L, 0L), (transport.LoopbackCongestionSet, transport.LoopbackCongestionRefused));
    }

    [Fact]
    public async Task A_name_the_kernel_refuses_is_said_once_per_server_however_many_connections_it_refuses()
    {
        var warnings = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var transport = new LeanServerTransport();
        await using var server = (LeanServer)await transport.BindAsync(
            new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8) { LoopbackCongestionControl = "no_such_cc", Warn = warnings.Enqueue },
            new Echo(), CancellationToken.None);
        for (var i = 0; i < 2; i++)
        {
            using var connection = GrpcClientTransport.Instance.Connect("127.0.0.1", server.Endpoint.Port, TestChannel.Options);
            var answer = await connection.CallAsync(BittensorMethod.Forward, new TensorMessage { Hotkey = "served" }, new Metadata(),
                DateTime.UtcNow.Add(Wait), CancellationToken.None);
            Assert.Equal("served", answer.Message);
        }

        Assert.Equal((0L, 2L), (transport.LoopbackCongestionSet, transport.LoopbackCongestionRefused));
        var warning = Assert.Single(warnings);
        Assert.Contains("'no_such_cc'", warning, StringComparison.Ordinal);
        Assert.Contains($"the system's ({SystemDefault})", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_name_the_kernel_refuses_is_counted_and_the_connection_keeps_the_systems_and_is_served()
    {
        var (congestion, transport) = await OneCall("no_such_cc");

        Assert.Equal(SystemDefault, congestion);
        Assert.Equal((0L, 1L), (transport.LoopbackCongestionSet, transport.LoopbackCongestionRefused));
    }

    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.8.9.10", true)]
    [InlineData("::1", true)]
    [InlineData("::ffff:127.0.0.1", true)]
    [InlineData("10.0.0.1", false)]
    [InlineData("::ffff:10.0.0.1", false)]
    [InlineData("2001:db8::1", false)]
    public void Only_loopback_peers_are_given_it(string address, bool loopback) =>
        Assert.Equal(loopback, TcpCongestion.IsLoopback(IPAddress.Parse(address)));

    [Theory]
    [InlineData("reno", true)]
    [InlineData("bbr", true)]
    [InlineData("cubic_2", true)]
    [InlineData("", false)]
    [InlineData("BBR", false)]
    [InlineData("a_name_too_long", true)]
    [InlineData("a_name_too_long_", false)]
    [InlineData("reno\0", false)]
    public void Names_are_checked_before_they_reach_the_kernel(string name, bool valid) =>
        Assert.Equal(valid, TcpCongestion.ValidName(name));
}
