using System.CommandLine;
using Bittensor.Chain.Local;
using Bittensor.Cli.Commands;

namespace Bittensor.Cli.Tests;

// Runs btcli verbs (and their actor systems) in this process: Akka's start-up/shutdown logger writes to Console.Error,
// which the console-capturing tests of this collection redirect process-wide, so they must not run beside them.
[Collection(Bittensor.Cli.Tests.Chain.ConsoleCollection.Name)]
public sealed class LocalnetRunCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bt-cli-localnet-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static RootCommand Root()
    {
        var root = new RootCommand("test");
        CliApp.AddCommonOptions(root);
        LocalnetCommands.Register(root);
        return root;
    }

    [Fact]
    public async Task Localnet_run_with_blocks_produces_that_many_blocks_and_exits_zero()
    {
        var code = await CliApp.RunAsync(Root(), ["localnet", "run", "--no_rpc", "--blocks", "3", "--block_time", "0.01", "--localnet.path", _dir]);
        Assert.Equal(0, code);
        await using var chain = Localnet.Open(new LocalnetOptions { Path = _dir });
        Assert.Equal(3UL, chain.BlockNumber);
    }

    [Fact]
    public async Task A_block_time_of_zero_produces_the_blocks_back_to_back()
    {
        Assert.Equal(0, await CliApp.RunAsync(Root(), ["localnet", "run", "--no_rpc", "--blocks", "25", "--block_time", "0", "--localnet.path", _dir]));
        await using var chain = Localnet.Open(new LocalnetOptions { Path = _dir });
        Assert.Equal(25UL, chain.BlockNumber);
    }

    [Fact]
    public async Task Localnet_run_on_a_folder_owned_by_another_localnet_fails_with_in_use_by_PID()
    {
        await using var owner = Localnet.Open(new LocalnetOptions { Path = _dir });
        var e = await Assert.ThrowsAsync<CliException>(() =>
            LocalnetChainCommands.RunAsync(_dir, "default", TimeSpan.FromMilliseconds(10), 1, CancellationToken.None));
        Assert.Equal($"localnet at {_dir} is in use by PID {Environment.ProcessId}", e.Message);
        Assert.Equal(1, await CliApp.RunAsync(Root(), ["localnet", "run", "--no_rpc", "--blocks", "1", "--localnet.path", _dir]));
    }

    [Fact]
    public async Task Localnet_reset_starts_a_new_genesis_and_refuses_a_missing_folder()
    {
        Assert.Equal(0, await CliApp.RunAsync(Root(), ["localnet", "run", "--no_rpc", "--blocks", "2", "--block_time", "0.01", "--localnet.path", _dir]));
        Assert.Equal(0, await CliApp.RunAsync(Root(), ["localnet", "reset", "--localnet.path", _dir]));
        await using (var chain = Localnet.Open(new LocalnetOptions { Path = _dir })) Assert.Equal(0UL, chain.BlockNumber);
        Assert.Equal(1, await CliApp.RunAsync(Root(), ["localnet", "reset", "--localnet.path", _dir + "-missing"]));
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("-1")]
    [InlineData("5000")]
    public async Task A_block_time_out_of_range_is_a_user_error(string seconds)
    {
        Assert.Equal(1, await CliApp.RunAsync(Root(), ["localnet", "run", "--no_rpc", "--block_time", seconds, "--localnet.path", _dir]));
    }

    [Theory]
    [InlineData("70000")]
    [InlineData("-1")]
    public async Task An_rpc_port_out_of_range_is_a_user_error(string port)
    {
        Assert.Equal(1, await CliApp.RunAsync(Root(), ["localnet", "run", "--blocks", "1", "--rpc.port", port, "--localnet.path", _dir]));
    }

    [Fact]
    public async Task An_explicit_rpc_port_that_is_taken_is_an_error_and_a_taken_default_is_a_warning()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var options = new Bittensor.Chain.Node.LocalnetNodeOptions { Port = port };
        var e = await Assert.ThrowsAsync<CliException>(() => LocalnetChainCommands.RunAsync(_dir, "default", TimeSpan.Zero, 1, CancellationToken.None,
            new LocalnetChainCommands.RpcSettings(options, Explicit: true)));
        Assert.StartsWith($"cannot serve JSON-RPC on 127.0.0.1:{port}", e.Message);
        Assert.Equal(1, await CliApp.RunAsync(Root(), ["localnet", "run", "--blocks", "1", "--rpc.port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--localnet.path", _dir]));
        // Not chosen by the user (the default 9944 in real use): the chain runs unserved, with a warning.
        Assert.Equal(2UL, await LocalnetChainCommands.RunAsync(_dir, "default", TimeSpan.Zero, 2, CancellationToken.None,
            new LocalnetChainCommands.RpcSettings(options, Explicit: false)));
    }
}
