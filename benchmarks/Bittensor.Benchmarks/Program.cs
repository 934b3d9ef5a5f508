using BenchmarkDotNet.Running;
using Bittensor.Benchmarks.Chain;

if (args is ["epoch-cpu"])
{
    EpochBenchmarkInputs.RunCpuTime();
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(EpochBenchmarks).Assembly).Run(args);
