using BenchmarkDotNet.Running;
using Bittensor.Benchmarks.Axon;

namespace Bittensor.Benchmarks;

/// <summary>
/// Entry point: load harnesses by name (<c>axon-load</c>, <c>fanout</c>), otherwise every BenchmarkDotNet class in this
/// assembly, selectable with <c>--filter</c>.
/// </summary>
public static class Program
{
    /// <summary>Dispatches to a load harness or to BenchmarkDotNet's switcher.</summary>
    public static async Task<int> Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case "axon-load":
                return await AxonLoad.Run(args[1..]);
            case "fanout":
                return await FanOutLoad.Run(args[1..]);
            default:
                BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
                return 0;
        }
    }
}
