using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bittensor.Neurons.Demo;
using Spectre.Console;

namespace Bittensor.Cli.Commands;

/// <summary><c>btcli demo</c>: a whole subnet (localnet, servers, a useless server, a validator) in one process.</summary>
internal static class DemoCommands
{
    /// <summary>Adds the <c>demo</c> verb.</summary>
    public static Command Register(RootCommand root)
    {
        // No flag has a default of its own: an absent flag leaves the key to --config FILE, then to bittensor.demo in
        // hocon/bittensor.conf (whose defaults the descriptions quote).
        var servers = new Option<int?>("--servers") { Description = "Useful servers (small transformers trained by the validator's gradients); default 3 (bittensor.demo.servers)" };
        var bad = new Option<int?>("--bad_servers") { Description = "Useless or hostile servers (default: one per --bad_kind given; bittensor.demo.bad_servers)" };
        var badKind = new Option<string?>("--bad_kind")
        {
            Description = $"What the bad servers answer, comma-separated, cycled over them: {string.Join("|", Adversaries.Kinds)}; default uniform (bittensor.demo.bad_kinds)",
        };
        var epochs = new Option<int?>("--epochs") { Description = "Epochs to run once the validator is up (the first grants its permit); default 3 (bittensor.demo.epochs)" };
        var blockTime = new Option<double?>("--block_time") { Description = "Seconds between blocks (at least; a block also waits for one validator batch); default 0.5 (bittensor.demo.block_time)" };
        var tempo = new Option<int?>("--tempo") { Description = "Blocks between epochs on the demo subnet; default 20 (bittensor.demo.tempo)" };
        var seed = new Option<int?>("--seed") { Description = "Seed for keys, models, corpus order and peer sampling; default 42 (bittensor.demo.seed)" };
        var clusterServer = new Option<int?>("--cluster_server")
        {
            Description = "With --processes: the useful server (1-based) run as a cluster of 1 front + 2 worker processes (btcli run server --cluster.role front|worker); 0 = none; default 1 (bittensor.demo.cluster_server)",
        };
        var killWorker = new Option<int?>("--kill_worker_at_epoch")
        {
            Description = "With --processes: after this many epochs, kill one worker of the cluster server with SIGKILL and restart it (the chain waits until it registered again and answered its first call); 0 = never; default 0 (bittensor.demo.kill_worker_at_epoch)",
        };
        var processes = new Option<bool>("--processes")
        {
            Description = "Run the network as separate processes on this machine: the localnet as a node (JSON-RPC), each server and the validator as btcli run processes (gRPC between them); this process orchestrates and stops them at the end",
        };
        var plot = new Option<string?>("--plot")
        {
            Description = "At the end, also draw the final metagraph (stake share, incentive, dividends, trust per uid) into this PNG file, as btcli metagraph --plot does",
        };
        var demo = new Command("demo", "Run a demo subnet: localnet, servers, a useless server and a validator (in this process, or as processes with --processes); show the market at work");
        foreach (var o in new Option[] { servers, bad, badKind, epochs, blockTime, tempo, seed, clusterServer, killWorker, processes, plot }) demo.Options.Add(o);
        var config = CliConfig.AddTo(demo);
        var metrics = MetricsExport.AddFlags(demo);
        var logging = CliLogging.AddFlags(demo);
        demo.SetAction(async (parse, cancellationToken) =>
        {
            // Checked here too, so a value that is not a duration never reaches HOCON as one.
            if (parse.GetValue(blockTime) is { } seconds && !(seconds >= 0 && seconds <= 60)) throw new CliException("--block_time must be between 0 and 60 seconds");
            // A picture that cannot be written is refused before minutes of demo, not after.
            var plotPath = parse.GetValue(plot);
            if (plotPath is not null) MetagraphPlot.CheckPath(plotPath);
            var hocon = CliConfig.Load(parse, config,
            [
                .. metrics(parse),
                .. logging(parse),
                ($"{DemoOptions.SectionPath}.servers", parse.GetValue(servers)),
                ($"{DemoOptions.SectionPath}.bad_servers", parse.GetValue(bad)),
                ($"{DemoOptions.SectionPath}.bad_kinds", parse.GetValue(badKind)),
                ($"{DemoOptions.SectionPath}.epochs", parse.GetValue(epochs)),
                ($"{DemoOptions.SectionPath}.block_time", parse.GetValue(blockTime) is { } t ? TimeSpan.FromSeconds(t) : null),
                ($"{DemoOptions.SectionPath}.tempo", parse.GetValue(tempo)),
                ($"{DemoOptions.SectionPath}.seed", parse.GetValue(seed)),
                ($"{DemoOptions.SectionPath}.cluster_server", parse.GetValue(clusterServer)),
                ($"{DemoOptions.SectionPath}.kill_worker_at_epoch", parse.GetValue(killWorker)),
            ], DemoOptions.OwnDefaults);
            DemoOptions options;
            try
            {
                options = DemoOptions.Create(hocon);
            }
            catch (Exception e) when (e is ArgumentException or Akka.Configuration.ConfigurationException)
            {
                throw new CliException(e.Message);
            }
            if (options.KillWorkerAtEpoch > 0 && !parse.GetValue(processes))
                throw new CliException("--kill_worker_at_epoch needs --processes (the in-process demo has no worker process to kill)");
            // Servers and the validator host TorchSharp models: a library that cannot load is one line now, not a restart loop.
            if (Bittensor.Models.TorchNative.Check() is { } why) throw new CliException(why);
            // Disposed last (declared first): the demo's actor system has stopped by then, so the last events are flushed.
            using var logs = CliLogging.Start(hocon);
            options = options with { LoggerFactory = logs.Factory };
            await using var export = await MetricsExport.StartAsync(hocon, cancellationToken);
            var json = parse.GetValue(CliApp.Json);
            var output = parse.InvocationConfiguration.Output;
            Func<Action<DemoProgress>?, Action<int, IReadOnlyList<DemoNeuron>>?, CancellationToken, Task<DemoResult>> run = (p, e, ct) => DemoNetwork.RunAsync(options, p, e, ct);
            var asCluster = "";
            if (parse.GetValue(processes))
            {
                var file = parse.GetValue(config);
                var asProcesses = new ProcessDemoOptions
                {
                    Btcli = BtcliCommand.Self(),
                    ConfigText = file is null ? null : await File.ReadAllTextAsync(file.FullName, cancellationToken),
                    // The live view owns the terminal; otherwise a line per child (name, pid, address) goes to stderr.
                    Log = json || Console.IsOutputRedirected ? parse.InvocationConfiguration.Error : null,
                };
                run = (p, e, ct) => ProcessNetwork.RunAsync(options, asProcesses, p, e, ct);
                asCluster = options.ClusterServer > 0
                    ? string.Create(CultureInfo.InvariantCulture, $" as processes, server{options.ClusterServer} as a cluster ({ProcessNetwork.ClusterShape})")
                    : " as processes";
            }
            DemoResult result;
            try
            {
                result = await RunAsync(options, run, json, output, asCluster, cancellationToken);
            }
            catch (Bittensor.Neurons.Roles.NeuronException e)
            {
                throw new CliException(e.Message);
            }
            if (plotPath is not null)
            {
                WritePlot(result, options, plotPath);
                // Standard output stays JSON with --json.
                (json ? parse.InvocationConfiguration.Error : output).WriteLine($"plot written to {Path.GetFullPath(plotPath)}");
            }
            return 0;
        });
        root.Subcommands.Add(demo);
        return demo;
    }

    /// <summary>The final metagraph of <paramref name="result"/> as <c>btcli metagraph --plot</c> draws a chain's.</summary>
    /// <exception cref="CliException">The file cannot be written.</exception>
    internal static void WritePlot(DemoResult result, DemoOptions options, string path)
    {
        var n = result.Neurons.OrderBy(x => x.Uid).ToArray();
        MetagraphPlot.Write(
            string.Create(CultureInfo.InvariantCulture, $"btcli demo: subnet {result.Netuid} after {options.Epochs} epochs, block {result.Blocks}, n = {n.Length}"),
            [.. n.Select(x => x.Uid)], [.. n.Select(x => x.Stake)], [.. n.Select(x => x.Incentive)], [.. n.Select(x => x.Dividends)],
            [.. n.Select(x => double.IsFinite(x.Trust) ? x.Trust : 0)], path);
    }

    private static async Task<DemoResult> RunAsync(DemoOptions options, Func<Action<DemoProgress>?, Action<int, IReadOnlyList<DemoNeuron>>?, CancellationToken, Task<DemoResult>> run,
        bool json, TextWriter output, string mode, CancellationToken cancellationToken)
    {
        var live = !json && !Console.IsOutputRedirected && ReferenceEquals(output, Console.Out);
        DemoResult result;
        DemoLiveView? view = null;
        if (live)
        {
            var console = view = DemoLiveView.ForConsole();
            console.MarkupLine($"[bold]Bittensor demo[/]: {options.Servers} server(s), {options.BadServers} useless server(s) ({Markup.Escape(string.Join(",", options.BadKinds))}), 1 validator{Markup.Escape(mode)}; tempo {options.Tempo} blocks, {options.Epochs} epochs, block time ≥ {options.BlockTime.TotalSeconds:F2} s, seed {options.Seed}");
            console.MarkupLine("[grey]Demo-only relaxations: no registration/serving/weights rate limits, one validator permit. Wallets are throwaway keys in a temporary folder (deleted at the end).[/]");
            console.Status("starting");
            try
            {
                result = await run(p => console.Status(StatusLine(p)), (e, table) => console.Write(MetagraphTable($"after epoch {e}/{options.Epochs}", table)),
                    cancellationToken);
            }
            finally
            {
                console.Finish();
            }
        }
        else
        {
            result = await run(null, (e, table) =>
            {
                if (json) return;
                output.WriteLine($"epoch {e}/{options.Epochs}");
                foreach (var n in table) output.WriteLine(Row(n));
            }, cancellationToken);
        }
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(ToJson(result), JsonOptions));
            return result;
        }
        view?.Write(MetagraphTable("final", result.Neurons));
        output.WriteLine(Summary(result));
        return result;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    internal static string StatusLine(DemoProgress p)
    {
        var pipe = p.Pipeline;
        var stats = pipe is null ? "" : string.Create(CultureInfo.InvariantCulture,
            $" | batches {pipe.Batches} | queries/s {pipe.QueriesPerSecond:F1} | loss {pipe.Loss:F3} (no peers {pipe.BaselineLoss:F3}) | failures {pipe.Failures}");
        var epochs = string.Create(CultureInfo.InvariantCulture, $"epoch {p.EpochsDone}/{p.Epochs}, next in {(p.BlocksUntilEpoch == ulong.MaxValue ? "-" : p.BlocksUntilEpoch.ToString(CultureInfo.InvariantCulture))} blocks");
        return string.Create(CultureInfo.InvariantCulture, $"block {p.Block} | {epochs} | {p.Phase}{stats}{(p.LastWeights is null ? "" : " | weights " + p.LastWeights)}");
    }

    internal static Table MetagraphTable(string title, IReadOnlyList<DemoNeuron> neurons)
    {
        var table = new Table().Title(Markup.Escape(title)).AddColumns("uid", "role", "hotkey", "stake τ", "score", "incentive", "dividends", "emission τ");
        foreach (var n in neurons)
        {
            var role = n.Role == "bad_server" ? $"[red]bad_server[/] {Markup.Escape(n.Kind ?? "")}" : n.Role == "validator" ? "[blue]validator[/]" : Markup.Escape(n.Role);
            if (n.Cluster is { } cluster) role += $" [green](cluster: {Markup.Escape(cluster)})[/]";
            table.AddRow(n.Uid.ToString(CultureInfo.InvariantCulture), role, Markup.Escape(Short(n.Hotkey)), F(n.Stake), double.IsNaN(n.Score) ? "-" : F(n.Score),
                F(n.Incentive), F(n.Dividends), F(n.Emission));
        }
        return table;
    }

    private static string Row(DemoNeuron n) => string.Create(CultureInfo.InvariantCulture,
        $"  uid {n.Uid,2} {n.Role,-10} {n.Kind ?? "",-11} {Short(n.Hotkey)} stake {n.Stake:F3} score {(double.IsNaN(n.Score) ? "-" : n.Score.ToString("F4", CultureInfo.InvariantCulture))} incentive {n.Incentive:F4} dividends {n.Dividends:F4} emission {n.Emission:F4}{Refused(n)}{(n.Cluster is null ? "" : $" (cluster: {n.Cluster})")}");

    private static string Refused(DemoNeuron n) => n.Refusals is { Count: > 0 } r
        ? " refused " + string.Join(", ", r.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key}×{p.Value}")))
        : "";

    internal static string Summary(DemoResult r)
    {
        var lines = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture, $"summary: {r.Blocks} blocks on subnet {r.Netuid}, {r.Batches} validator batches, {r.Queries} queries ({r.QueriesPerSecond:F1}/s), wall time {r.WallTimeSeconds:F1} s, validator held-out loss {r.HeldOutLoss:F4}"),
            "validator weights: " + string.Join(", ", r.ValidatorWeights.Select(w => string.Create(CultureInfo.InvariantCulture, $"uid {w.Uid} = {w.Weight / 65535.0:F4}"))),
        };
        foreach (var n in r.Neurons) lines.Add(Row(n));
        lines.Add((r.MarketWorked ? "market worked: " : "market did NOT work: ") + r.Verdict);
        return string.Join(Environment.NewLine, lines);
    }

    internal static object ToJson(DemoResult r) => new
    {
        neurons = r.Neurons.Select(n => new
        {
            uid = n.Uid, hotkey = n.Hotkey, role = n.Role, kind = n.Kind, incentive = n.Incentive, dividends = n.Dividends, emission = n.Emission, stake = n.Stake,
            score = double.IsFinite(n.Score) ? Math.Round(n.Score, 6) : (double?)null,
            refused = n.Refusals ?? new Dictionary<string, long>(),
            joined = n.Joined,
            cluster = n.Cluster,
        }).ToArray(),
        validator_weights = r.ValidatorWeights.Select(w => new { uid = w.Uid, weight = w.Weight, fraction = w.Weight / 65535.0 }).ToArray(),
        market_worked = r.MarketWorked,
        verdict = r.Verdict,
        incentive_by_epoch = (r.IncentiveHistory ?? []).Select(e => e.OrderBy(p => p.Key).ToDictionary(p => p.Key.ToString(CultureInfo.InvariantCulture), p => Math.Round(p.Value, 4))).ToArray(),
        validator_held_out_loss = double.IsFinite(r.HeldOutLoss) ? Math.Round(r.HeldOutLoss, 4) : (double?)null,
        netuid = r.Netuid,
        blocks = r.Blocks,
        batches = r.Batches,
        queries = r.Queries,
        wall_time_s = Math.Round(r.WallTimeSeconds, 2),
        queries_per_s = Math.Round(r.QueriesPerSecond, 2),
    };

    private static string Short(string ss58) => ss58.Length > 12 ? ss58[..6] + "…" + ss58[^4..] : ss58;

    private static string F(double x) => x.ToString("F4", CultureInfo.InvariantCulture);
}
