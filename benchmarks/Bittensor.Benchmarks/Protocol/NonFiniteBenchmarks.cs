using BenchmarkDotNet.Attributes;
using Bittensor.Actors.Dendrite;

namespace Bittensor.Benchmarks.Protocol;

/// <summary>
/// The dendrite's check of every Success answer for NaN / ±Inf (Dendrite.CountNonFinite, on the transport's thread for
/// each answer of a fan-out round) over the fan-out harness's answer, float32 [1, 16, 1024] (64 KiB): the 256-bit
/// <c>Vector&lt;T&gt;</c> pass against the 512-bit one (AVX-512 where native), all values finite (the usual answer).
/// Run: <c>dotnet Bittensor.Benchmarks.dll --filter '*NonFinite*'</c>; results/axon.md "Session 20, h2-fanwork".
/// </summary>
[MemoryDiagnoser]
public class NonFiniteBenchmarks
{
    private float[] _answer = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _answer = new float[16 * 1024];
        for (var i = 0; i < _answer.Length; i++) _answer[i] = (float)((rng.NextDouble() * 2) - 1);
    }

    /// <summary>The 256-bit pass (main before session 20).</summary>
    [Benchmark(Baseline = true)]
    public int Vector256Pass() => Dendrite.CountNonFiniteVector(_answer);

    /// <summary>The 512-bit pass.</summary>
    [Benchmark]
    public int Vector512Pass() => Dendrite.CountNonFinite512(_answer);

    /// <summary>What the dendrite runs on this CPU.</summary>
    [Benchmark]
    public int Dispatched() => Dendrite.CountNonFinite(_answer);
}
