using Akka.Configuration;
using Bittensor.Actors;

namespace Bittensor.Neurons.Pipelines;

/// <summary>
/// Sizes of the validator's (and miner's) local nucleus, read from <c>bittensor.validator.nucleus</c>: the router over
/// peers' representations and the small decoder head that predicts the next token from the joined context.
/// </summary>
public sealed record NucleusSettings
{
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.validator.nucleus";

    /// <summary>The reference configuration's values (hocon/bittensor.conf), for code without an ActorSystem and tests.</summary>
    public static NucleusSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Width of a peer representation (the network's 1024).</summary>
    public required int NetworkDim { get; init; }

    /// <summary>Hidden width of the decoder head (network_dim → hidden → vocabulary). Small so a step fits 2 CPU cores.</summary>
    public required int Hidden { get; init; }

    /// <summary>Vocabulary the head predicts over (the network's padded GPT-2 vocabulary, 50 378).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Router slots: one learnable weight per uid below this number; higher uids share no weight and are skipped.</summary>
    public required int RouterCapacity { get; init; }

    /// <summary>Adam learning rate of the decoder head.</summary>
    public required double LearningRate { get; init; }

    /// <summary>Adam learning rate of the router (one logit per peer; faster so peers separate within a few epochs).</summary>
    public required double RouterLearningRate { get; init; }

    /// <summary>Moving-average factor of the per-peer scores (weight of the newest batch).</summary>
    public required double ScoreAlpha { get; init; }

    /// <summary>Seed of the head's initial weights.</summary>
    public required long Seed { get; init; }

    /// <summary>Torch intra-op threads for the nucleus (0 keeps torch's default).</summary>
    public required int Threads { get; init; }

    /// <summary>Reads the <c>bittensor.validator.nucleus</c> section (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static NucleusSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        return new NucleusSettings
        {
            NetworkDim = c.Int("network_dim"),
            Hidden = c.Int("hidden"),
            VocabSize = c.Int("vocab_size"),
            RouterCapacity = c.Int("router_capacity"),
            LearningRate = c.Double("learning_rate"),
            RouterLearningRate = c.Double("router_learning_rate"),
            ScoreAlpha = c.Double("score_alpha"),
            Seed = c.Long("seed"),
            Threads = c.Int("threads"),
        }.Validate();
    }

    /// <summary>Returns these settings when every value is usable.</summary>
    /// <exception cref="ConfigurationException">The first invalid value; the message names its key.</exception>
    public NucleusSettings Validate()
    {
        const string p = SectionPath;
        HoconSection.Require(NetworkDim >= 1, $"{p}.network_dim", NetworkDim, "must be at least 1");
        HoconSection.Require(Hidden >= 1, $"{p}.hidden", Hidden, "must be at least 1");
        HoconSection.Require(VocabSize >= 2, $"{p}.vocab_size", VocabSize, "must be at least 2");
        HoconSection.Require(RouterCapacity >= 1, $"{p}.router_capacity", RouterCapacity, "must be at least 1");
        HoconSection.Require(LearningRate > 0 && double.IsFinite(LearningRate), $"{p}.learning_rate", LearningRate, "must be positive");
        HoconSection.Require(RouterLearningRate > 0 && double.IsFinite(RouterLearningRate), $"{p}.router_learning_rate", RouterLearningRate, "must be positive");
        HoconSection.Require(ScoreAlpha > 0 && ScoreAlpha <= 1, $"{p}.score_alpha", ScoreAlpha, "must be in (0, 1]");
        HoconSection.Require(Threads >= 0, $"{p}.threads", Threads, "must be 0 or positive");
        return this;
    }
}
