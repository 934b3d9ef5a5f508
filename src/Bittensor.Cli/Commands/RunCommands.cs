using System.CommandLine;
using System.Globalization;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.Wallet;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Chain.Rpc;
using Bittensor.Core.Domain;
using Bittensor.Models;
using Bittensor.Neurons;
using Bittensor.Neurons.Roles;
using Bittensor.Wallet;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Cli.Commands;

/// <summary>
/// <c>btcli run server|validator|miner</c>: one role. With <c>--subtensor.chain_endpoint</c> (or a network with a
/// well-known endpoint, or <c>local</c> when a node answers at <c>bittensor.subtensor.local_endpoint</c>) the role talks
/// to that node over JSON-RPC, so roles run as separate processes against one chain; otherwise it hosts the
/// embedded localnet in this process and produces its blocks (the folder has one owner at a time).
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
    internal const string VerbDefaults = "bittensor.axon.ip = \"127.0.0.2\"\nakka.loglevel = WARNING\nbittensor.logging.level = Warning";

    /// <summary>A cluster worker's own defaults over <see cref="VerbDefaults"/>: it logs its progress (Information).</summary>
    private const string WorkerDefaults = "bittensor.logging.level = Information";

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
        var network = new Option<string?>("--subtensor.network")
        {
            Description = "Chain: local (a node at ws://127.0.0.1:9944 when one answers, else the embedded localnet), finney, test, or a custom name with --subtensor.chain_endpoint",
        };
        var endpoint = new Option<string?>("--subtensor.chain_endpoint") { Description = "WebSocket JSON-RPC endpoint of a node, e.g. ws://127.0.0.1:9944" };
        var registeredOnly = new Option<bool>("--axon.blacklist.registered_only") { Description = "Serve only hotkeys registered on the subnet (server, miner)" };
        var stake = new Option<decimal>("--stake") { Description = "TAO to stake on the hotkey from the coldkey at start (validator)", DefaultValueFactory = _ => 0m };
        var fullPath = new Option<string?>("--neuron.full_path")
        {
            Description = $"This neuron's state folder (the axon's nonce store); default ~/.bittensor/miners/<wallet>/<hotkey>/netuid<N>/{role}",
        };
        var badKind = new Option<string?>("--bad_kind")
        {
            Description = $"Serve a useless or hostile answer instead of the model, ignoring gradients (the adversary zoo, docs/validator.md: {string.Join("|", Bittensor.Neurons.Demo.Adversaries.Kinds)}; its noise is seeded by bittensor.model.seed + 1000) (server)",
        };
        var reportBatches = new Option<bool>("--report_batches")
        {
            Description = $"Print one line per completed batch: \"{Bittensor.Neurons.Demo.DemoValidatorReport.LinePrefix.Trim()}\" and JSON with the pipeline's counters and each peer's score, and one per weight setting: \"{Bittensor.Neurons.Demo.DemoWeightsReport.LinePrefix.Trim()}\" and JSON (validator; btcli demo --processes reads them)",
        };
        var command = new Command(role, role switch
        {
            "server" => "Serve a model through an axon, registered on the subnet; it trains on the gradients callers return",
            "validator" => "Query the subnet's servers, score each by how much its representation lowers the next-token loss, set weights every tempo",
            _ => "Serve a model and distil the subnet's joined representations into it",
        });
        foreach (var o in new Option[] { name, hotkey, path, netuid, network, endpoint, localnet, blockTime, ip, port, minStake, registeredOnly, stake, fullPath }) command.Options.Add(o);
        if (role == "server") command.Options.Add(badKind);
        var clusterRole = new Option<string?>("--cluster.role")
        {
            Description = "front: this node is front-capable (chain, metagraph, axon as a cluster singleton; the model runs on the workers); " +
                "worker: host the model for a front, no chain (docs/cluster.md); default \"\" (not clustered) (server)",
        };
        ClusterFlags? clusterFlags = null;
        if (role == "server")
        {
            command.Options.Add(clusterRole);
            clusterFlags = ClusterFlags.AddTo(command, worker: true);
        }
        if (role == "validator") command.Options.Add(reportBatches);
        var dendriteTransport = new Option<string?>("--dendrite.transport")
        {
            Description = "Client transport toward axons: lean (the project's own HTTP/2 client, default) or grpc (Grpc.Net.Client); docs/axon.md",
        };
        command.Options.Add(dendriteTransport);
        var keepAlive = new DendriteKeepAliveFlags();
        keepAlive.AddTo(command);
        var limits = new AxonLimitFlags();
        limits.AddTo(command);
        var config = CliConfig.AddTo(command);
        var metrics = MetricsExport.AddFlags(command);
        var logging = CliLogging.AddFlags(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var id = parse.GetValue(netuid);
            var bad = role == "server" ? parse.GetValue(badKind) : null;
            if (bad is not null && !Bittensor.Neurons.Demo.Adversaries.Kinds.Contains(bad))
                throw new CliException($"--bad_kind must be one of {string.Join(", ", Bittensor.Neurons.Demo.Adversaries.Kinds)}");
            if (id is < 0 or > ushort.MaxValue) throw new CliException("--netuid must be between 0 and 65535");
            if (parse.GetValue(blockTime) is { } seconds && !(seconds > 0 && seconds <= 3600)) throw new CliException("--block_time must be between 0 and 3600 seconds");
            List<(string Key, object? Value)> flags =
            [
                .. metrics(parse),
                .. logging(parse),
                ("bittensor.subtensor.network", parse.GetValue(network)),
                ("bittensor.subtensor.chain_endpoint", parse.GetValue(endpoint)),
                ("bittensor.localnet.path", parse.GetValue(localnet)),
                ("bittensor.localnet.block_time", parse.GetValue(blockTime) is { } t ? TimeSpan.FromSeconds(t) : null),
                ("bittensor.axon.ip", parse.GetValue(ip)),
                ("bittensor.axon.port", parse.GetValue(port)),
                ("bittensor.axon.blacklist.min_stake", parse.GetValue(minStake)),
                ("bittensor.axon.blacklist.registered_only", parse.GetValue(registeredOnly) ? true : null),
                ("bittensor.cluster.role", role == "server" ? parse.GetValue(clusterRole) : null),
                .. clusterFlags?.Values(parse) ?? [],
                .. limits.Values(parse),
                ("bittensor.dendrite.transport", parse.GetValue(dendriteTransport)),
                .. keepAlive.Values(parse),
            ];
            var hocon = CliConfig.Load(parse, config, flags, VerbDefaults);
            var cluster = CliConfig.Settings(hocon, ClusterSettings.SectionPath, ClusterSettings.Create);
            // A worker's Information lines (joined, registered with the front) are its progress, as under `btcli axon worker`.
            if (cluster.Role == ClusterSettings.WorkerRole) hocon = CliConfig.Load(parse, config, flags, VerbDefaults + "\n" + WorkerDefaults);
            if (role != "server" && cluster.Role.Length > 0)
                throw new CliException($"bittensor.cluster.role is for `btcli run server` only, not {role}");
            var settings = new RunSettings(
                CliConfig.Settings(hocon, SubtensorSettings.SectionPath, SubtensorSettings.Create),
                CliConfig.Settings(hocon, LocalnetSettings.SectionPath, LocalnetSettings.Create),
                CliConfig.Settings(hocon, AxonSettings.SectionPath, AxonSettings.Create),
                CliConfig.Settings(hocon, ModelSettings.SectionPath, ModelSettings.Create),
                CliConfig.Settings(hocon, ValidatorOptions.SectionPath, ValidatorOptions.Create) with { Stake = Balance.FromTao(parse.GetValue(stake)) });
            // The dendrite's keys (the validator's and the miner's; --dendrite.*) are refused before anything starts.
            _ = CliConfig.Settings(hocon, Bittensor.Actors.Dendrite.DendriteSettings.SectionPath, Bittensor.Actors.Dendrite.DendriteSettings.Create);
            var wallet = CliConfig.Settings(hocon, WalletSettings.SectionPath, WalletSettings.Create)
                .WithOverrides(parse.GetValue(name), parse.GetValue(hotkey), parse.GetValue(path)).ToWallet();
            if (cluster.Role == ClusterSettings.WorkerRole)
            {
                // A worker hosts the server's model for the front; it needs neither wallet nor chain.
                if (cluster.SeedNodes.Count == 0)
                    throw new CliException("a worker joins a cluster through --cluster.seed_nodes HOST:PORT (a front node's --cluster.port)");
                if (bad is null && Bittensor.Models.TorchNative.Check() is { } noTorch) throw new CliException(noTorch);
                var hostProps = bad is not null
                    ? ModelHostActor.ForHandlers(Bittensor.Neurons.Demo.Adversaries.Create(bad, 1024, unchecked((int)(settings.Model.Seed + 1000))),
                        settings.Axon.MaxWorkers, settings.Axon.QueueCapacity, settings.Axon.CallTimeout)
                    : ServerModelHost.Props(settings.Model);
                var capacity = cluster.WorkerCapacity > 0 ? cluster.WorkerCapacity : settings.Model.MaxQueue + settings.Model.MaxBatch;
                // The TorchSharp model's replicas are averaged across workers (through the host's queue); an adversary's delegates are not.
                return await AxonCommands.RunWorker(hocon, cluster, hostProps, bad ?? "server model", capacity, cancellationToken, hostedParameters: bad is null);
            }
            // Every role hosts a TorchSharp model: a library that cannot load is one line now, not a restart loop.
            if (Bittensor.Models.TorchNative.Check() is { } why) throw new CliException(why);
            var state = parse.GetValue(fullPath) is { Length: > 0 } f ? Path.GetFullPath(f) : NeuronPaths.Default(wallet.Name, wallet.Hotkey, (ushort)id, role);
            await using var export = await MetricsExport.StartAsync(hocon, cancellationToken);
            var extras = new RoleExtras(bad, role == "validator" && parse.GetValue(reportBatches));
            await RunAsync(role, wallet, (ushort)id, hocon, settings, state, extras, cluster.Role == ClusterSettings.FrontRole ? cluster : null,
                parse.InvocationConfiguration.Output, cancellationToken);
            return 0;
        });
        return command;
    }

    /// <summary>Everything a role reads from the layered configuration, validated before anything starts.</summary>
    private sealed record RunSettings(SubtensorSettings Subtensor, LocalnetSettings Localnet, AxonSettings Axon, ModelSettings Model, ValidatorOptions Validator);

    /// <summary>A server's adversary kind (null: its model); whether a validator prints a report line per batch.</summary>
    private sealed record RoleExtras(string? BadKind, bool ReportBatches);

    /// <summary>The node this role should use, or null for the embedded localnet.</summary>
    private static async Task<string?> NodeEndpointAsync(SubtensorSettings subtensor, CancellationToken ct)
    {
        if (subtensor.ResolvedEndpoint is { Length: > 0 } explicitEndpoint) return explicitEndpoint;
        if (!subtensor.IsLocal)
            throw new CliException($"network '{subtensor.Network}' has no well-known endpoint; give --subtensor.chain_endpoint ws://host:port");
        if (subtensor.LocalEndpoint.Length == 0) return null;
        var options = subtensor.BackendOptions(subtensor.LocalEndpoint);
        try
        {
            await using var probe = await JsonRpcClient.ConnectAsync(options.Rpc with { ConnectTimeout = TimeSpan.FromSeconds(2) }, ct).ConfigureAwait(false);
            await probe.RequestAsync("chain_getBlockHash", [0], TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
            return subtensor.LocalEndpoint;
        }
        catch (Exception e) when (e is ChainUnavailableException or JsonRpcException)
        {
            return null; // nobody serves there: the embedded localnet
        }
    }

    private static async Task RunAsync(string role, LocalWallet wallet, ushort netuid, Config hocon, RunSettings settings, string state, RoleExtras extras,
        ClusterSettings? cluster, TextWriter output, CancellationToken cancellationToken)
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
        var nodeEndpoint = await NodeEndpointAsync(settings.Subtensor, cancellationToken);
        Localnet? chain = null;
        if (nodeEndpoint is null)
        {
            try
            {
                chain = Localnet.Open(new LocalnetOptions { Name = settings.Localnet.Name, Path = settings.Localnet.Path });
            }
            catch (LocalnetException e)
            {
                throw new CliException(e.Message.Contains("in use", StringComparison.Ordinal)
                    ? $"{e.Message}; serve it with btcli localnet run --rpc.port P and pass --subtensor.chain_endpoint ws://127.0.0.1:P to run roles side by side"
                    : e.Message);
            }
        }
        else
        {
            await output.WriteLineAsync($"chain: {nodeEndpoint}");
        }
        await using (chain)
        {
            var keys = NeuronKeys.FromWallet(hot, cold);
            // The role's ActorSystem runs on the same layered configuration, so every actor sees the flags and --config.
            // A front-capable server node is a cluster node (role front); its model runs on the workers.
            using var logs = CliLogging.Start(hocon);
            var system = cluster is null ? logs.CreateSystem("btcli-run", hocon)
                : Termination.Allow(BittensorCluster.CreateSystem(cluster, ClusterSettings.FrontRole,
                    ConfigurationFactory.ParseString("akka.coordinated-shutdown.run-by-clr-shutdown-hook = off").WithFallback(hocon), loggerFactory: logs.Factory));
            // Its cluster address at once (port 0 is bound now), so workers can join while it registers on the subnet.
            if (cluster is not null)
            {
                await output.WriteLineAsync($"{Bittensor.Neurons.Demo.ProcessNetwork.FrontNodeLine} {Akka.Cluster.Cluster.Get(system).SelfAddress}; registering on subnet {netuid}");
                // "cluster member ADDRESS (ROLES) is up": the members this node's split-brain resolver counts (a standby
                // that has not seen the others Up would lose a 1:1 split to a crashed oldest front).
                BittensorCluster.LogMembersUp(system, output.WriteLine);
            }
            var runtime = BittensorRuntime.Get(system);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var producing = chain is null ? Task.CompletedTask : new LocalnetBlockProducer(chain, settings.Localnet.BlockTime).RunAsync(null, stop.Token);
            var blocks = new BlockCounter();
            var counter = system.ActorOf(Props.Create(() => new BlockCounterActor(blocks)), "block-counter");
            system.EventStream.Subscribe(counter, typeof(NewBlock));
            IAsyncDisposable? neuron = null;
            // A model that cannot start (bad checkpoint, out of memory at load) stops the role: say why, exit 1.
            var gaveUp = ModelHostEvents.GaveUpAsync(system, stop.Token);
            _ = gaveUp.ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully) stop.Cancel();
            }, TaskScheduler.Default);
            try
            {
                Func<CancellationToken, Task<IChainBackend>> backend = chain is not null
                    ? _ => Task.FromResult<IChainBackend>(new NonOwningChainBackend(chain))
                    : async ct => await SubstrateChainBackend.ConnectAsync(settings.Subtensor.BackendOptions(nodeEndpoint!), ct);
                var actor = system.ActorOf(ChainActor.Props(backend, runtime.Subtensor, Random.Shared.NextDouble), "chain");
                var server = new ServerOptions
                {
                    AxonIp = settings.Axon.Ip, AxonPort = settings.Axon.Port, Model = settings.Model, Axon = settings.Axon, StatePath = state,
                    Handlers = extras.BadKind is { } kind ? Bittensor.Neurons.Demo.Adversaries.Create(kind, 1024, unchecked((int)(settings.Model.Seed + 1000))) : null,
                };
                // The server's axon takes its callers' stakes from the role's metagraph (see ServerNeuron).
                var validator = settings.Validator;
                Func<string> status;
                var where = "";
                switch (role)
                {
                    case "server" when cluster is not null:
                        var f = await ClusterServerFront.StartAsync(system, actor, netuid, keys, server, cluster, stop.Token);
                        neuron = f;
                        FrontAnnouncement? served = null;
                        _ = Task.Run(async () =>
                        {
                            await foreach (var a in f.Announcements.ReadAllAsync(CancellationToken.None))
                            {
                                served = a;
                                await output.WriteLineAsync(a.Error is null
                                    ? $"cluster front: this node is the front; axon {a.Ip}:{a.Port} served on chain"
                                    : $"error: cluster front: axon {a.Ip}:{a.Port} could not be served on chain: {a.Error}");
                            }
                        }, CancellationToken.None);
                        // A front node that is downed or cannot join stops the role: exit 1 saying why (restart it to rejoin).
                        _ = system.WhenTerminated.ContinueWith(_ => stop.Cancel(), TaskScheduler.Default);
                        where = $" as a cluster front node ({Akka.Cluster.Cluster.Get(system).SelfAddress})";
                        status = () => string.Create(CultureInfo.InvariantCulture,
                            $"server uid {f.Uid} cluster front node: {(served is { Error: null } x ? $"front, serving at {x.Ip}:{x.Port}" : "standing by")}, block {blocks.Value}");
                        break;
                    case "server":
                        var s = await ServerNeuron.StartAsync(system, actor, netuid, keys, server, stop.Token);
                        neuron = s;
                        where = $" at {s.Ip}:{s.Port}";
                        status = () => string.Create(CultureInfo.InvariantCulture, $"server uid {s.Uid} serving at {s.Ip}:{s.Port}, block {blocks.Value}");
                        break;
                    case "validator":
                        var v = await ValidatorNeuron.StartAsync(system, actor, netuid, keys, validator, stop.Token);
                        neuron = v;
                        if (extras.ReportBatches)
                        {
                            v.Pipeline.RoundCompleted += _ => output.WriteLine(Bittensor.Neurons.Demo.DemoValidatorReport.Of(v).ToLine());
                            // And a line per weight setting (btcli demo --processes shows "weights set at block …").
                            system.ActorOf(Bittensor.Neurons.Demo.EventForwarder<WeightsAttempt>.Props(a =>
                                output.WriteLine(Bittensor.Neurons.Demo.DemoWeightsReport.Of(a).ToLine())), "weights-lines");
                        }
                        status = () =>
                        {
                            var m = v.Pipeline.Metrics.Snapshot();
                            return string.Create(CultureInfo.InvariantCulture, $"validator uid {v.Uid}, block {blocks.Value}, batches {m.Batches}, queries/s {m.QueriesPerSecond:F1}, loss {m.Loss:F3}");
                        };
                        break;
                    default:
                        var mi = await MinerNeuron.StartAsync(system, actor, netuid, keys, server, validator, stop.Token);
                        neuron = mi;
                        where = $" at {mi.Server.Ip}:{mi.Server.Port}";
                        status = () => string.Create(CultureInfo.InvariantCulture, $"miner uid {mi.Server.Uid} at {mi.Server.Ip}:{mi.Server.Port}, block {blocks.Value}, distillation loss {mi.LastDistillLoss:F5}");
                        break;
                }
                await output.WriteLineAsync($"{role} running on subnet {netuid} as {keys.HotkeySs58}{where} (state in {state}); Ctrl-C stops it");
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
            catch (Exception e) when (e is not CliException && !cancellationToken.IsCancellationRequested && cluster is not null
                && CoordinatedShutdown.Get(system).ShutdownReason is not null)
            {
                // The front node's actor system is ending by itself (downed while alive, or its seeds never answered) — at
                // any step: registering, starting the front, or serving. Exit 1 saying which, once it has ended.
                try
                {
                    await system.WhenTerminated.WaitAsync(TimeSpan.FromSeconds(60), CancellationToken.None).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    // Still stopping: the reason is known already.
                }
                throw new CliException(BittensorCluster.FrontNodeEnded(system, cluster));
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
                system.EventStream.Unsubscribe(counter);
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

    /// <summary>The last block number the ChainActor published (status lines).</summary>
    private sealed class BlockCounter
    {
        private long _value;

        public ulong Value => (ulong)Interlocked.Read(ref _value);

        public void Set(ulong v) => Interlocked.Exchange(ref _value, (long)v);
    }

    private sealed class BlockCounterActor : ReceiveActor
    {
        public BlockCounterActor(BlockCounter counter) => Receive<NewBlock>(b => counter.Set(b.Number));
    }
}
