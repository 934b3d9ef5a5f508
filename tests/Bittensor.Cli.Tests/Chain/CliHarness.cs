using System.CommandLine;
using System.Runtime.CompilerServices;
using Bittensor.Cli.Commands;

namespace Bittensor.Cli.Tests.Chain;

/// <summary>Tests that swap <see cref="Console.Out"/> run alone, never next to another test that writes to the console.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection
{
    public const string Name = "console";
}

/// <summary>
/// Every verb this test assembly runs in-process (through <see cref="CliHarness"/> or <c>CliApp.RunAsync</c> directly)
/// has <c>bittensor.subtensor.local_endpoint = ""</c> forced: <c>--subtensor.network local</c> opens the test's own
/// localnet folder and never probes ws://127.0.0.1:9944, where a developer's or CI machine may run a node.
/// Verbs that should talk to a node are given <c>--subtensor.chain_endpoint</c>. Checked by <c>LocalNodeProbeTests</c>.
/// </summary>
internal static class InProcessVerbs
{
#pragma warning disable CA2255 // a test assembly's own switch, set before any test runs
    [ModuleInitializer]
    internal static void NoLocalNodeProbe() => CliConfig.HostOverrides = CliConfig.NoLocalNodeProbe;
#pragma warning restore CA2255
}

/// <summary>Runs btcli in-process with the chain, localnet, wallet, run and axon verbs registered, capturing stdout and stderr.</summary>
internal static class CliHarness
{
    private static readonly SemaphoreSlim Gate = new(1, 1);

    public static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var root = new RootCommand("btcli (test)");
        CliApp.AddCommonOptions(root);
        ChainCommands.Register(root);
        LocalnetCommands.Register(root);
        LocalnetFaucetCommands.Register(root);
        RunCommands.Register(root);
        WalletCommands.Register(root);
        AxonCommands.Register(root);
        await Gate.WaitAsync();
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (outWriter, errWriter) = (new StringWriter(), new StringWriter());
        try
        {
            Console.SetOut(outWriter);
            Console.SetError(errWriter);
            var code = await CliApp.RunAsync(root, args);
            return (code, outWriter.ToString(), errWriter.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
            Gate.Release();
        }
    }
}
