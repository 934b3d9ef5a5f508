using BenchmarkDotNet.Running;
using Bittensor.Benchmarks.Chain;
using Bittensor.Benchmarks.Models;

namespace Bittensor.Benchmarks;

/// <summary>Entry point: named macro harnesses first, else every benchmark class in this assembly (<c>--filter</c>).</summary>
public static class Program
{
    /// <summary>
    /// Runs a named harness — <c>epoch-cpu</c> (Yuma epoch CPU-time table, benchmarks/results/epoch.md),
    /// <c>model-batching</c> and <c>model-forward</c> (benchmarks/results/models.md) — or BenchmarkDotNet's switcher.
    /// </summary>
    public static async Task<int> Main(string[] args)
    {
        if (args is ["epoch-cpu"])
        {
            EpochBenchmarkInputs.RunCpuTime();
            return 0;
        }
        if (args.Length > 0 && args[0] == "model-batching") return await ModelBatchingHarness.RunAsync(args[1..]);
        if (args.Length > 0 && args[0] == "model-forward") return ModelForwardHarness.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
