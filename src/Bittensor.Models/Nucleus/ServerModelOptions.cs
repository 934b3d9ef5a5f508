using Bittensor.Core.Modeling;

namespace Bittensor.Models.Nucleus;

/// <summary>
/// Architecture and training options of a <see cref="ServerModel"/>. A plain record: the runtime reads them from
/// HOCON <c>bittensor.model</c> (Bittensor.Actors' <c>ModelSettings</c>) and Bittensor.Neurons maps them here, so this
/// project needs no configuration library.
/// </summary>
public sealed record ServerModelOptions
{
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

    /// <summary>Throws <see cref="ArgumentException"/> naming the first value the model cannot be built with.</summary>
    public ServerModelOptions Validate()
    {
        static void Require(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"{name} = {value}: {rule}");
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
        return this;
    }
}
