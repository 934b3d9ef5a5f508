using static TorchSharp.torch;

namespace Bittensor.Models.Tests.Build;

public sealed class TorchSharpLoadsTests
{
    [Fact]
    public void TorchSharp_loads_and_computes_on_this_machine()
    {
        using var scope = NewDisposeScope();
        var random = randn(4, 5);
        Assert.Equal([4L, 5L], random.shape);
        Assert.Equal(6f, ones(2, 3).sum().item<float>());
        Assert.Equal(14f, matmul(tensor(new float[] { 1, 2, 3 }), tensor(new float[] { 1, 2, 3 })).item<float>());
    }
}
