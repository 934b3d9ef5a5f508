namespace Bittensor.Core.Modeling;

/// <summary>
/// A text model as the runtime's model host sees it: token ids in, float representations out, one optimizer step
/// from the caller's gradients, checkpoints. The runtime (Bittensor.Actors) hosts any implementation without knowing
/// its framework; Bittensor.Models implements it with TorchSharp (<c>ServerTextModel</c>). Arrays are row-major.
/// Implementations are used from one thread at a time (the model host's dedicated dispatcher) and may keep
/// per-thread state (TorchSharp's scopes); they throw on failure (the host answers the request with a code and
/// restarts the model from its last checkpoint).
/// </summary>
public interface ITextModel : IDisposable
{
    /// <summary>Rows of the token embedding: ids must be in 0 … VocabSize − 1.</summary>
    int VocabSize { get; }

    /// <summary>Longest accepted sequence.</summary>
    int MaxSequence { get; }

    /// <summary>Width of one representation (the last dimension of <see cref="Forward"/>'s output).</summary>
    int Dim { get; }

    /// <summary>Representations of <paramref name="tokens"/> ([batch, seq]) as [batch, seq, <see cref="Dim"/>].</summary>
    /// <exception cref="ModelDivergedException">The outputs contain NaN or Inf.</exception>
    float[] Forward(long[] tokens, int batch, int seq);

    /// <summary>
    /// Recomputes the forward pass with gradients, back-propagates <paramref name="grads"/> (d loss / d output,
    /// [batch, seq, <see cref="Dim"/>]) and takes one optimizer step.
    /// </summary>
    /// <exception cref="ModelDivergedException">The outputs or the weights after the step contain NaN or Inf.</exception>
    void Backward(long[] tokens, float[] grads, int batch, int seq);

    /// <summary>Writes the weights to <paramref name="path"/> atomically (a reader never sees half a file).</summary>
    void Save(string path);

    /// <summary>Loads weights written by <see cref="Save"/>; the sizes must match.</summary>
    void Load(string path);
}

/// <summary>The model produced NaN or Inf; its weights are not trusted any more.</summary>
public sealed class ModelDivergedException(string message) : Exception(message);

/// <summary>Optimizer used by a model's backward steps.</summary>
public enum ModelOptimizer
{
    /// <summary>torch.optim.Adam.</summary>
    Adam,

    /// <summary>torch.optim.SGD (no momentum).</summary>
    Sgd,
}

/// <summary>
/// A model whose trainable parameters can be read and written as one flat float vector (for parameter averaging
/// across the replicas of a clustered miner, docs/cluster.md). Like <see cref="ITextModel"/> it is called from the
/// model's own thread only (the model host's worker), between its forward and backward calls; the order of the
/// values is fixed for the model's life (the same order in every replica of one architecture).
/// </summary>
public interface IFlatParameters
{
    /// <summary>Number of parameters (fixed for the model's life).</summary>
    int ParameterCount { get; }

    /// <summary>A copy of every parameter, in the fixed order.</summary>
    float[] GetParameters();

    /// <summary>Sets every parameter from <paramref name="values"/> (exactly <see cref="ParameterCount"/> values, finite).</summary>
    /// <exception cref="ArgumentException">Wrong length or a value that is NaN or Inf; nothing is changed then.</exception>
    void SetParameters(ReadOnlySpan<float> values);
}
