using Bittensor.Models;
using Bittensor.Neurons.Pipelines;
using Bittensor.Models.Validation;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Neurons.Demo;

/// <summary>What the demo network looks like and how long it runs.</summary>
public sealed record DemoOptions
{
    /// <summary>Useful servers (each hosts a small transformer and trains on the gradients it receives).</summary>
    public int Servers { get; init; } = 3;

    /// <summary>Deliberately useless or hostile servers; the i-th behaves as <c>BadKinds[i % BadKinds.Count]</c>.</summary>
    public int BadServers { get; init; } = 1;

    /// <summary>What the bad servers answer (<see cref="Adversaries.Kinds"/>); default <c>uniform</c> noise in [0, 1).</summary>
    public IReadOnlyList<string> BadKinds { get; init; } = ["uniform"];

    /// <summary>Epochs to run after the validator has started.</summary>
    public int Epochs { get; init; } = 3;

    /// <summary>Least time between two blocks.</summary>
    public TimeSpan BlockTime { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Validator batches that must complete before the next block is produced (0: blocks follow the clock only). Keeps
    /// the amount of training per epoch the same on a slow or busy machine, so the outcome does not depend on speed.
    /// </summary>
    public int StepsPerBlock { get; init; } = 1;

    /// <summary>Blocks between epochs (the demo subnet's tempo).</summary>
    public ushort Tempo { get; init; } = 20;

    /// <summary>Seed for keys, model initialisation, corpus order and peer sampling.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Folder for the localnet and wallets; null creates (and afterwards deletes) a temporary one.</summary>
    public string? Folder { get; init; }

    /// <summary>Sizes of the servers' models (small by default so four of them train on 2 cores).</summary>
    public ModelSettings ServerModel { get; init; } = ModelSettings.Default with
    {
        DModel = 64,
        Layers = 1,
        Heads = 2,
        FeedForward = 128,
        MaxSequence = 64,
        Dropout = 0,
        Threads = 1,
        MaxDelay = TimeSpan.FromMilliseconds(2),
        CheckpointEverySteps = 0,
    };

    /// <summary>Validator pipeline shape.</summary>
    public PipelineSettings Pipeline { get; init; } = PipelineSettings.Default with { BatchSize = 4, SequenceLength = 16 };

    /// <summary>Validator nucleus sizes.</summary>
    public NucleusSettings Nucleus { get; init; } = NucleusSettingsHocon.Default;

    /// <summary>Corpus paths; null takes the Debian corpus present (docs/corpus.md).</summary>
    public IReadOnlyList<string>? Corpus { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first option out of range.</summary>
    public DemoOptions Validate()
    {
        if (Servers < 1 || Servers > 50) throw new ArgumentException("--servers must be between 1 and 50");
        if (BadServers < 0 || BadServers > 50) throw new ArgumentException("--bad_servers must be between 0 and 50");
        if (BadKinds is null || BadKinds.Count == 0 || BadKinds.Any(k => !Adversaries.Kinds.Contains(k)))
            throw new ArgumentException($"--bad_kind must list kinds among {string.Join(", ", Adversaries.Kinds)}");
        if (Epochs < 2 || Epochs > 1000) throw new ArgumentException("--epochs must be between 2 and 1000 (the first epoch only grants the validator its permit)");
        if (BlockTime < TimeSpan.Zero || BlockTime > TimeSpan.FromMinutes(1)) throw new ArgumentException("--block_time must be between 0 and 60 seconds");
        if (StepsPerBlock < 0 || StepsPerBlock > 100) throw new ArgumentException("steps per block must be between 0 and 100");
        if (Tempo < 5) throw new ArgumentException("tempo must be at least 5 blocks");
        Pipeline.Validate();
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
public sealed record DemoNeuron(ushort Uid, string Hotkey, string Role, double Stake, double Incentive, double Dividends, double Emission, double Score,
    string? Kind = null, IReadOnlyDictionary<string, long>? Refusals = null, long Joined = 0);

/// <summary>The state the live view shows, reported after every block.</summary>
/// <param name="Block">Latest block.</param>
/// <param name="BlocksUntilEpoch">Blocks until the next epoch.</param>
/// <param name="EpochsDone">Epochs since the validator started.</param>
/// <param name="Epochs">Epochs to run.</param>
/// <param name="Phase">What the demo is doing (setting up, running).</param>
/// <param name="Pipeline">Validator pipeline counters (null before it starts).</param>
/// <param name="LastWeights">Outcome of the validator's last weight setting, if any.</param>
public sealed record DemoProgress(ulong Block, ulong BlocksUntilEpoch, int EpochsDone, int Epochs, string Phase, PipelineSnapshot? Pipeline, string? LastWeights);

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
