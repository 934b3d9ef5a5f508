using Bittensor.Core.Domain;

namespace Bittensor.Cli;

/// <summary>
/// <c>btcli metagraph --plot FILE.png</c>: stake share, incentive, dividends and trust of every uid as grouped bars
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
    public static void Write(MetagraphSnapshot snapshot, string path, int width = 1200, int height = 600)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var n = snapshot.N;
        var stakeTotal = snapshot.S.Sum();
        var values = new double[4][];
        values[0] = snapshot.S.Select(s => stakeTotal > 0 ? s / stakeTotal : 0).ToArray();
        values[1] = [.. snapshot.I];
        values[2] = [.. snapshot.D];
        values[3] = [.. snapshot.T];

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
                    Position = snapshot.Uids[i] - (width4 / 2) + (barWidth * (k + 0.5)),
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
        plot.Title($"Metagraph of subnet {snapshot.Netuid} on {snapshot.Network}, block {snapshot.Block}, n = {n}");
        plot.XLabel("uid");
        plot.YLabel("share (0..1)");
        plot.Axes.Margins(bottom: 0);
        if (n > 0 && n <= 64)
        {
            var ticks = snapshot.Uids.Select(u => new ScottPlot.Tick(u, u.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray();
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        }

        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp.png");
        try
        {
            plot.SavePng(tmp, width, height);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
