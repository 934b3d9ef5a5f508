using System.Collections.Concurrent;
using Bittensor.Actors.Axon;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Actors.Tests.Transport;

/// <summary>
/// <see cref="ServerTransportOptions.LoopbackCongestionControl"/> on the Kestrel transport over real loopback sockets
/// (port 0), as LoopbackCongestionTests checks the lean server: a connection middleware sets the name on the accepted
/// socket of a loopback peer (read back from that socket with getsockopt), leaves the system's when the setting is
/// empty, and when the kernel refuses the name keeps the system's, serves the connection and says so once.
/// </summary>
public sealed class KestrelLoopbackCongestionSpec
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

    private static string SystemDefault => File.ReadAllText("/proc/sys/net/ipv4/tcp_congestion_control").Trim();

    /// <summary>Binds Kestrel with <paramref name="congestion"/>, makes one call on each of <paramref name="connections"/> connections.</summary>
    private static async Task<(string?[] Accepted, KestrelServerTransport Transport, string[] Warnings)> Calls(string? congestion, int connections = 1)
    {
        var accepted = new ConcurrentQueue<string?>();
        var warnings = new ConcurrentQueue<string>();
        var transport = new KestrelServerTransport { AcceptedCongestion = accepted.Enqueue };
        await using var server = await transport.BindAsync(
            new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8) { LoopbackCongestionControl = congestion, Warn = warnings.Enqueue },
            new Echo(), CancellationToken.None);
        for (var i = 0; i < connections; i++)
        {
            using var connection = GrpcClientTransport.Instance.Connect("127.0.0.1", server.Endpoint.Port, TestChannel.Options);
            var answer = await connection.CallAsync(BittensorMethod.Forward, new TensorMessage { Hotkey = $"served-{i}" }, new Metadata(),
                DateTime.UtcNow.Add(Wait), CancellationToken.None);
            Assert.Equal($"served-{i}", answer.Message);
        }
        return ([.. accepted], transport, [.. warnings]);
    }

    [Fact]
    public async Task A_loopback_connection_gets_the_named_congestion_control()
    {
        var (accepted, transport, warnings) = await Calls("reno");

        Assert.Equal("reno", Assert.Single(accepted));
        Assert.Equal((1L, 0L), (transport.LoopbackCongestionSet, transport.LoopbackCongestionRefused));
        Assert.Empty(warnings);
    }

    [Fact]
    public async Task Without_a_name_nothing_is_set()
    {
        var (accepted, transport, _) = await Calls("");

        Assert.Empty(accepted); // no middleware at all
        Assert.Equal((0L, 0L), (transport.LoopbackCongestionSet, transport.LoopbackCongestionRefused));
    }

    [Fact]
    public async Task A_name_the_kernel_refuses_keeps_the_systems_serves_and_is_said_once()
    {
        var (accepted, transport, warnings) = await Calls("no_such_cc", connections: 2);

        Assert.Equal(new string?[] { SystemDefault, SystemDefault }, accepted.AsEnumerable());
        Assert.Equal((0L, 2L), (transport.LoopbackCongestionSet, transport.LoopbackCongestionRefused));
        Assert.Contains("'no_such_cc'", Assert.Single(warnings), StringComparison.Ordinal);
    }
}
