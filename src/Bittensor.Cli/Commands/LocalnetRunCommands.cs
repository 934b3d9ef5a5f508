using System.CommandLine;

namespace Bittensor.Cli.Commands;

/// <summary>
/// <c>btcli localnet run|reset|faucet</c>. Registered after <c>LocalnetCommands</c> (names sort that way) so the
/// verbs join its <c>localnet</c> group; the group is created here when no other area made it.
/// </summary>
internal static class LocalnetRunCommands
{
    public static void Register(RootCommand root)
    {
        var localnet = root.Subcommands.FirstOrDefault(c => c.Name == "localnet");
        if (localnet is null)
        {
            localnet = new Command("localnet", "Embedded local chain: run blocks, reset, fund a wallet");
            root.Subcommands.Add(localnet);
        }
        ChainCommands.AddLocalnetVerbs(localnet);
    }
}
