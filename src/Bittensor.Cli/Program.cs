using System.CommandLine;
using Bittensor.Cli;
using Bittensor.Cli.Commands;

// btcli: every area registers its verbs in Commands/<Area>Commands.cs; this file only lists the areas.
SocketCompletions.InlineUnlessSet(); // before any socket exists (docs/axon.md, "Socket completions inline")
var root = new RootCommand("btcli — Bittensor.Actors command line (wallets, chain, peers, localnet, demo)");
CliApp.AddCommonOptions(root);
// Areas (one line each; keep the list sorted by area name).
AxonCommands.Register(root);
ChainCommands.Register(root);
DemoCommands.Register(root);
LocalnetCommands.Register(root);
LocalnetFaucetCommands.Register(root);
RunCommands.Register(root);
SubstrateCommands.Register(root);
WalletCommands.Register(root);

return await CliApp.RunAsync(root, args);
