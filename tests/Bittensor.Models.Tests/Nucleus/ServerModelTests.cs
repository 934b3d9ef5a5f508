using Bittensor.Models.Nucleus;
using static TorchSharp.torch;

namespace Bittensor.Models.Tests.Nucleus;

/// <summary>Sizes small enough for fast tests; dropout off so steps are deterministic.</summary>
internal static class TestModels
{
    public static readonly ServerModelOptions Small = new()
    {
        VocabSize = 512, DModel = 32, Layers = 1, Heads = 2, FeedForward = 64, MaxSequence = 16, Dropout = 0, Threads = 1,
    };
}

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ServerModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("model-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Token_ids_map_to_network_width_representations()
    {
        using var scope = NewDisposeScope();
        using var model = new ServerModel(TestModels.Small);
        var output = model.forward(randint(0, 512, [3, 7], dtype: ScalarType.Int64));

        Assert.Equal([3L, 7L, 1024L], output.shape);
        Assert.Equal(ScalarType.Float32, output.dtype);
        Assert.True(isfinite(output).all().item<bool>());
    }

    [Fact]
    public void A_position_never_sees_later_tokens()
    {
        using var scope = NewDisposeScope();
        using var model = new ServerModel(TestModels.Small);
        model.eval();
        var tokens = randint(0, 512, [1, 6], dtype: ScalarType.Int64);
        var changed = tokens.clone();
        changed[0, 4] = tensor((tokens[0, 4].item<long>() + 1) % 512);

        var before = model.forward(tokens);
        var after = model.forward(changed);

        // Positions 0..3 come before the changed token and must not move; position 4 sees it and must.
        Assert.True(allclose(before[.., ..4], after[.., ..4]));
        Assert.False(allclose(before[.., 4], after[.., 4]));
    }

    [Fact]
    public void A_saved_checkpoint_loads_into_a_differently_seeded_model_and_gives_the_same_outputs()
    {
        using var scope = NewDisposeScope();
        using var original = new ServerModel(TestModels.Small with { Seed = 1 });
        using var other = new ServerModel(TestModels.Small with { Seed = 2 });
        original.eval();
        other.eval();
        var tokens = randint(0, 512, [2, 5], dtype: ScalarType.Int64);
        var path = Path.Combine(_dir, "sub", "model.ckpt");
        Assert.False(allclose(original.forward(tokens), other.forward(tokens)));

        original.SaveAtomically(path);
        other.LoadFrom(path);

        Assert.True(allclose(original.forward(tokens), other.forward(tokens)));
        Assert.Equal([path], Directory.GetFiles(Path.GetDirectoryName(path)!));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }
}
