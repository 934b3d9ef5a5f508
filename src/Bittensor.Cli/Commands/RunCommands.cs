using System.CommandLine;
using System.Globalization;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Wallet;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using Bittensor.Models;
using Bittensor.Neurons;
using Bittensor.Neurons.Roles;
using Bittensor.Wallet;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Cli.Commands;

/// <summary>
/// <c>btcli run server|validator|miner</c>: one role, hosted in this process together with the localnet it acts on
/// (the localnet folder is owned by one process at a time; separate processes need the localnet's JSON-RPC server,
/// which is not built yet).
/// </summary>
internal static class RunCommands
{
    /// <summary>Adds the <c>run</c> group with its three verbs.</summary>
    public static Command Register(RootCommand root)
    {
        var run = new Command("run", "Run a neuron (server, validator or miner) on a subnet of the local chain until stopped");
        foreach (var role in new[] { "server", "validator", "miner" }) run.Subcommands.Add(Verb(role));
        root.Subcommands.Add(run);
        return run;
    }

    /// <summary>
    /// What a role needs on a localnet before --config and flags: an announceable address (subtensor refuses
    /// 0.0.0.0 and 127.0.0.1, so the reference's 0.0.0.0 would never be served).
    /// </summary>
    internal const string VerbDefaults = "bittensor.axon.ip = \"127.0.0.2\"";

    private static Command Verb(string role)
    {
        var name = new Option<string?>("--wallet.name") { Description = "Wallet name (default: BT_WALLET_NAME, else bittensor.wallet.name)" };
        var hotkey = new Option<string?>("--wallet.hotkey") { Description = "Hotkey name (default: BT_WALLET_HOTKEY, else bittensor.wallet.hotkey)" };
        var path = new Option<string?>("--wallet.path") { Description = "Wallets folder (default: BT_WALLET_PATH, else bittensor.wallet.path)" };
        var netuid = new Option<int>("--netuid") { Description = "Subnet to join", Required = true };
        var localnet = new Option<string?>("--localnet.path") { Description = "Localnet folder (default bittensor.localnet.path: ~/.bittensor/localnet/default)" };
        var blockTime = new Option<double?>("--block_time", "--localnet.block_time") { Description = "Seconds between the blocks this process produces (default bittensor.localnet.block_time: 1s)" };
        var ip = new Option<string?>("--axon.ip") { Description = "Axon address to bind and announce (not 127.0.0.1: the chain refuses it; default 127.0.0.2)" };
        var port = new Option<int?>("--axon.port") { Description = "Axon port (0: any free port; default bittensor.axon.port: 8091)" };
        var minStake = new Option<double?>("--axon.blacklist.min_stake")
        {
            Description = "Refuse callers whose stake on the subnet (latest metagraph snapshot) is below this many TAO (server, miner)",
        };
        var registeredOnly = new Option<bool>("--axon.blacklist.registered_only") { Description = "Serve only hotkeys registered on the subnet (server, miner)" };
        var stake = new Option<decimal>("--stake") { Description = "TAO to stake on the hotkey from the coldkey at start (validator)", DefaultValueFactory = _ => 0m };
        var fullPath = new Option<string?>("--neuron.full_path")
        {
            Description = $"This neuron's state folder (the axon's nonce store); default ~/.bittensor/miners/<wallet>/<hotkey>/netuid<N>/{role}",
        };
        var command = new Command(role, role switch
        {
            "server" => "Serve a model through an axon, registered on the subnet; it trains on the gradients callers return",
            "validator" => "Query the subnet's servers, score each by how much its representation lowers the next-token loss, set weights every tempo",
            _ => "Serve a model and distil the subnet's joined representations into it",
        });
        foreach (var o in new Option[] { name, hotkey, path, netuid, localnet, blockTime, ip, port, minStake, registeredOnly, stake, fullPath }) command.Options.Add(o);
        var config = CliConfig.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var id = parse.GetValue(netuid);
            if (id is < 0 or > ushort.MaxValue) throw new CliException("--netuid must be between 0 and 65535");
            if (parse.GetValue(blockTime) is { } seconds && !(seconds > 0 && seconds <= 3600)) throw new CliException("--block_time must be between 0 and 3600 seconds");
            var hocon = CliConfig.Load(parse, config,
            [
                ("bittensor.localnet.path", parse.GetValue(localnet)),
                ("bittensor.localnet.block_time", parse.GetValue(blockTime) is { } t ? TimeSpan.FromSeconds(t) : null),
                ("bittensor.axon.ip", parse.GetValue(ip)),
                ("bittensor.axon.port", parse.GetValue(port)),
                ("bittensor.axon.blacklist.min_stake", parse.GetValue(minStake)),
                ("bittensor.axon.blacklist.registered_only", parse.GetValue(registeredOnly) ? true : null),
            ], VerbDefaults);
            var settings = new RunSettings(
                CliConfig.Settings(hocon, LocalnetSettings.SectionPath, LocalnetSettings.Create),
                CliConfig.Settings(hocon, AxonSettings.SectionPath, AxonSettings.Create),
                CliConfig.Settings(hocon, ModelSettings.SectionPath, ModelSettings.Create),
                CliConfig.Settings(hocon, ValidatorOptions.SectionPath, ValidatorOptions.Create) with { Stake = Balance.FromTao(parse.GetValue(stake)) });
            var wallet = CliConfig.Settings(hocon, WalletSettings.SectionPath, WalletSettings.Create)
                .WithOverrides(parse.GetValue(name), parse.GetValue(hotkey), parse.GetValue(path)).ToWallet();
            // Every role hosts a TorchSharp model: a library that cannot load is one line now, not a restart loop.
            if (Bittensor.Models.TorchNative.Check() is { } why) throw new CliException(why);
            var state = parse.GetValue(fullPath) is { Length: > 0 } f ? Path.GetFullPath(f) : NeuronPaths.Default(wallet.Name, wallet.Hotkey, (ushort)id, role);
            await RunAsync(role, wallet, (ushort)id, hocon, settings, state, parse.InvocationConfiguration.Output, cancellationToken);
            return 0;
        });
        return command;
    }

    /// <summary>Everything a role reads from the layered configuration, validated before anything starts.</summary>
    private sealed record RunSettings(LocalnetSettings Localnet, AxonSettings Axon, ModelSettings Model, ValidatorOptions Validator);

    private static async Task RunAsync(string role, LocalWallet wallet, ushort netuid, Config hocon, RunSettings settings, string state, TextWriter output,
        CancellationToken cancellationToken)
    {
        WalletKey hot;
        WalletKey? cold = null;
        try
        {
            hot = wallet.LoadHotkey(PasswordSource.FromEnvironment(PasswordSource.HotkeyPasswordVariable));
            if (File.Exists(wallet.ColdkeyPath)) cold = wallet.LoadColdkey(PasswordSource.FromEnvironment(PasswordSource.ColdkeyPasswordVariable));
        }
        catch (Exception e) when (e is KeyfileException or IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot open {wallet}: {e.Message}");
        }
        Localnet chain;
        try
        {
            chain = Localnet.Open(new LocalnetOptions { Name = settings.Localnet.Name, Path = settings.Localnet.Path });
        }
        catch (LocalnetException e)
        {
            throw new CliException(e.Message);
        }
        await using (chain)
        {
            var keys = NeuronKeys.FromWallet(hot, cold);
            // The role's ActorSystem runs on the same layered configuration, so every actor sees the flags and --config.
            var system = ActorSystem.Create("btcli-run", ConfigurationFactory.ParseString("akka.loglevel = WARNING").WithFallback(hocon));
            var runtime = BittensorRuntime.Get(system);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var producing = new LocalnetBlockProducer(chain, settings.Localnet.BlockTime).RunAsync(null, stop.Token);
            IAsyncDisposable? neuron = null;
            // A model that cannot start (bad checkpoint, out of memory at load) stops the role: say why, exit 1.
            var gaveUp = ModelHostEvents.GaveUpAsync(system, stop.Token);
            _ = gaveUp.ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully) stop.Cancel();
            }, TaskScheduler.Default);
            try
            {
                var actor = system.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(new NonOwningChainBackend(chain)), runtime.Subtensor, Random.Shared.NextDouble), "chain");
                var server = new ServerOptions { AxonIp = settings.Axon.Ip, AxonPort = settings.Axon.Port, Model = settings.Model, Axon = settings.Axon, StatePath = state };
                // The server's axon takes its callers' stakes from the role's metagraph (see ServerNeuron).
                var validator = settings.Validator;
                Func<string> status;
                switch (role)
                {
                    case "server":
                        var s = await ServerNeuron.StartAsync(system, actor, netuid, keys, server, stop.Token);
                        neuron = s;
                        status = () => string.Create(CultureInfo.InvariantCulture, $"server uid {s.Uid} serving at {s.Ip}:{s.Port}, block {chain.BlockNumber}");
                        break;
                    case "validator":
                        var v = await ValidatorNeuron.StartAsync(system, actor, netuid, keys, validator, stop.Token);
                        neuron = v;
                        status = () =>
                        {
                            var m = v.Pipeline.Metrics.Snapshot();
                            return string.Create(CultureInfo.InvariantCulture, $"validator uid {v.Uid}, block {chain.BlockNumber}, batches {m.Batches}, queries/s {m.QueriesPerSecond:F1}, loss {m.Loss:F3}");
                        };
                        break;
                    default:
                        var mi = await MinerNeuron.StartAsync(system, actor, netuid, keys, server, validator, stop.Token);
                        neuron = mi;
                        status = () => string.Create(CultureInfo.InvariantCulture, $"miner uid {mi.Server.Uid} at {mi.Server.Ip}:{mi.Server.Port}, block {chain.BlockNumber}, distillation loss {mi.LastDistillLoss:F5}");
                        break;
                }
                await output.WriteLineAsync($"{role} running on subnet {netuid} as {keys.HotkeySs58} (state in {state}); Ctrl-C stops it");
                using var timer = new PeriodicTimer(TimeSpan.FromSeconds(10));
                while (true)
                {
                    var tick = timer.WaitForNextTickAsync(stop.Token).AsTask();
                    if (await Task.WhenAny(tick, gaveUp) == gaveUp) break;
                    if (!await tick) break;
                    await output.WriteLineAsync(status());
                }
                var g = await gaveUp;
                throw new CliException($"{role} stopped: its model cannot start ({g.Attempts} tries): {g.Reason}");
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && gaveUp.IsCompletedSuccessfully)
            {
                // The model gave up while the role was still starting.
                throw new CliException($"{role} stopped: its model cannot start ({gaveUp.Result.Attempts} tries): {gaveUp.Result.Reason}");
            }
            catch (NeuronException e)
            {
                throw new CliException(e.Message);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await output.WriteLineAsync("stopped");
            }
            finally
            {
                await stop.CancelAsync();
                if (neuron is not null) await neuron.DisposeAsync();
                try
                {
                    await producing;
                }
                catch (OperationCanceledException)
                {
                }
                await system.Terminate();
                hot.Dispose();
                cold?.Dispose();
            }
        }
    }
}
