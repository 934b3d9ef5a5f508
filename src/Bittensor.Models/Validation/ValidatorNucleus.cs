using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Bittensor.Models.Validation;

/// <summary>What one training step of the nucleus produced.</summary>
/// <param name="Loss">Next-token cross-entropy of the decoder on the router-joined context.</param>
/// <param name="BaselineLoss">The decoder's loss on an empty (zero) context: what no peer at all gives.</param>
/// <param name="Grads">Per peer, d loss / d representation, float32 <c>[batch, seq, dim]</c>: what goes back to that peer.</param>
/// <param name="Gains">
/// Per peer, how much its representation alone lowers the next-token loss: loss of its probe on a zero input minus loss
/// of its probe on its representation, both measured on this batch before the step (so on text the probe has not seen).
/// </param>
/// <param name="RouterWeights">Per peer, its softmax router weight in this step.</param>
public sealed record NucleusStep(double Loss, double BaselineLoss, float[][] Grads, double[] Gains, double[] RouterWeights);

/// <summary>
/// The validator's local model (the 2021 template validator's nucleus): a router — one learnable logit per uid, softmax
/// over the peers queried — joins the peers' <c>[batch, seq, 1024]</c> representations into one context, and a small
/// decoder (Linear → GELU → Linear to the vocabulary) predicts token t+1 from the context at t. Each peer also has a
/// small probe (its own input layer into the shared output layer) trained on its representation alone; the probe's
/// loss measures what that peer's representation is worth by itself, whatever the other peers know.
/// Not thread-safe: one pipeline stage owns it and calls <see cref="Train"/> from one thread at a time.
/// </summary>
public sealed class ValidatorNucleus : IDisposable
{
    private readonly NucleusSettings _settings;
    private readonly Parameter _router;
    private readonly Linear _in;
    private readonly Linear _out;
    private readonly optim.Optimizer _optimizer;
    private readonly optim.Optimizer _routerOptimizer;
    private readonly Dictionary<ushort, (Linear Layer, optim.Optimizer Optimizer)> _probes = [];

    /// <summary>A fresh nucleus (deterministic for a given <see cref="NucleusSettings.Seed"/>).</summary>
    public ValidatorNucleus(NucleusSettings settings)
    {
        _settings = settings.Validate();
        if (settings.Threads > 0) torch.set_num_threads(settings.Threads);
        torch.manual_seed(settings.Seed);
        _router = new Parameter(zeros(settings.RouterCapacity));
        _in = Linear(settings.NetworkDim, settings.Hidden);
        _out = Linear(settings.Hidden, settings.VocabSize);
        _optimizer = optim.Adam(_in.parameters().Concat(_out.parameters()), settings.LearningRate);
        // The router has its own, faster optimizer: it has one weight per peer and must separate them within a few epochs.
        _routerOptimizer = optim.Adam([_router], settings.RouterLearningRate);
    }

    /// <summary>Steps taken so far.</summary>
    public long Steps { get; private set; }

    /// <summary>
    /// One step on a batch: joins <paramref name="representations"/> (one per peer, row-major <c>[batch, seq, dim]</c>,
    /// zeros for peers that failed), computes the next-token loss of <paramref name="tokens"/> for the joined context and
    /// for each peer's probe, takes an optimizer step on their sum, and returns the gradient for each peer.
    /// </summary>
    public NucleusStep Train(long[] tokens, int batch, int seq, IReadOnlyList<ushort> uids, IReadOnlyList<float[]> representations)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (uids.Count != representations.Count) throw new ArgumentException("one representation per uid");
        if (seq < 2) throw new ArgumentException("sequences need at least two tokens to predict a next one");
        if (tokens.Length != batch * seq) throw new ArgumentException($"{tokens.Length} tokens for a [{batch}, {seq}] batch");
        var dim = _settings.NetworkDim;
        var k = uids.Count;
        using var scope = NewDisposeScope();
        using var grad = torch.enable_grad();
        var ids = tensor(tokens, [batch, seq]);
        var targets = ids[.., 1..].reshape(-1);
        var index = tensor(uids.Select(u => (long)Math.Min(u, _settings.RouterCapacity - 1)).ToArray());
        var reps = new Tensor[k];
        for (var i = 0; i < k; i++)
        {
            if (representations[i].Length != batch * seq * dim)
                throw new ArgumentException($"representation {i} has {representations[i].Length} values, expected {batch * seq * dim}");
            reps[i] = tensor(representations[i], [batch, seq, dim]).requires_grad_(true);
        }
        var probes = uids.Select(Probe).ToArray();

        // Gains are measured before the step, on this batch, which no probe has trained on yet.
        var gains = new double[k];
        double baseline;
        var empty = zeros(batch, seq, dim);
        using (torch.no_grad())
        {
            baseline = Loss(_in, empty, targets, batch, seq).item<float>();
            for (var i = 0; i < k; i++)
                gains[i] = Loss(probes[i].Layer, empty, targets, batch, seq).item<float>() - Loss(probes[i].Layer, reps[i], targets, batch, seq).item<float>();
        }

        _optimizer.zero_grad();
        _routerOptimizer.zero_grad();
        foreach (var p in probes) p.Optimizer.zero_grad();
        var weights = k == 0 ? zeros(0) : functional.softmax(_router.index_select(0, index), 0);
        var joined = empty;
        for (var i = 0; i < k; i++) joined = joined + (weights[i] * reps[i]);
        var loss = Loss(_in, joined, targets, batch, seq);
        var total = loss;
        for (var i = 0; i < k; i++) total = total + Loss(probes[i].Layer, reps[i], targets, batch, seq);
        total.backward();
        var grads = new float[k][];
        for (var i = 0; i < k; i++) grads[i] = reps[i].grad is { } g ? g.data<float>().ToArray() : new float[batch * seq * dim];
        _optimizer.step();
        _routerOptimizer.step();
        foreach (var p in probes) p.Optimizer.step();
        Steps++;

        var routerWeights = new double[k];
        using (torch.no_grad())
        {
            var w = k == 0 ? zeros(0) : functional.softmax(_router.index_select(0, index), 0);
            for (var i = 0; i < k; i++) routerWeights[i] = w[i].item<float>();
        }
        return new NucleusStep(loss.item<float>(), baseline, grads, gains, routerWeights);
    }

    private (Linear Layer, optim.Optimizer Optimizer) Probe(ushort uid)
    {
        if (_probes.TryGetValue(uid, out var probe)) return probe;
        if (_probes.Count >= _settings.RouterCapacity) throw new InvalidOperationException($"more than {_settings.RouterCapacity} peers to probe");
        var layer = Linear(_settings.NetworkDim, _settings.Hidden);
        // Probes train only their own input layer: the shared output layer learns from the joined context alone.
        probe = (layer, optim.Adam(layer.parameters(), _settings.LearningRate));
        _probes[uid] = probe;
        return probe;
    }

    private Tensor Loss(Linear input, Tensor context, Tensor targets, int batch, int seq)
    {
        var hidden = functional.gelu(input.call(context[.., ..(seq - 1), ..].reshape(batch * (seq - 1), _settings.NetworkDim)));
        return functional.cross_entropy(_out.call(hidden), targets);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _optimizer.Dispose();
        _routerOptimizer.Dispose();
        foreach (var (layer, optimizer) in _probes.Values)
        {
            optimizer.Dispose();
            layer.Dispose();
        }
        _in.Dispose();
        _out.Dispose();
        _router.Dispose();
    }
}
