using Bittensor.Models.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Bittensor.Models.Nucleus;

/// <summary>
/// The server's nucleus: token ids [batch, seq] (int64) → token embedding + learned positions → N transformer
/// causal encoder layers (post-norm, ReLU, as torch.nn.TransformerEncoderLayer with a square subsequent mask) → Linear to the network width,
/// giving [batch, seq, network_dim] float32 representations. Sizes come from <see cref="ServerModelOptions"/>.
/// benchmarks/python/model_forward.py builds the same architecture in PyTorch.
/// </summary>
public sealed class ServerModel : Module<Tensor, Tensor>
{
    private readonly Embedding _tokens;
    private readonly Embedding _positions;
    private readonly TransformerEncoder _encoder;
    private readonly Linear _mapping;
    private readonly int _maxSequence;

    /// <summary>Builds a freshly initialised model (deterministic for a given <see cref="ServerModelOptions.Seed"/>).</summary>
    public ServerModel(ServerModelOptions settings) : base(nameof(ServerModel))
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        _maxSequence = settings.MaxSequence;
        // The constructors draw from torch's global generator: under its gate, so they never move a neighbour's stream.
        lock (GlobalGenerator.Gate)
        {
            _tokens = Embedding(settings.VocabSize, settings.DModel);
            _positions = Embedding(settings.MaxSequence, settings.DModel);
            var layer = TransformerEncoderLayer(settings.DModel, settings.Heads, settings.FeedForward, settings.Dropout);
            _encoder = TransformerEncoder(layer, settings.Layers);
            _mapping = Linear(settings.DModel, settings.NetworkDim);
        }
        RegisterComponents();
        // The layers above drew their first values from torch's global generator, which every model in the process
        // shares (servers starting on other threads, the demo's other peers, tests in parallel): seeding it here would
        // not make this model repeatable, and would move everyone else's draws. Every parameter is drawn again from
        // this model's own generator, with PyTorch's initialisation rules for each kind of layer.
        using var generator = new torch.Generator((ulong)settings.Seed);
        Initialise(generator);
    }

    /// <summary>
    /// Draws every parameter from <paramref name="generator"/> as PyTorch initialises it: embeddings N(0, 1); linear
    /// weights and biases uniform in ±1/√fan_in (kaiming_uniform with a = √5); attention input projections
    /// xavier-uniform and attention biases zero; layer norms one and zero.
    /// </summary>
    private void Initialise(torch.Generator generator)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var parameters = named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var embeddings = named_modules().Where(m => m.module is Embedding).Select(m => m.name + ".weight").ToHashSet();
        foreach (var (name, parameter) in parameters)
        {
            var shape = parameter.shape;
            if (embeddings.Contains(name))
                parameter.copy_(randn(shape, generator: generator));
            else if (name.Contains("norm", StringComparison.Ordinal))
                parameter.copy_(name.EndsWith("weight", StringComparison.Ordinal) ? ones(shape) : zeros(shape));
            else if (name.EndsWith("in_proj_weight", StringComparison.Ordinal))
                parameter.copy_(Uniform(shape, Math.Sqrt(6.0 / (shape[0] + shape[1])), generator));
            else if (name.EndsWith("in_proj_bias", StringComparison.Ordinal) || name.EndsWith("out_proj.bias", StringComparison.Ordinal))
                parameter.copy_(zeros(shape));
            else if (shape.Length == 2)
                parameter.copy_(Uniform(shape, 1 / Math.Sqrt(shape[1]), generator));
            else if (shape.Length == 1 && name.EndsWith("bias", StringComparison.Ordinal)
                     && parameters.TryGetValue(name[..^"bias".Length] + "weight", out var weight) && weight.shape.Length == 2)
                parameter.copy_(Uniform(shape, 1 / Math.Sqrt(weight.shape[1]), generator));
            else
                throw new InvalidOperationException($"no initialisation rule for parameter {name} of shape [{string.Join(", ", shape)}]");
        }
    }

    private static Tensor Uniform(long[] shape, double bound, torch.Generator generator)
    {
        using var width = (2 * bound).ToScalar();
        using var low = (-bound).ToScalar();
        return rand(shape, generator: generator).mul_(width).add_(low, Explicit.One);
    }

    /// <summary>Representations of <paramref name="tokens"/> ([batch, seq] int64) as [batch, seq, network_dim].</summary>
    public override Tensor forward(Tensor tokens)
    {
        if (tokens.dim() != 2) throw new ArgumentException($"tokens must be [batch, seq], got {tokens.dim()} dimensions", nameof(tokens));
        var seq = tokens.shape[1];
        if (seq > _maxSequence) throw new ArgumentException($"sequence length {seq} exceeds max_sequence {_maxSequence}", nameof(tokens));
        using var scope = NewDisposeScope();
        using var length = seq.ToScalar();
        using var zero = 0L.ToScalar();
        using var step = 1L.ToScalar();
        var positions = arange(zero, length, step, dtype: ScalarType.Int64, device: tokens.device);
        var x = _tokens.call(tokens).Plus(_positions.call(positions).unsqueeze(0));
        // Causal mask: position t attends to tokens <= t only, as the 2021 template server's GPT-style nucleus did.
        // Without it a representation carries the next token, and a validator's next-token loss would pay for
        // leaking the answer rather than for knowledge.
        var mask = full(seq, seq, Explicit.NegativeInfinity, device: tokens.device).triu(1);
        // torch's encoder layers take [seq, batch, d] unless batch_first; keep the PyTorch default layout.
        var h = _encoder.call(x.transpose(0, 1), mask, null).transpose(0, 1);
        return _mapping.call(h).MoveToOuterDisposeScope();
    }

    /// <summary>Saves the weights to <paramref name="path"/> atomically (temp file in the same folder, then rename).</summary>
    public void SaveAtomically(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            save(temp);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Loads weights saved by <see cref="SaveAtomically"/>; the sizes must match.</summary>
    public void LoadFrom(string path) => load(path);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _tokens.Dispose();
            _positions.Dispose();
            _encoder.Dispose();
            _mapping.Dispose();
        }
        base.Dispose(disposing);
    }
}
