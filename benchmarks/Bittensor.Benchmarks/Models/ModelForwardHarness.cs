using System.Diagnostics;
using System.Globalization;
using Bittensor.Neurons.Roles;
using Bittensor.Models.Nucleus;
using TorchSharp;
using static TorchSharp.torch;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Benchmarks.Models;

/// <summary>
/// `dotnet run -c Release --project benchmarks/Bittensor.Benchmarks -- model-forward [--batch B] [--seq N] [--iters K]`:
/// milliseconds per forward of the server model (default sizes from hocon/bittensor.conf) in TorchSharp, under
/// inference mode with 2 threads — the same measurement benchmarks/python/model_forward.py makes in PyTorch.
/// </summary>
internal static class ModelForwardHarness
{
    public static int Run(string[] args)
    {
        var batch = ModelBatchingHarness.Option(args, "--batch", 16);
        var seq = ModelBatchingHarness.Option(args, "--seq", 64);
        var iters = ModelBatchingHarness.Option(args, "--iters", 50);
        var settings = ModelSettings.Default.ToServerModelOptions();
        torch.set_num_threads(settings.Threads);
        using var model = new ServerModel(settings);
        model.eval();
        using var tokens = randint(0, 50257, [batch, seq], dtype: ScalarType.Int64);
        var times = new List<double>();
        using (torch.inference_mode())
        {
            for (var i = 0; i < iters + 5; i++)
            {
                using var scope = NewDisposeScope();
                var clock = Stopwatch.StartNew();
                var y = model.forward(tokens);
                _ = y.data<float>()[0];
                if (i >= 5) times.Add(clock.Elapsed.TotalMilliseconds);
            }
        }
        times.Sort();
        var median = times[times.Count / 2];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"torchsharp model-forward: batch {batch} seq {seq} d_model {settings.DModel} layers {settings.Layers} threads {torch.get_num_threads()}: median {median:F2} ms, mean {times.Average():F2} ms, {batch * 1000 / median:F1} samples/s"));
        return 0;
    }
}
