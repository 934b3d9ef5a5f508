using Bittensor.Actors.Axon;
using Bittensor.Actors.Cluster;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Neurons.Demo;

/// <summary>
/// A small trainable model for clustered miners and their tests: an embedding table of <c>vocab × networkDim</c>
/// floats. Forward: out[b, s, :] = table[token mod vocab]; backward: one SGD step table[token] −= lr · grads[b, s, :]
/// (and answers the echo backward). Its parameters (the table) are an <see cref="IReplicaParameters"/>, so cluster
/// workers hosting it take part in parameter averaging. Thread-safe: steps, snapshots and updates hold one lock.
/// </summary>
public sealed class TrainableDemoModel : IReplicaParameters
{
    private readonly object _gate = new();
    private readonly float[] _table;
    private readonly int _vocab;
    private readonly int _dim;
    private readonly float _learningRate;

    /// <summary>A table of <paramref name="vocab"/> rows of <paramref name="networkDim"/> floats, uniform in [−0.5, 0.5) from <paramref name="seed"/>.</summary>
    public TrainableDemoModel(int networkDim, int vocab = 64, float learningRate = 0.1f, int seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(networkDim, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocab, 1);
        if (!(learningRate > 0) || float.IsInfinity(learningRate)) throw new ArgumentOutOfRangeException(nameof(learningRate), "must be positive");
        _vocab = vocab;
        _dim = networkDim;
        _learningRate = learningRate;
        _table = new float[checked(vocab * networkDim)];
        var random = new System.Random(seed);
        for (var i = 0; i < _table.Length; i++) _table[i] = (float)(random.NextDouble() - 0.5);
        Handlers = new AxonHandlers((r, _) => Task.FromResult(Forward(r.Inputs)), (r, _) => Task.FromResult(Backward(r.Inputs, r.Grads))) { Inline = true };
    }

    /// <summary>The model as axon handlers (for a worker's model host).</summary>
    public AxonHandlers Handlers { get; }

    /// <inheritdoc />
    public int Count => _table.Length;

    /// <summary>Backward steps taken.</summary>
    public long Steps { get; private set; }

    /// <inheritdoc />
    public float[] Snapshot()
    {
        lock (_gate) return (float[])_table.Clone();
    }

    /// <inheritdoc />
    public void Update(ReplicaUpdate change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_gate) change(_table);
    }

    private ModelResponse Forward(DenseTensor inputs)
    {
        if (inputs.DataType != DataType.Int64 || inputs.Rank != 2)
            return new ModelResponse(null, ReturnCode.RequestShapeException, "the trainable demo model takes int64 tokens [batch, seq]");
        var tokens = inputs.Longs!;
        var output = new float[checked(tokens.Length * _dim)];
        lock (_gate)
        {
            for (var p = 0; p < tokens.Length; p++) _table.AsSpan(Row(tokens[p]), _dim).CopyTo(output.AsSpan(p * _dim, _dim));
        }
        return ModelResponse.Ok(DenseTensor.Float32([inputs.Shape[0], inputs.Shape[1], _dim], output));
    }

    private ModelResponse Backward(DenseTensor inputs, DenseTensor grads)
    {
        if (inputs.DataType != DataType.Int64 || inputs.Rank != 2 || grads.DataType != DataType.Float32 || grads.Rank != 3
            || grads.Shape[0] != inputs.Shape[0] || grads.Shape[1] != inputs.Shape[1] || grads.Shape[2] != _dim)
            return new ModelResponse(null, ReturnCode.RequestShapeException, $"the trainable demo model takes tokens [batch, seq] and grads [batch, seq, {_dim}]");
        var tokens = inputs.Longs!;
        var g = grads.Floats!;
        lock (_gate)
        {
            for (var p = 0; p < tokens.Length; p++)
            {
                var row = _table.AsSpan(Row(tokens[p]), _dim);
                for (var d = 0; d < _dim; d++) row[d] -= _learningRate * g[(p * _dim) + d];
            }
            Steps++;
        }
        return ModelResponse.Ok(DemoModels.EchoBackward(inputs, grads));
    }

    private int Row(long token) => (int)(((token % _vocab) + _vocab) % _vocab) * _dim;
}
