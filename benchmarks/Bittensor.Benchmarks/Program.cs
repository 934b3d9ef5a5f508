using BenchmarkDotNet.Running;

namespace Bittensor.Benchmarks;

/// <summary>Entry point: every benchmark class in this assembly, selectable with <c>--filter</c>.</summary>
public static class Program
{
    /// <summary>Runs BenchmarkDotNet's switcher over this assembly.</summary>
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
