using Bittensor.Models.Torch;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Bittensor.Models.Validation;

/// <summary>
/// Scores what each peer's representation says about the next token, on text the scorer has not seen yet, against a
/// baseline of the same capacity that sees no representation (docs/validator.md has the math).
/// <para>
/// Per peer it keeps a memory of the last <see cref="NucleusSettings.ScoreMemory"/> positions it answered: the
/// representation (standardised over its dimensions, projected to <see cref="NucleusSettings.ScoreDim"/> dimensions by
/// a fixed random matrix) and the token that followed. A position of a new batch is predicted by attention over that
/// memory — the tokens that followed similar representations (a kNN language model) — mixed with the trained baseline:
/// <c>p_τ(y) = (1 − λ)·p₀(y) + λ·Σ_m softmax_m(cos(q, k_m)/τ)·[y_m = y]</c>. With τ = ∞ the attention is uniform,
/// whatever the representation: that expert is the <b>baseline</b> (the memory's token frequencies mixed with p₀).
/// The peer's predictor is the Bayesian mixture of the experts τ ∈ {∞, 1, 0.3, 0.1, 0.03} (prior ½ on ∞), weighted by
/// how well each predicted the peer's earlier batches. The batch's gain is the mean log-likelihood ratio of the
/// mixture to the baseline, computed before the batch enters the memory or the posterior (held out).
/// </para>
/// Nothing here is trained by gradient: a peer cannot be paid for the scorer's overfitting, and the memory does not
/// move the validator's model. Not thread-safe (the nucleus's thread owns it).
/// </summary>
public sealed class PeerScorer : IDisposable
{
    /// <summary>Weight λ of the memory's prediction in every expert (the rest is the trained baseline p₀).</summary>
    public const double MemoryMix = 0.5;

    /// <summary>Prior probability of the baseline expert (τ = ∞); the rest is split evenly over <see cref="Temperatures"/>.</summary>
    public const double BaselinePrior = 0.5;

    /// <summary>Attention temperatures of the informed experts (cosine similarities are in [−1, 1]).</summary>
    public static IReadOnlyList<double> Temperatures { get; } = [1, 0.3, 0.1, 0.03];

    /// <summary>Per batch, each expert's accumulated log-likelihood decays towards its prior by this factor, so the posterior follows peers that change.</summary>
    public const double Forgetting = 0.98;

    private readonly NucleusSettings _settings;
    private readonly Tensor _projection;
    private readonly double[] _logPrior;
    private readonly Dictionary<ushort, Memory> _memories = [];

    /// <summary>A scorer for <paramref name="settings"/> (its seed fixes the projection).</summary>
    public PeerScorer(NucleusSettings settings)
    {
        _settings = settings;
        var generator = new TorchSharp.torch.Generator((ulong)settings.Seed + 0x5c0e);
        using (var scope = NewDisposeScope())
        using (var scale = Math.Sqrt(settings.ScoreDim).ToScalar())
            _projection = randn(settings.NetworkDim, settings.ScoreDim, generator: generator).div(scale).detach().DetachFromDisposeScope();
        generator.Dispose();
        _logPrior = [Math.Log(BaselinePrior), .. Temperatures.Select(_ => Math.Log((1 - BaselinePrior) / Temperatures.Count))];
    }

    /// <summary>Peers with a memory.</summary>
    public int Peers => _memories.Count;

    /// <summary>
    /// Posterior probability that the representations of <paramref name="uid"/> tell something about the next token: the
    /// mass of the informed experts (τ &lt; ∞) given its batches so far. The prior, <c>1 − BaselinePrior</c>, for a peer
    /// not seen yet or whose representations never varied (a constant, zeros: every expert predicts alike).
    /// </summary>
    public double Informative(ushort uid)
    {
        if (!_memories.TryGetValue(uid, out var memory)) return 1 - BaselinePrior;
        var top = memory.LogWeights.Max();
        var posterior = memory.LogWeights.Select(w => Math.Exp(w - top)).ToArray();
        return 1 - (posterior[0] / posterior.Sum());
    }

    /// <summary>
    /// The held-out gain of peer <paramref name="uid"/> on this batch (nats per predicted token), then remembers the
    /// batch. <paramref name="representation"/> is <c>[batch, seq, dim]</c> (accepted by <see cref="ReplySanitiser"/>),
    /// <paramref name="targets"/> the <c>batch·(seq−1)</c> next tokens, <paramref name="baselineProbability"/> p₀ of each
    /// target. 0 for a peer's first batch (nothing to compare yet).
    /// </summary>
    public double Score(ushort uid, Tensor representation, Tensor targets, Tensor baselineProbability, int batch, int seq)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var rows = batch * (seq - 1);
        var x = representation[.., ..(seq - 1), ..].reshape(rows, _settings.NetworkDim);
        // Standardised over its dimensions (a representation's scale and offset say nothing), then projected.
        // Every scalar operand is an explicit Scalar kept alive by its using: an implicit one can be finalised by the GC
        // while native code still reads it (seen as "Unknown scalar type" under load).
        using var epsilon = 1e-5.ToScalar();
        using var keep = (1 - MemoryMix).ToScalar();
        using var mix = MemoryMix.ToScalar();
        using var threshold = (Degenerate * Math.Sqrt(_settings.NetworkDim)).ToScalar();
        x = (x - x.mean([-1], keepdim: true)).div(sqrt(x.var(-1, unbiased: false, keepdim: true).add(epsilon, Explicit.One)));
        var keys = x.matmul(_projection);
        double gain = 0;
        if (_memories.TryGetValue(uid, out var memory))
        {
            // Centred on the memory's mean: what every position shares (a constant, a common direction) is not similarity.
            var mean = memory.Keys.mean([0], keepdim: true);
            var centred = keys - mean;
            var q = Unit(centred);
            var k = Unit(Flatten(memory.Keys - mean, threshold));
            // A position with no spread left after centring (a constant, zeros: only float rounding remains) says nothing:
            // its prediction is the baseline's, exactly (normalising the rounding would turn it into noise).
            var says = centred.norm(1, keepdim: false).gt(threshold);
            var similarity = q.matmul(k.t());
            var match = targets.unsqueeze(1).eq(memory.Next.unsqueeze(0)).to_type(ScalarType.Float32);
            var p0 = baselineProbability.to_type(ScalarType.Float32);
            var experts = new Tensor[1 + Temperatures.Count];
            experts[0] = p0.mul(keep).Plus(match.mean([1]).mul(mix));
            for (var e = 0; e < Temperatures.Count; e++)
            {
                using var temperature = Temperatures[e].ToScalar();
                experts[e + 1] = p0.mul(keep).Plus((functional.softmax(similarity.div(temperature), 1) * match).sum(1).mul(mix));
            }
            var top = memory.LogWeights.Max();
            var posterior = memory.LogWeights.Select(w => Math.Exp(w - top)).ToArray();
            var total = posterior.Sum();
            var mixture = zeros_like(experts[0]);
            for (var e = 0; e < experts.Length; e++)
            {
                using var weight = ((float)(posterior[e] / total)).ToScalar();
                mixture = mixture.Plus(experts[e].mul(weight));
            }
            gain = where(says, mixture.log() - experts[0].log(), zeros_like(mixture)).mean().item<float>();
            if (!double.IsFinite(gain)) gain = 0;
            for (var e = 1; e < experts.Length; e++) experts[e] = where(says, experts[e], experts[0]);
            for (var e = 0; e < experts.Length; e++)
            {
                var logLikelihood = experts[e].log().sum().item<float>();
                memory.LogWeights[e] = _logPrior[e] + (Forgetting * (memory.LogWeights[e] - _logPrior[e])) + (double.IsFinite(logLikelihood) ? logLikelihood : -1e6);
            }
            var keysAll = cat([memory.Keys, keys], 0);
            var nextAll = cat([memory.Next, targets], 0);
            var capacity = _settings.ScoreMemory;
            if (keysAll.shape[0] > capacity)
            {
                keysAll = keysAll[^capacity..];
                nextAll = nextAll[^capacity..];
            }
            memory.Replace(keysAll, nextAll);
        }
        else
        {
            memory = new Memory([.. _logPrior]);
            memory.Replace(keys, targets);
            _memories[uid] = memory;
        }
        return gain;
    }

    private static Tensor Unit(Tensor x) => functional.normalize(x, p: 2, dim: 1, eps: 1e-6);

    // Memory keys with no spread (see Degenerate) become zero vectors: similar to nothing, so attention over them is uniform.
    private static Tensor Flatten(Tensor centred, Scalar threshold) =>
        centred * centred.norm(1, keepdim: true).gt(threshold).to_type(ScalarType.Float32);

    /// <summary>
    /// A centred key shorter than this fraction of a typical one (√dim: representations are standardised) is float rounding
    /// of a representation that is the same everywhere, not information.
    /// </summary>
    public const double Degenerate = 1e-3;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var m in _memories.Values) m.Dispose();
        _memories.Clear();
        _projection.Dispose();
    }

    private sealed class Memory(double[] logWeights) : IDisposable
    {
        public double[] LogWeights { get; } = logWeights;

        private Tensor? _keys;
        private Tensor? _next;

        public Tensor Keys => _keys!;

        public Tensor Next => _next!;

        // Kept out of every dispose scope: the memory outlives the step that wrote it.
        public void Replace(Tensor keys, Tensor next)
        {
            var k = keys.detach().clone().DetachFromDisposeScope();
            var n = next.detach().clone().DetachFromDisposeScope();
            Dispose();
            _keys = k;
            _next = n;
        }

        public void Dispose()
        {
            _keys?.Dispose();
            _next?.Dispose();
            _keys = null;
            _next = null;
        }
    }
}
