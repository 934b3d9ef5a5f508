using System.Text;
using Bittensor.Cli.Commands;
using Bittensor.Neurons.Demo;
using Bittensor.Neurons.Pipelines;
using Spectre.Console;

namespace Bittensor.Cli.Tests;

/// <summary>
/// <c>btcli demo</c>'s live view at 160 columns (issue 13 D: the status line overwrote the right edge of the epoch
/// tables). The view's bytes are played on a small terminal model (auto-wrap at the last column, carriage return, erase
/// line), as a terminal would show them.
/// </summary>
public sealed class DemoLiveViewTests
{
    private const int Width = 160;

    /// <summary>What a terminal of <paramref name="width"/> columns shows, and how many times a line had to wrap.</summary>
    private static (List<string> Screen, int Wraps) Play(string output, int width)
    {
        var screen = new List<StringBuilder> { new() };
        var col = 0;
        var pendingWrap = false;
        var wraps = 0;
        for (var i = 0; i < output.Length; i++)
        {
            var c = output[i];
            if (c == '\u001b' && i + 1 < output.Length && output[i + 1] == '[')
            {
                var j = i + 2;
                while (j < output.Length && !char.IsAsciiLetter(output[j])) j++;
                if (j < output.Length && output[j] == 'K' && output[(i + 2)..j] == "2") screen[^1].Clear();
                i = j;
                continue;
            }
            switch (c)
            {
                case '\r':
                    col = 0;
                    pendingWrap = false;
                    continue;
                case '\n':
                    screen.Add(new StringBuilder());
                    col = 0;
                    pendingWrap = false;
                    continue;
            }
            if (pendingWrap)
            {
                // The terminal wraps: what follows lands on a new line, and a later \r + erase clears only that one.
                screen.Add(new StringBuilder());
                col = 0;
                pendingWrap = false;
                wraps++;
            }
            var line = screen[^1];
            while (line.Length < col) line.Append(' ');
            if (col < line.Length) line[col] = c;
            else line.Append(c);
            if (col == width - 1) pendingWrap = true;
            else col++;
        }
        return ([.. screen.Select(s => s.ToString().TrimEnd())], wraps);
    }

    private static IReadOnlyList<DemoNeuron> Neurons(int epoch) =>
    [
        new(0, "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", "validator", 1000 + epoch, 0.1, 1.0, 0.5, double.NaN),
        new(1, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", "server", 10, 0.45, 0, 0.25, 0.91 + (epoch * 0.01)),
        new(2, "5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy", "server", 10, 0.45, 0, 0.25, 0.88),
        new(3, "5HGjWAeFDfFCWPsjFQdVV2Msvz2XtMktvgocEZcCj68kUMaw", "bad_server", 10, 0.0, 0, 0, 0.01, Kind: "uniform"),
    ];

    // As long as the demo's status line gets: every counter and a weights message (≈ 230 columns before the fix cut it).
    private static DemoProgress Progress(ulong block) => new(block, 12, 1, 3, "running",
        new PipelineSnapshot(Batches: 1234, Queries: 50_000, Failures: 17, Backwards: 1000, Loss: 5.4321, BaselineLoss: 6.5432, QueriesPerSecond: 123.4,
            ForwardMs: 10, StepMs: 20, BackwardMs: 5, HeldOutLoss: 5.5, Refusals: new Dictionary<ushort, IReadOnlyDictionary<string, long>>(),
            Joined: new Dictionary<ushort, long>()),
        "set at block 40 on 4 peers, after the validator's first epoch with a permit, 3 servers answered");

    private static string Plain(Spectre.Console.Rendering.IRenderable r)
    {
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(text), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        console.Profile.Width = Width;
        console.Write(r);
        return text.ToString();
    }

    [Fact]
    public void At_160_columns_the_status_line_fits_and_every_table_line_survives_on_screen()
    {
        Assert.True(DemoCommands.StatusLine(Progress(41)).Length > Width, "the test's status line must be longer than the terminal");
        var output = new StringWriter();
        var view = new DemoLiveView(output, Width, ansi: true);
        view.MarkupLine("[bold]Bittensor demo[/]: 3 server(s), 1 useless server(s) (uniform), 1 validator");
        view.Status("starting");
        var expected = new List<string>();
        for (var epoch = 1; epoch <= 3; epoch++)
        {
            view.Status(DemoCommands.StatusLine(Progress((ulong)(40 + epoch))));
            var table = DemoCommands.MetagraphTable($"after epoch {epoch}/3", Neurons(epoch));
            view.Write(table);
            expected.AddRange(Plain(table).Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0));
            view.Status(DemoCommands.StatusLine(Progress((ulong)(50 + epoch))));
        }

        // Mid-run: the last line on screen is the status line, cut to fit.
        var (running, runningWraps) = Play(output.ToString(), Width);
        Assert.Equal(0, runningWraps);
        Assert.Contains(" block 53 | epoch 1/3", running[^1], StringComparison.Ordinal);
        Assert.EndsWith("…", running[^1], StringComparison.Ordinal);
        Assert.True(running[^1].Length <= Width - 1, $"status line of {running[^1].Length} columns");

        view.Finish();
        var final = DemoCommands.MetagraphTable("final", Neurons(4));
        view.Write(final);
        expected.AddRange(Plain(final).Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0));
        var (screen, wraps) = Play(output.ToString(), Width);
        Assert.Equal(0, wraps);
        Assert.All(screen, l => Assert.True(l.Length <= Width, $"a line of {l.Length} columns: {l}"));
        // Every line of every table is on screen as rendered, in order, with nothing written over it.
        var tableLines = screen.Where(l => expected.Contains(l)).ToList();
        Assert.Equal(expected, tableLines);
        Assert.Contains(screen, l => l.Contains("5Grwva…utQY", StringComparison.Ordinal));
        Assert.DoesNotContain(screen, l => l.Contains("block 5", StringComparison.Ordinal)); // the status line is gone at the end
    }

    [Fact]
    public void Without_ansi_the_view_writes_tables_only_and_no_escape_code()
    {
        var output = new StringWriter();
        var view = new DemoLiveView(output, Width, ansi: false);
        view.MarkupLine("[bold]Bittensor demo[/]: plain");
        view.Status(DemoCommands.StatusLine(Progress(41)));
        view.Write(DemoCommands.MetagraphTable("after epoch 1/3", Neurons(1)));
        view.Status(DemoCommands.StatusLine(Progress(42)));
        view.Finish();
        var text = output.ToString();
        Assert.DoesNotContain('\u001b', text);
        Assert.DoesNotContain('\r', text.Replace("\r\n", "\n", StringComparison.Ordinal));
        Assert.DoesNotContain("block 41", text, StringComparison.Ordinal);
        Assert.Contains("after epoch 1/3", text, StringComparison.Ordinal);
        Assert.All(text.Split('\n'), l => Assert.True(l.TrimEnd('\r').Length <= Width, $"a line of {l.Length} columns"));
    }

    [Theory]
    [InlineData("short", 10, "short")]
    [InlineData("exactly10!", 10, "exactly10!")]
    [InlineData("eleven chars", 10, "eleven ch…")]
    [InlineData("block ≥ τ 日本語", 10, "block ≥ τ…")]
    [InlineData("日本語日本語", 5, "日本…")]
    public void Fit_cuts_by_terminal_columns_and_marks_the_cut(string text, int columns, string expected) =>
        Assert.Equal(expected, DemoLiveView.Fit(text, columns));
}
