using System.CommandLine;
using Bittensor.Cli.Commands;
using Bittensor.Cli.Tests.Chain;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// Every verb family layers settings the same way: flags over the <c>--config FILE</c> HOCON over hocon/bittensor.conf;
/// a bad value exits 1 with one line naming the HOCON key. Each test uses its own temp folder.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class CliConfigLayeringTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-cli-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Config(string name, string hocon)
    {
        var path = Path.Combine(_dir, name + ".conf");
        File.WriteAllText(path, hocon);
        return path;
    }

    private string Dir(string name) => Path.Combine(_dir, name);

    private static async Task<(int Code, string Out, string Err)> Btcli(params string[] args)
    {
        var root = new RootCommand("btcli (test)");
        CliApp.AddCommonOptions(root);
        AxonCommands.Register(root);
        ChainCommands.Register(root);
        LocalnetCommands.Register(root);
        RunCommands.Register(root);
        WalletCommands.Register(root);
        DemoCommands.Register(root);
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (output, error) = (new StringWriter(), new StringWriter());
        try
        {
            Console.SetOut(output);
            Console.SetError(error);
            var code = await CliApp.RunAsync(root, args, output, error);
            return (code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    private static void AssertOneErrorLineNaming((int Code, string Out, string Err) result, string key)
    {
        Assert.Equal(1, result.Code);
        var line = Assert.Single(result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: " + key, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wallet_verbs_use_the_config_file_and_a_flag_beats_it()
    {
        var fromFile = Config("wallet", $"bittensor.wallet {{ name = filed, path = \"{Dir("file-wallets")}\" }}");
        Assert.Equal(0, (await Btcli("wallet", "new_hotkey", "--config", fromFile)).Code);
        Assert.True(File.Exists(Path.Combine(Dir("file-wallets"), "filed", "hotkeys", "default")));

        Assert.Equal(0, (await Btcli("wallet", "new_hotkey", "--config", fromFile, "--wallet.path", Dir("flag-wallets"))).Code);
        Assert.True(File.Exists(Path.Combine(Dir("flag-wallets"), "filed", "hotkeys", "default")));

        AssertOneErrorLineNaming(await Btcli("wallet", "inspect", "--config", Config("bad", "bittensor.wallet.name = \"../x\"")), "bittensor.wallet.name");
    }

    [Fact]
    public async Task Chain_verbs_use_the_config_file_and_a_flag_beats_it()
    {
        var fromFile = Config("chain", $"bittensor.localnet.path = \"{Dir("file-chain")}\"");
        Assert.Equal(0, (await Btcli("subnets", "list", "--json", "--config", fromFile)).Code);
        Assert.True(Directory.Exists(Dir("file-chain")));

        Assert.Equal(0, (await Btcli("subnets", "list", "--json", "--config", Config("chain2", $"bittensor.localnet.path = \"{Dir("unused")}\""),
            "--localnet.path", Dir("flag-chain"))).Code);
        Assert.True(Directory.Exists(Dir("flag-chain")));
        Assert.False(Directory.Exists(Dir("unused")));

        AssertOneErrorLineNaming(await Btcli("subnets", "list", "--config", Config("bad", "bittensor.subtensor.wait_for = sometimes")),
            "bittensor.subtensor.wait_for");
    }

    [Fact]
    public async Task Localnet_run_uses_the_config_file_and_a_flag_beats_it()
    {
        var fromFile = Config("localnet", $"bittensor.localnet {{ path = \"{Dir("file-net")}\", block_time = 0s }}");
        Assert.Equal(0, (await Btcli("localnet", "run", "--no_rpc", "--blocks", "1", "--config", fromFile)).Code);
        Assert.True(Directory.Exists(Dir("file-net")));

        Assert.Equal(0, (await Btcli("localnet", "run", "--no_rpc", "--blocks", "1", "--config", fromFile, "--localnet.path", Dir("flag-net"))).Code);
        Assert.True(Directory.Exists(Dir("flag-net")));

        AssertOneErrorLineNaming(await Btcli("localnet", "run", "--no_rpc", "--blocks", "1", "--config", Config("bad", "bittensor.localnet.block_time = soon")),
            "bittensor.localnet.block_time");
    }

    [Fact]
    public async Task Axon_serve_reads_the_config_file_and_a_flag_beats_it()
    {
        // The flag repairs max_workers; the next bad key of the file (queue_capacity) is then the one refused, so the
        // file was read and the flag won. Nothing binds: settings are checked before anything starts.
        var file = Config("axon", "bittensor.axon { max_workers = 0, queue_capacity = -1 }");
        AssertOneErrorLineNaming(await Btcli("axon", "serve", "--uri", "//Alice", "--config", file), "bittensor.axon.max_workers");
        AssertOneErrorLineNaming(await Btcli("axon", "serve", "--uri", "//Alice", "--config", file, "--axon.max_workers", "2"), "bittensor.axon.queue_capacity");
    }

    [Fact]
    public async Task Axon_limits_come_from_the_config_file_and_axon_limits_flags_beat_it()
    {
        var file = Config("limits", "bittensor.axon.limits { forward_message_size = 10, per_ip { connections = -1 } }");
        AssertOneErrorLineNaming(await Btcli("axon", "serve", "--uri", "//Alice", "--config", file), "bittensor.axon.limits.forward_message_size");
        AssertOneErrorLineNaming(await Btcli("axon", "serve", "--uri", "//Alice", "--config", file, "--axon.limits.forward_message_size", "65536"),
            "bittensor.axon.limits.per_ip.connections");
        AssertOneErrorLineNaming(await Btcli("run", "server", "--netuid", "1", "--localnet.path", Dir("limits-net"),
            "--axon.limits.per_ip.requests_per_second", "-1"), "bittensor.axon.limits.per_ip.requests_per_second");
        AssertOneErrorLineNaming(await Btcli("axon", "serve", "--uri", "//Alice", "--config", file, "--axon.limits.forward_message_size", "65536",
            "--axon.limits.per_ip.connections", "4", "--axon.limits.calls_in_flight", "-1"), "bittensor.axon.limits.calls_in_flight");
        AssertOneErrorLineNaming(await Btcli("axon", "serve", "--uri", "//Alice", "--config", file, "--axon.limits.forward_message_size", "65536",
            "--axon.limits.per_ip.connections", "4", "--axon.limits.target_wait", "20s"), "bittensor.axon.limits.target_wait");
        AssertOneErrorLineNaming(await Btcli("run", "server", "--netuid", "1", "--localnet.path", Dir("limits-net"),
            "--axon.limits.target_wait_interval", "0ms"), "bittensor.axon.limits.target_wait_interval");
        AssertOneErrorLineNaming(await Btcli("axon", "serve", "--uri", "//Alice", "--config", file, "--axon.limits.forward_message_size", "65536",
            "--axon.limits.per_ip.connections", "4", "--axon.limits.admit_per_read", "-1"), "bittensor.axon.limits.admit_per_read");
        AssertOneErrorLineNaming(await Btcli("run", "server", "--netuid", "1", "--localnet.path", Dir("limits-net"),
            "--axon.limits.admit_per_read", "5000"), "bittensor.axon.limits.admit_per_read");
        // The minimum data rates (lean and Kestrel): a grace period of 1 s or less, a negative rate.
        AssertOneErrorLineNaming(await Btcli("axon", "serve", "--uri", "//Alice", "--config", file, "--axon.limits.forward_message_size", "65536",
            "--axon.limits.per_ip.connections", "4", "--axon.limits.min_request_body_rate.grace_period", "1s"),
            "bittensor.axon.limits.min_request_body_rate.grace_period");
        AssertOneErrorLineNaming(await Btcli("run", "server", "--netuid", "1", "--localnet.path", Dir("limits-net"),
            "--axon.limits.min_response_rate.bytes_per_second", "-1"), "bittensor.axon.limits.min_response_rate.bytes_per_second");
        // --axon.loopback_congestion_control reaches bittensor.axon.loopback_congestion_control on both serving verbs.
        AssertOneErrorLineNaming(await Btcli("axon", "serve", "--uri", "//Alice", "--axon.loopback_congestion_control", "Not-A-Name"),
            "bittensor.axon.loopback_congestion_control");
        AssertOneErrorLineNaming(await Btcli("run", "server", "--netuid", "1", "--localnet.path", Dir("limits-net"),
            "--axon.loopback_congestion_control", "Not-A-Name"), "bittensor.axon.loopback_congestion_control");
        Assert.False(Directory.Exists(Dir("limits-net")), "nothing starts before every setting is valid");
    }

    [Fact]
    public async Task Query_reads_the_dendrite_section_of_the_config_file_and_a_flag_beats_it()
    {
        var file = Config("query", "bittensor.dendrite { network_dim = 0, max_endpoints = 0 }");
        AssertOneErrorLineNaming(await Btcli("query", "--endpoint", "127.0.0.1:1", "--text", "hi", "--uri", "//Alice", "--config", file),
            "bittensor.dendrite.network_dim");
        AssertOneErrorLineNaming(await Btcli("query", "--endpoint", "127.0.0.1:1", "--text", "hi", "--uri", "//Alice", "--config", file,
            "--network_dim", "8"), "bittensor.dendrite.max_endpoints");
    }

    [Fact]
    public async Task Dendrite_keepalive_comes_from_the_config_file_and_the_keepalive_flags_beat_it()
    {
        var file = Config("keepalive", $"bittensor {{ localnet.path = \"{Dir("keepalive-net")}\", dendrite {{ keepalive_time = 5s, keepalive_timeout = 0s }} }}");
        AssertOneErrorLineNaming(await Btcli("query", "--endpoint", "127.0.0.1:1", "--text", "hi", "--uri", "//Alice", "--config", file),
            "bittensor.dendrite.keepalive_time");
        AssertOneErrorLineNaming(await Btcli("query", "--endpoint", "127.0.0.1:1", "--text", "hi", "--uri", "//Alice", "--config", file,
            "--dendrite.keepalive_time", "30s"), "bittensor.dendrite.keepalive_timeout");
        AssertOneErrorLineNaming(await Btcli("run", "validator", "--netuid", "1", "--config", file), "bittensor.dendrite.keepalive_time");
        AssertOneErrorLineNaming(await Btcli("run", "validator", "--netuid", "1", "--config", file, "--dendrite.keepalive_time", "0s",
            "--dendrite.keepalive_without_calls", "true"), "bittensor.dendrite.keepalive_timeout");
        Assert.False(Directory.Exists(Dir("keepalive-net")), "nothing starts before every setting is valid");
    }

    [Fact]
    public async Task Dendrite_io_comes_from_the_config_file_and_the_io_flag_beats_it()
    {
        var file = Config("io", $"bittensor {{ localnet.path = \"{Dir("io-net")}\", dendrite {{ io = uring, keepalive_timeout = 0s }} }}");
        AssertOneErrorLineNaming(await Btcli("query", "--endpoint", "127.0.0.1:1", "--text", "hi", "--uri", "//Alice", "--config", file),
            "bittensor.dendrite.io");
        AssertOneErrorLineNaming(await Btcli("query", "--endpoint", "127.0.0.1:1", "--text", "hi", "--uri", "//Alice", "--config", file,
            "--dendrite.io", "loop"), "bittensor.dendrite.keepalive_timeout");
        AssertOneErrorLineNaming(await Btcli("run", "validator", "--netuid", "1", "--config", file), "bittensor.dendrite.io");
        AssertOneErrorLineNaming(await Btcli("run", "validator", "--netuid", "1", "--config", file, "--dendrite.io", "sockets"),
            "bittensor.dendrite.keepalive_timeout");
        Assert.False(Directory.Exists(Dir("io-net")), "nothing starts before every setting is valid");
    }

    [Fact]
    public async Task Dendrite_dispatcher_comes_from_the_config_file_and_the_dispatcher_flag_beats_it()
    {
        var file = Config("dispatcher", $"bittensor {{ localnet.path = \"{Dir("dispatcher-net")}\", dendrite {{ dispatcher = fibers, keepalive_timeout = 0s }} }}");
        AssertOneErrorLineNaming(await Btcli("query", "--endpoint", "127.0.0.1:1", "--text", "hi", "--uri", "//Alice", "--config", file),
            "bittensor.dendrite.dispatcher");
        AssertOneErrorLineNaming(await Btcli("query", "--endpoint", "127.0.0.1:1", "--text", "hi", "--uri", "//Alice", "--config", file,
            "--dendrite.dispatcher", "pool"), "bittensor.dendrite.keepalive_timeout");
        AssertOneErrorLineNaming(await Btcli("run", "validator", "--netuid", "1", "--config", file), "bittensor.dendrite.dispatcher");
        AssertOneErrorLineNaming(await Btcli("run", "validator", "--netuid", "1", "--config", file, "--dendrite.dispatcher", "loop"),
            "bittensor.dendrite.keepalive_timeout");
        Assert.False(Directory.Exists(Dir("dispatcher-net")), "nothing starts before every setting is valid");
    }

    [Fact]
    public async Task A_weights_lead_below_2_stops_the_validator_and_the_demo_before_anything_starts()
    {
        // Weights set 1 block before an epoch land in the epoch's own block, whose epoch runs before its calls.
        var file = Config("lead", $"bittensor {{ localnet.path = \"{Dir("lead-net")}\", validator.weights_lead_blocks = 1 }}");
        AssertOneErrorLineNaming(await Btcli("run", "validator", "--netuid", "1", "--config", file), "bittensor.validator.weights_lead_blocks");
        AssertOneErrorLineNaming(await Btcli("demo", "--json", "--config", file), "bittensor.validator.weights_lead_blocks");
        AssertOneErrorLineNaming(await Btcli("demo", "--processes", "--json", "--config", file), "bittensor.validator.weights_lead_blocks");
        Assert.False(Directory.Exists(Dir("lead-net")), "nothing starts before every setting is valid");
    }

    [Fact]
    public async Task Run_verbs_read_the_config_file_and_a_flag_beats_it()
    {
        var file = Config("run", $"bittensor {{ localnet.path = \"{Dir("run-net")}\", axon.port = 70000, model.heads = 3 }}");
        AssertOneErrorLineNaming(await Btcli("run", "server", "--netuid", "1", "--config", file), "bittensor.axon.port");
        AssertOneErrorLineNaming(await Btcli("run", "server", "--netuid", "1", "--config", file, "--axon.port", "0"), "bittensor.model.heads");
        Assert.False(Directory.Exists(Dir("run-net")), "nothing starts before every setting is valid");
    }
}
