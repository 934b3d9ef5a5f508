using Akka;
using Akka.Actor;
using Akka.Streams;
using Akka.Streams.Dsl;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Metagraph;
using Bittensor.Core.Domain;
using Bittensor.Models.Data;
using Bittensor.Models.Tokenization;
using Bittensor.Neurons.Pipelines;
using Bittensor.Models.Validation;

namespace Bittensor.Neurons.Roles;

/// <summary>How a <see cref="ValidatorNeuron"/> (or the query side of a <see cref="MinerNeuron"/>) runs.</summary>
public sealed record ValidatorOptions
{
    /// <summary>Batching, top-k and bounds of the pipeline.</summary>
    public PipelineSettings Pipeline { get; init; } = new();

    /// <summary>Sizes of the router and decoder head.</summary>
    public NucleusSettings Nucleus { get; init; } = new();

    /// <summary>Text files or folders the batches are read from (default: the Debian corpus present, see docs/corpus.md).</summary>
    public IReadOnlyList<string>? Corpus { get; init; }

    /// <summary>Tokens read from the corpus per pass (it is re-read when exhausted).</summary>
    public long CorpusTokens { get; init; } = 100_000;

    /// <summary>Stake to add to the hotkey from the coldkey at start (zero: none).</summary>
    public Balance Stake { get; init; } = Balance.Zero;

    /// <summary>Weights are set this many blocks before each epoch.</summary>
    public int WeightsLeadBlocks { get; init; } = 2;

    /// <summary>Dendrite settings; null takes the reference configuration.</summary>
    public DendriteSettings? Dendrite { get; init; }

    /// <summary>Settings of the metagraph actor the validator reads peers from (not saved to disk by default).</summary>
    public MetagraphSettings Metagraph { get; init; } = MetagraphSettings.Default with { Save = false };

    /// <summary>Reads <c>bittensor.validator</c> from <paramref name="config"/> (missing keys take the defaults) and validates it.</summary>
    /// <exception cref="ArgumentException">A value is out of range; the message names it.</exception>
    public static ValidatorOptions Create(Akka.Configuration.Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var c = config.GetConfig("bittensor.validator") ?? Akka.Configuration.ConfigurationFactory.Empty;
        var p = new PipelineSettings();
        var n = new NucleusSettings();
        var d = new ValidatorOptions();
        var options = d with
        {
            Pipeline = p with
            {
                BatchSize = c.GetInt("pipeline.batch_size", p.BatchSize),
                SequenceLength = c.GetInt("pipeline.sequence_length", p.SequenceLength),
                BatchWindow = c.GetTimeSpan("pipeline.batch_window", p.BatchWindow, allowInfinite: false),
                BatchBuffer = c.GetInt("pipeline.batch_buffer", p.BatchBuffer),
                TopK = c.GetInt("pipeline.top_k", p.TopK),
                ForwardParallelism = c.GetInt("pipeline.forward_parallelism", p.ForwardParallelism),
                BackwardParallelism = c.GetInt("pipeline.backward_parallelism", p.BackwardParallelism),
                CallTimeout = c.GetTimeSpan("pipeline.call_timeout", p.CallTimeout, allowInfinite: false),
            },
            Nucleus = n with
            {
                Hidden = c.GetInt("nucleus.hidden", n.Hidden),
                LearningRate = c.GetDouble("nucleus.learning_rate", n.LearningRate),
                RouterLearningRate = c.GetDouble("nucleus.router_learning_rate", n.RouterLearningRate),
                ScoreAlpha = c.GetDouble("nucleus.score_alpha", n.ScoreAlpha),
                Threads = c.GetInt("nucleus.threads", n.Threads),
            },
            WeightsLeadBlocks = c.GetInt("weights_lead_blocks", d.WeightsLeadBlocks),
            CorpusTokens = c.GetLong("corpus_tokens", d.CorpusTokens),
        };
        options.Pipeline.Validate();
        options.Nucleus.Validate();
        if (options.WeightsLeadBlocks < 0) throw new ArgumentException("bittensor.validator.weights_lead_blocks must not be negative");
        if (options.CorpusTokens < 1) throw new ArgumentException("bittensor.validator.corpus_tokens must be positive");
        return options;
    }
}

/// <summary>
/// The 2021 template validator: registers (and stakes) its hotkey, runs the <see cref="ValidationPipeline"/> over the
/// subnet's serving peers, and sets weights from the pipeline's scores once per tempo through the ChainActor. Its actors
/// are the named children <c>metagraph</c>, <c>dendrite</c> and <c>weights</c> of one <see cref="NeuronActor"/>
/// (<c>/user/validator-&lt;hotkey&gt;</c>), supervised as that class describes (each is critical).
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
            await ChainOps.SubmitOrThrowAsync(chain, new AddStake(keys.HotkeyAccount, options.Stake), coldkey, cancellationToken);
        }
        var hyper = await ChainOps.HyperparametersAsync(chain, netuid, cancellationToken);
        var neuron = NeuronActors.Create(system, "validator", keys.HotkeySs58);
        try
        {
            var (pipeline, metagraph, kill, completion) = await StartPipelineAsync(system, neuron, chain, netuid, keys, options, "validator", null, cancellationToken);
            await NeuronActors.StartChildAsync(neuron, "weights",
                WeightSetter.Props(chain, metagraph, netuid, keys, pipeline.Scores, hyper, options.WeightsLeadBlocks), critical: true, cancellationToken);
            return new ValidatorNeuron(neuron, uid, pipeline, metagraph, kill, completion, keys.HotkeySs58);
        }
        catch
        {
            await NeuronActors.StopAsync(neuron, TimeSpan.FromSeconds(10));
            throw;
        }
    }

    internal static async Task<(ValidationPipeline, IActorRef, UniqueKillSwitch, Task<Done>)> StartPipelineAsync(ActorSystem system, IActorRef neuron,
        IActorRef chain, ushort netuid, NeuronKeys keys, ValidatorOptions options, string name, DistillStep? distill, CancellationToken cancellationToken)
    {
        var metagraph = await NeuronActors.StartChildAsync(neuron, "metagraph", MetagraphActor.Props(chain, netuid, "local", options.Metagraph),
            critical: true, cancellationToken);
        // One sync before the first batch, so the peers serving now are known without waiting for a block.
        await metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromSeconds(30), cancellationToken);
        var dendriteSettings = options.Dendrite ?? DendriteSettings.Default;
        var dendriteActor = await NeuronActors.StartChildAsync(neuron, "dendrite", DendriteActor.Props(dendriteSettings, keys.Requests), critical: true,
            cancellationToken);
        var dendrite = new Dendrite(system, dendriteActor, dendriteSettings);
        var self = keys.HotkeyAccount;
        async Task<IReadOnlyList<PeerEndpoint>> Peers(CancellationToken ct)
        {
            var snapshot = await metagraph.Ask<MetagraphSnapshot>(GetMetagraph.Instance, TimeSpan.FromSeconds(10), ct);
            return snapshot.Endpoints
                .Where(e => e.IsServing && e.Hotkey != self)
                .Select(e => new PeerEndpoint(e.Uid, new EndpointInfo(e.Hotkey.ToSs58(), e.IpAddress, e.Port)))
                .ToArray();
        }
        var pipeline = new ValidationPipeline(dendrite, Peers, options.Pipeline, options.Nucleus, name, distill);
        var (kill, completion) = pipeline.Run(system.Materializer(), CorpusBlocks(options));
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
