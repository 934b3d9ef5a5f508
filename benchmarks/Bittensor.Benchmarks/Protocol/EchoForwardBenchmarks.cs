using BenchmarkDotNet.Attributes;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;

namespace Bittensor.Benchmarks.Protocol;

/// <summary>
/// The echo model's forward into the answer's wire buffer (DemoModels.EchoForwardInto, on the axon's read loop for every
/// call of the fan-out harness): [1, 16] tokens → float32 [1, 16, 1024] (64 KiB), the <c>Vector&lt;T&gt;</c> (256-bit)
/// pass against the 512-bit one (AVX-512 where native). Run: <c>dotnet Bittensor.Benchmarks.dll --filter '*EchoForward*'</c>;
/// results/axon.md "Session 21, h2-farmcall".
/// </summary>
[MemoryDiagnoser]
public class EchoForwardBenchmarks
{
    private readonly DenseTensor _tokens = DenseTensor.Int64([1, 16], [.. Enumerable.Range(1, 16).Select(t => (long)t)]);
    private readonly float[] _answer = new float[16 * 1024];

    /// <summary>The 256-bit pass (main before session 21).</summary>
    [Benchmark(Baseline = true)]
    public void Vector256Pass() => DemoModels.EchoForwardInto(_tokens, 1024, _answer, wide: false);

    /// <summary>The 512-bit pass (what the axon runs on a CPU with native 512-bit vectors).</summary>
    [Benchmark]
    public void Vector512Pass() => DemoModels.EchoForwardInto(_tokens, 1024, _answer, wide: true);
}
