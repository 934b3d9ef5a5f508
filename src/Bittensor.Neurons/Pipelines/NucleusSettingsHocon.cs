using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Models.Validation;

namespace Bittensor.Neurons.Pipelines;

/// <summary>
/// Reads <see cref="NucleusSettings"/> (a Bittensor.Models record, which has no Akka and so cannot read HOCON itself)
/// from <c>bittensor.validator.nucleus</c>, the same way every settings record is read: every key required, a bad value
/// refused with a <see cref="ConfigurationException"/> naming its key.
/// </summary>
public static class NucleusSettingsHocon
{
    /// <summary>HOCON path of the section.</summary>
    public const string SectionPath = "bittensor.validator.nucleus";

    /// <summary>The reference configuration's values (hocon/bittensor.conf).</summary>
    public static NucleusSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Reads the <c>bittensor.validator.nucleus</c> section and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static NucleusSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        var s = new NucleusSettings
        {
            NetworkDim = c.Int("network_dim"),
            Hidden = c.Int("hidden"),
            VocabSize = c.Int("vocab_size"),
            RouterCapacity = c.Int("router_capacity"),
            LearningRate = c.Double("learning_rate"),
            RouterLearningRate = c.Double("router_learning_rate"),
            ScoreAlpha = c.Double("score_alpha"),
            ScoreMemory = c.Int("score_memory"),
            ScoreDim = c.Int("score_dim"),
            MaxMagnitude = c.Double("max_magnitude"),
            Seed = c.Long("seed"),
            Threads = c.Int("threads"),
        };
        const string p = SectionPath;
        HoconSection.Require(s.NetworkDim >= 1, $"{p}.network_dim", s.NetworkDim, "must be at least 1");
        HoconSection.Require(s.Hidden >= 1, $"{p}.hidden", s.Hidden, "must be at least 1");
        HoconSection.Require(s.VocabSize >= 2, $"{p}.vocab_size", s.VocabSize, "must be at least 2");
        HoconSection.Require(s.RouterCapacity >= 1, $"{p}.router_capacity", s.RouterCapacity, "must be at least 1");
        HoconSection.Require(s.LearningRate > 0 && double.IsFinite(s.LearningRate), $"{p}.learning_rate", s.LearningRate, "must be positive");
        HoconSection.Require(s.RouterLearningRate > 0 && double.IsFinite(s.RouterLearningRate), $"{p}.router_learning_rate", s.RouterLearningRate, "must be positive");
        HoconSection.Require(s.ScoreAlpha > 0 && s.ScoreAlpha <= 1, $"{p}.score_alpha", s.ScoreAlpha, "must be in (0, 1]");
        HoconSection.Require(s.ScoreMemory >= 1, $"{p}.score_memory", s.ScoreMemory, "must be at least 1");
        HoconSection.Require(s.ScoreDim >= 1, $"{p}.score_dim", s.ScoreDim, "must be at least 1");
        HoconSection.Require(s.MaxMagnitude > 0 && double.IsFinite(s.MaxMagnitude), $"{p}.max_magnitude", s.MaxMagnitude, "must be a positive number");
        HoconSection.Require(s.Threads >= 0, $"{p}.threads", s.Threads, "must be 0 or positive");
        return s.Validate();
    }
}
