using System.CommandLine;

namespace Bittensor.Cli.Commands;

/// <summary>
/// <c>btcli localnet faucet</c>: mints TAO into a wallet's coldkey on the localnet, so a fresh machine can create a
/// subnet and stake. Registered after <c>LocalnetCommands</c> (names sort that way) so it joins that area's
/// <c>localnet</c> group; the group is created here when no other area made it.
/// </summary>
internal static class LocalnetFaucetCommands
{
    public static void Register(RootCommand root)
    {
        var localnet = root.Subcommands.FirstOrDefault(c => c.Name == "localnet");
        if (localnet is null)
        {
            localnet = new Command("localnet", "Embedded local chain");
            root.Subcommands.Add(localnet);
        }
        ChainCommands.AddLocalnetVerbs(localnet);
    }
}
