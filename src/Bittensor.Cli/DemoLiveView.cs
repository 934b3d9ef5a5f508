using Spectre.Console;
using Spectre.Console.Rendering;

namespace Bittensor.Cli;

/// <summary>
/// <c>btcli demo</c>'s live view on a terminal: tables scroll up as they come, and one status line stays at the bottom,
/// redrawn in place. Everything is laid out for the console's width: tables are rendered at that width and the status
/// line is cut to one column less (a line as wide as the terminal would wrap, and the next redraw would then clear
/// only its second half, leaving the first over the table above: the "status line eats the table's right edge" bug
/// on a 160-column terminal). Calls may come from any thread. Without ANSI support nothing is drawn in place: no status
/// line, no escape codes; tables only.
/// </summary>
internal sealed class DemoLiveView
{
    private static readonly string[] Frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

    private readonly TextWriter _out;
    private readonly IAnsiConsole _console;
    private readonly bool _ansi;
    private readonly Lock _gate = new();
    private string _status = "";
    private bool _statusShown;
    private int _frame;

    /// <summary>A view writing to <paramref name="output"/>, <paramref name="width"/> columns wide, with ANSI escapes or without.</summary>
    public DemoLiveView(TextWriter output, int width, bool ansi)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 20);
        _out = output;
        _ansi = ansi;
        Width = width;
        _console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = ansi ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = ansi ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        _console.Profile.Width = width;
    }

    /// <summary>The view on this process's terminal (its width and ANSI support as Spectre.Console detects them).</summary>
    public static DemoLiveView ForConsole() =>
        new(Console.Out, Math.Max(20, AnsiConsole.Profile.Width), AnsiConsole.Profile.Capabilities.Ansi);

    /// <summary>Columns the view lays everything out for.</summary>
    public int Width { get; }

    /// <summary>Replaces the status line (plain text; cut to <see cref="Width"/> − 1 columns).</summary>
    public void Status(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        lock (_gate)
        {
            _frame = (_frame + 1) % Frames.Length;
            _status = Fit(Frames[_frame] + " " + text, Width - 1);
            Clear();
            Draw();
        }
    }

    /// <summary>Writes <paramref name="renderable"/> (a table, markup) above the status line.</summary>
    public void Write(IRenderable renderable)
    {
        ArgumentNullException.ThrowIfNull(renderable);
        lock (_gate)
        {
            Clear();
            _console.Write(renderable);
            Draw();
        }
    }

    /// <summary>Writes one line of Spectre markup above the status line.</summary>
    public void MarkupLine(string markup) => Write(new Markup(markup + Environment.NewLine));

    /// <summary>Removes the status line (before the final table and summary).</summary>
    public void Finish()
    {
        lock (_gate)
        {
            Clear();
            _status = "";
        }
    }

    /// <summary><paramref name="text"/> cut to at most <paramref name="columns"/> terminal columns, ending in … when cut.</summary>
    internal static string Fit(string text, int columns)
    {
        if (columns <= 0) return "";
        var elements = new List<(string Text, int Cells)>();
        var e = System.Globalization.StringInfo.GetTextElementEnumerator(text);
        while (e.MoveNext())
        {
            var element = (string)e.Current;
            elements.Add((element, Columns(element)));
        }
        if (elements.Sum(x => x.Cells) <= columns) return text;
        var kept = new System.Text.StringBuilder();
        var used = 0;
        foreach (var (element, cells) in elements)
        {
            if (used + cells > columns - 1) break; // one column for the ellipsis
            kept.Append(element);
            used += cells;
        }
        return kept.Append('…').ToString();
    }

    // Terminal columns of one text element: 2 for East Asian wide and emoji ranges, 0 for combining marks and controls.
    private static int Columns(string element)
    {
        var width = 0;
        foreach (var rune in element.EnumerateRunes())
        {
            var v = rune.Value;
            var category = System.Text.Rune.GetUnicodeCategory(rune);
            if (category is System.Globalization.UnicodeCategory.NonSpacingMark or System.Globalization.UnicodeCategory.EnclosingMark
                or System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.Control) continue;
            var wide = v is >= 0x1100 and <= 0x115F or >= 0x2E80 and <= 0xA4CF or >= 0xAC00 and <= 0xD7A3 or >= 0xF900 and <= 0xFAFF
                or >= 0xFE30 and <= 0xFE4F or >= 0xFF00 and <= 0xFF60 or >= 0xFFE0 and <= 0xFFE6 or >= 0x1F300 and <= 0x1F64F
                or >= 0x1F900 and <= 0x1F9FF or >= 0x20000 and <= 0x3FFFD;
            width = Math.Max(width, wide ? 2 : 1);
        }
        return width;
    }

    private void Clear()
    {
        if (!_statusShown) return;
        _out.Write("\r\u001b[2K");
        _statusShown = false;
    }

    private void Draw()
    {
        if (!_ansi || _status.Length == 0) return;
        _out.Write(_status);
        _out.Flush();
        _statusShown = true;
    }
}
