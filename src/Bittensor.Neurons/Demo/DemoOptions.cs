using Bittensor.Models;
using Bittensor.Neurons.Pipelines;
using Bittensor.Neurons.Roles;
using Bittensor.Models.Validation;
using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Neurons.Demo;

/// <summary>
/// What the demo network looks like and how long it runs. Defaults live in hocon/bittensor.conf (<c>bittensor.demo</c>):
/// <see cref="Default"/> reads them, <see cref="Create"/> reads a layered configuration (<c>btcli demo --config FILE</c>
/// and flags), and the demo's actor system runs with that same configuration (<see cref="Config"/>).
/// </summary>
public sealed record DemoOptions
{
    /// <summary>HOCON path of the demo's own keys.</summary>
    public const string SectionPath = "bittensor.demo";

    /// <summary>
    /// The demo's own defaults, under a user's configuration: the live view owns the terminal, so only errors are logged
    /// (<c>bittensor.logging.level</c>, which btcli's logging reads; <c>akka.loglevel</c> for a demo run without a logger
    /// factory; a <c>--config</c> file or <c>--logging.level</c> may raise it again); the throwaway subnet's metagraph
    /// snapshots are not saved into ~/.bittensor/metagraphs; the cluster server of <c>--processes</c> tolerates 15 s of
    /// heartbeat silence (<c>bittensor.cluster.acceptable_heartbeat_pause</c>; the demo's children share a small
    /// machine with each other and whatever else runs, and a live worker marked unreachable for
    /// <c>sbr_stable_after</c> would be downed mid-demo).
    /// </summary>
    public const string OwnDefaults = "akka.loglevel = ERROR\nakka.stdout-loglevel = ERROR\nbittensor.logging.level = Error\nbittensor.metagraph.save = off\n" +
        "bittensor.cluster.acceptable_heartbeat_pause = 15s";

    /// <summary>The reference configuration's demo (hocon/bittensor.conf), for code and tests without a file.</summary>
    public static DemoOptions Default { get; } = Create(BittensorRuntime.ReferenceConfig) with { Config = null };

    /// <summary>Useful servers (each hosts a small transformer and trains on the gradients it receives).</summary>
    public required int Servers { get; init; }

    /// <summary>Deliberately useless or hostile servers; the i-th behaves as <c>BadKinds[i % BadKinds.Count]</c>.</summary>
    public required int BadServers { get; init; }

    /// <summary>What the bad servers answer (<see cref="Adversaries.Kinds"/>).</summary>
    public required IReadOnlyList<string> BadKinds { get; init; }

    /// <summary>Epochs to run after the validator has started.</summary>
    public required int Epochs { get; init; }

    /// <summary>Least time between two blocks.</summary>
    public required TimeSpan BlockTime { get; init; }

    /// <summary>
    /// Validator batches that must complete before the next block is produced (0: blocks follow the clock only). Keeps
    /// the amount of training per epoch the same on a slow or busy machine, so the outcome does not depend on speed.
    /// </summary>
    public required int StepsPerBlock { get; init; }

    /// <summary>Blocks between epochs (the demo subnet's tempo).</summary>
    public required ushort Tempo { get; init; }

    /// <summary>Seed for keys, model initialisation, corpus order and peer sampling.</summary>
    public required int Seed { get; init; }

    /// <summary>
    /// With <c>--processes</c>: which useful server (1-based: server1, server2, …) runs as a cluster of one front and
    /// <see cref="ClusterWorkers"/> workers (<c>btcli run server --cluster.role front|worker</c>); 0 = none. The in-process
    /// demo runs every server in its own process and ignores it. Default 1 (<c>bittensor.demo.cluster_server</c>).
    /// </summary>
    public int ClusterServer { get; init; }

    /// <summary>
    /// With <c>--processes</c> and a cluster server: after this many epochs, the demo kills one worker of the cluster
    /// with SIGKILL, restarts it and holds the chain until it registered with the front again and answered its first call (so the epochs after it
    /// run with both workers); 0 = never. Between 0 and <see cref="Epochs"/> − 1 (<c>bittensor.demo.kill_worker_at_epoch</c>).
    /// </summary>
    public int KillWorkerAtEpoch { get; init; }

    /// <summary>Workers of the cluster server (issue 10: one front and two workers).</summary>
    public const int ClusterWorkers = 2;

    /// <summary>
    /// The process's logger factory: the demo's actor system logs through it (<see cref="Bittensor.Actors.Logging.BittensorLogging.CreateSystem"/>,
    /// levels from <c>bittensor.logging</c>); null = Akka's own loggers as configured.
    /// </summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>Folder for the localnet and wallets; null creates (and afterwards deletes) a temporary one.</summary>
    public string? Folder { get; init; }

    /// <summary>Sizes of the servers' models (<c>bittensor.demo.server_model</c> over <c>bittensor.model</c>).</summary>
    public required ModelSettings ServerModel { get; init; }

    /// <summary>Validator pipeline shape (<c>bittensor.demo.pipeline</c> over <c>bittensor.validator.pipeline</c>).</summary>
    public required PipelineSettings Pipeline { get; init; }

    /// <summary>Validator nucleus sizes (<c>bittensor.validator.nucleus</c>).</summary>
    public required NucleusSettings Nucleus { get; init; }

    /// <summary>Corpus paths; null takes the Debian corpus present (docs/corpus.md).</summary>
    public IReadOnlyList<string>? Corpus { get; init; }

    /// <summary>Test seams of the in-process demo (null in every shipped path).</summary>
    internal DemoSeams? Seams { get; init; }

    /// <summary>
    /// The configuration the demo's actor system runs with (every other <c>bittensor.*</c> section: axon, dendrite,
    /// validator, metagraph, …); null: the reference configuration with <see cref="OwnDefaults"/>.
    /// </summary>
    public Config? Config { get; init; }

    /// <summary>
    /// Reads the demo from a whole configuration (the <c>bittensor.demo</c> section, the servers' model over
    /// <c>bittensor.model</c>, the pipeline over <c>bittensor.validator.pipeline</c>, the nucleus) and validates it;
    /// <see cref="Config"/> is <paramref name="config"/>.
    /// </summary>
    /// <exception cref="ConfigurationException">A key is missing or malformed; the message names it.</exception>
    /// <exception cref="ArgumentException">A value is out of range; the message names its flag and key.</exception>
    public static DemoOptions Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var c = HoconSection.Of(config, SectionPath);
        var seconds = c.Duration("block_time");
        var tempo = c.Int("tempo");
        IReadOnlyList<string> kinds;
        try
        {
            kinds = Adversaries.Parse(c.String("bad_kinds"));
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"--bad_kind ({SectionPath}.bad_kinds): {e.Message}", e);
        }
        var bad = c.Int("bad_servers");
        // The validator (in this process or as a child) reads this key: refused here, before anything starts.
        if (BittensorRuntime.Section(config, ValidatorOptions.SectionPath) is var validator && validator.HasPath("weights_lead_blocks"))
            ValidatorOptions.CheckWeightsLeadBlocks(new HoconSection(validator, ValidatorOptions.SectionPath).Int("weights_lead_blocks"));
        return new DemoOptions
        {
            Servers = c.Int("servers"),
            BadServers = bad == -1 ? kinds.Count : bad,
            BadKinds = kinds,
            Epochs = c.Int("epochs"),
            BlockTime = seconds,
            StepsPerBlock = c.Int("steps_per_block"),
            Tempo = tempo is >= 5 and <= 1000 ? (ushort)tempo : throw new ArgumentException($"--tempo ({SectionPath}.tempo) must be between 5 and 1000 blocks"),
            Seed = c.Int("seed"),
            ClusterServer = c.Int("cluster_server"),
            KillWorkerAtEpoch = c.Int("kill_worker_at_epoch"),
            ServerModel = ModelSettings.Create(Over(config, $"{SectionPath}.server_model", ModelSettings.SectionPath)),
            Pipeline = PipelineSettings.Create(Over(config, $"{SectionPath}.pipeline", PipelineSettings.SectionPath)),
            Nucleus = NucleusSettingsHocon.Create(BittensorRuntime.Section(config, NucleusSettingsHocon.SectionPath)),
            Config = config,
        }.Validate();
    }

    /// <summary>The section at <paramref name="overrides"/> (when present) over the section at <paramref name="basePath"/>.</summary>
    private static Config Over(Config config, string overrides, string basePath)
    {
        var section = BittensorRuntime.Section(config, basePath);
        return config.HasPath(overrides) ? config.GetConfig(overrides).WithFallback(section) : section;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range (its flag and HOCON key).</summary>
    public DemoOptions Validate()
    {
        const string p = SectionPath;
        if (Servers < 1 || Servers > 50) throw new ArgumentException($"--servers ({p}.servers) must be between 1 and 50");
        if (BadServers < 0 || BadServers > 50) throw new ArgumentException($"--bad_servers ({p}.bad_servers) must be between 0 and 50");
        if (BadKinds is null || BadKinds.Count == 0 || BadKinds.Any(k => !Adversaries.Kinds.Contains(k)))
            throw new ArgumentException($"--bad_kind ({p}.bad_kinds) must list kinds among {string.Join(", ", Adversaries.Kinds)}");
        if (Epochs < 2 || Epochs > 1000) throw new ArgumentException($"--epochs ({p}.epochs) must be between 2 and 1000 (the first epoch only grants the validator its permit)");
        if (BlockTime < TimeSpan.Zero || BlockTime > TimeSpan.FromMinutes(1)) throw new ArgumentException($"--block_time ({p}.block_time) must be between 0 and 60 seconds");
        if (ClusterServer < 0 || ClusterServer > Servers)
            throw new ArgumentException($"--cluster_server ({p}.cluster_server) must be between 0 (none) and the number of useful servers ({Servers})");
        if (KillWorkerAtEpoch < 0 || KillWorkerAtEpoch >= Epochs)
            throw new ArgumentException($"--kill_worker_at_epoch ({p}.kill_worker_at_epoch) must be between 0 (never) and epochs - 1 ({Epochs - 1}): the restarted worker serves in the epochs after it");
        if (KillWorkerAtEpoch > 0 && ClusterServer == 0)
            throw new ArgumentException($"--kill_worker_at_epoch ({p}.kill_worker_at_epoch) needs a cluster server (--cluster_server, {p}.cluster_server > 0)");
        if (StepsPerBlock < 0 || StepsPerBlock > 100) throw new ArgumentException($"{p}.steps_per_block must be between 0 and 100");
        if (Tempo < 5 || Tempo > 1000) throw new ArgumentException($"--tempo ({p}.tempo) must be between 5 and 1000 blocks");
        ArgumentNullException.ThrowIfNull(ServerModel);
        ServerModel.Validate();
        ArgumentNullException.ThrowIfNull(Pipeline);
        Pipeline.Validate();
        ArgumentNullException.ThrowIfNull(Nucleus);
        Nucleus.Validate();
        return this;
    }
}

/// <summary>One neuron in the demo's tables and summary.</summary>
/// <param name="Uid">Uid on the demo subnet.</param>
/// <param name="Hotkey">Hotkey SS58.</param>
/// <param name="Role"><c>server</c>, <c>bad_server</c> or <c>validator</c>.</param>
/// <param name="Stake">Stake in TAO.</param>
/// <param name="Incentive">Incentive in [0, 1].</param>
/// <param name="Dividends">Dividends in [0, 1].</param>
/// <param name="Emission">Emission of the last epoch in TAO.</param>
/// <param name="Score">The validator's score for this peer (NaN for the validator itself or an unscored peer).</param>
/// <param name="Kind">A bad server's adversary kind (null for others).</param>
/// <param name="Refusals">How many of its replies the validator refused, and why (empty when none).</param>
/// <param name="Joined">In how many validator batches its representation joined the decoder's context.</param>
/// <param name="Cluster">For a server run as a cluster (<c>btcli demo --processes</c>), what it is made of ("1 front + 2 workers"); null otherwise.</param>
/// <param name="Trust">Trust in [0, 1] (NaN when not known).</param>
public sealed record DemoNeuron(ushort Uid, string Hotkey, string Role, double Stake, double Incentive, double Dividends, double Emission, double Score,
    string? Kind = null, IReadOnlyDictionary<string, long>? Refusals = null, long Joined = 0, string? Cluster = null, double Trust = double.NaN);

/// <summary>The state the live view shows, reported after every block.</summary>
/// <param name="Block">Latest block.</param>
/// <param name="BlocksUntilEpoch">Blocks until the next epoch.</param>
/// <param name="EpochsDone">Epochs since the validator started.</param>
/// <param name="Epochs">Epochs to run.</param>
/// <param name="Phase">What the demo is doing (setting up, running).</param>
/// <param name="Pipeline">Validator pipeline counters (null before it starts).</param>
/// <param name="LastWeights">Outcome of the validator's last weight setting, if any.</param>
public sealed record DemoProgress(ulong Block, ulong BlocksUntilEpoch, int EpochsDone, int Epochs, string Phase, PipelineSnapshot? Pipeline, string? LastWeights);

/// <summary>
/// Test seams of the in-process demo: they let a test force an ordering of events that load produces only sometimes.
/// </summary>
internal sealed class DemoSeams
{
    /// <summary>
    /// Awaited before a neuron's call is handed to the localnet (before it can enter the pool), with the localnet's block
    /// number at that moment: the block the caller acted on, which the demo's progress callback may not have reported yet.
    /// </summary>
    public Func<Bittensor.Chain.SignedCall, ulong, CancellationToken, Task>? BeforeSubmit { get; init; }

    /// <summary>Raised when the block driver starts holding a block for the validator's weights.</summary>
    public Action? HoldingForWeights { get; init; }
}

/// <summary>How the demo ended.</summary>
/// <param name="Neurons">Every neuron after the last epoch.</param>
/// <param name="ValidatorWeights">The validator's weights on chain: (uid, u16 weight).</param>
/// <param name="MarketWorked">True when every useless server earned less incentive than every useful one and the validator earned dividends.</param>
/// <param name="Verdict">One sentence saying why the market did or did not work.</param>
/// <param name="WallTimeSeconds">Wall time from start to summary.</param>
/// <param name="QueriesPerSecond">Validator forward calls per second.</param>
/// <param name="Queries">Validator forward calls.</param>
/// <param name="Batches">Validator batches.</param>
/// <param name="Blocks">Blocks produced.</param>
/// <param name="Netuid">The demo subnet.</param>
/// <param name="HeldOutLoss">The validator's loss on text it had not trained on yet, averaged over its last batches (<see cref="Pipelines.PipelineSnapshot.HeldOutLoss"/>).</param>
/// <param name="IncentiveHistory">Per epoch (from the first), each neuron's incentive by uid.</param>
public sealed record DemoResult(IReadOnlyList<DemoNeuron> Neurons, IReadOnlyList<(ushort Uid, ushort Weight)> ValidatorWeights, bool MarketWorked,
    string Verdict, double WallTimeSeconds, double QueriesPerSecond, long Queries, long Batches, ulong Blocks, ushort Netuid,
    double HeldOutLoss = double.NaN, IReadOnlyList<IReadOnlyDictionary<ushort, double>>? IncentiveHistory = null);
