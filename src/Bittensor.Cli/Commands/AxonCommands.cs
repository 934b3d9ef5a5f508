using System.CommandLine;
using System.Globalization;
using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Wallet;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Bittensor.Wallet;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;

namespace Bittensor.Cli.Commands;

/// <summary><c>btcli axon serve</c> and <c>btcli query</c>: serve a model over the 2021 gRPC protocol, and query one.</summary>
internal static partial class AxonCommands
{
    private static readonly Option<string?> Uri = new("--uri")
    {
        Description = "Development key as a secret URI (e.g. //Alice, //Bob): signs with it instead of the wallet's hotkey",
    };

    private static readonly Option<string?> WalletName = new("--wallet.name", "--wallet_name")
    {
        Description = "Wallet name; default from bittensor.wallet.name / BT_WALLET_NAME, else \"default\"",
    };

    private static readonly Option<string?> WalletHotkey = new("--wallet.hotkey", "--wallet_hotkey")
    {
        Description = "Hotkey name inside the wallet; default from bittensor.wallet.hotkey / BT_WALLET_HOTKEY, else \"default\"",
    };

    private static readonly Option<string?> WalletPath = new("--wallet.path", "--wallet_path")
    {
        Description = "Folder holding the wallets; default ~/.bittensor/wallets/ (BT_WALLET_PATH)",
    };

    /// <summary>Adds <c>axon serve</c> and <c>query</c>.</summary>
    public static void Register(RootCommand root)
    {
        var axon = new Command("axon", "Serve a model to other peers over the 2021 gRPC protocol");
        axon.Subcommands.Add(Serve());
        axon.Subcommands.Add(Worker());
        root.Subcommands.Add(axon);
        root.Subcommands.Add(Query());
    }

    private static Command Serve()
    {
        var port = new Option<int?>("--axon.port") { Description = "TCP port to listen on (0 = any free port; default from HOCON: 8091)" };
        var ip = new Option<string?>("--axon.ip") { Description = "Address to bind (default 0.0.0.0)" };
        var workers = new Option<int?>("--axon.max_workers") { Description = "Calls served by the model at once (default 10)" };
        var queue = new Option<int?>("--axon.queue_capacity") { Description = "Calls that may wait before NucleusFull (default 256)" };
        var noVerify = new Option<bool>("--axon.disable_signature_verification")
        {
            Description = "DANGER: accept unsigned callers (benchmark anchors only; logged loudly)",
        };
        var batchVerify = new Option<bool?>("--axon.batch_verification")
        {
            Description = "Verify concurrent calls' signatures together (sr25519 batch verification; default true; false: each alone)",
        };
        var newCallers = new Option<double?>("--axon.new_caller_verifies_per_second")
        {
            Description = "Signature checks per second for callers with no accepted nonce remembered; over it they are refused unverified (default 1000, 0 = no limit)",
        };
        var failedHold = new Option<string?>("--axon.failed_signature_hold")
        {
            Description = "After a bad signature under a known caller's hotkey, that hotkey's calls from the same address (IPv6: its /64; from every address once 4 addresses sent bad ones) draw " +
                "from the new-caller budget for this long (a HOCON duration, e.g. 1s, 500ms; default 1s, 0 = off)",
        };
        var stakes = new Option<FileInfo?>("--axon.stakes")
        {
            Description = "JSON file {\"<hotkey ss58>\": <TAO>, ...}: the callers' stakes (priority, blacklist.min_stake) and who counts as " +
                "registered (blacklist.registered_only). This verb has no chain: without the file every caller has stake 0 and is served in arrival order",
        };
        var minStake = new Option<double?>("--axon.blacklist.min_stake") { Description = "Refuse callers below this stake in TAO (needs --axon.stakes)" };
        var registeredOnly = new Option<bool>("--axon.blacklist.registered_only") { Description = "Serve only the hotkeys listed in --axon.stakes" };
        var model = new Option<string>("--model")
        {
            Description = "echo (deterministic: out[b,s,d] = token*1e-3 + d*1e-6), random, or server (the TorchSharp model of `btcli run server`, bittensor.model.*)",
            DefaultValueFactory = _ => "echo",
        };
        var modelCpu = ClusterFlags.CpuOption();
        var modelDelay = new Option<int>("--model.delay_ms") { Description = "Fixed cost of each call in ms (the model waits, as a GPU-bound one would; default 0)" };
        var trace = new Option<bool?>("--axon.trace") { Description = "Log Kestrel's connection-level traces (HTTP/2 frames, resets; --axon.transport kestrel only)" };
        var state = new Option<string?>("--axon.state_path")
        {
            Description = "Folder of this axon's state (its nonce store, so a restart never accepts a request accepted before it); " +
                "default <wallet path>/<wallet>/axon/<hotkey>/, or ~/.bittensor/axon/<ss58>/ with --uri",
        };
        var logCalls = new Option<bool>("--axon.log_calls")
        {
            Description = "Print one line per call (JSON lines with --json); costs CPU per call. Default: one summary line per 10 s with calls",
        };
        var serve = new Command("serve", "Serve until Ctrl-C / SIGTERM; prints a summary line every 10 s with traffic (--axon.log_calls: one line per call). " +
            "With --cluster.role front the axon routes to the workers of a cluster (btcli axon worker; docs/cluster.md)");
        foreach (var o in new Option[] { port, ip, workers, queue, noVerify, batchVerify, newCallers, failedHold, trace, stakes, minStake, registeredOnly, model, modelDelay, modelCpu, state, logCalls, Uri, WalletName, WalletHotkey, WalletPath })
            serve.Options.Add(o);
        var clusterRole = new Option<string?>("--cluster.role") { Description = "front: serve the axon in front of a cluster of workers (btcli axon worker); default \"\" (not clustered)" };
        serve.Options.Add(clusterRole);
        var clusterFlags = ClusterFlags.AddTo(serve);
        var limits = new AxonLimitFlags();
        limits.AddTo(serve);
        var config = CliConfig.AddTo(serve);
        var metrics = MetricsExport.AddFlags(serve);
        var logging = CliLogging.AddFlags(serve);
        serve.SetAction(async (parse, ct) =>
        {
            var hocon = CliConfig.Load(parse, config,
            [
                .. metrics(parse),
                // Kestrel logs through the process's logger factory: --axon.trace is its Trace level.
                ("bittensor.logging.levels.\"Microsoft.AspNetCore.Server.Kestrel\"", parse.GetValue(trace) == true ? "Trace" : null),
                .. logging(parse),
                ("bittensor.axon.port", parse.GetValue(port)),
                ("bittensor.axon.ip", parse.GetValue(ip)),
                ("bittensor.axon.max_workers", parse.GetValue(workers)),
                ("bittensor.axon.queue_capacity", parse.GetValue(queue)),
                ("bittensor.axon.auth.disable_signature_verification", parse.GetValue(noVerify) ? true : null),
                ("bittensor.axon.auth.batch_verification", parse.GetValue(batchVerify)),
                ("bittensor.axon.auth.new_caller_verifies_per_second", parse.GetValue(newCallers)),
                ("bittensor.axon.auth.failed_signature_hold", parse.GetValue(failedHold)),
                ("bittensor.axon.trace", parse.GetValue(trace)),
                ("bittensor.axon.blacklist.min_stake", parse.GetValue(minStake)),
                ("bittensor.axon.blacklist.registered_only", parse.GetValue(registeredOnly) ? true : null),
                ("bittensor.cluster.role", parse.GetValue(clusterRole)),
                .. clusterFlags.Values(parse),
                .. limits.Values(parse),
            ]);
            var settings = CliConfig.Settings(hocon, AxonSettings.SectionPath, AxonSettings.Create);
            _ = CliConfig.Settings(hocon, Bittensor.Actors.Metrics.MetricsSettings.SectionPath, Bittensor.Actors.Metrics.MetricsSettings.Create);
            var cluster = CliConfig.Settings(hocon, ClusterSettings.SectionPath, ClusterSettings.Create);
            if (cluster.Role == ClusterSettings.WorkerRole)
                throw new CliException("bittensor.cluster.role = worker: start workers with `btcli axon worker --cluster.seed_nodes HOST:PORT`; `axon serve` is the front");
            var table = parse.GetValue(stakes) is { } file ? ReadStakes(file) : null;
            if (table is null && (settings.BlacklistRegisteredOnly || settings.BlacklistMinStake > 0))
                throw new CliException("blacklist.registered_only / blacklist.min_stake need --axon.stakes FILE: `btcli axon serve` has no chain to read " +
                    "stakes from, so every caller would be refused");
            // --model server: the TorchSharp model behind a model host (null for the delegate models; a front runs none).
            var serverModel = cluster.Role == ClusterSettings.FrontRole ? null
                : ClusterFlags.ServerModel(parse.GetValue(model), hocon, parse.GetValue(modelDelay), parse.GetValue(modelCpu));
            var handlers = serverModel is not null || (cluster.Role == ClusterSettings.FrontRole && parse.GetValue(model) == "server") ? null
                : ClusterFlags.Model(parse.GetValue(model), parse.GetValue(modelDelay), settings.NetworkDim, parse.GetValue(modelCpu));
            var hotkey = OwnHotkey(parse, hocon);
            // Replay-safe by default: the nonce store lives in the axon's state folder unless HOCON names a file.
            if (parse.GetValue(state) is { Length: > 0 } folder) settings = settings with { NonceStorePath = Path.Combine(Path.GetFullPath(folder), "nonces") };
            else if (settings.NonceStorePath.Length == 0) settings = settings with { NonceStorePath = Path.Combine(DefaultStateFolder(parse, hocon, hotkey), "nonces") };
            return await RunServe(hocon, settings, handlers, serverModel, table, hotkey, parse.GetValue(CliApp.Json), parse.GetValue(logCalls),
                cluster.Role == ClusterSettings.FrontRole ? cluster : null, ct).ConfigureAwait(false);
        });
        return serve;
    }

    /// <summary>Reads a <c>--axon.stakes</c> file: a JSON object mapping SS58 hotkeys to non-negative TAO.</summary>
    internal static IReadOnlyDictionary<string, double> ReadStakes(FileInfo file)
    {
        const long maxBytes = 64L * 1024 * 1024;
        try
        {
            if (!file.Exists) throw new CliException($"--axon.stakes: file not found: {file.FullName}");
            if (file.Length > maxBytes) throw new CliException($"--axon.stakes: {file.FullName} is larger than 64 MiB");
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(file.FullName));
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object)
                throw new CliException($"--axon.stakes: {file.FullName} must hold a JSON object {{\"<hotkey ss58>\": <TAO>, ...}}");
            var table = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (!Bittensor.Core.Crypto.Ss58.IsValid(p.Name))
                    throw new CliException($"--axon.stakes: '{p.Name}' is not an SS58 address");
                if (p.Value.ValueKind != System.Text.Json.JsonValueKind.Number || !p.Value.TryGetDouble(out var tao) || !(tao >= 0) || double.IsInfinity(tao))
                    throw new CliException($"--axon.stakes: the stake of {p.Name} must be a non-negative number of TAO");
                table[p.Name] = tao;
            }
            return table;
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new CliException($"--axon.stakes: {file.FullName} is not valid JSON: {e.Message}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"--axon.stakes: cannot read {file.FullName}: {e.Message}");
        }
    }

    /// <summary>
    /// The overload rules the axon's "serving on" line names (docs/axon.md "Overload"), so an operator sees what the
    /// config and flags made of them: calls_in_flight, and admission by waiting (limits.target_wait with its at-read
    /// budget; the lean transport only, Kestrel has no point to apply it).
    /// </summary>
    internal static string DescribeAdmission(AxonSettings settings)
    {
        var inFlight = settings.CallsInFlight > 0 ? settings.CallsInFlight.ToString(CultureInfo.InvariantCulture) : "no limit";
        var wait = settings.TargetWait <= TimeSpan.Zero ? "off"
            : settings.Transport != "lean" ? "not applied on " + settings.Transport
            : string.Create(CultureInfo.InvariantCulture, $"{settings.TargetWait.TotalMilliseconds:0.###}ms, admit_per_read {settings.AdmitPerRead}");
        return $"calls_in_flight {inFlight}, target_wait {wait}";
    }

    private static async Task<int> RunServe(Config hocon, AxonSettings settings, AxonHandlers? handlers, Props? modelHost, IReadOnlyDictionary<string, double>? stakes,
        string hotkey, bool json, bool logCalls, ClusterSettings? cluster, CancellationToken cancellation)
    {
        // Shutdown runs from the verb's cancellation (Ctrl-C / SIGTERM: Termination), not from Akka's own exit hook,
        // so the two signal handlers do not race.
        var config = ConfigurationFactory.ParseString("akka.coordinated-shutdown.run-by-clr-shutdown-hook = off").WithFallback(hocon);
        // Disposed after the system has terminated (the method returns then): that flushes the last events.
        using var logs = CliLogging.Start(hocon);
        var system = cluster is null ? logs.CreateSystem("btcli-axon", config)
            : Termination.Allow(BittensorCluster.CreateSystem(cluster, ClusterSettings.FrontRole, config, loggerFactory: logs.Factory));
        var options = new AxonOptions
        {
            Hotkey = hotkey,
            // One line per call only on request: a console write per call is a syscall and a formatted string on the hot path.
            // Without --axon.log_calls, a Debug line per call under Bittensor.Actors.Axon.Requests when that level is on;
            // otherwise no callback at all.
            OnCall = !logCalls ? AxonRequestLog.For(logs.Factory) : r => Console.Out.WriteLine(json
                ? System.Text.Json.JsonSerializer.Serialize(new
                {
                    time = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture), method = r.Method, caller = r.Caller, code = r.Code.ToString(),
                    message = r.Message, bytes_in = r.BytesIn, bytes_out = r.BytesOut, ms = Math.Round(r.Elapsed.TotalMilliseconds, 3), shape = r.InputShape,
                })
                : string.Create(CultureInfo.InvariantCulture,
                    $"{DateTime.UtcNow:HH:mm:ss.fff} {r.Method,-8} {r.Caller} {r.Code} in={r.BytesIn}B out={r.BytesOut}B {r.Elapsed.TotalMilliseconds:F1}ms shape=[{string.Join(",", r.InputShape ?? [])}]{(r.Message.Length > 0 ? " " + r.Message : "")}")),
        };
        if (cluster is not null)
            return await RunFront(hocon, system, settings, cluster, options, stakes, hotkey, json, cancellation).ConfigureAwait(false);
        var axon = system.ActorOf(modelHost is not null ? AxonActor.Props(settings, system.ActorOf(modelHost, "model"), options)
            : AxonActor.Props(settings, handlers!, options), "axon");
        if (stakes is not null) axon.Tell(new AxonActor.UpdateStakes(stakes));
        AxonActor.Bound bound;
        try
        {
            bound = await axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await system.Terminate().ConfigureAwait(false);
            throw new CliException($"axon could not listen on {settings.Ip}:{settings.Port}: {e.Message}");
        }
        Console.Error.WriteLine($"axon {hotkey} serving on {bound.Endpoint} ({SocketCompletions.Describe(settings.Transport)}) with {DescribeAdmission(settings)}; Ctrl-C to stop");
        await using var metricsScope = await StartMetrics(hocon, system, cancellation).ConfigureAwait(false);
        if (!settings.DisableSignatureVerification)
            Console.Error.WriteLine($"nonce store {settings.NonceStorePath} (write-ahead{(settings.NonceStoreFsync ? ", fsync" : "")})");

        using var summaries = new CancellationTokenSource();
        var summary = PrintSummaries(() => axon, json, TimeSpan.FromSeconds(10), summaries.Token);
        var shutdown = CoordinatedShutdown.Get(system);
        shutdown.AddTask(CoordinatedShutdown.PhaseServiceUnbind, "axon-unbind",
            async () => { await axon.Ask<Akka.Done>(AxonActor.Unbind.Instance, TimeSpan.FromSeconds(10)).ConfigureAwait(false); return Akka.Done.Instance; });
        // Ctrl-C and SIGTERM cancel this token (Termination); CoordinatedShutdown unbinds, then stops the system.
        using (cancellation.Register(() => _ = shutdown.Run(CoordinatedShutdown.ClrExitReason.Instance)))
            await system.WhenTerminated.ConfigureAwait(false);
        await summaries.CancelAsync().ConfigureAwait(false);
        await summary.ConfigureAwait(false);
        Console.Error.WriteLine("axon stopped");
        return 0;
    }

    /// <summary>
    /// A front-capable node (<c>--cluster.role front</c>): the front is a cluster singleton, so this node serves the axon
    /// only while it is the oldest front-capable node; a standby takes over when the active one dies or leaves, and
    /// binds its own axon (its own <c>--axon.port</c>). Prints one line each time this node's front starts or stops.
    /// </summary>
    // The metrics export (metrics.*), or, when it cannot start, the actor system stopped before the error goes up.
    private static async Task<MetricsExport?> StartMetrics(Config hocon, ActorSystem system, CancellationToken cancellation)
    {
        try
        {
            return await MetricsExport.StartAsync(hocon, cancellation).ConfigureAwait(false);
        }
        catch
        {
            await system.Terminate().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<int> RunFront(Config hocon, ActorSystem system, AxonSettings settings, ClusterSettings cluster, AxonOptions options,
        IReadOnlyDictionary<string, double>? stakes, string hotkey, bool json, CancellationToken cancellation)
    {
        var events = BittensorCluster.FrontEvents(system);
        BittensorCluster.StartFront(system, cluster, router => AxonActor.Props(settings, router, options));
        var self = Akka.Cluster.Cluster.Get(system);
        var node = self.SelfAddress;
        self.RegisterOnMemberUp(() => Console.Error.WriteLine($"cluster front node {node} is up in the cluster"));
        BittensorCluster.LogMembersUp(system, Console.Error.WriteLine);
        Console.Error.WriteLine($"cluster front node {node} joining{(cluster.SeedNodes.Count == 0 ? " itself" : " " + string.Join(",", cluster.SeedNodes))}: " +
            "the oldest front-capable node serves the axon, the others stand by to take over");
        IActorRef? current = null;
        string? failure = null;
        var watch = Task.Run(async () =>
        {
            await foreach (var e in events.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                switch (e)
                {
                    case ClusterFrontActivated a:
                        Volatile.Write(ref current, a.Axon);
                        if (stakes is not null) a.Axon.Tell(new AxonActor.UpdateStakes(stakes));
                        Console.Error.WriteLine($"axon {hotkey} serving on {a.Endpoint} ({SocketCompletions.Describe(settings.Transport)}) with {DescribeAdmission(settings)}; cluster front at {a.Node} " +
                            "(the model runs on the workers: btcli axon worker); Ctrl-C to stop");
                        if (!settings.DisableSignatureVerification)
                            Console.Error.WriteLine($"nonce store {settings.NonceStorePath} (write-ahead{(settings.NonceStoreFsync ? ", fsync" : "")})");
                        break;
                    case ClusterFrontDeactivated d:
                        Volatile.Write(ref current, null);
                        if (d.Failed) failure = d.Reason;
                        Console.Error.WriteLine(d.Failed
                            ? $"error: the front cannot run on this node ({d.Reason}); this node leaves the cluster so another front-capable node takes over"
                            : $"cluster front stopped on this node ({d.Reason})");
                        break;
                }
            }
        }, CancellationToken.None);
        await using var metricsScope = await StartMetrics(hocon, system, cancellation).ConfigureAwait(false);
        using var summaries = new CancellationTokenSource();
        var summary = PrintSummaries(() => Volatile.Read(ref current), json, TimeSpan.FromSeconds(10), summaries.Token);
        var shutdown = CoordinatedShutdown.Get(system);
        shutdown.AddTask(CoordinatedShutdown.PhaseServiceUnbind, "axon-unbind", async () =>
        {
            if (Volatile.Read(ref current) is { } axon)
            {
                try
                {
                    await axon.Ask<Akka.Done>(AxonActor.Unbind.Instance, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
                }
                catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
                {
                    // The axon stopped already (hand-over): nothing left to unbind.
                }
            }
            return Akka.Done.Instance;
        });
        using (cancellation.Register(() => _ = shutdown.Run(CoordinatedShutdown.ClrExitReason.Instance)))
            await system.WhenTerminated.ConfigureAwait(false);
        await summaries.CancelAsync().ConfigureAwait(false);
        await summary.ConfigureAwait(false);
        await watch.ConfigureAwait(false);
        if (cancellation.IsCancellationRequested)
        {
            Console.Error.WriteLine("axon stopped; this front node left the cluster");
            return 0;
        }
        Console.Error.WriteLine(failure is not null
            ? $"error: {failure}; this front node left the cluster"
            : $"error: {BittensorCluster.FrontNodeEnded(system, cluster)}");
        return CliApp.UserError;
    }

    /// <summary>Every <paramref name="every"/> with traffic: one line with the calls answered in it, per return code.</summary>
    private static async Task PrintSummaries(Func<IActorRef?> axon, bool json, TimeSpan every, CancellationToken cancellation)
    {
        var last = new Dictionary<ReturnCode, long>();
        using var timer = new PeriodicTimer(every);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellation).ConfigureAwait(false))
            {
                AxonStatsSnapshot stats;
                try
                {
                    if (axon() is not { } target) continue;
                    stats = await target.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, TimeSpan.FromSeconds(5), cancellation).ConfigureAwait(false);
                }
                catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
                {
                    continue;
                }
                var now = new Dictionary<ReturnCode, long>();
                foreach (var caller in stats.PerCaller.Values)
                    foreach (var (code, n) in caller.Codes) now[code] = now.GetValueOrDefault(code) + n;
                var delta = now.Select(kv => (Code: kv.Key, Calls: kv.Value - last.GetValueOrDefault(kv.Key))).Where(d => d.Calls > 0).OrderBy(d => d.Code).ToList();
                last = now;
                var total = delta.Sum(d => d.Calls);
                if (total == 0) continue;
                var rate = total / every.TotalSeconds;
                Console.Out.WriteLine(json
                    ? System.Text.Json.JsonSerializer.Serialize(new
                    {
                        time = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture), calls = total, per_second = Math.Round(rate, 1),
                        codes = delta.ToDictionary(d => d.Code.ToString(), d => d.Calls), waiting = stats.Waiting,
                    })
                    : string.Create(CultureInfo.InvariantCulture,
                        $"{DateTime.UtcNow:HH:mm:ss} {total} calls in {every.TotalSeconds:F0} s ({rate:F1}/s): {string.Join(", ", delta.Select(d => $"{d.Code}={d.Calls}"))}; waiting {stats.Waiting}"));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static Command Query()
    {
        var endpoint = new Option<string>("--endpoint") { Description = "Axon address HOST:PORT", Required = true };
        var hotkey = new Option<string?>("--hotkey") { Description = "The axon's hotkey SS58 (names its endpoint; optional)" };
        var text = new Option<string>("--text") { Description = "Text to send, tokenised with the 2021 bittensor GPT-2 tokenizer", Required = true };
        var backward = new Option<bool>("--backward") { Description = "Send a backward call (inputs + gradients of ones) instead of a forward" };
        var timeout = new Option<double?>("--timeout", "--dendrite.timeout") { Description = "Deadline in seconds (default bittensor.dendrite.timeout: 12s)" };
        var dim = new Option<int?>("--network_dim", "--dendrite.network_dim") { Description = "Expected last dimension of a forward answer (default bittensor.dendrite.network_dim: 1024)" };
        var transport = new Option<string?>("--dendrite.transport") { Description = "Client transport: lean (default) or grpc (bittensor.dendrite.transport)" };
        var query = new Command("query", "Send one signed Forward (or Backward) to an axon and print code, message, shape, dtype, latency");
        foreach (var o in new Option[] { endpoint, hotkey, text, backward, timeout, dim, transport, Uri, WalletName, WalletHotkey, WalletPath }) query.Options.Add(o);
        var keepAlive = new DendriteKeepAliveFlags();
        keepAlive.AddTo(query);
        var config = CliConfig.AddTo(query);
        var logging = CliLogging.AddFlags(query);
        query.SetAction(async (parse, ct) =>
        {
            var (host, port) = ParseEndpoint(parse.GetValue(endpoint)!);
            if (parse.GetValue(timeout) is { } seconds && !(seconds > 0 && seconds < 86_400)) throw new CliException("--timeout must be positive (seconds)");
            var hocon = CliConfig.Load(parse, config,
            [
                ("bittensor.dendrite.timeout", parse.GetValue(timeout) is { } s ? TimeSpan.FromSeconds(s) : null),
                ("bittensor.dendrite.network_dim", parse.GetValue(dim)),
                ("bittensor.dendrite.transport", parse.GetValue(transport)),
                .. keepAlive.Values(parse),
                .. logging(parse),
            ], "bittensor.logging.level = Warning");
            var settings = CliConfig.Settings(hocon, DendriteSettings.SectionPath, DendriteSettings.Create);
            var target = new EndpointInfo(parse.GetValue(hotkey) ?? $"{host}:{port}", host, port);
            using var logs = CliLogging.Start(hocon);
            var system = logs.CreateSystem("btcli-query", hocon);
            try
            {
                static long[] Gpt2(string s) => Array.ConvertAll(Bittensor.Models.Tokenization.BittensorTokenizer.Instance.Encode(s), id => (long)id);
                var dendrite = new Bittensor.Actors.Dendrite.Dendrite(system, await Signer(parse, system, hocon).ConfigureAwait(false), settings, tokenizer: Gpt2);
                var tokens = Gpt2(parse.GetValue(text)!);
                if (tokens.Length == 0) throw new CliException("--text must not be empty");
                var inputs = DenseTensor.Int64([1, tokens.Length], tokens);
                var result = parse.GetValue(backward)
                    ? (await dendrite.Backward([target], inputs, [DenseTensor.Float32([1, tokens.Length, settings.NetworkDim], Enumerable.Repeat(1f, tokens.Length * settings.NetworkDim).ToArray())]).ConfigureAwait(false))[0]
                    : (await dendrite.ForwardText([target], new[] { parse.GetValue(text)! }).ConfigureAwait(false))[0];
                Print(result, parse.GetValue(backward), parse.GetValue(CliApp.Json));
                return result.Code == ReturnCode.Success ? 0 : CliApp.UserError;
            }
            finally
            {
                await system.Terminate().ConfigureAwait(false);
            }
        });
        return query;
    }

    private static void Print(EndpointResult r, bool backward, bool json)
    {
        var floats = r.Tensor.Floats ?? [];
        var mean = floats.Length == 0 ? 0 : floats.Average(x => (double)x);
        if (json)
        {
            CliApp.WriteJson(new
            {
                method = backward ? "Backward" : "Forward", endpoint = $"{r.Endpoint.Ip}:{r.Endpoint.Port}", code = r.Code.ToString(), code_value = (int)r.Code,
                message = r.Message, shape = r.Tensor.Shape, dtype = r.Tensor.DataType.ToString().ToLowerInvariant(),
                latency_ms = Math.Round(r.Latency.TotalMilliseconds, 3), first = floats.Take(4), mean,
            });
            return;
        }
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"code={r.Code} ({(int)r.Code}) message=\"{r.Message}\" shape=[{string.Join(",", r.Tensor.Shape)}] dtype={r.Tensor.DataType.ToString().ToLowerInvariant()} latency={r.Latency.TotalMilliseconds:F1}ms first=[{string.Join(",", floats.Take(4).Select(f => f.ToString("G6", CultureInfo.InvariantCulture)))}]"));
    }

    internal static (string Host, int Port) ParseEndpoint(string value)
    {
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            throw new CliException($"--endpoint '{value}' is not HOST:PORT");
        var host = value[..colon].Trim('[', ']');
        if (host.Length == 0) throw new CliException($"--endpoint '{value}' has no host");
        if (!IPAddress.TryParse(host, out _) && System.Uri.CheckHostName(host) == UriHostNameType.Unknown)
            throw new CliException($"--endpoint '{value}' has an invalid host");
        return (host, port);
    }

    /// <summary>
    /// The axon's state folder when neither <c>--axon.state_path</c> nor <c>bittensor.axon.auth.nonce_store_path</c> is given:
    /// beside the wallet's hotkeys (<c>&lt;wallet path&gt;/&lt;wallet&gt;/axon/&lt;hotkey&gt;/</c>), or
    /// <c>~/.bittensor/axon/&lt;ss58&gt;/</c> for a dev key.
    /// </summary>
    internal static string DefaultStateFolder(ParseResult parse, Config hocon, string hotkeySs58)
    {
        if (parse.GetValue(Uri) is { Length: > 0 })
            return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".bittensor", "axon", hotkeySs58);
        var wallet = ResolveWallet(parse, hocon);
        return Path.Combine(wallet.Directory, "axon", wallet.Hotkey);
    }

    /// <summary>The hotkey this axon announces: the dev key's, else the wallet hotkey's public key (no secret needed).</summary>
    private static string OwnHotkey(ParseResult parse, Config hocon)
    {
        if (parse.GetValue(Uri) is { Length: > 0 } uri)
        {
            using var key = DevKey(uri);
            return key.ToSs58();
        }
        var wallet = ResolveWallet(parse, hocon);
        try
        {
            using var pub = wallet.LoadHotkeyPub();
            return pub.Ss58Address;
        }
        catch (Exception e) when (e is KeyfileException or IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read the hotkey of {wallet}: {e.Message} (create it with `btcli wallet new_hotkey`, or pass --uri)");
        }
    }

    /// <summary>Signs with the dev key, else through a WalletSignerActor holding the wallet's hotkey.</summary>
    private static async Task<IRequestSigner> Signer(ParseResult parse, ActorSystem system, Config hocon)
    {
        if (parse.GetValue(Uri) is { Length: > 0 } uri)
            return new KeyPairRequestSigner(DevKey(uri));
        var wallet = ResolveWallet(parse, hocon);
        var actor = system.ActorOf(WalletSignerActor.Props(wallet), "wallet-signer");
        try
        {
            return await WalletRequestSigner.CreateAsync(actor, TimeSpan.FromSeconds(60), PasswordSource.ForHotkey()).ConfigureAwait(false);
        }
        catch (InvalidOperationException e)
        {
            throw new CliException($"cannot unlock the hotkey of {wallet}: {e.Message}");
        }
    }

    private static LocalWallet ResolveWallet(ParseResult parse, Config hocon)
    {
        try
        {
            // Flags beat BT_WALLET_* beat --config beat the reference (btcli's order for wallets).
            return CliConfig.Settings(hocon, WalletSettings.SectionPath, WalletSettings.Create)
                .WithOverrides(parse.GetValue(WalletName), parse.GetValue(WalletHotkey), parse.GetValue(WalletPath)).ToWallet();
        }
        catch (Exception e) when (e is ConfigurationException or ArgumentException)
        {
            throw new CliException(e.Message);
        }
    }

    private static Sr25519KeyPair DevKey(string uri)
    {
        try
        {
            return SecretUri.ToSr25519(uri);
        }
        catch (FormatException e)
        {
            throw new CliException($"--uri: {e.Message}");
        }
    }
}
