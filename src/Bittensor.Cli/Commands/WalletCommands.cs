using System.CommandLine;

namespace Bittensor.Cli.Commands;

/// <summary><c>btcli wallet ...</c> verbs.</summary>
internal static class WalletCommands
{
    public static void Register(RootCommand root)
    {
        var wallet = new Command("wallet", "Create, restore, list and use btcli-compatible wallets");
        root.Subcommands.Add(wallet);
    }
}
