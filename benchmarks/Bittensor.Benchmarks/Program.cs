using BenchmarkDotNet.Running;
using Bittensor.Benchmarks.Axon;
using Bittensor.Benchmarks.Chain;
using Bittensor.Benchmarks.Models;

namespace Bittensor.Benchmarks;

/// <summary>
/// Entry point: harnesses by name (<c>axon-load</c>, <c>fanout</c>, <c>socket-floor</c>, <c>epoch-cpu</c>, <c>model-batching</c>,
/// <c>model-forward</c>, <c>node-load</c>, <c>metagraph-sync</c>), otherwise every BenchmarkDotNet class in this assembly, selectable with <c>--filter</c>.
/// </summary>
public static class Program
{
    /// <summary>
    /// Dispatches to a load harness (<c>axon-load</c>, <c>fanout</c>: benchmarks/results/axon.md), the Yuma epoch
    /// CPU-time table (<c>epoch-cpu</c>: benchmarks/results/epoch.md), the model harnesses (<c>model-batching</c>,
    /// <c>model-forward</c>: benchmarks/results/models.md), or BenchmarkDotNet's switcher.
    /// </summary>
    public static async Task<int> Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case "axon-load":
                return await AxonLoad.Run(args[1..]);
            case "axon-load-raw":
                return await AxonLoadRaw.Run(args[1..]);
            case "first-calls":
                return await Axon.FirstCalls.Run(args[1..]);
            case "floor-server":
                return Axon.FloorServer.Run(args[1..]);
            case "axon-farm":
                return await Axon.AxonFarm.Run(args[1..]);
            case "axon-flood":
                return await AxonFlood.Run(args[1..]);
            case "fanout":
                return await FanOutLoad.Run(args[1..]);
            case "socket-floor":
                return await Axon.SocketFloor.Run(args[1..]);
            case "epoch-cpu" when args.Length == 1:
                EpochBenchmarkInputs.RunCpuTime();
                return 0;
            case "model-batching":
                return await ModelBatchingHarness.RunAsync(args[1..]);
            case "alloc-stacks":
                return AllocStacks.Run(args[1..]);
            case "verify-cpu":
                return Crypto.VerifyCpuHarness.Run(args[1..]);
            case "verify-layout":
                return Crypto.VerifyCpuHarness.Layout(args[1..]);
            case "verify-cold":
                return Crypto.VerifyCpuHarness.Cold(args[1..]);
            case "verify-loop":
                return Crypto.VerifyCpuHarness.Loop(args[1..]);
            case "model-forward":
                return ModelForwardHarness.Run(args[1..]);
            case "node-load":
                return await NodeLoad.Run(args[1..]);
            case "metagraph-sync":
                return await MetagraphSync.Run(args[1..]);
            case "metagraph-sync-client":
                return await MetagraphSync.Client(args[1..]);
            default:
                BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
                return 0;
        }
    }
}
