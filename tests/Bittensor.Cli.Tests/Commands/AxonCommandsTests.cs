using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Cli.Commands;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;

namespace Bittensor.Cli.Tests.Commands;

// Runs btcli verbs (and their actor systems) in this process: Akka's start-up/shutdown logger writes to Console.Error,
// which the console-capturing tests of this collection redirect process-wide, so they must not run beside them.
[Collection(Bittensor.Cli.Tests.Chain.ConsoleCollection.Name)]
public sealed class AxonCommandsTests() : Akka.TestKit.Xunit2.TestKit("akka.loglevel = WARNING")
{
    private static RootCommand Root()
    {
        var root = new RootCommand("test");
        CliApp.AddCommonOptions(root);
        AxonCommands.Register(root);
        return root;
    }

    private IActorRef? _axon;

    private async Task<int> EchoAxon(Func<string, bool>? preVerify = null)
    {
        var settings = AxonSettings.Default with { Ip = "127.0.0.1", Port = 0 };
        _axon = Sys.ActorOf(AxonActor.Props(settings, DemoModels.Echo(settings.NetworkDim), new AxonOptions { PreVerifyBlacklist = preVerify }));
        return (await _axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, TimeSpan.FromSeconds(20))).Endpoint.Port;
    }

    [Fact]
    public async Task Query_signs_with_the_wallets_hotkey_through_the_wallet_signer_actor()
    {
        var path = Path.Combine(Path.GetTempPath(), "bt-cli-axon-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var dave = Bittensor.Wallet.WalletKey.FromUri("//Dave");
            new Bittensor.Wallet.LocalWallet("w", "h", path).CreateHotkey(dave, null, overwrite: false);
            var port = await EchoAxon();

            var code = await CliApp.RunAsync(Root(), ["query", "--wallet.path", path, "--wallet.name", "w", "--wallet.hotkey", "h",
                "--endpoint", $"127.0.0.1:{port}", "--text", "hello"]);

            Assert.Equal(0, code);
            var stats = await _axon!.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, TimeSpan.FromSeconds(20));
            Assert.Equal(1, stats.PerCaller[dave.Ss58Address].Calls);
        }
        finally
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }
    }

    [Fact]
    public async Task Query_with_a_missing_wallet_hotkey_is_a_user_error()
    {
        var path = Path.Combine(Path.GetTempPath(), "bt-cli-axon-missing-" + Guid.NewGuid().ToString("N"));

        Assert.Equal(1, await CliApp.RunAsync(Root(), ["query", "--wallet.path", path, "--endpoint", "127.0.0.1:8091", "--text", "x"]));
    }

    [Fact]
    public async Task Query_forward_and_backward_against_a_live_axon_exit_zero()
    {
        var port = await EchoAxon();

        var forward = await CliApp.RunAsync(Root(), ["query", "--uri", "//Alice", "--endpoint", $"127.0.0.1:{port}", "--text", "hello", "--json"]);
        var backward = await CliApp.RunAsync(Root(), ["query", "--uri", "//Alice", "--endpoint", $"127.0.0.1:{port}", "--text", "hi", "--backward"]);

        Assert.Equal(0, forward);
        Assert.Equal(0, backward);
    }

    [Fact]
    public async Task Query_exits_one_when_the_axon_refuses_the_caller()
    {
        var port = await EchoAxon(preVerify: _ => false);

        Assert.Equal(1, await CliApp.RunAsync(Root(), ["query", "--uri", "//Alice", "--endpoint", $"127.0.0.1:{port}", "--text", "hello"]));
    }

    [Fact]
    public async Task Query_to_a_closed_port_exits_one()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        Assert.Equal(1, await CliApp.RunAsync(Root(), ["query", "--uri", "//Alice", "--endpoint", $"127.0.0.1:{port}", "--text", "x", "--timeout", "5"]));
    }

    [Theory]
    [InlineData("nohostport")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:99999")]
    [InlineData(":8091")]
    public void A_malformed_endpoint_is_a_user_error(string endpoint) =>
        Assert.Throws<CliException>(() => AxonCommands.ParseEndpoint(endpoint));

    [Fact]
    public async Task Serve_refuses_an_unknown_model()
    {
        Assert.Equal(1, await CliApp.RunAsync(Root(), ["axon", "serve", "--uri", "//Bob", "--axon.port", "0", "--model", "gpt5"]));
        Assert.Equal(1, await CliApp.RunAsync(Root(), ["axon", "serve", "--uri", "//Bob", "--axon.port", "0", "--model.cpu_ms", "-1"]));
        Assert.Equal(1, await CliApp.RunAsync(Root(), ["axon", "serve", "--uri", "//Bob", "--axon.port", "0", "--model", "server", "--model.cpu_ms", "2"]));
    }

    [Fact]
    public async Task Serve_with_a_blacklist_but_no_stakes_file_is_a_user_error()
    {
        Assert.Equal(1, await CliApp.RunAsync(Root(), ["axon", "serve", "--uri", "//Bob", "--axon.port", "0", "--axon.blacklist.registered_only"]));
        Assert.Equal(1, await CliApp.RunAsync(Root(), ["axon", "serve", "--uri", "//Bob", "--axon.port", "0", "--axon.blacklist.min_stake", "1"]));
    }

    [Theory]
    [InlineData("[1, 2]")]
    [InlineData("{\"not-an-address\": 1}")]
    [InlineData("{\"5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty\": -1}")]
    [InlineData("{\"5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty\": \"10\"}")]
    [InlineData("{\"5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty\": 1")]
    public void A_bad_stakes_file_is_a_user_error(string json)
    {
        var file = new FileInfo(Path.Combine(Directory.CreateTempSubdirectory("bt-stakes-").FullName, "stakes.json"));
        File.WriteAllText(file.FullName, json);
        Assert.Throws<CliException>(() => AxonCommands.ReadStakes(file));
        Directory.Delete(file.DirectoryName!, recursive: true);
    }

    [Fact]
    public void A_stakes_file_maps_hotkeys_to_TAO()
    {
        var file = new FileInfo(Path.Combine(Directory.CreateTempSubdirectory("bt-stakes-").FullName, "stakes.json"));
        File.WriteAllText(file.FullName, "{\"5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty\": 12.5, \"5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y\": 0}");
        var table = AxonCommands.ReadStakes(file);
        Directory.Delete(file.DirectoryName!, recursive: true);

        Assert.Equal(2, table.Count);
        Assert.Equal(12.5, table["5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"]);
        Assert.Equal(0, table["5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y"]);
    }
}
