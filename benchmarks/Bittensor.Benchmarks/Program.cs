using BenchmarkDotNet.Running;
using Bittensor.Benchmarks.Chain;

namespace Bittensor.Benchmarks;

/// <summary>Entry point: every benchmark class in this assembly, selectable with <c>--filter</c>.</summary>
public static class Program
{
    /// <summary>
    /// Runs BenchmarkDotNet's switcher over this assembly; <c>epoch-cpu</c> instead prints the Yuma epoch
    /// CPU-time table (benchmarks/results/epoch.md).
    /// </summary>
    public static void Main(string[] args)
    {
        if (args is ["epoch-cpu"])
        {
            EpochBenchmarkInputs.RunCpuTime();
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
