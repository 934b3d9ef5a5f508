using Bittensor.Models.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Bittensor.Models.Tests;

/// <summary>Our explicit-Scalar optimizers take the same steps as TorchSharp's (which make temporary Scalars).</summary>
public sealed class StepOptimizerTests
{
    [Theory]
    [InlineData(true, 0.01)]
    [InlineData(true, 0.3)]
    [InlineData(false, 0.05)]
    public void Steps_match_TorchSharps_optimizer_on_the_same_problem(bool adam, double learningRate)
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        var start = randn(5, 3);
        var target = randn(5, 3);
        var ours = new TorchSharp.Modules.Parameter(start.clone());
        var theirs = new TorchSharp.Modules.Parameter(start.clone());
        using var mine = adam ? StepOptimizer.Adam([ours], learningRate) : StepOptimizer.Sgd([ours], learningRate);
        using optim.Optimizer reference = adam ? optim.Adam([theirs], learningRate) : optim.SGD([theirs], learningRate);
        for (var step = 0; step < 25; step++)
        {
            mine.ZeroGrad();
            reference.zero_grad();
            // The same loss on both, with a gradient that changes sign and size from step to step.
            ours.sub(target).pow(2).sum().backward();
            theirs.sub(target).pow(2).sum().backward();
            mine.Step();
            reference.step();
            var difference = ours.detach().sub(theirs.detach()).abs().max().item<float>();
            Assert.True(difference < 1e-5, $"step {step}: parameters differ by {difference}");
        }
        Assert.Equal(25, mine.Steps);
        // And the problem moved: a step that did nothing would match a reference that did nothing.
        Assert.True(ours.detach().sub(start).abs().max().item<float>() > 0.01);
    }

    [Fact]
    public void A_parameter_used_only_in_some_steps_moves_as_with_TorchSharps_adam()
    {
        using var scope = NewDisposeScope();
        manual_seed(12);
        var a0 = randn(4);
        var b0 = randn(4);
        var a = new TorchSharp.Modules.Parameter(a0.clone());
        var b = new TorchSharp.Modules.Parameter(b0.clone());
        var ra = new TorchSharp.Modules.Parameter(a0.clone());
        var rb = new TorchSharp.Modules.Parameter(b0.clone());
        using var mine = StepOptimizer.Adam([a, b], 0.05);
        using optim.Optimizer reference = optim.Adam([ra, rb], 0.05);
        for (var step = 0; step < 12; step++)
        {
            mine.ZeroGrad();
            reference.zero_grad();
            // b joins the loss on even steps only (as the router's weights of peers that did not join a batch).
            (step % 2 == 0 ? a.pow(2).sum().add(b.pow(2).sum(), Explicit.One) : a.pow(2).sum()).backward();
            (step % 2 == 0 ? ra.pow(2).sum().add(rb.pow(2).sum(), Explicit.One) : ra.pow(2).sum()).backward();
            mine.Step();
            reference.step();
            Assert.True(b.detach().sub(rb.detach()).abs().max().item<float>() < 1e-5, $"step {step}: b {b.detach().data<float>()[0]} vs {rb.detach().data<float>()[0]}");
            Assert.True(a.detach().sub(ra.detach()).abs().max().item<float>() < 1e-5, $"step {step}: a differs");
        }
    }

    [Fact]
    public void A_parameter_without_a_gradient_is_left_alone()
    {
        using var scope = NewDisposeScope();
        var used = ones(3).requires_grad_(true);
        var unused = ones(3).requires_grad_(true);
        using var optimizer = StepOptimizer.Adam([used, unused], 0.1);
        used.sum().backward();
        optimizer.Step();
        Assert.True(used.detach().lt(1).all().item<bool>());
        Assert.True(unused.detach().eq(1).all().item<bool>());
    }

    [Fact]
    public void A_learning_rate_that_is_not_positive_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => StepOptimizer.Adam([ones(1).requires_grad_(true)], double.NaN));
}
