using Bittensor.Models.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Bittensor.Models.Validation;

/// <summary>What one training step of the nucleus produced.</summary>
/// <param name="Loss">
/// Next-token cross-entropy of the decoder on the router-joined context, measured before the step (so on text it has
/// not trained on: a held-out loss).
/// </param>
/// <param name="BaselineLoss">
/// Held-out loss of the trained baseline p₀ (a learned hidden state into the decoder's output layer: the token
/// frequencies the head can express, with no peer), measured on this batch before it trains on it.
/// </param>
/// <param name="Grads">Per peer, d loss / d representation, float32 <c>[batch, seq, dim]</c>: what goes back to that peer.</param>
/// <param name="Gains">
/// Per peer, its held-out gain on this batch (<see cref="PeerScorer"/>): how much better, in nats per token, the next
/// token is predicted from its representation than from the same machinery fed no representation. 0 for a refused reply.
/// </param>
/// <param name="RouterWeights">Per peer, its softmax router weight in this step.</param>
/// <param name="Rejections">Per peer, why its reply was refused before it touched the model (null when accepted).</param>
public sealed record NucleusStep(double Loss, double BaselineLoss, float[][] Grads, double[] Gains, double[] RouterWeights, string?[] Rejections);

/// <summary>
/// The validator's local model (the 2021 template validator's nucleus): a router — one learnable logit per uid, softmax
/// over the peers queried — joins the peers' <c>[batch, seq, 1024]</c> representations into one context, and a small
/// decoder (Linear → GELU → Linear to the vocabulary) predicts token t+1 from the context at t; each peer gets the
/// gradient of that loss w.r.t. its representation. Scores come from a separate, gradient-free <see cref="PeerScorer"/>
/// (each peer's representation alone, held out, against a baseline of the same capacity), mixed with a trained baseline
/// p₀ that reads the decoder's output layer without training it (docs/validator.md has the math).
/// Every reply is checked first (<see cref="ReplySanitiser"/>): a non-finite, absurdly large or misshapen one is never
/// joined, scored or differentiated — it gains 0 and its reason is returned. A step whose loss or gradients are not
/// finite anyway is not applied, so the parameters stay finite whatever peers answer.
/// Not thread-safe: one pipeline stage owns it and calls <see cref="Train"/> from one thread at a time.
/// </summary>
public sealed class ValidatorNucleus : IDisposable
{
    private readonly NucleusSettings _settings;
    private readonly Parameter _router;
    private readonly Dense _in;
    private readonly Dense _out;
    private readonly Parameter _baseline;
    private readonly StepOptimizer _optimizer;
    private readonly StepOptimizer _routerOptimizer;
    private readonly StepOptimizer _baselineOptimizer;
    private readonly PeerScorer _scorer;
    private readonly double _joinEvidence;

    /// <summary>
    /// A fresh nucleus (deterministic for a given <see cref="NucleusSettings.Seed"/>). <paramref name="joinEvidence"/> is
    /// the posterior a peer needs to join the context (<see cref="JoinEvidence"/>; another value is for experiments and tests).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="joinEvidence"/> is not in [0.5, 1) (below the prior every peer would join at once).</exception>
    public ValidatorNucleus(NucleusSettings settings, double joinEvidence = JoinEvidence)
    {
        if (!(joinEvidence >= 1 - PeerScorer.BaselinePrior && joinEvidence < 1))
            throw new ArgumentOutOfRangeException(nameof(joinEvidence), joinEvidence, "the join evidence must be in [0.5, 1)");
        _joinEvidence = joinEvidence;
        _settings = settings.Validate();
        if (settings.Threads > 0) torch.set_num_threads(settings.Threads);
        _router = new Parameter(zeros(settings.RouterCapacity));
        // Drawn from the nucleus's own generator, never torch's global one: that one is shared by every model in the
        // process (servers starting on other threads, tests running in parallel), so seeding it would not make this
        // nucleus repeatable, and drawing from it would move everyone else's draws.
        using (var generator = new torch.Generator((ulong)settings.Seed))
        {
            _in = new Dense(settings.NetworkDim, settings.Hidden, generator);
            _out = new Dense(settings.Hidden, settings.VocabSize, generator);
        }
        // The baseline p₀: one learned pre-activation for every position, through the decoder's output layer (read-only):
        // the best the head can say about the next token with no input at all.
        _baseline = new Parameter(zeros(settings.Hidden));
        _optimizer = StepOptimizer.Adam([.. _in.Parameters, .. _out.Parameters], settings.LearningRate);
        // The router has its own, faster optimizer: it has one weight per peer and must separate them within a few epochs.
        _routerOptimizer = StepOptimizer.Adam([_router], settings.RouterLearningRate);
        _baselineOptimizer = StepOptimizer.Adam([_baseline], settings.LearningRate);
        _scorer = new PeerScorer(settings);
    }

    /// <summary>
    /// A linear layer whose weight and bias are drawn as PyTorch's <c>nn.Linear</c> draws them (uniform in ±1/√fan_in),
    /// but from a given generator.
    /// </summary>
    private sealed class Dense : IDisposable
    {
        public Dense(int inputs, int outputs, torch.Generator generator)
        {
            var bound = 1 / Math.Sqrt(inputs);
            Weight = Draw([outputs, inputs], bound, generator);
            Bias = Draw([outputs], bound, generator);
        }

        public Parameter Weight { get; }

        public Parameter Bias { get; }

        public IEnumerable<Tensor> Parameters => [Weight, Bias];

        public Tensor Call(Tensor x) => functional.linear(x, Weight, Bias);

        private static Parameter Draw(long[] shape, double bound, torch.Generator generator)
        {
            Tensor data;
            using (var scope = NewDisposeScope())
            using (var noGrad = no_grad())
            using (var width = (2 * bound).ToScalar())
            using (var low = (-bound).ToScalar())
                data = rand(shape, generator: generator).mul_(width).add_(low, Explicit.One).DetachFromDisposeScope();
            return new Parameter(data);
        }

        public void Dispose()
        {
            Weight.Dispose();
            Bias.Dispose();
        }
    }

    /// <summary>
    /// Posterior probability (<see cref="PeerScorer.Informative"/>) a peer's representations must reach before they join
    /// the decoder's context: 0.9999, i.e. its batches so far favour an informed expert over the baseline 9999 to 1.
    /// For noise the posterior odds are a likelihood ratio whose expectation under the baseline stays at the prior's
    /// (1 to 1), so by Ville's inequality they ever reach 9999 to 1 with probability at most 1/9999 in a whole run; the
    /// earlier 0.9 (9 to 1) let noise join by chance in up to one run of 9 (docs/validator.md). A useful peer earns the
    /// 9.2 nats within a few batches (its gain is several nats per batch).
    /// </summary>
    public const double JoinEvidence = 0.9999;

    /// <summary>Steps taken so far.</summary>
    public long Steps { get; private set; }

    /// <summary>Steps not applied because the loss or a gradient was not finite.</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>True when every parameter (decoder, router, baseline) is finite.</summary>
    public bool ParametersFinite()
    {
        using var scope = NewDisposeScope();
        IEnumerable<Tensor> all = [.. _in.Parameters, .. _out.Parameters, _router, _baseline];
        return all.All(p => isfinite(p).all().item<bool>());
    }

    /// <summary>
    /// One step on a batch: checks each of <paramref name="representations"/> (one per peer, row-major
    /// <c>[batch, seq, dim]</c>; pass zeros of any length for peers whose call failed together with a reason in
    /// <paramref name="refused"/>), scores the accepted ones (held out, <see cref="PeerScorer"/>), joins them, computes
    /// the next-token loss of <paramref name="tokens"/> for the joined context and the baseline, takes an optimizer step
    /// on their sum, and returns the gradient for each peer (zeros for a refused one).
    /// </summary>
    public NucleusStep Train(long[] tokens, int batch, int seq, IReadOnlyList<ushort> uids, IReadOnlyList<float[]> representations,
        IReadOnlyList<string?>? refused = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (uids.Count != representations.Count) throw new ArgumentException("one representation per uid");
        if (refused is not null && refused.Count != uids.Count) throw new ArgumentException("one refusal slot per uid");
        if (seq < 2) throw new ArgumentException("sequences need at least two tokens to predict a next one");
        if (tokens.Length != batch * seq) throw new ArgumentException($"{tokens.Length} tokens for a [{batch}, {seq}] batch");
        if (tokens.Any(t => t < 0 || t >= _settings.VocabSize)) throw new ArgumentException($"token ids must be in [0, {_settings.VocabSize})");
        var dim = _settings.NetworkDim;
        var k = uids.Count;
        var expected = batch * seq * dim;
        var rejections = new string?[k];
        for (var i = 0; i < k; i++)
            rejections[i] = refused?[i] ?? ReplySanitiser.Check(representations[i], expected, _settings.MaxMagnitude);
        var accepted = Enumerable.Range(0, k).Where(i => rejections[i] is null).ToArray();

        using var scope = NewDisposeScope();
        using var grad = torch.enable_grad();
        var ids = tensor(tokens, [batch, seq]);
        var targets = ids[.., 1..].reshape(-1);
        var reps = new Tensor?[k];
        foreach (var i in accepted) reps[i] = tensor(representations[i], [batch, seq, dim]).requires_grad_(true);

        // Scores are measured before the step, on this batch, which neither the baseline nor any memory has seen yet.
        var gains = new double[k];
        double baseline;
        using (torch.no_grad())
        {
            var logits = BaselineLogits(batch * (seq - 1));
            baseline = functional.cross_entropy(logits, targets).item<float>();
            var p0 = functional.log_softmax(logits, 1).gather(1, targets.unsqueeze(1)).squeeze(1).exp();
            foreach (var i in accepted) gains[i] = _scorer.Score(uids[i], reps[i]!.detach(), targets, p0, batch, seq);
        }

        _optimizer.ZeroGrad();
        _routerOptimizer.ZeroGrad();
        _baselineOptimizer.ZeroGrad();
        // Only peers whose representations have shown information join the context (the scorer's posterior, updated with
        // this batch): noise, constants and zeros never reach the decoder, so they cannot move its loss either way.
        var joining = accepted.Where(i => _scorer.Informative(uids[i]) >= _joinEvidence).ToArray();
        var index = tensor(joining.Select(i => (long)Math.Min(uids[i], _settings.RouterCapacity - 1)).ToArray());
        var weights = joining.Length == 0 ? zeros(0) : functional.softmax(_router.index_select(0, index), 0);
        Tensor joined = zeros(batch, seq, dim);
        for (var j = 0; j < joining.Length; j++) joined = joined.Plus(weights[j] * reps[joining[j]]!);
        var loss = Loss(joined, targets, batch, seq);
        var total = loss.Plus(functional.cross_entropy(BaselineLogits(batch * (seq - 1)), targets));
        total.backward();
        var grads = new float[k][];
        for (var i = 0; i < k; i++) grads[i] = reps[i]?.grad is { } g ? g.data<float>().ToArray() : new float[expected];
        var lossValue = loss.item<float>();
        if (double.IsFinite(total.item<float>()) && grads.All(g => Array.TrueForAll(g, float.IsFinite)) && GradientsFinite())
        {
            _optimizer.Step();
            _routerOptimizer.Step();
            _baselineOptimizer.Step();
            Steps++;
        }
        else
        {
            // Defence in depth: the sanitiser keeps hostile values out, but a step that is not finite is never applied.
            for (var i = 0; i < k; i++) Array.Clear(grads[i]);
            SkippedSteps++;
        }
        for (var i = 0; i < k; i++)
            if (!double.IsFinite(gains[i])) gains[i] = 0;

        var routerWeights = new double[k];
        using (torch.no_grad())
        {
            var w = joining.Length == 0 ? zeros(0) : functional.softmax(_router.index_select(0, index), 0);
            for (var j = 0; j < joining.Length; j++) routerWeights[joining[j]] = w[j].item<float>();
        }
        return new NucleusStep(lossValue, baseline, grads, gains, routerWeights, rejections);
    }

    private bool GradientsFinite()
    {
        IEnumerable<Tensor> all = [.. _in.Parameters, .. _out.Parameters, _router, _baseline];
        return all.All(p => p.grad is null || isfinite(p.grad).all().item<bool>());
    }

    private Tensor Loss(Tensor context, Tensor targets, int batch, int seq)
    {
        var hidden = functional.gelu(_in.Call(context[.., ..(seq - 1), ..].reshape(batch * (seq - 1), _settings.NetworkDim)));
        return functional.cross_entropy(_out.Call(hidden), targets);
    }

    // The baseline reads the decoder's output layer without training it: only the joined context trains that layer.
    private Tensor BaselineLogits(int rows) =>
        functional.linear(functional.gelu(_baseline).unsqueeze(0).expand(rows, _settings.Hidden), _out.Weight.detach(), _out.Bias.detach());

    /// <inheritdoc />
    public void Dispose()
    {
        _optimizer.Dispose();
        _routerOptimizer.Dispose();
        _baselineOptimizer.Dispose();
        _scorer.Dispose();
        _in.Dispose();
        _out.Dispose();
        _router.Dispose();
        _baseline.Dispose();
    }
}
