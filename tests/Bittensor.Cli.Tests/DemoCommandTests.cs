using System.CommandLine;
using System.Text.Json;
using Bittensor.Cli.Commands;

namespace Bittensor.Cli.Tests;

// Runs btcli verbs (and their actor systems) in this process: Akka's start-up/shutdown logger writes to Console.Error,
// which the console-capturing tests of this collection redirect process-wide, so they must not run beside them.
[Collection(Bittensor.Cli.Tests.Chain.ConsoleCollection.Name)]
public sealed class DemoCommandTests
{
    private static RootCommand Root()
    {
        var root = new RootCommand("test");
        CliApp.AddCommonOptions(root);
        DemoCommands.Register(root);
        RunCommands.Register(root);
        return root;
    }

    [Theory]
    [InlineData("--servers", "0", "--servers")]
    [InlineData("--epochs", "1", "--epochs")]
    [InlineData("--block_time", "-1", "--block_time")]
    [InlineData("--tempo", "2", "--tempo")]
    [InlineData("--bad_kind", "uniform,bogus", "--bad_kind")]
    [InlineData("--cluster_server", "4", "--cluster_server")] // 3 useful servers by default
    [InlineData("--kill_worker_at_epoch", "-1", "--kill_worker_at_epoch")]
    [InlineData("--kill_worker_at_epoch", "1", "--processes")] // the in-process demo has no worker process
    public async Task A_bad_demo_option_is_one_line_and_exit_code_1(string flag, string value, string named)
    {
        var error = new StringWriter();
        var code = await CliApp.RunAsync(Root(), ["demo", flag, value], new StringWriter(), error);
        Assert.Equal(1, code);
        Assert.Contains(named, error.ToString(), StringComparison.Ordinal);
        Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void The_summary_and_the_json_say_which_server_is_a_cluster_and_the_status_line_shows_the_weights()
    {
        var neurons = new[]
        {
            new Bittensor.Neurons.Demo.DemoNeuron(1, "5FNxvV4G4AbPKPxw5nd1T2kRWqchRF7eici22U1imTDWHJY5", "server", 0, 1, 0, 2.87, 0.0042, Cluster: "1 front + 2 workers"),
            new Bittensor.Neurons.Demo.DemoNeuron(2, "5ETy7c2jsNetnWK8Z9cc9YRJX6wamGw5QfgEvK216JMXFa4p", "validator", 105.74, 0, 1, 2.87, double.NaN),
        };
        var result = new Bittensor.Neurons.Demo.DemoResult(neurons, [(1, 65535)], true, "fine", 117, 0.4, 50, 10, 18, 1);
        var lines = DemoCommands.Summary(result).Split(Environment.NewLine);
        Assert.EndsWith("emission 2.8700 (cluster: 1 front + 2 workers)", lines.Single(l => l.Contains("uid  1", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.DoesNotContain("cluster", lines.Single(l => l.Contains("uid  2", StringComparison.Ordinal)), StringComparison.Ordinal);
        using var json = JsonDocument.Parse(JsonSerializer.Serialize(DemoCommands.ToJson(result)));
        var listed = json.RootElement.GetProperty("neurons").EnumerateArray().ToArray();
        Assert.Equal("1 front + 2 workers", listed[0].GetProperty("cluster").GetString());
        Assert.Equal(JsonValueKind.Null, listed[1].GetProperty("cluster").ValueKind);
        var status = DemoCommands.StatusLine(new Bittensor.Neurons.Demo.DemoProgress(18, 3, 1, 2, "running", null, "set at block 16 on 1 peers"));
        Assert.EndsWith("| running | weights set at block 16 on 1 peers", status, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_key_in_the_config_file_is_one_line_naming_it_and_exit_code_1()
    {
        var dir = Directory.CreateTempSubdirectory("bt-demo-config-").FullName;
        try
        {
            var file = Path.Combine(dir, "demo.conf");
            File.WriteAllText(file, "bittensor.demo { servers = 2, epochs = 1 }");
            var error = new StringWriter();
            var code = await CliApp.RunAsync(Root(), ["demo", "--config", file], new StringWriter(), error);
            Assert.Equal(1, code);
            Assert.Contains("bittensor.demo.epochs", error.ToString(), StringComparison.Ordinal);
            Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
            // A flag overrides the file: the same file with --epochs 1 → 3 gets past the epochs check to the servers one.
            File.WriteAllText(file, "bittensor.demo { servers = 0, epochs = 1 }");
            error = new StringWriter();
            Assert.Equal(1, await CliApp.RunAsync(Root(), ["demo", "--config", file, "--epochs", "3"], new StringWriter(), error));
            Assert.Contains("bittensor.demo.servers", error.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_short_demo_from_a_config_file_and_flags_prints_the_json_summary_with_roles_and_exit_code_0()
    {
        var dir = Directory.CreateTempSubdirectory("bt-demo-config-").FullName;
        var output = new StringWriter();
        var error = new StringWriter();
        int code;
        byte[] png;
        string[] leftovers;
        try
        {
            // The file sets the shape (one server, two epochs, a short tempo) and a bad kind the flag then overrides.
            var file = Path.Combine(dir, "demo.conf");
            File.WriteAllText(file, """
                bittensor.demo {
                  servers = 1
                  bad_kinds = "constant"
                  epochs = 2
                  tempo = 6
                  block_time = 0s
                }
                """);
            var plot = Path.Combine(dir, "final.png");
            code = await CliApp.RunAsync(Root(), ["demo", "--json", "--config", file, "--bad_kind", "nan", "--seed", "3", "--plot", plot], output, error);
            png = File.Exists(plot) ? await File.ReadAllBytesAsync(plot) : [];
            leftovers = [.. Directory.GetFiles(dir).Select(Path.GetFileName).Where(f => f != "demo.conf" && f != "final.png")!];
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        Assert.True(code == 0, error.ToString());
        using var doc = JsonDocument.Parse(output.ToString());
        var roles = doc.RootElement.GetProperty("neurons").EnumerateArray().Select(n => n.GetProperty("role").GetString() ?? "").Order().ToArray();
        Assert.Equal(new[] { "bad_server", "server", "validator" }, roles);
        Assert.True(doc.RootElement.GetProperty("wall_time_s").GetDouble() > 0);
        Assert.Equal(JsonValueKind.Array, doc.RootElement.GetProperty("validator_weights").ValueKind);
        // --bad_servers defaults to one per --bad_kind; the NaN server's replies were refused, with the reason shown.
        var bad = doc.RootElement.GetProperty("neurons").EnumerateArray().Single(n => n.GetProperty("role").GetString() == "bad_server");
        Assert.Equal("nan", bad.GetProperty("kind").GetString());
        Assert.True(bad.GetProperty("refused").GetProperty("InvalidResponse").GetInt64() > 0);
        Assert.Equal(2, doc.RootElement.GetProperty("incentive_by_epoch").GetArrayLength());
        // --plot: the final metagraph as a PNG (1200×600), written through a temporary file that is gone; the line saying
        // so went to standard error (standard output is the JSON above).
        Assert.True(DemoPlotTests.IsPng(png, 1200, 600), $"not a 1200x600 PNG ({png.Length} bytes)");
        Assert.Empty(leftovers);
        Assert.Contains("plot written to ", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_without_a_wallet_says_which_wallet_it_could_not_open()
    {
        var dir = Directory.CreateTempSubdirectory("bt-run-").FullName;
        try
        {
            var error = new StringWriter();
            var code = await CliApp.RunAsync(Root(),
                ["run", "server", "--netuid", "1", "--wallet.path", Path.Combine(dir, "w"), "--localnet.path", Path.Combine(dir, "ln")], new StringWriter(), error);
            Assert.Equal(1, code);
            Assert.Contains("cannot open", error.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
