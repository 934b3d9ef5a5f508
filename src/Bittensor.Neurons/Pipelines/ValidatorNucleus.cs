using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Bittensor.Neurons.Pipelines;

/// <summary>What one training step of the nucleus produced.</summary>
/// <param name="Loss">Next-token cross-entropy with every peer's representation joined.</param>
/// <param name="BaselineLoss">The same loss with no peer at all (the head on a zero context).</param>
/// <param name="Grads">Per peer, d loss / d representation, float32 <c>[batch, seq, dim]</c>: what goes back to that peer.</param>
/// <param name="Contributions">Per peer, loss without that peer (router renormalised) minus <paramref name="Loss"/>.</param>
/// <param name="RouterWeights">Per peer, its softmax router weight in this step.</param>
public sealed record NucleusStep(double Loss, double BaselineLoss, float[][] Grads, double[] Contributions, double[] RouterWeights);

/// <summary>
/// The validator's local model (the 2021 template validator's nucleus): a router — one learnable logit per uid,
/// softmax over the peers queried — joins the peers' <c>[batch, seq, 1024]</c> representations into one context, and a
/// small decoder head (Linear → GELU → Linear to the vocabulary) predicts token t+1 from the context at t.
/// Not thread-safe: one pipeline stage owns it and calls <see cref="Train"/> from one thread at a time.
/// </summary>
internal sealed class ValidatorNucleus : IDisposable
{
    private readonly NucleusSettings _settings;
    private readonly Parameter _router;
    private readonly Sequential _head;
    private readonly optim.Optimizer _optimizer;
    private readonly optim.Optimizer _routerOptimizer;

    public ValidatorNucleus(NucleusSettings settings)
    {
        _settings = settings.Validate();
        if (settings.Threads > 0) torch.set_num_threads(settings.Threads);
        torch.manual_seed(settings.Seed);
        _router = new Parameter(zeros(settings.RouterCapacity));
        _head = Sequential(
            ("in", Linear(settings.NetworkDim, settings.Hidden)),
            ("act", GELU()),
            ("out", Linear(settings.Hidden, settings.VocabSize)));
        _optimizer = optim.Adam(_head.parameters(), settings.LearningRate);
        // The router has its own, faster optimizer: it has one weight per peer and must separate them within a few epochs.
        _routerOptimizer = optim.Adam([_router], settings.RouterLearningRate);
    }

    /// <summary>Steps taken so far.</summary>
    public long Steps { get; private set; }

    /// <summary>
    /// One step on a batch: joins <paramref name="representations"/> (one per peer, row-major <c>[batch, seq, dim]</c>,
    /// zeros for peers that failed), computes the next-token loss of <paramref name="tokens"/>, takes an optimizer step,
    /// and measures each peer's contribution with the gradients that go back to it.
    /// </summary>
    public NucleusStep Train(long[] tokens, int batch, int seq, IReadOnlyList<ushort> uids, IReadOnlyList<float[]> representations)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (uids.Count != representations.Count) throw new ArgumentException("one representation per uid");
        if (seq < 2) throw new ArgumentException("sequences need at least two tokens to predict a next one");
        var dim = _settings.NetworkDim;
        var k = uids.Count;
        using var scope = NewDisposeScope();
        using var grad = torch.enable_grad();
        _head.train();
        _optimizer.zero_grad();
        _routerOptimizer.zero_grad();
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
        var weights = k == 0 ? zeros(0) : functional.softmax(_router.index_select(0, index), 0);
        var joined = zeros(batch, seq, dim);
        for (var i = 0; i < k; i++) joined = joined + (weights[i] * reps[i]);
        var loss = Loss(joined, targets, batch, seq);
        loss.backward();
        var grads = new float[k][];
        for (var i = 0; i < k; i++) grads[i] = reps[i].grad is { } g ? g.data<float>().ToArray() : new float[batch * seq * dim];
        _optimizer.step();
        _routerOptimizer.step();
        Steps++;

        // Scoring happens after the step, without gradients, on the same batch: a peer's contribution is how much the
        // loss rises when its representation is left out and the router renormalises over the others.
        var contributions = new double[k];
        var routerWeights = new double[k];
        double baseline;
        using (torch.no_grad())
        {
            _head.eval();
            var w = k == 0 ? zeros(0) : functional.softmax(_router.index_select(0, index), 0);
            var full = zeros(batch, seq, dim);
            for (var i = 0; i < k; i++) full = full + (w[i] * reps[i]);
            var fullLoss = Loss(full, targets, batch, seq).item<float>();
            baseline = Loss(zeros(batch, seq, dim), targets, batch, seq).item<float>();
            for (var i = 0; i < k; i++)
            {
                var wi = w[i].item<float>();
                routerWeights[i] = wi;
                if (k == 1)
                {
                    contributions[i] = baseline - fullLoss;
                    continue;
                }
                var without = (full - (w[i] * reps[i])) / Math.Max(1e-6, 1 - wi);
                contributions[i] = Loss(without, targets, batch, seq).item<float>() - fullLoss;
            }
        }
        return new NucleusStep(loss.item<float>(), baseline, grads, contributions, routerWeights);
    }

    private Tensor Loss(Tensor context, Tensor targets, int batch, int seq)
    {
        var logits = _head.call(context[.., ..(seq - 1), ..].reshape(batch * (seq - 1), _settings.NetworkDim));
        return functional.cross_entropy(logits, targets);
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        _routerOptimizer.Dispose();
        _head.Dispose();
        _router.Dispose();
    }
}
