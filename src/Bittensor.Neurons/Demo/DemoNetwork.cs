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
        return await WithFolderAsync(options, async (folder, people) =>
        {
            await using var localnet = Localnet.Open(new LocalnetOptions
            {
                Name = "demo",
                Path = Path.Combine(folder, "localnet"),
                SubnetDefaults = Hyperparameters(options),
                GenesisBalances = GenesisBalances(people),
            });
            // The demo's actor system runs with the caller's configuration (btcli demo --config and flags), so every other
            // bittensor.* section (axon, dendrite, validator, metagraph, …) applies to the demo's neurons as it would to btcli run.
            var config = (options.Config ?? ConfigurationFactory.ParseString(DemoOptions.OwnDefaults)).WithFallback(Bittensor.Actors.BittensorRuntime.ReferenceConfig);
            var system = Bittensor.Actors.Logging.BittensorLogging.CreateSystem("demo", config, options.LoggerFactory);
            try
            {
                return await RunAsync(system, localnet, people, options, folder, started, progress, epoch, cancellationToken);
            }
            finally
            {
                await system.Terminate();
            }
        });
    }

    /// <summary>
    /// Demo-only relaxations, so a handful of neurons can join and act within a few blocks: registrations, serving and
    /// weights are not rate limited, and one validator permit goes to the best-staked neuron.
    /// </summary>
    internal static SubnetHyperparameters Hyperparameters(DemoOptions options) => SubnetHyperparameters.Default with
    {
        Tempo = options.Tempo,
        MaxRegistrationsPerBlock = 64,
        TargetRegistrationsPerInterval = 64,
        ServingRateLimit = 0,
        WeightsRateLimit = 0,
        MaxAllowedValidators = 1,
    };

    /// <summary>Every participant's coldkey starts with 10 000 TAO.</summary>
    internal static Dictionary<AccountId, Balance> GenesisBalances(DemoPeople people) => people.All.ToDictionary(p => p.ColdkeyAccount, _ => Balance.FromTao(10_000m));

    /// <summary>Creates a temporary folder (or uses <see cref="DemoOptions.Folder"/>) with the demo's wallets; deletes a temporary one afterwards.</summary>
    internal static async Task<T> WithFolderAsync<T>(DemoOptions options, Func<string, DemoPeople, Task<T>> run)
    {
        var ownsFolder = options.Folder is null;
        var folder = options.Folder ?? Directory.CreateTempSubdirectory("bittensor-demo-").FullName;
        Directory.CreateDirectory(folder);
        var people = DemoPeople.Create(folder, options);
        try
        {
            return await run(folder, people);
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
        var driver = BlockDriver.Of(localnet, options.BlockTime, options.StepsPerBlock, StallTimeout);
        if (options.Seams?.HoldingForWeights is { } holding) driver.HoldingForWeights += holding;
        var validatorHotkey = people.Validator.HotkeyAccount;
        var chain = system.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(new NonOwningChainBackend(localnet, call =>
            {
                driver.Submitted();
                // The validator's weights are in the pool (or refused): the block held for them may go, and includes them.
                if (IsWeightsOf(call, validatorHotkey)) driver.WeightsSubmitted();
            }, options.Seams?.BeforeSubmit is { } beforeSubmit ? (call, ct) => beforeSubmit(call, localnet.BlockNumber, ct) : null)),
            BittensorRuntime.Get(system).Subtensor, Random.Shared.NextDouble), "chain");
        var state = new DemoState(options, people);
        system.ActorOf(EventForwarder<WeightsAttempt>.Props(a =>
        {
            state.LastWeights = DemoWeightsReport.Of(a).Text;
            // Nothing sent (no score yet) or it failed: nothing is left to wait for. A call that was sent was seen entering the pool.
            if (!a.Success) driver.WeightsSubmitted();
        }), "weights-events");
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
            var index = 0;
            foreach (var p in people.Servers.Concat(people.BadServers))
            {
                state.Phase = $"registering and serving {p.Name}";
                var server = ServerSetup.Of(options, p, index++);
                var serverOptions = new ServerOptions
                {
                    AxonIp = server.Ip,
                    Model = options.ServerModel with { Seed = server.ModelSeed },
                    // A useless or hostile server (the adversary zoo): whatever the input, it answers its kind; it ignores gradients.
                    Handlers = p.Kind is { } kind ? Adversaries.Create(kind, 1024, server.BadSeed) : null,
                    // Each server's nonce store lives in the demo's own folder (deleted with it when temporary).
                    StatePath = Path.Combine(folder, "neurons", p.Name),
                };
                servers.Add(await ServerNeuron.StartAsync(system, chain, netuid, p.Coldkey, serverOptions, stop.Token));
            }
            state.Phase = "registering and staking the validator";
            var validatorOptions = BittensorRuntime.Get(system).Settings(ValidatorOptions.SectionPath, ValidatorOptions.Create) with
            {
                Pipeline = options.Pipeline with { Seed = options.Seed },
                Nucleus = options.Nucleus with { Seed = options.Seed },
                Corpus = options.Corpus,
                Stake = ValidatorStake,
            };
            // The validator sets its weights this many blocks before an epoch (WeightSetter); the block after that waits for
            // them (BlockDriver.SetsWeightsAt), so they are in the block before the epoch's, which counts them.
            driver.SetsWeightsAt = WeightsBlocks(netuid, options.Tempo, validatorOptions.WeightsLeadBlocks);
            validator = await ValidatorNeuron.StartAsync(system, chain, netuid, people.Validator.Coldkey, validatorOptions, stop.Token);
            validator.Pipeline.RoundCompleted += _ =>
            {
                driver.BatchDone();
                state.FirstBatch.TrySetResult();
            };
            var running = validator;
            state.Validator = () => DemoValidatorReport.Of(running);
            state.Phase = "waiting for the validator's first batch";
            await RunEpochsAsync(state, driver, stop.Token);
            var result = await ResultAsync(localnet, state, started, stop.Token);
            if (validator.Pipeline.LastError is { } error)
                result = result with { Verdict = result.Verdict + $" ({validator.Pipeline.DroppedBatches} batches dropped; last error: {error})" };
            return result;
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

    /// <summary>The blocks at which a validator with this lead sets its weights (the <see cref="WeightSetter"/>'s rule).</summary>
    internal static Func<ulong, bool> WeightsBlocks(ushort netuid, ushort tempo, int leadBlocks)
    {
        var lead = (ulong)Math.Clamp(leadBlocks, 0, tempo);
        return b => WeightSetter.BlocksUntilEpoch(netuid, tempo, b) == lead;
    }

    /// <summary>True for a <c>set_weights</c> signed by <paramref name="hotkey"/>.</summary>
    internal static bool IsWeightsOf(SignedCall call, AccountId hotkey)
    {
        if (call.Signer != hotkey) return false;
        try
        {
            return ChainCall.Decode(call.Call.Span) is SetWeights;
        }
        catch (Bittensor.Core.Scale.ScaleException)
        {
            return false;
        }
    }

    /// <summary>A stalled pipeline cannot stop the chain: a block goes out after this long regardless.</summary>
    internal static readonly TimeSpan StallTimeout = TimeSpan.FromSeconds(30);

    /// <summary>What the validator stakes on its hotkey at start.</summary>
    internal static readonly Balance ValidatorStake = Balance.FromTao(100m);

    /// <summary>How the <paramref name="index"/>-th server (useful ones first, then the bad ones) is set up, in-process or as a process.</summary>
    /// <param name="Ip">Its own loopback address (127.0.0.2, 127.0.0.3, …: subtensor refuses 127.0.0.1).</param>
    /// <param name="ModelSeed">Seed of its model.</param>
    /// <param name="BadSeed">Seed of its adversary's answers (bad servers).</param>
    internal sealed record ServerSetup(string Ip, long ModelSeed, int BadSeed)
    {
        public static ServerSetup Of(DemoOptions options, DemoPerson person, int index)
        {
            // Kept as the demo has always numbered them: the address counter is 2 + index, and the seeds use it once incremented.
            var address = index + 3;
            return new ServerSetup($"127.0.0.{index + 2}", options.Seed + address, options.Seed + 1000 + address);
        }
    }

    /// <summary>
    /// Waits for the validator's first batch, then runs the epochs (lockstep blocks) until the last one. Epochs count from
    /// the validator's first completed batch: before it, the metagraph may not list the servers yet and the nucleus is
    /// still being built, and blocks follow the clock alone.
    /// </summary>
    internal static async Task RunEpochsAsync(DemoState state, BlockDriver driver, CancellationToken cancellationToken)
    {
        await state.FirstBatch.Task.WaitAsync(cancellationToken);
        state.Phase = "running";
        state.ValidatorStarted = true;
        driver.Lockstep = state.Options.StepsPerBlock > 0;
        await state.Finished.Task.WaitAsync(cancellationToken);
    }

    /// <summary>The table after the last epoch, the validator's weights on chain and the verdict.</summary>
    internal static async Task<DemoResult> ResultAsync(IChainBackend chain, DemoState state, long started, CancellationToken cancellationToken)
    {
        var netuid = state.Netuid!.Value;
        var neurons = await chain.GetNeuronsAsync(netuid, cancellationToken);
        var report = state.Validator?.Invoke();
        var table = Table(neurons, state.People, report);
        var v = neurons.First(n => n.Hotkey == state.People.Validator.HotkeyAccount);
        var weights = v.Weights.Select(w => (w.Uid, w.Value)).ToArray();
        var (worked, verdict) = Judge(table);
        var metrics = report?.Metrics;
        var wall = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var queries = metrics?.Queries ?? 0;
        return new DemoResult(table, weights, worked, verdict, wall, wall > 0 ? queries / wall : 0, queries, metrics?.Batches ?? 0,
            state.Block, netuid, metrics?.HeldOutLoss ?? double.NaN, [.. state.Incentives]);
    }

    /// <summary>After every block: counts epochs from the validator's first batch, shows each epoch's table, reports progress; false after the last epoch.</summary>
    internal static async Task<bool> OnBlockAsync(IChainBackend chain, DemoState state, ulong block, Action<DemoProgress>? progress,
        Action<int, IReadOnlyList<DemoNeuron>>? epoch, CancellationToken cancellationToken)
    {
        var options = state.Options;
        state.Block = block;
        var until = state.Netuid is { } netuid ? WeightSetter.BlocksUntilEpoch(netuid, options.Tempo, block) : ulong.MaxValue;
        var more = true;
        if (until == 0 && state.ValidatorStarted && state.Netuid is { } n)
        {
            state.EpochsDone++;
            var neurons = await chain.GetNeuronsAsync(n, cancellationToken);
            state.Incentives.Add(neurons.ToDictionary(x => x.Uid, x => NeuronInfo.Fraction(x.Incentive)));
            epoch?.Invoke(state.EpochsDone, Table(neurons, state.People, state.Validator?.Invoke()));
            if (state.EpochsDone >= options.Epochs)
            {
                state.Finished.TrySetResult();
                more = false;
            }
        }
        progress?.Invoke(state.Progress(until));
        return more;
    }

    internal static IReadOnlyList<DemoNeuron> Table(IReadOnlyList<NeuronInfo> neurons, DemoPeople people, DemoValidatorReport? validator)
    {
        var scores = validator?.Scores ?? new Dictionary<ushort, double>();
        var refusals = validator?.Metrics.Refusals ?? new Dictionary<ushort, IReadOnlyDictionary<string, long>>();
        var joined = validator?.Metrics.Joined ?? new Dictionary<ushort, long>();
        return neurons.Select(n => new DemoNeuron(n.Uid, n.Hotkey.ToSs58(), people.RoleOf(n.Hotkey), (double)n.Stake.Tao,
            NeuronInfo.Fraction(n.Incentive), NeuronInfo.Fraction(n.Dividends), (double)n.Emission.Tao,
            scores.TryGetValue(n.Uid, out var s) ? s : double.NaN, people.KindOf(n.Hotkey),
            refusals.TryGetValue(n.Uid, out var r) ? r : new Dictionary<string, long>(), joined.GetValueOrDefault(n.Uid), people.ClusterOf(n.Hotkey), NeuronInfo.Fraction(n.Trust))).ToArray();
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
    internal sealed class DemoState(DemoOptions options, DemoPeople people)
    {
        public DemoOptions Options { get; } = options;
        public DemoPeople People { get; } = people;
        public volatile string Phase = "starting";
        public volatile string? LastWeights;
        public volatile bool ValidatorStarted;
        public ushort? Netuid;
        public ulong Block;
        public int EpochsDone;

        /// <summary>The validator's latest report (null before it runs).</summary>
        public volatile Func<DemoValidatorReport?>? Validator;

        public List<IReadOnlyDictionary<ushort, double>> Incentives { get; } = [];
        public TaskCompletionSource Finished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource FirstBatch { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public DemoProgress Progress(ulong until) =>
            new(Block, until, EpochsDone, Options.Epochs, Phase, Validator?.Invoke()?.Metrics, LastWeights);
    }
}
