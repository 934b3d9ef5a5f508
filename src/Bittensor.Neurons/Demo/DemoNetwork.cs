using System.Diagnostics;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Actors;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Models;
using Bittensor.Neurons.Roles;
using Bittensor.Wallet;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Neurons.Demo;

/// <summary>
/// A whole Bittensor subnet in one process: a localnet in a temporary folder, wallets, a subnet with relaxed rate
/// limits, useful servers, useless servers and one staked validator, run for a number of epochs. The market works when
/// the validator's weights pay the useful servers and not the useless ones, and the validator earns dividends.
/// </summary>
public static class DemoNetwork
{
    /// <summary>
    /// Runs the demo. <paramref name="progress"/> is called after every block, <paramref name="epoch"/> after every
    /// epoch with the subnet's table. Cancelling stops it early with <see cref="OperationCanceledException"/>.
    /// </summary>
    public static async Task<DemoResult> RunAsync(DemoOptions options, Action<DemoProgress>? progress = null,
        Action<int, IReadOnlyList<DemoNeuron>>? epoch = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var started = Stopwatch.GetTimestamp();
        var ownsFolder = options.Folder is null;
        var folder = options.Folder ?? Directory.CreateTempSubdirectory("bittensor-demo-").FullName;
        Directory.CreateDirectory(folder);
        var people = DemoPeople.Create(folder, options);
        try
        {
            // Demo-only relaxations, so a handful of neurons can join and act within a few blocks: registrations,
            // serving and weights are not rate limited, and one validator permit goes to the best-staked neuron.
            var hyper = SubnetHyperparameters.Default with
            {
                Tempo = options.Tempo,
                MaxRegistrationsPerBlock = 64,
                TargetRegistrationsPerInterval = 64,
                ServingRateLimit = 0,
                WeightsRateLimit = 0,
                MaxAllowedValidators = 1,
            };
            var genesis = people.All.ToDictionary(p => p.ColdkeyAccount, _ => Balance.FromTao(10_000m));
            await using var localnet = Localnet.Open(new LocalnetOptions
            {
                Name = "demo",
                Path = Path.Combine(folder, "localnet"),
                SubnetDefaults = hyper,
                GenesisBalances = genesis,
            });
            // The demo's actor system runs with the caller's configuration (btcli demo --config and flags), so every other
            // bittensor.* section (axon, dendrite, validator, metagraph, …) applies to the demo's neurons as it would to btcli run.
            var config = (options.Config ?? ConfigurationFactory.ParseString(DemoOptions.OwnDefaults)).WithFallback(Bittensor.Actors.BittensorRuntime.ReferenceConfig);
            var system = ActorSystem.Create("demo", config);
            try
            {
                return await RunAsync(system, localnet, people, options, folder, started, progress, epoch, cancellationToken);
            }
            finally
            {
                await system.Terminate();
            }
        }
        finally
        {
            people.Dispose();
            if (ownsFolder)
            {
                try
                {
                    Directory.Delete(folder, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    private static async Task<DemoResult> RunAsync(ActorSystem system, Localnet localnet, DemoPeople people, DemoOptions options, string folder, long started,
        Action<DemoProgress>? progress, Action<int, IReadOnlyList<DemoNeuron>>? epoch, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var driver = new BlockDriver(localnet, options.BlockTime, options.StepsPerBlock, TimeSpan.FromSeconds(30));
        var chain = system.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(new NonOwningChainBackend(localnet, driver.Submitted)),
            BittensorRuntime.Get(system).Subtensor, Random.Shared.NextDouble), "chain");
        var state = new DemoState(options) { People = people };
        system.ActorOf(EventForwarder<WeightsAttempt>.Props(a => state.LastWeights =
            a.Success ? $"set at block {a.Block} on {a.Uids.Count} peers" : $"not set at block {a.Block}: {a.Outcome}"), "weights-events");
        var blocks = Task.Run(() => driver.RunAsync(b => OnBlockAsync(localnet, state, b, progress, epoch, stop.Token), stop.Token), CancellationToken.None);
        // A server whose model cannot start (bad checkpoint, out of memory at load) ends the demo with its reason.
        string? modelFailure = null;
        _ = ModelHostEvents.GaveUpAsync(system, stop.Token).ContinueWith(t =>
        {
            if (!t.IsCompletedSuccessfully) return;
            modelFailure = $"a model cannot start ({t.Result.Attempts} tries): {t.Result.Reason}";
            stop.Cancel();
        }, TaskScheduler.Default);
        var servers = new List<ServerNeuron>();
        ValidatorNeuron? validator = null;
        try
        {
            state.Phase = "creating the subnet";
            var owner = people.Owner;
            await ChainOps.SubmitOrThrowAsync(chain, new RegisterNetwork(), owner.Coldkey.Coldkey!, stop.Token);
            var subnets = await localnet.GetSubnetsAsync(stop.Token);
            var netuid = subnets.Where(s => s.Owner == owner.ColdkeyAccount).Select(s => s.Netuid).Max();
            state.Netuid = netuid;
            var address = 2;
            foreach (var p in people.Servers.Concat(people.BadServers))
            {
                state.Phase = $"registering and serving {p.Name}";
                var bad = p.Role == "bad_server";
                var serverOptions = new ServerOptions
                {
                    AxonIp = $"127.0.0.{address++}",
                    Model = options.ServerModel with { Seed = options.Seed + address },
                    // A useless or hostile server (the adversary zoo): whatever the input, it answers its kind; it ignores gradients.
                    Handlers = bad ? Adversaries.Create(p.Kind!, 1024, options.Seed + 1000 + address) : null,
                    // Each server's nonce store lives in the demo's own folder (deleted with it when temporary).
                    StatePath = Path.Combine(folder, "neurons", p.Name),
                };
                servers.Add(await ServerNeuron.StartAsync(system, chain, netuid, p.Coldkey, serverOptions, stop.Token));
            }
            state.Phase = "registering and staking the validator";
            validator = await ValidatorNeuron.StartAsync(system, chain, netuid, people.Validator.Coldkey, BittensorRuntime.Get(system)
                .Settings(ValidatorOptions.SectionPath, ValidatorOptions.Create) with
            {
                Pipeline = options.Pipeline with { Seed = options.Seed },
                Nucleus = options.Nucleus with { Seed = options.Seed },
                Corpus = options.Corpus,
                Stake = Balance.FromTao(100m),
            }, stop.Token);
            validator.Pipeline.RoundCompleted += _ =>
            {
                driver.BatchDone();
                state.FirstBatch.TrySetResult();
            };
            state.Validator = validator;
            state.Pipeline = validator.Pipeline;
            state.Phase = "waiting for the validator's first batch";
            // Epochs count from the validator's first completed batch: before it, the metagraph may not list the servers
            // yet and the nucleus is still being built, and blocks follow the clock alone.
            await state.FirstBatch.Task.WaitAsync(stop.Token);
            state.Phase = "running";
            state.ValidatorStarted = true;
            driver.Lockstep = options.StepsPerBlock > 0;
            await state.Finished.Task.WaitAsync(stop.Token);

            var neurons = await localnet.GetNeuronsAsync(netuid, stop.Token);
            var table = Table(neurons, people, validator);
            var v = neurons.First(n => n.Hotkey == people.Validator.HotkeyAccount);
            var weights = v.Weights.Select(w => (w.Uid, w.Value)).ToArray();
            var (worked, verdict) = Judge(table);
            if (validator.Pipeline.LastError is { } error)
                verdict += $" ({validator.Pipeline.DroppedBatches} batches dropped; last error: {error})";
            var snapshot = validator.Pipeline.Metrics.Snapshot();
            var wall = Stopwatch.GetElapsedTime(started).TotalSeconds;
            return new DemoResult(table, weights, worked, verdict, wall, wall > 0 ? snapshot.Queries / wall : 0, snapshot.Queries, snapshot.Batches,
                state.Block, netuid, snapshot.HeldOutLoss, [.. state.Incentives]);
        }
        catch (OperationCanceledException) when (Volatile.Read(ref modelFailure) is { } failure && !cancellationToken.IsCancellationRequested)
        {
            throw new NeuronException(failure);
        }
        finally
        {
            stop.Cancel();
            try
            {
                await blocks;
            }
            catch (OperationCanceledException)
            {
            }
            if (validator is not null) await validator.DisposeAsync();
            foreach (var s in servers) await s.DisposeAsync();
        }
    }

    private static async Task<bool> OnBlockAsync(Localnet localnet, DemoState state, ulong block, Action<DemoProgress>? progress,
        Action<int, IReadOnlyList<DemoNeuron>>? epoch, CancellationToken cancellationToken)
    {
        var options = state.Options;
        state.Block = block;
        var until = state.Netuid is { } netuid ? WeightSetter.BlocksUntilEpoch(netuid, options.Tempo, block) : ulong.MaxValue;
        var more = true;
        if (until == 0 && state.ValidatorStarted && state.Netuid is { } n)
        {
            state.EpochsDone++;
            var neurons = await localnet.GetNeuronsAsync(n, cancellationToken);
            state.Incentives.Add(neurons.ToDictionary(x => x.Uid, x => NeuronInfo.Fraction(x.Incentive)));
            epoch?.Invoke(state.EpochsDone, Table(neurons, state.People!, state.Validator));
            if (state.EpochsDone >= options.Epochs)
            {
                state.Finished.TrySetResult();
                more = false;
            }
        }
        progress?.Invoke(state.Progress(until));
        return more;
    }

    internal static IReadOnlyList<DemoNeuron> Table(IReadOnlyList<NeuronInfo> neurons, DemoPeople people, ValidatorNeuron? validator)
    {
        var scores = validator?.Pipeline.Scores.Snapshot().ToDictionary(s => s.Uid, s => s.Score) ?? [];
        var metrics = validator?.Pipeline.Metrics.Snapshot();
        var refusals = metrics?.Refusals ?? new Dictionary<ushort, IReadOnlyDictionary<string, long>>();
        var joined = metrics?.Joined ?? new Dictionary<ushort, long>();
        return neurons.Select(n => new DemoNeuron(n.Uid, n.Hotkey.ToSs58(), people.RoleOf(n.Hotkey), (double)n.Stake.Tao,
            NeuronInfo.Fraction(n.Incentive), NeuronInfo.Fraction(n.Dividends), (double)n.Emission.Tao,
            scores.TryGetValue(n.Uid, out var s) ? s : double.NaN, people.KindOf(n.Hotkey),
            refusals.TryGetValue(n.Uid, out var r) ? r : new Dictionary<string, long>(), joined.GetValueOrDefault(n.Uid))).ToArray();
    }

    /// <summary>Most incentive a useless or hostile server may earn for the market to count as working (issue 12: 1 %).</summary>
    public const double UselessIncentiveBound = 0.01;

    /// <summary>The market works when every useless server earns less incentive than every useful one and at most <see cref="UselessIncentiveBound"/>, and the validator earns dividends.</summary>
    internal static (bool Worked, string Verdict) Judge(IReadOnlyList<DemoNeuron> table)
    {
        var good = table.Where(n => n.Role == "server").ToArray();
        var bad = table.Where(n => n.Role == "bad_server").ToArray();
        var validator = table.FirstOrDefault(n => n.Role == "validator");
        if (validator is null || good.Length == 0) return (false, "the subnet has no validator or no useful server");
        if (validator.Dividends <= 0) return (false, "the validator earned no dividends: its weights were never set or never counted");
        if (bad.Length > 0 && bad.Max(b => b.Incentive) >= good.Min(g => g.Incentive))
            return (false, $"a useless server earned incentive {bad.Max(b => b.Incentive):F4}, not below the weakest useful server's {good.Min(g => g.Incentive):F4}");
        if (bad.Length > 0 && bad.Max(b => b.Incentive) > UselessIncentiveBound)
            return (false, $"a useless server earned incentive {bad.Max(b => b.Incentive):F4}, more than {UselessIncentiveBound:P0} of the subnet's");
        return (true, bad.Length > 0
            ? $"the useless server{(bad.Length > 1 ? "s" : "")} earned the lowest incentive ({bad.Max(b => b.Incentive):F4} vs at least {good.Min(g => g.Incentive):F4}) and the validator earned dividends ({validator.Dividends:F4})"
            : $"every server earned incentive and the validator earned dividends ({validator.Dividends:F4})");
    }

    /// <summary>Shared between the block loop and the setup; written by one side, read by the other.</summary>
    private sealed class DemoState(DemoOptions options)
    {
        public DemoOptions Options { get; } = options;
        public volatile string Phase = "starting";
        public volatile string? LastWeights;
        public volatile bool ValidatorStarted;
        public ushort? Netuid;
        public ulong Block;
        public int EpochsDone;
        public Pipelines.ValidationPipeline? Pipeline;
        public DemoPeople? People;
        public ValidatorNeuron? Validator;
        public List<IReadOnlyDictionary<ushort, double>> Incentives { get; } = [];
        public TaskCompletionSource Finished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource FirstBatch { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public DemoProgress Progress(ulong until) =>
            new(Block, until, EpochsDone, Options.Epochs, Phase, Pipeline?.Metrics.Snapshot(), LastWeights);
    }
}
