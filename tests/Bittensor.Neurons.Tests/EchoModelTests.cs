using Bittensor.Neurons.Demo;
using Bittensor.Protocol;

namespace Bittensor.Neurons.Tests;

/// <summary>The echo model's values (<see cref="DemoModels.EchoForwardInto(DenseTensor, int, Span{float})"/>) against its formula.</summary>
public sealed class EchoModelTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_echo_forward_is_its_formula_at_every_position_whichever_vector_pass_runs(bool wide)
    {
        // out[b, s, d] = token[b, s] · 1e-3 + d · 1e-6 (float32), for widths that are, and are not, whole 512-bit and
        // 256-bit vectors (the tails run scalar), tokens and float inputs (x[b, s, 0, ...] in place of the token).
        foreach (var dim in new[] { 1024, 1000, 33, 17, 16, 15, 8, 7, 1 })
        {
            var tokens = DenseTensor.Int64([2, 3], [1, 2, 3, 50_000, 7, 123_456]);
            var floats = DenseTensor.Float32([2, 3, 2], [0.5f, 9f, -1.25f, 9f, 3e4f, 9f, 0f, 9f, 1e-3f, 9f, -7f, 9f]);
            foreach (var (inputs, first) in new[] { (tokens, (Func<int, double>)(i => tokens.Longs![i])), (floats, i => floats.Floats![i * 2]) })
            {
                var data = new float[6 * dim];
                data.AsSpan().Fill(float.NaN);
                DemoModels.EchoForwardInto(inputs, dim, data, wide);
                for (var i = 0; i < 6; i++)
                    for (var d = 0; d < dim; d++)
                        Assert.True((float)((first(i) * 1e-3) + (d * 1e-6)) == data[(i * dim) + d], $"dim {dim}, position {i}, d {d}: {data[(i * dim) + d]}");
            }
        }
    }
}
