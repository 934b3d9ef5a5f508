using System.Buffers.Binary;
using System.CommandLine;
using Bittensor.Cli.Commands;
using Bittensor.Neurons.Demo;

namespace Bittensor.Cli.Tests;

/// <summary><c>btcli demo --plot FILE.png</c>: the final metagraph drawn as <c>btcli metagraph --plot</c> draws a chain's.</summary>
// Runs btcli verbs (and their actor systems) in this process: Akka's start-up/shutdown logger writes to Console.Error,
// which the console-capturing tests of this collection redirect process-wide, so they must not run beside them.
[Collection(Bittensor.Cli.Tests.Chain.ConsoleCollection.Name)]
public sealed class DemoPlotTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-demo-plot-").FullName;

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>A whole PNG: the signature, an IHDR of the given size first and an IEND chunk last.</summary>
    internal static bool IsPng(byte[] bytes, int width, int height) =>
        bytes.Length > 33
        && bytes.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A })
        && bytes.AsSpan(12, 4).SequenceEqual("IHDR"u8)
        && BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)) == width
        && BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)) == height
        && bytes.AsSpan(bytes.Length - 8, 4).SequenceEqual("IEND"u8);

    private static DemoResult Result() => new(
        [
            new DemoNeuron(0, "5F", "server", 10, 0.5, 0, 1, 0.9, Trust: 0.7),
            new DemoNeuron(1, "5G", "bad_server", 10, 0.0, 0, 0, 0.1, Kind: "nan", Trust: 0.0),
            new DemoNeuron(2, "5H", "validator", 1000, 0.5, 1.0, 2, double.NaN),
        ],
        [(0, 65535)], true, "ok", 1, 1, 1, 1, 60, 1);

    private static RootCommand Root()
    {
        var root = new RootCommand("test");
        CliApp.AddCommonOptions(root);
        DemoCommands.Register(root);
        return root;
    }

    [Fact]
    public void The_plot_is_a_png_that_replaces_an_existing_file_whole_and_leaves_no_temporary_file()
    {
        var path = Path.Combine(_dir, "demo.png");
        File.WriteAllText(path, "an older file");
        DemoCommands.WritePlot(Result(), DemoOptions.Default, path);
        Assert.True(IsPng(File.ReadAllBytes(path), 1200, 600));
        Assert.Equal(["demo.png"], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void A_plot_that_cannot_be_written_is_a_cli_error_naming_the_flag_and_keeps_no_temporary_file()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir, "taken.png")).FullName;
        var e = Assert.Throws<CliException>(() => DemoCommands.WritePlot(Result(), DemoOptions.Default, folder));
        Assert.StartsWith($"--plot {folder}: cannot write the picture", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Theory]
    [InlineData("missing/demo.png", "the folder does not exist")]
    [InlineData("taken.png", "is a folder")]
    public async Task An_unusable_plot_path_is_refused_before_the_demo_starts_with_one_line_and_exit_code_1(string relative, string why)
    {
        Directory.CreateDirectory(Path.Combine(_dir, "taken.png"));
        var error = new StringWriter();
        var output = new StringWriter();
        var code = await CliApp.RunAsync(Root(), ["demo", "--plot", Path.Combine(_dir, relative)], output, error);
        Assert.Equal(1, code);
        var line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: --plot ", line, StringComparison.Ordinal);
        Assert.Contains(why, line, StringComparison.Ordinal);
        Assert.Equal("", output.ToString());
    }
}
