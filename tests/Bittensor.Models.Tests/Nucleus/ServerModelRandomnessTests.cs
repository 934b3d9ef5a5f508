using Bittensor.Models.Nucleus;
using static TorchSharp.torch;

namespace Bittensor.Models.Tests.Nucleus;

/// <summary>
/// A server model's draws (initial weights, dropout masks in training) come from its own seed only: whatever else the
/// process draws from torch's global generator before or between its steps, and other models built and trained on
/// other threads meanwhile, change nothing. (Draws made outside <see cref="Bittensor.Models.Torch.GlobalGenerator.Gate"/> —
/// other test classes calling <c>randint</c> — would move its stream: this class runs alone. The project's own code
/// makes no such draw.)
/// </summary>
[Collection(Alone)]
public sealed class ServerModelRandomnessTests
{
    public const string Alone = "draws from torch's global generator, alone";

    private static readonly ServerModelOptions Small = TestModels.Small with { Seed = 11, Dropout = 0.3, NetworkDim = 24, LearningRate = 0.01 };

    [Fact]
    public void Initial_weights_depend_on_the_seed_and_not_on_the_global_generator()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(1);
        using var a = new ServerModel(Small);
        random.manual_seed(2);
        _ = randn(1000);
        using var b = new ServerModel(Small);
        using var c = new ServerModel(Small with { Seed = 12 });

        var pa = a.named_parameters().ToList();
        var pb = b.named_parameters().ToList();
        var pc = c.named_parameters().ToList();
        Assert.NotEmpty(pa);
        for (var i = 0; i < pa.Count; i++)
        {
            Assert.Equal(pa[i].name, pb[i].name);
            Assert.True(pa[i].parameter.eq(pb[i].parameter).all().item<bool>(), pa[i].name);
            Assert.True(isfinite(pa[i].parameter).all().item<bool>(), pa[i].name);
        }
        // Every drawn parameter (not the layer norms' ones and zeros, not the attention biases) differs with the seed.
        var drawn = pa.Select((p, i) => (p.name, i)).Where(p => !p.name.Contains("norm") && !p.name.EndsWith("in_proj_bias") && !p.name.EndsWith("out_proj.bias")).ToList();
        Assert.True(drawn.Count >= 8, string.Join(", ", pa.Select(p => p.name)));
        Assert.All(drawn, p => Assert.False(pa[p.i].parameter.eq(pc[p.i].parameter).all().item<bool>(), p.name));
    }

    [Fact]
    public void Initial_weights_follow_pytorch_scales()
    {
        using var scope = NewDisposeScope();
        using var model = new ServerModel(Small with { VocabSize = 4096, DModel = 64 });
        foreach (var (name, p) in model.named_parameters())
        {
            var max = p.abs().max().item<float>();
            if (name.EndsWith("in_proj_weight"))
                Assert.InRange(max, 0.5 * Math.Sqrt(6.0 / (p.shape[0] + p.shape[1])), Math.Sqrt(6.0 / (p.shape[0] + p.shape[1])));
            else if (name.EndsWith("_tokens.weight") || name.EndsWith("_positions.weight"))
                Assert.InRange(p.std().item<float>(), 0.8, 1.2); // embeddings: N(0, 1)
            else if (p.shape.Length == 2)
                Assert.InRange(max, 0.5 / Math.Sqrt(p.shape[1]), 1 / Math.Sqrt(p.shape[1]));
        }
    }

    [Fact]
    public void Training_steps_with_dropout_are_repeatable_while_other_threads_draw_from_the_global_generator()
    {
        var tokens = Enumerable.Range(0, 2 * 8).Select(i => (long)(i * 37 % 512)).ToArray();
        var grads = Enumerable.Range(0, 2 * 8 * 24).Select(i => (float)Math.Sin(i) * 0.1f).ToArray();
        float[] Train(bool noisyNeighbour)
        {
            using var model = new ServerTextModel(Small);
            using var stop = new CancellationTokenSource();
            // The neighbour is what shares a demo process: other server models being built and trained.
            var neighbour = Task.Run(() =>
            {
                for (var seed = 100; noisyNeighbour && !stop.IsCancellationRequested; seed++)
                {
                    using var other = new ServerTextModel(Small with { Seed = seed });
                    other.Backward(tokens, grads, 2, 8);
                }
            });
            for (var step = 0; step < 4; step++)
            {
                if (noisyNeighbour) random.manual_seed(step + 100);
                model.Backward(tokens, grads, 2, 8);
            }
            stop.Cancel();
            neighbour.Wait();
            return model.Forward(tokens, 2, 8);
        }

        var quiet = Train(noisyNeighbour: false);
        var noisy = Train(noisyNeighbour: true);

        Assert.Equal(quiet, noisy);
        // Dropout did act: the same steps with dropout off end elsewhere.
        using var plain = new ServerTextModel(Small with { Dropout = 0 });
        for (var step = 0; step < 4; step++) plain.Backward(tokens, grads, 2, 8);
        Assert.NotEqual(quiet, plain.Forward(tokens, 2, 8));
    }
}


[CollectionDefinition(ServerModelRandomnessTests.Alone, DisableParallelization = true)]
public sealed class GlobalGeneratorCollection;
