using Akka;
using Akka.Actor;
using Akka.Configuration;
using Akka.Streams;
using Akka.Streams.Dsl;
using Bittensor.Actors;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Metagraph;
using Bittensor.Core.Domain;
using Bittensor.Models.Data;
using Bittensor.Models.Tokenization;
using Bittensor.Neurons.Pipelines;
using Bittensor.Models.Validation;

namespace Bittensor.Neurons.Roles;

/// <summary>
/// How a <see cref="ValidatorNeuron"/> (or the query side of a <see cref="MinerNeuron"/>) runs. The HOCON-backed parts
/// come from <c>bittensor.validator</c> (<see cref="Create"/>); the chain network, dendrite and metagraph settings come
/// from the system's <see cref="BittensorRuntime"/> unless set here.
/// </summary>
public sealed record ValidatorOptions
{
    /// <summary>HOCON path of the section these options are read from.</summary>
    public const string SectionPath = "bittensor.validator";

    /// <summary>The reference configuration's values (hocon/bittensor.conf), for code without an ActorSystem and tests.</summary>
    public static ValidatorOptions Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Batching, top-k and bounds of the pipeline.</summary>
    public required PipelineSettings Pipeline { get; init; }

    /// <summary>Sizes of the router and decoder head.</summary>
    public required NucleusSettings Nucleus { get; init; }

    /// <summary>Text files or folders the batches are read from (null: the Debian corpus present, see docs/corpus.md).</summary>
    public IReadOnlyList<string>? Corpus { get; init; }

    /// <summary>Tokens read from the corpus per pass (it is re-read when exhausted).</summary>
    public required long CorpusTokens { get; init; }

    /// <summary>Stake to add to the hotkey from the coldkey at start (zero: none; a command-line value, not HOCON).</summary>
    public Balance Stake { get; init; } = Balance.Zero;

    /// <summary>Weights are set this many blocks before each epoch.</summary>
    public required int WeightsLeadBlocks { get; init; }

    /// <summary>A peer's weight is its score to this power, in (0, 1] (<c>bittensor.validator.weight_exponent</c>; see <see cref="WeightSetter.Weigh"/>).</summary>
    public required double WeightExponent { get; init; }

    /// <summary>Whether the validator's metagraph snapshots are saved (<c>bittensor.validator.save_metagraph</c>).</summary>
    public required bool SaveMetagraph { get; init; }

    /// <summary>Dendrite settings; null takes the system's <c>bittensor.dendrite</c>.</summary>
    public DendriteSettings? Dendrite { get; init; }

    /// <summary>Metagraph settings; null takes the system's <c>bittensor.metagraph</c> (with <see cref="SaveMetagraph"/>).</summary>
    public MetagraphSettings? Metagraph { get; init; }

    /// <summary>Reads the <c>bittensor.validator</c> section (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static ValidatorOptions Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        return new ValidatorOptions
        {
            Pipeline = PipelineSettings.Create(section.GetConfig("pipeline")),
            Nucleus = NucleusSettingsHocon.Create(section.GetConfig("nucleus")),
            WeightsLeadBlocks = c.Int("weights_lead_blocks"),
            WeightExponent = c.Double("weight_exponent"),
            CorpusTokens = c.Long("corpus_tokens"),
            SaveMetagraph = c.Bool("save_metagraph"),
        }.Validate();
    }

    /// <summary>
    /// Least <c>weights_lead_blocks</c>: weights submitted at the block <c>lead</c> blocks before an epoch are included at
    /// the earliest in the next block, and an epoch runs at the start of its own block, before that block's calls
    /// (subtensor's <c>on_initialize</c>; the localnet the same). With 1 they land in the epoch's own block and that epoch
    /// never counts them; with 0 they are set in the epoch's block, after its epoch, and count a whole tempo late.
    /// </summary>
    public const int MinWeightsLeadBlocks = 2;

    /// <summary>Throws <see cref="ConfigurationException"/> naming <c>bittensor.validator.weights_lead_blocks</c> unless it is at least <see cref="MinWeightsLeadBlocks"/>.</summary>
    public static void CheckWeightsLeadBlocks(int lead) => HoconSection.Require(lead >= MinWeightsLeadBlocks, "bittensor.validator.weights_lead_blocks", lead,
        "must be at least 2: weights set 1 block before an epoch are included at the earliest in the epoch's own block, whose epoch runs " +
        "before its calls and never counts them (0: set in the epoch's block after its epoch, they count a whole tempo late)");

    /// <summary>Returns these options when every value is usable.</summary>
    /// <exception cref="ConfigurationException">The first invalid value; the message names its key.</exception>
    public ValidatorOptions Validate()
    {
        Pipeline.Validate();
        Nucleus.Validate();
        CheckWeightsLeadBlocks(WeightsLeadBlocks);
        HoconSection.Require(WeightExponent is > 0 and <= 1, "bittensor.validator.weight_exponent", WeightExponent, "must be in (0, 1]");
        HoconSection.Require(CorpusTokens >= 1, "bittensor.validator.corpus_tokens", CorpusTokens, "must be positive");
        return this;
    }
}

/// <summary>
/// The 2021 template validator: registers (and stakes) its hotkey, runs the <see cref="ValidationPipeline"/> over the
/// subnet's serving peers, and sets weights from the pipeline's scores once per tempo through the ChainActor. Its actors
/// are the named children <c>metagraph</c>, <c>dendrite</c>, <c>nucleus</c> and <c>weights</c> of one <see cref="NeuronActor"/>
/// (<c>/user/bittensor/validator-&lt;hotkey&gt;</c>), supervised as that class describes (each is critical).
/// </summary>
public sealed class ValidatorNeuron : IAsyncDisposable
{
    private readonly UniqueKillSwitch _kill;

    private ValidatorNeuron(IActorRef neuron, ushort uid, ValidationPipeline pipeline, IActorRef metagraph,
        UniqueKillSwitch kill, Task<Done> completion, string hotkey)
    {
        Neuron = neuron;
        Uid = uid;
        Pipeline = pipeline;
        Metagraph = metagraph;
        _kill = kill;
        Completion = completion;
        Hotkey = hotkey;
    }

    /// <summary>Uid on the subnet.</summary>
    public ushort Uid { get; }

    /// <summary>Hotkey SS58.</summary>
    public string Hotkey { get; }

    /// <summary>The neuron's parent actor (<see cref="NeuronActor"/>).</summary>
    public IActorRef Neuron { get; }

    /// <summary>The running pipeline (scores and metrics).</summary>
    public ValidationPipeline Pipeline { get; }

    /// <summary>The metagraph actor the peers come from.</summary>
    public IActorRef Metagraph { get; }

    /// <summary>Completes when the pipeline stops.</summary>
    public Task<Done> Completion { get; }

    /// <summary>Registers, stakes and starts querying and weighting on <paramref name="netuid"/>.</summary>
    public static async Task<ValidatorNeuron> StartAsync(ActorSystem system, IActorRef chain, ushort netuid, NeuronKeys keys, ValidatorOptions options,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(options);
        var uid = await ChainOps.EnsureRegisteredAsync(chain, netuid, keys, cancellationToken);
        if (options.Stake.Rao > 0)
        {
            var coldkey = keys.Coldkey ?? throw new NeuronException("staking needs the coldkey");
            // With the subnet named: runtimes that keep stake per subnet (dynamic TAO, spec 218 on) need it; older ones and
            // the localnet lay the call out without it.
            await ChainOps.SubmitOrThrowAsync(chain, new AddStake(keys.HotkeyAccount, options.Stake, netuid), coldkey, cancellationToken);
        }
        var hyper = await ChainOps.HyperparametersAsync(chain, netuid, cancellationToken);
        var neuron = await NeuronActors.CreateAsync(system, "validator", keys.HotkeySs58, cancellationToken);
        try
        {
            var (pipeline, metagraph, kill, completion) = await StartPipelineAsync(system, neuron, chain, netuid, keys, options, "validator", null, cancellationToken);
            await NeuronActors.StartChildAsync(neuron, "weights",
                WeightSetter.Props(chain, metagraph, netuid, keys, pipeline.Scores, hyper, options.WeightsLeadBlocks, options.WeightExponent), critical: true, cancellationToken);
            return new ValidatorNeuron(neuron, uid, pipeline, metagraph, kill, completion, keys.HotkeySs58);
        }
        catch
        {
            await NeuronActors.StopAsync(neuron, TimeSpan.FromSeconds(10));
            throw;
        }
    }

    internal static async Task<(ValidationPipeline, IActorRef, UniqueKillSwitch, Task<Done>)> StartPipelineAsync(ActorSystem system, IActorRef neuron,
        IActorRef chain, ushort netuid, NeuronKeys keys, ValidatorOptions options, string name, DistillStep? distill, CancellationToken cancellationToken,
        IActorRef? metagraph = null)
    {
        var runtime = BittensorRuntime.Get(system);
        // A miner passes its server's metagraph: one MetagraphActor per neuron and netuid feeds both its axon and its pipeline.
        if (metagraph is null)
        {
            var metagraphSettings = options.Metagraph ?? runtime.Metagraph with { Save = options.SaveMetagraph };
            metagraph = await NeuronActors.StartChildAsync(neuron, "metagraph", MetagraphActor.Props(chain, netuid, runtime.Subtensor.Network, metagraphSettings),
                critical: true, cancellationToken);
        }
        // One sync before the first batch, so the peers serving now are known without waiting for a block.
        await metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromSeconds(30), cancellationToken);
        var dendriteSettings = options.Dendrite ?? runtime.Dendrite;
        var dendriteActor = await NeuronActors.StartChildAsync(neuron, "dendrite", DendriteActor.Props(dendriteSettings, keys.Requests), critical: true,
            cancellationToken);
        var dendrite = new Dendrite(system, dendriteActor, dendriteSettings);
        var self = keys.HotkeyAccount;
        async Task<IReadOnlyList<EndpointInfo>> Peers(CancellationToken ct)
        {
            var snapshot = await metagraph.Ask<MetagraphSnapshot>(GetMetagraph.Instance, TimeSpan.FromSeconds(10), ct);
            return snapshot.Endpoints
                .Where(e => e.IsServing && e.Hotkey != self)
                .Select(e => e.ToEndpointInfo())
                .ToArray();
        }
        var pipeline = new ValidationPipeline(dendrite, Peers, options.Pipeline, options.Nucleus, name, distill);
        var nucleus = await NeuronActors.StartChildAsync(neuron, "nucleus", pipeline.NucleusProps(system), critical: true, cancellationToken);
        var (kill, completion) = pipeline.Run(system.Materializer(), CorpusBlocks(options), nucleus: nucleus);
        return (pipeline, metagraph, kill, completion);
    }

    /// <summary>Token blocks of the pipeline's sequence length from the corpus, read again from the start when exhausted.</summary>
    internal static Source<long[], NotUsed> CorpusBlocks(ValidatorOptions options)
    {
        var paths = options.Corpus ?? TextDataset.AvailableDebianCorpus();
        if (paths.Count == 0) throw new NeuronException("no text corpus found: install fortunes-min or pass corpus paths (see docs/corpus.md)");
        var seq = options.Pipeline.SequenceLength;
        var tokens = Math.Max(options.CorpusTokens, seq * 4L);
        return Source.From(Enumerable.Range(0, int.MaxValue)).ConcatMany(pass =>
            TextDatasetSource.Blocks(paths, BittensorTokenizer.Instance, seq, options.Pipeline.Seed + pass, tokens));
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _kill.Shutdown();
        try
        {
            await Completion.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
        }
        await NeuronActors.StopAsync(Neuron, TimeSpan.FromSeconds(10));
        Pipeline.Dispose();
    }
}
