using System.CommandLine;
using System.Text.Json;
using Bittensor.Cli.Commands;

namespace Bittensor.Cli.Tests.Commands;

/// <summary><c>btcli substrate …</c> over spec 148's recorded metadata; expected bytes are polkadot-js recordings.</summary>
// Runs btcli verbs (and their actor systems) in this process: Akka's start-up/shutdown logger writes to Console.Error,
// which the console-capturing tests of this collection redirect process-wide, so they must not run beside them.
[Collection(Bittensor.Cli.Tests.Chain.ConsoleCollection.Name)]
public sealed class SubstrateCommandsTests
{
    private static readonly string Metadata = Path.Combine(AppContext.BaseDirectory, "Fixtures", "local-148-metadata.hex");

    private static readonly JsonElement Recorded =
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "local-148.json"))).RootElement;

    private static RootCommand Root()
    {
        var root = new RootCommand("test");
        CliApp.AddCommonOptions(root);
        SubstrateCommands.Register(root);
        return root;
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CliApp.RunAsync(Root(), args, output, error);
        return (code, output.ToString().Trim(), error.ToString().Trim());
    }

    private static string RecordedCall(string name) =>
        Recorded.GetProperty("calls").EnumerateArray().Single(c => c.GetProperty("call").GetString() == name).GetProperty("hex").GetString()!;

    [Fact]
    public async Task Metadata_lists_pallets_and_one_pallets_calls_from_the_file()
    {
        var (code, output, error) = await Run("substrate", "metadata", "--metadata", Metadata, "--json");
        Assert.True(code == 0, error);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(14, doc.RootElement.GetProperty("version").GetInt32());
        Assert.Contains(doc.RootElement.GetProperty("pallets").EnumerateArray(),
            p => p.GetProperty("name").GetString() == "SubtensorModule" && p.GetProperty("index").GetInt32() == 7);
        (code, output, error) = await Run("substrate", "metadata", "--metadata", Metadata, "--pallet", "SubtensorModule");
        Assert.True(code == 0, error);
        Assert.Contains("call    0 set_weights(netuid: u16, dests: Vec<u16>, weights: Vec<u16>, version_key: u64)", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Call_and_storage_key_print_the_bytes_polkadot_js_recorded()
    {
        var (code, output, error) = await Run("substrate", "call", "--metadata", Metadata, "SubtensorModule", "set_weights",
            "netuid=3", "dests=0", "weights=65535", "version_key=0");
        Assert.True(code == 0, error);
        Assert.Equal(RecordedCall("set_weights"), output);
        (code, output, error) = await Run("substrate", "call", "--metadata", Metadata, "Balances", "transfer_keep_alive",
            "dest=5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", "value=123456789");
        Assert.True(code == 0, error);
        Assert.Equal(RecordedCall("transfer_keep_alive"), output);
        var account = Recorded.GetProperty("alice_account_key").GetString();
        (code, output, error) = await Run("substrate", "storage-key", "--metadata", Metadata, "System", "Account", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
        Assert.True(code == 0, error);
        Assert.Equal(account, output);
    }

    [Fact]
    public async Task Events_decode_by_name_with_the_module_error()
    {
        var (code, output, error) = await Run("substrate", "events", "--metadata", Metadata, Recorded.GetProperty("events_raw").GetString()!);
        Assert.True(code == 0, error);
        Assert.Contains("Balances.Transfer", output, StringComparison.Ordinal);
        Assert.Contains("System.ExtrinsicFailed (SubtensorModule.TooManyUids)", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("call", "SubtensorModule", "set_weights", "netuid=70000")]
    [InlineData("call", "SubtensorModule", "no_such_call")]
    [InlineData("call", "SubtensorModule", "set_weights", "bogus=1")]
    [InlineData("storage-key", "System", "Account", "not-an-address")]
    [InlineData("storage-key", "NoPallet", "Account")]
    [InlineData("events", "0x0401")]
    public async Task Bad_input_is_one_line_and_exit_code_1(params string[] args)
    {
        var (code, _, error) = await Run(["substrate", args[0], "--metadata", Metadata, .. args[1..]]);
        Assert.Equal(1, code);
        Assert.StartsWith("error:", error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task A_file_that_is_not_metadata_is_refused_with_exit_code_1()
    {
        var dir = Directory.CreateTempSubdirectory("bt-md-").FullName;
        try
        {
            var file = Path.Combine(dir, "bad.hex");
            await File.WriteAllTextAsync(file, "0x6d657461" + "0e" + "ffffffff");
            var (code, _, error) = await Run("substrate", "metadata", "--metadata", file);
            Assert.Equal(1, code);
            Assert.Contains("not valid runtime metadata", error, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
