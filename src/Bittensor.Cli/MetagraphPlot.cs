using Bittensor.Core.Domain;

namespace Bittensor.Cli;

/// <summary>
/// <c>btcli metagraph --plot FILE.png</c> and <c>btcli demo --plot FILE.png</c>: stake share, incentive, dividends and trust of every uid as grouped bars
/// (all four are shares in [0, 1]: stake is shown as the uid's share of the subnet's stake), written with ScottPlot 5
/// (SkiaSharp, no display needed). The file is written to a temporary name beside it and moved over it.
/// </summary>
internal static class MetagraphPlot
{
    private static readonly (string Name, ScottPlot.Color Color)[] Series =
    [
        ("stake share", ScottPlot.Colors.SteelBlue), ("incentive", ScottPlot.Colors.DarkOrange),
        ("dividends", ScottPlot.Colors.SeaGreen), ("trust", ScottPlot.Colors.Crimson),
    ];

    /// <summary>Draws <paramref name="snapshot"/> into the PNG <paramref name="path"/>.</summary>
    /// <exception cref="CliException">The file cannot be written (the message names <c>--plot</c> and the path).</exception>
    public static void Write(MetagraphSnapshot snapshot, string path, int width = 1200, int height = 600)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        Write($"Metagraph of subnet {snapshot.Netuid} on {snapshot.Network}, block {snapshot.Block}, n = {snapshot.N}",
            snapshot.Uids, snapshot.S, snapshot.I, snapshot.D, snapshot.T, path, width, height);
    }

    /// <summary>
    /// Draws one row per uid (stake in any unit, shown as a share of the total; incentive, dividends and trust in
    /// [0, 1]) into the PNG <paramref name="path"/>: the same picture for a chain's metagraph and the demo's last one.
    /// </summary>
    /// <exception cref="CliException">The file cannot be written (the message names <c>--plot</c> and the path).</exception>
    public static void Write(string title, IReadOnlyList<ushort> uids, IReadOnlyList<double> stake, IReadOnlyList<double> incentive,
        IReadOnlyList<double> dividends, IReadOnlyList<double> trust, string path, int width = 1200, int height = 600)
    {
        ArgumentNullException.ThrowIfNull(uids);
        var n = uids.Count;
        var stakeTotal = stake.Where(double.IsFinite).Sum();
        var values = new double[4][];
        values[0] = stake.Select(s => stakeTotal > 0 ? s / stakeTotal : 0).ToArray();
        values[1] = [.. incentive];
        values[2] = [.. dividends];
        values[3] = [.. trust];

        var plot = new ScottPlot.Plot();
        const double width4 = 0.8;
        var barWidth = width4 / Series.Length;
        for (var k = 0; k < Series.Length; k++)
        {
            var bars = new List<ScottPlot.Bar>(n);
            for (var i = 0; i < n; i++)
            {
                var v = double.IsFinite(values[k][i]) ? values[k][i] : 0;
                bars.Add(new ScottPlot.Bar
                {
                    Position = uids[i] - (width4 / 2) + (barWidth * (k + 0.5)),
                    Value = v,
                    Size = barWidth,
                    FillColor = Series[k].Color,
                    LineWidth = 0,
                });
            }
            var series = plot.Add.Bars(bars);
            series.LegendText = Series[k].Name;
        }
        plot.ShowLegend();
        plot.Title(title);
        plot.XLabel("uid");
        plot.YLabel("share (0..1)");
        plot.Axes.Margins(bottom: 0);
        if (n > 0 && n <= 64)
        {
            var ticks = uids.Select(u => new ScottPlot.Tick(u, u.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray();
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        }

        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp.png");
        try
        {
            plot.SavePng(tmp, width, height);
            // SkiaSharp reports some failures by writing nothing rather than by throwing.
            if (!File.Exists(tmp) || new FileInfo(tmp).Length == 0) throw new IOException("the picture could not be encoded");
            File.Move(tmp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--plot {full}: cannot write the picture: {e.Message}");
        }
        finally
        {
            try
            {
                if (File.Exists(tmp)) File.Delete(tmp);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the error above (or the written picture) is what matters
            }
        }
    }

    /// <summary>Refuses a <c>--plot</c> path before any work is done: its folder must exist and it must not name a folder.</summary>
    /// <exception cref="CliException">The folder is missing or the path is a folder.</exception>
    public static void CheckPath(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0 || !Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(path))))
            throw new CliException($"--plot {path}: the folder does not exist");
        if (Directory.Exists(path)) throw new CliException($"--plot {path}: is a folder, not a file name");
    }
}
