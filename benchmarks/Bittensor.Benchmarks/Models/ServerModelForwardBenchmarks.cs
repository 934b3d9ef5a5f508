using BenchmarkDotNet.Attributes;
using Bittensor.Neurons.Roles;
using Bittensor.Models.Nucleus;
using TorchSharp;
using static TorchSharp.torch;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Benchmarks.Models;

/// <summary>One forward of the default server model (hocon/bittensor.conf sizes) under inference mode, 2 threads.</summary>
[ShortRunJob]
[MemoryDiagnoser]
public class ServerModelForwardBenchmarks
{
    private ServerModel _model = null!;
    private Tensor _tokens = null!;

    /// <summary>Rows per call.</summary>
    [Params(1, 16)]
    public int Batch { get; set; }

    /// <summary>Builds the model and a fixed [Batch, 64] token tensor.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var settings = ModelSettings.Default.ToServerModelOptions();
        torch.set_num_threads(settings.Threads);
        _model = new ServerModel(settings);
        _model.eval();
        _tokens = randint(0, 50257, [Batch, 64], dtype: ScalarType.Int64);
    }

    /// <summary>Forward and copy out to a float array, as the model actor does.</summary>
    [Benchmark]
    public float[] Forward()
    {
        using var mode = torch.inference_mode();
        using var scope = NewDisposeScope();
        return _model.forward(_tokens).data<float>().ToArray();
    }

    /// <summary>Frees the model.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _tokens.Dispose();
        _model.Dispose();
    }
}
