using Akka.Configuration;
using Bittensor.Core.Modeling;

namespace Bittensor.Actors.ModelHost;

/// <summary>
/// Settings of a hosted model, read once from HOCON <c>bittensor.model</c> (see hocon/bittensor.conf for each key):
/// the model host's queue, batching, deadline, checkpoints and restart backoff, and the architecture keys a model
/// implementation (Bittensor.Models' ServerTextModel, built by Bittensor.Neurons) is made from.
/// </summary>
public sealed record ModelSettings
{
    /// <summary>HOCON path of the dispatcher model actors run on.</summary>
    public const string DispatcherPath = "bittensor.model.dispatcher";

    /// <summary>Rows of the token embedding (50378 on the 2021 network).</summary>
    public int VocabSize { get; init; } = 50378;
    /// <summary>Transformer width.</summary>
    public int DModel { get; init; } = 128;
    /// <summary>Encoder layers.</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Attention heads per layer.</summary>
    public int Heads { get; init; } = 2;
    /// <summary>Feed-forward hidden width.</summary>
    public int FeedForward { get; init; } = 256;
    /// <summary>Longest accepted sequence (tokens).</summary>
    public int MaxSequence { get; init; } = 256;
    /// <summary>Width of returned representations (1024 on the network).</summary>
    public int NetworkDim { get; init; } = 1024;
    /// <summary>Dropout in training.</summary>
    public double Dropout { get; init; } = 0.1;
    /// <summary>TorchSharp device string.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Intra-op threads (0 = TorchSharp default).</summary>
    public int Threads { get; init; } = 2;
    /// <summary>Initialisation seed.</summary>
    public long Seed { get; init; }
    /// <summary>Optimizer of backward steps.</summary>
    public ModelOptimizer Optimizer { get; init; } = ModelOptimizer.Adam;
    /// <summary>Learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Largest coalesced batch (rows).</summary>
    public int MaxBatch { get; init; } = 32;
    /// <summary>Longest wait for a batch to fill while the model is idle.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMilliseconds(5);
    /// <summary>Requests allowed to wait for the model before NucleusFull.</summary>
    public int MaxQueue { get; init; } = 1024;
    /// <summary>Deadline of one model call.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Checkpoint file; null keeps checkpoints in memory only.</summary>
    public string? CheckpointPath { get; init; }
    /// <summary>Checkpoint after this many backward steps (0 = never by count).</summary>
    public int CheckpointEverySteps { get; init; } = 100;
    /// <summary>Checkpoint at least this often while training (zero = never by time).</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>First restart delay after a crash.</summary>
    public TimeSpan BackoffMin { get; init; } = TimeSpan.FromMilliseconds(200);
    /// <summary>Longest restart delay.</summary>
    public TimeSpan BackoffMax { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Jitter fraction of restart delays.</summary>
    public double BackoffRandomFactor { get; init; } = 0.2;

    /// <summary>The defaults of hocon/bittensor.conf.</summary>
    public static ModelSettings Default { get; } = new();

    /// <summary>The reference HOCON (hocon/bittensor.conf, embedded in Bittensor.Actors), for ActorSystems that host models.</summary>
    public static Config ReferenceConfig => Chain.ReferenceConfig.Root;

    /// <summary>Reads <c>bittensor.model</c> from <paramref name="config"/>; missing keys take the defaults.</summary>
    public static ModelSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var c = config.GetConfig("bittensor.model") ?? ConfigurationFactory.Empty;
        var d = Default;
        var optimizer = c.GetString("optimizer", "adam").ToLowerInvariant() switch
        {
            "adam" => ModelOptimizer.Adam,
            "sgd" => ModelOptimizer.Sgd,
            var other => throw new ConfigurationException($"bittensor.model.optimizer: '{other}' is not adam or sgd"),
        };
        var path = c.GetString("checkpoint.path", "");
        return new ModelSettings
        {
            VocabSize = c.GetInt("vocab_size", d.VocabSize),
            DModel = c.GetInt("d_model", d.DModel),
            Layers = c.GetInt("layers", d.Layers),
            Heads = c.GetInt("heads", d.Heads),
            FeedForward = c.GetInt("feed_forward", d.FeedForward),
            MaxSequence = c.GetInt("max_sequence", d.MaxSequence),
            NetworkDim = c.GetInt("network_dim", d.NetworkDim),
            Dropout = c.GetDouble("dropout", d.Dropout),
            Device = c.GetString("device", d.Device),
            Threads = c.GetInt("threads", d.Threads),
            Seed = c.GetLong("seed", d.Seed),
            Optimizer = optimizer,
            LearningRate = c.GetDouble("learning_rate", d.LearningRate),
            MaxBatch = c.GetInt("max_batch", d.MaxBatch),
            MaxDelay = c.GetTimeSpan("max_delay", d.MaxDelay, allowInfinite: false),
            MaxQueue = c.GetInt("max_queue", d.MaxQueue),
            RequestTimeout = c.GetTimeSpan("request_timeout", d.RequestTimeout, allowInfinite: false),
            CheckpointPath = string.IsNullOrWhiteSpace(path) ? null : path,
            CheckpointEverySteps = c.GetInt("checkpoint.every_steps", d.CheckpointEverySteps),
            CheckpointInterval = c.GetTimeSpan("checkpoint.interval", d.CheckpointInterval, allowInfinite: false),
            BackoffMin = c.GetTimeSpan("backoff.min", d.BackoffMin, allowInfinite: false),
            BackoffMax = c.GetTimeSpan("backoff.max", d.BackoffMax, allowInfinite: false),
            BackoffRandomFactor = c.GetDouble("backoff.random_factor", d.BackoffRandomFactor),
        }.Validate();
    }

    /// <summary>Checks every value; throws <see cref="ConfigurationException"/> naming the key that is wrong.</summary>
    public ModelSettings Validate()
    {
        static void Require(bool ok, string key, object value, string rule)
        {
            if (!ok) throw new ConfigurationException($"bittensor.model.{key} = {value}: {rule}");
        }
        Require(VocabSize > 0, "vocab_size", VocabSize, "must be positive");
        Require(DModel > 0, "d_model", DModel, "must be positive");
        Require(Layers > 0, "layers", Layers, "must be positive");
        Require(Heads > 0 && DModel % Heads == 0, "heads", Heads, "must be positive and divide d_model");
        Require(FeedForward > 0, "feed_forward", FeedForward, "must be positive");
        Require(MaxSequence > 0, "max_sequence", MaxSequence, "must be positive");
        Require(NetworkDim > 0, "network_dim", NetworkDim, "must be positive");
        Require(Dropout is >= 0 and < 1, "dropout", Dropout, "must be in [0, 1)");
        Require(!string.IsNullOrWhiteSpace(Device), "device", Device, "must name a device");
        Require(Threads >= 0, "threads", Threads, "must be 0 or positive");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), "learning_rate", LearningRate, "must be positive");
        Require(MaxBatch > 0, "max_batch", MaxBatch, "must be positive");
        Require(MaxDelay >= TimeSpan.Zero, "max_delay", MaxDelay, "must not be negative");
        Require(MaxQueue > 0, "max_queue", MaxQueue, "must be positive");
        Require(RequestTimeout > TimeSpan.Zero, "request_timeout", RequestTimeout, "must be positive");
        Require(CheckpointEverySteps >= 0, "checkpoint.every_steps", CheckpointEverySteps, "must be 0 or positive");
        Require(CheckpointInterval >= TimeSpan.Zero, "checkpoint.interval", CheckpointInterval, "must not be negative");
        Require(BackoffMin > TimeSpan.Zero && BackoffMax >= BackoffMin, "backoff", $"{BackoffMin}..{BackoffMax}", "needs 0 < min <= max");
        Require(BackoffRandomFactor is >= 0 and <= 1, "backoff.random_factor", BackoffRandomFactor, "must be in [0, 1]");
        return this;
    }
}
