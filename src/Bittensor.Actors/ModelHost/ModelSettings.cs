using Akka.Configuration;
using Bittensor.Core.Modeling;
using Bittensor.Core.Resilience;

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
    public required int VocabSize { get; init; }
    /// <summary>Transformer width.</summary>
    public required int DModel { get; init; }
    /// <summary>Encoder layers.</summary>
    public required int Layers { get; init; }
    /// <summary>Attention heads per layer.</summary>
    public required int Heads { get; init; }
    /// <summary>Feed-forward hidden width.</summary>
    public required int FeedForward { get; init; }
    /// <summary>Longest accepted sequence (tokens).</summary>
    public required int MaxSequence { get; init; }
    /// <summary>Width of returned representations (1024 on the network).</summary>
    public required int NetworkDim { get; init; }
    /// <summary>Dropout in training.</summary>
    public required double Dropout { get; init; }
    /// <summary>TorchSharp device string.</summary>
    public required string Device { get; init; }
    /// <summary>Intra-op threads (0 = TorchSharp default).</summary>
    public required int Threads { get; init; }
    /// <summary>Initialisation seed.</summary>
    public required long Seed { get; init; }
    /// <summary>Optimizer of backward steps.</summary>
    public required ModelOptimizer Optimizer { get; init; }
    /// <summary>Learning rate.</summary>
    public required double LearningRate { get; init; }
    /// <summary>Largest coalesced batch (rows).</summary>
    public required int MaxBatch { get; init; }
    /// <summary>Longest wait for a batch to fill while the model is idle.</summary>
    public required TimeSpan MaxDelay { get; init; }
    /// <summary>Requests allowed to wait for the model before NucleusFull.</summary>
    public required int MaxQueue { get; init; }
    /// <summary>Deadline of one model call.</summary>
    public required TimeSpan RequestTimeout { get; init; }
    /// <summary>Checkpoint file; null keeps checkpoints in memory only.</summary>
    public required string? CheckpointPath { get; init; }
    /// <summary>Checkpoint after this many backward steps (0 = never by count).</summary>
    public required int CheckpointEverySteps { get; init; }
    /// <summary>Checkpoint at least this often while training (zero = never by time).</summary>
    public required TimeSpan CheckpointInterval { get; init; }
    /// <summary>Tries to start the model in a row (build + checkpoint load) before the host gives up and stops.</summary>
    public required int StartAttempts { get; init; }
    /// <summary>First restart delay after a crash.</summary>
    public required TimeSpan BackoffMin { get; init; }
    /// <summary>Longest restart delay.</summary>
    public required TimeSpan BackoffMax { get; init; }
    /// <summary>Jitter fraction of restart delays.</summary>
    public required double BackoffRandomFactor { get; init; }

    /// <summary>The restart backoff of the model worker (backoff.min, backoff.max, backoff.random_factor).</summary>
    public BackoffPolicy Backoff => new(BackoffMin, BackoffMax, BackoffRandomFactor);

    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.model";

    /// <summary>The reference configuration's values (hocon/bittensor.conf), for code without an ActorSystem and tests.</summary>
    public static ModelSettings Default { get; } = Create(Bittensor.Actors.BittensorRuntime.Section(Bittensor.Actors.BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Reads the <c>bittensor.model</c> section (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static ModelSettings Create(Config section)
    {
        var c = new Bittensor.Actors.HoconSection(section, SectionPath);
        var path = c.String("checkpoint.path");
        return new ModelSettings
        {
            VocabSize = c.Int("vocab_size"),
            DModel = c.Int("d_model"),
            Layers = c.Int("layers"),
            Heads = c.Int("heads"),
            FeedForward = c.Int("feed_forward"),
            MaxSequence = c.Int("max_sequence"),
            NetworkDim = c.Int("network_dim"),
            Dropout = c.Double("dropout"),
            Device = c.String("device"),
            Threads = c.Int("threads"),
            Seed = c.Long("seed"),
            Optimizer = c.OneOf("optimizer", "adam", "sgd") == "sgd" ? ModelOptimizer.Sgd : ModelOptimizer.Adam,
            LearningRate = c.Double("learning_rate"),
            MaxBatch = c.Int("max_batch"),
            MaxDelay = c.Duration("max_delay"),
            MaxQueue = c.Int("max_queue"),
            RequestTimeout = c.Duration("request_timeout"),
            CheckpointPath = string.IsNullOrWhiteSpace(path) ? null : path,
            CheckpointEverySteps = c.Int("checkpoint.every_steps"),
            CheckpointInterval = c.Duration("checkpoint.interval"),
            StartAttempts = c.Int("start_attempts"),
            BackoffMin = c.Duration("backoff.min"),
            BackoffMax = c.Duration("backoff.max"),
            BackoffRandomFactor = c.Double("backoff.random_factor"),
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
        Require(StartAttempts > 0, "start_attempts", StartAttempts, "must be positive");
        Require(BackoffMin > TimeSpan.Zero && BackoffMax >= BackoffMin, "backoff", $"{BackoffMin}..{BackoffMax}", "needs 0 < min <= max");
        Require(BackoffRandomFactor is >= 0 and <= 1, "backoff.random_factor", BackoffRandomFactor, "must be in [0, 1]");
        return this;
    }
}
