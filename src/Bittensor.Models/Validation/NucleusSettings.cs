namespace Bittensor.Models.Validation;

/// <summary>
/// Sizes of the validator's (and miner's) local nucleus: the router over peers' representations and the small
/// decoder head that predicts the next token from the joined context.
/// </summary>
public sealed record NucleusSettings
{
    /// <summary>Width of a peer representation (the network's 1024).</summary>
    public int NetworkDim { get; init; } = 1024;

    /// <summary>Hidden width of the decoder head (network_dim → hidden → vocabulary). Small so a step fits 2 CPU cores.</summary>
    public int Hidden { get; init; } = 128;

    /// <summary>Vocabulary the head predicts over (the network's padded GPT-2 vocabulary, 50 378).</summary>
    public int VocabSize { get; init; } = 50378;

    /// <summary>Router slots: one learnable weight per uid below this number; higher uids share no weight and are skipped.</summary>
    public int RouterCapacity { get; init; } = 256;

    /// <summary>Adam learning rate of the decoder head and of the no-peer baseline.</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Adam learning rate of the router (one logit per peer; faster so peers separate within a few epochs).</summary>
    public double RouterLearningRate { get; init; } = 0.1;

    /// <summary>Largest magnitude a peer's representation may hold; a reply with a larger value is refused (scores 0).</summary>
    public double MaxMagnitude { get; init; } = 1e3;

    /// <summary>Positions each peer's scoring memory keeps (<see cref="PeerScorer"/>); older ones are forgotten.</summary>
    public int ScoreMemory { get; init; } = 2048;

    /// <summary>Dimensions a representation is projected to in the scoring memory (a fixed random projection).</summary>
    public int ScoreDim { get; init; } = 128;

    /// <summary>Moving-average factor of the per-peer scores (weight of the newest batch).</summary>
    public double ScoreAlpha { get; init; } = 0.02;

    /// <summary>Seed of the head's initial weights.</summary>
    public long Seed { get; init; }

    /// <summary>Torch intra-op threads for the nucleus (0 keeps torch's default).</summary>
    public int Threads { get; init; } = 2;

    /// <summary>Throws <see cref="ArgumentException"/> for a value the nucleus cannot run with.</summary>
    public NucleusSettings Validate()
    {
        if (NetworkDim < 1 || Hidden < 1 || VocabSize < 2) throw new ArgumentException("nucleus sizes must be positive (vocab at least 2)");
        if (RouterCapacity < 1) throw new ArgumentException("router capacity must be at least 1");
        if (!(LearningRate > 0) || !(RouterLearningRate > 0)) throw new ArgumentException("learning rate must be positive");
        if (!(MaxMagnitude > 0) || !double.IsFinite(MaxMagnitude)) throw new ArgumentException("max magnitude must be a positive finite number");
        if (ScoreMemory < 1 || ScoreDim < 1) throw new ArgumentException("score memory and score dimensions must be at least 1");
        if (!(ScoreAlpha > 0 && ScoreAlpha <= 1)) throw new ArgumentException("score alpha must be in (0, 1]");
        return this;
    }
}
