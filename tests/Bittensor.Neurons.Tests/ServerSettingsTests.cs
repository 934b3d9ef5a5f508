using Akka.Configuration;
using Akka.TestKit.Xunit2;
using Bittensor.Neurons.Roles;
using Xunit.Abstractions;

namespace Bittensor.Neurons.Tests;

/// <summary>A server role reads its metagraph settings from the host's HOCON, not from the reference defaults.</summary>
public sealed class ServerSettingsTests : TestKit, IDisposable
{
    private readonly string _dir;

    public ServerSettingsTests(ITestOutputHelper output)
        : this(Directory.CreateTempSubdirectory("bt-server-settings-").FullName, output)
    {
    }

    private ServerSettingsTests(string dir, ITestOutputHelper output)
        : base(ConfigurationFactory.ParseString($"bittensor.metagraph {{ save = on, path = {System.Text.Json.JsonSerializer.Serialize(Path.Combine(dir, "metagraphs"))} }}")
            .WithFallback(Bittensor.Actors.BittensorRuntime.ReferenceConfig), output: output)
    {
        _dir = dir;
    }

    [Fact]
    public async Task The_servers_metagraph_snapshots_go_where_the_systems_hocon_says()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await using var subnet = await LocalSubnet.StartAsync(Sys, tempo: 50, seed: 3, timeout.Token);
        var server = await ServerNeuron.StartAsync(Sys, subnet.Chain, subnet.Netuid, subnet.NewKeys(),
            new ServerOptions { AxonIp = "127.0.0.30", Handlers = Demo.DemoModels.Echo(), StatePath = Path.Combine(_dir, "state") }, timeout.Token);
        try
        {
            // StartAsync waits for the metagraph's first sync, which saves before it answers.
            Assert.True(File.Exists(Path.Combine(_dir, "metagraphs", "local", $"netuid{subnet.Netuid}.bin")),
                string.Join(", ", Directory.EnumerateFiles(_dir, "*", SearchOption.AllDirectories)));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    void IDisposable.Dispose()
    {
        Shutdown();
        Directory.Delete(_dir, recursive: true);
    }
}
