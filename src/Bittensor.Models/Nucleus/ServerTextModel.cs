using Bittensor.Core.Modeling;
using Bittensor.Models.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Bittensor.Models.Nucleus;

/// <summary>
/// <see cref="ServerModel"/> with its optimizer behind <see cref="ITextModel"/>, so the runtime's model host serves it
/// without TorchSharp. Every call runs synchronously on the caller's thread (TorchSharp's inference mode and dispose
/// scopes are per thread) and copies results out to arrays. NaN/Inf in outputs or weights throws
/// <see cref="ModelDivergedException"/>. Not thread-safe: the model host calls it from one thread at a time.
/// Its parameters read and write as one flat vector (<see cref="IFlatParameters"/>, in the order of
/// <c>parameters()</c>) for averaging across cluster replicas; the optimizer's state (Adam's moments) stays per replica.
/// </summary>
public sealed class ServerTextModel : ITextModel, IFlatParameters
{
    private readonly ServerModelOptions _options;
    private readonly ServerModel _model;
    private readonly StepOptimizer _optimizer;
    private readonly Device _device;

    // The dropout layers inside TorchSharp's encoder draw only from torch's global generator: training forwards run
    // with this model's own stream swapped in, so its steps are repeatable for a given seed whatever else the process runs.
    // (The CPU generator: on another device dropout draws from that device's generator, which this does not swap.)
    private Tensor _dropoutStream;

    /// <summary>Builds a freshly initialised model (deterministic for a given seed) on <see cref="ServerModelOptions.Device"/>.</summary>
    public ServerTextModel(ServerModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Validate();
        if (options.Threads > 0) torch.set_num_threads(options.Threads);
        _device = torch.device(options.Device);
        _model = new ServerModel(options);
        _dropoutStream = GlobalGenerator.StateOf(unchecked((ulong)options.Seed ^ 0x9E3779B97F4A7C15UL));
        _model.to(_device);
        _optimizer = options.Optimizer == ModelOptimizer.Adam
            ? StepOptimizer.Adam(_model.parameters(), options.LearningRate)
            : StepOptimizer.Sgd(_model.parameters(), options.LearningRate);
    }

    /// <inheritdoc />
    public int VocabSize => _options.VocabSize;

    /// <inheritdoc />
    public int MaxSequence => _options.MaxSequence;

    /// <inheritdoc />
    public int Dim => _options.NetworkDim;

    /// <inheritdoc />
    public float[] Forward(long[] tokens, int batch, int seq)
    {
        using (torch.inference_mode())
        using (var scope = NewDisposeScope())
        {
            _model.eval();
            var input = torch.tensor(tokens, [batch, seq], device: _device);
            var output = _model.forward(input);
            if (!torch.isfinite(output).all().item<bool>()) throw new ModelDivergedException("model outputs contain NaN or Inf");
            return output.cpu().data<float>().ToArray();
        }
    }

    /// <inheritdoc />
    public void Backward(long[] tokens, float[] grads, int batch, int seq)
    {
        using (torch.enable_grad())
        using (var scope = NewDisposeScope())
        {
            _model.train();
            _optimizer.ZeroGrad();
            var input = torch.tensor(tokens, [batch, seq], device: _device);
            var output = GlobalGenerator.Run(ref _dropoutStream, () => _model.forward(input));
            if (!torch.isfinite(output).all().item<bool>()) throw new ModelDivergedException("model outputs contain NaN or Inf");
            var g = torch.tensor(grads, [batch, seq, _options.NetworkDim], device: _device);
            output.backward([g]);
            _optimizer.Step();
            _optimizer.ZeroGrad();
            foreach (var p in _model.parameters())
                if (!torch.isfinite(p).all().item<bool>()) throw new ModelDivergedException("model weights contain NaN or Inf after a step");
        }
    }

    /// <inheritdoc />
    public int ParameterCount
    {
        get
        {
            long count = 0;
            foreach (var p in _model.parameters()) count += p.numel();
            return checked((int)count);
        }
    }

    /// <inheritdoc />
    public float[] GetParameters()
    {
        using (torch.no_grad())
        using (var scope = NewDisposeScope())
        {
            var values = new float[ParameterCount];
            var offset = 0;
            foreach (var p in _model.parameters())
            {
                var part = p.detach().cpu().data<float>().ToArray();
                part.CopyTo(values, offset);
                offset += part.Length;
            }
            return values;
        }
    }

    /// <inheritdoc />
    public void SetParameters(ReadOnlySpan<float> values)
    {
        var count = ParameterCount;
        if (values.Length != count) throw new ArgumentException($"{values.Length} parameter values for a model of {count}", nameof(values));
        foreach (var v in values)
            if (!float.IsFinite(v)) throw new ArgumentException("parameter values contain NaN or Inf", nameof(values));
        using (torch.no_grad())
        using (var scope = NewDisposeScope())
        {
            var offset = 0;
            foreach (var p in _model.parameters())
            {
                var n = checked((int)p.numel());
                p.copy_(torch.tensor(values.Slice(offset, n).ToArray(), p.shape, device: _device));
                offset += n;
            }
        }
    }

    /// <inheritdoc />
    public void Save(string path) => _model.SaveAtomically(path);

    /// <inheritdoc />
    public void Load(string path) => _model.LoadFrom(path);

    /// <inheritdoc />
    public void Dispose()
    {
        _optimizer.Dispose();
        _model.Dispose();
        _dropoutStream.Dispose();
    }
}
