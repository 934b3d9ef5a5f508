using TorchSharp;
using static TorchSharp.torch;

namespace Bittensor.Models.Torch;

/// <summary>
/// Adam and plain SGD with every Scalar explicit (see <see cref="Explicit"/>): TorchSharp 0.107's own optimizers make
/// temporary Scalars in every step (<c>mul_(beta1)</c>, <c>add_(grad, alpha: 1 - beta1)</c>), which the GC may free while
/// libtorch still reads them. The arithmetic is PyTorch's (<c>torch.optim.Adam</c> with its defaults β = (0.9, 0.999),
/// ε = 1e-8, no weight decay, no AMSGrad; <c>torch.optim.SGD</c> without momentum); <c>StepOptimizerTests</c> checks
/// both against TorchSharp's step by step. <see cref="ZeroGrad"/> zero-fills gradients (parameters without one are
/// skipped by <see cref="Step"/>). Not thread-safe: one thread owns a model and its optimizer.
/// </summary>
public sealed class StepOptimizer : IDisposable
{
    private readonly Tensor[] _parameters;
    private readonly Tensor[]? _firstMoments;
    private readonly Tensor[]? _secondMoments;
    private readonly double _learningRate;
    private readonly double _beta1;
    private readonly double _beta2;
    private readonly Scalar _beta1Scalar;
    private readonly Scalar _oneMinusBeta1;
    private readonly Scalar _beta2Scalar;
    private readonly Scalar _oneMinusBeta2;
    private readonly Scalar _epsilon;
    private readonly Scalar _minusLearningRate;
    private long _steps;
    private bool _disposed;

    private StepOptimizer(IEnumerable<Tensor> parameters, double learningRate, bool adam, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(learningRate > 0) || !double.IsFinite(learningRate)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "must be positive");
        _parameters = [.. parameters];
        _learningRate = learningRate;
        _beta1 = beta1;
        _beta2 = beta2;
        _beta1Scalar = beta1.ToScalar();
        _oneMinusBeta1 = (1 - beta1).ToScalar();
        _beta2Scalar = beta2.ToScalar();
        _oneMinusBeta2 = (1 - beta2).ToScalar();
        _epsilon = epsilon.ToScalar();
        _minusLearningRate = (-learningRate).ToScalar();
        if (adam)
        {
            using var noGrad = no_grad();
            _firstMoments = [.. _parameters.Select(p => zeros_like(p).DetachFromDisposeScope())];
            _secondMoments = [.. _parameters.Select(p => zeros_like(p).DetachFromDisposeScope())];
        }
    }

    /// <summary>Adam over <paramref name="parameters"/> with learning rate <paramref name="learningRate"/> and PyTorch's defaults.</summary>
    public static StepOptimizer Adam(IEnumerable<Tensor> parameters, double learningRate) => new(parameters, learningRate, adam: true);

    /// <summary>Plain SGD (<c>p ← p − lr·g</c>) over <paramref name="parameters"/>.</summary>
    public static StepOptimizer Sgd(IEnumerable<Tensor> parameters, double learningRate) => new(parameters, learningRate, adam: false);

    /// <summary>Steps taken.</summary>
    public long Steps => _steps;

    /// <summary>Sets every parameter's gradient to zero (where it has one).</summary>
    public void ZeroGrad()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var p in _parameters)
        {
            if (p.grad is { } g) g.zero_();
        }
    }

    /// <summary>One update of every parameter that has a gradient.</summary>
    public void Step()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        _steps++;
        if (_firstMoments is null)
        {
            foreach (var p in _parameters)
            {
                if (p.grad is { } g) p.add_(g, _minusLearningRate);
            }
            GC.KeepAlive(this);
            return;
        }
        var biasCorrection1 = 1 - Math.Pow(_beta1, _steps);
        var biasCorrection2 = 1 - Math.Pow(_beta2, _steps);
        using var stepSize = (-_learningRate / biasCorrection1).ToScalar();
        using var correction2 = Math.Sqrt(biasCorrection2).ToScalar();
        for (var i = 0; i < _parameters.Length; i++)
        {
            var p = _parameters[i];
            if (p.grad is not { } g) continue;
            var m = _firstMoments[i];
            var v = _secondMoments![i];
            m.mul_(_beta1Scalar).add_(g, _oneMinusBeta1);
            v.mul_(_beta2Scalar).addcmul_(g, g, _oneMinusBeta2);
            var denominator = v.sqrt().div_(correction2).add_(_epsilon, Explicit.One);
            p.addcdiv_(m, denominator, stepSize);
        }
        GC.KeepAlive(this);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _firstMoments ?? []) t.Dispose();
        foreach (var t in _secondMoments ?? []) t.Dispose();
        _beta1Scalar.Dispose();
        _oneMinusBeta1.Dispose();
        _beta2Scalar.Dispose();
        _oneMinusBeta2.Dispose();
        _epsilon.Dispose();
        _minusLearningRate.Dispose();
    }
}
