using Bittensor.Cli.Tests.Chain;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// A role whose model cannot start (here: a checkpoint file that is not the model's state dict) is tried
/// <c>bittensor.model.start_attempts</c> times, then <c>btcli run</c> stops with exit code 1 and one line naming the
/// reason — no restart loop, no stack trace. Real wallet files, a real localnet folder, the real TorchSharp model.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class RunModelStartFailureTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-run-start-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Code, string Out, string Err)> Btcli(params string[] args) => CliHarness.RunAsync(args);

    private string[] Wallet => ["--wallet.path", Path.Combine(_dir, "wallets"), "--no_password"];

    private string[] Net => ["--localnet.path", Path.Combine(_dir, "localnet")];

    private static void Ran((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, $"exit {r.Code}: {r.Err}{r.Out}");

    [Fact]
    public async Task A_server_whose_checkpoint_cannot_load_exits_1_with_one_line_after_the_configured_tries()
    {
        Ran(await Btcli(["wallet", "new_coldkey", "--n_words", "12", .. Wallet]));
        Ran(await Btcli(["wallet", "new_hotkey", "--n_words", "12", .. Wallet]));
        Ran(await Btcli(["localnet", "faucet", "--amount", "5000", "--json", .. Wallet, .. Net]));
        Ran(await Btcli(["subnets", "create", "--json", .. Wallet, .. Net]));
        var checkpoint = Path.Combine(_dir, "model.ckpt");
        await File.WriteAllTextAsync(checkpoint, "this is not a TorchSharp state dict");
        var config = Path.Combine(_dir, "bad-model.conf");
        await File.WriteAllTextAsync(config, $"bittensor.model {{ checkpoint.path = \"{checkpoint}\", start_attempts = 2, backoff.min = 10ms, backoff.max = 20ms }}\n" +
            $"bittensor.metagraph.path = \"{Path.Combine(_dir, "metagraphs")}\"");

        var (code, output, err) = await Btcli(["run", "server", "--netuid", "1", "--axon.port", "0", "--config", config,
            "--neuron.full_path", Path.Combine(_dir, "state"), .. Wallet.SkipLast(1), .. Net]);

        Assert.Equal(1, code);
        // One error line, last; before it only one-line log events (standard error is the log: docs/logging.md's simple
        // format, `<UTC time> warn|fail: <category>[0] => <source> <message>`), no stack trace.
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.StartsWith("error: server stopped: its model cannot start (2 tries): ", lines[^1], StringComparison.Ordinal);
        Assert.All(lines[..^1], l => Assert.Matches(@"^\d{4}-\d\d-\d\dT\S+Z (warn|fail): \S+\[\d+\] ", l));
        Assert.Contains(lines, l => l.Contains("model did not start (try 1 of 2)", StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        Assert.True(!output.Contains("warn:", StringComparison.Ordinal) && !output.Contains("[WARNING]", StringComparison.Ordinal), output);
        // The checkpoint that could not be read is left as it was (never overwritten by a fresh model).
        Assert.Equal("this is not a TorchSharp state dict", await File.ReadAllTextAsync(checkpoint));
    }
}
