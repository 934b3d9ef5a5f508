using System.CommandLine;
using Bittensor.Cli;
using Bittensor.Cli.Commands;

namespace Bittensor.Cli.Tests.Commands;

/// <summary><c>btcli localnet epoch --input case.json</c> on real files.</summary>
// Runs btcli verbs (and their actor systems) in this process: Akka's start-up/shutdown logger writes to Console.Error,
// which the console-capturing tests of this collection redirect process-wide, so they must not run beside them.
[Collection(Bittensor.Cli.Tests.Chain.ConsoleCollection.Name)]
public sealed class LocalnetEpochCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("btcli-epoch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private const string Case = """
        {"block": 10, "tempo": 360, "emission_rao": 1000000000,
         "hyperparams": {"kappa": 32767, "bonds_moving_average": 900000, "activity_cutoff": 5000,
                         "max_allowed_validators": 1, "immunity_period": 4096, "min_allowed_weights": 1, "max_weights_limit": 65535},
         "neurons": [
           {"uid": 0, "stake_rao": 1000000000000, "last_update": 10, "block_at_registration": 0, "weights": [[1, 65535], [2, 21845]]},
           {"uid": 1, "stake_rao": 0, "last_update": 10, "block_at_registration": 0},
           {"uid": 2, "stake_rao": 0, "last_update": 10, "block_at_registration": 0}]}
        """;

    [Fact]
    public void A_case_file_prints_the_epoch_result_as_json()
    {
        var output = LocalnetCommands.RunEpoch(Write("case.json", Case));
        Assert.Contains("\"incentive\": [0, 49151, 16383]", output, StringComparison.Ordinal);
        Assert.Contains("\"emission_rao\": [500000000, 375000000, 125000000]", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_is_a_one_line_user_error()
    {
        var e = Assert.Throws<CliException>(() => LocalnetCommands.RunEpoch(Path.Combine(_dir, "absent.json")));
        Assert.Equal(CliApp.UserError, e.ExitCode);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_duplicate_uid_is_reported_with_the_file_and_field()
    {
        var path = Write("dup.json", Case.Replace("\"uid\": 2,", "\"uid\": 1,", StringComparison.Ordinal));
        var e = Assert.Throws<CliException>(() => LocalnetCommands.RunEpoch(path));
        Assert.Contains("dup.json: neurons[2].uid: duplicate uid 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_verb_exits_with_code_one_on_bad_input()
    {
        var root = new RootCommand();
        LocalnetCommands.Register(root);
        var path = Write("bad.json", "{\"block\": 1}");
        Assert.Equal(CliApp.UserError, await CliApp.RunAsync(root, ["localnet", "epoch", "--input", path]));
    }
}
