using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Chain.Rpc;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Roles;

namespace Bittensor.Neurons.Demo;

/// <summary>How <c>btcli demo --processes</c> starts its children and what it reports about them.</summary>
public sealed record ProcessDemoOptions
{
    /// <summary>How to start btcli (normally <see cref="BtcliCommand.Self"/>).</summary>
    public required BtcliCommand Btcli { get; init; }

    /// <summary>
    /// The text of the user's <c>--config</c> file, if any: every child reads it (so its <c>bittensor.*</c> sections
    /// apply to each role as in the in-process demo), under the demo's own keys (server model, pipeline, seeds).
    /// </summary>
    public string? ConfigText { get; init; }

    /// <summary>Where a line per child goes as it starts and stops (name, pid, address); null: nowhere.</summary>
    public TextWriter? Log { get; init; }

    /// <summary>How long a child may take to stop after its standard input closes before it is killed.</summary>
    public TimeSpan StopGrace { get; init; } = TimeSpan.FromSeconds(20);
}

/// <summary>
/// The demo as a real network on one machine (<c>btcli demo --processes</c>, issue 10 part C): the localnet served as
/// a node (<c>btcli localnet run --rpc.port 0 --manual_seal</c>), each server (<c>btcli run server</c>) and the
/// validator (<c>btcli run validator</c>) as OS processes on loopback, talking to the node over JSON-RPC and to each
/// other over gRPC. This process orchestrates: it writes the wallets and the chain's genesis (funded coldkeys, the
/// demo subnet with its relaxed hyperparameters), starts the children (each binds port 0 and prints what it got),
/// produces the blocks (<c>dev_newBlock</c>, in lockstep with the validator's batches as in-process), reads incentive
/// from the node every epoch, and judges the market with the same rule. Children stop when the demo ends, is
/// cancelled, or this process dies (their standard input closes).
/// </summary>
public static class ProcessNetwork
{
    /// <summary>Runs the demo as processes; the callbacks and the result are those of <see cref="DemoNetwork.RunAsync(DemoOptions, Action{DemoProgress}?, Action{int, IReadOnlyList{DemoNeuron}}?, CancellationToken)"/>.</summary>
    /// <exception cref="NeuronException">A child failed (exited early); the message names it and quotes its last lines.</exception>
    public static async Task<DemoResult> RunAsync(DemoOptions options, ProcessDemoOptions processes, Action<DemoProgress>? progress = null,
        Action<int, IReadOnlyList<DemoNeuron>>? epoch = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(processes);
        options.Validate();
        var started = Stopwatch.GetTimestamp();
        return await DemoNetwork.WithFolderAsync(options, async (folder, people) =>
        {
            var state = new DemoNetwork.DemoState(options, people) { Phase = "writing the chain's genesis" };
            progress?.Invoke(state.Progress(ulong.MaxValue));
            var localnetPath = Path.Combine(folder, "localnet");
            state.Netuid = await GenesisAsync(options, people, localnetPath, cancellationToken);
            var children = new List<DemoChild>();
            try
            {
                return await RunAsync(options, processes, folder, people, state, localnetPath, children, started, progress, epoch, cancellationToken);
            }
            finally
            {
                state.Phase = "stopping the processes";
                progress?.Invoke(state.Progress(ulong.MaxValue));
                // Roles and cluster workers first (a worker drains with its front still there to acknowledge it), then the
                // cluster fronts, then the node (the roles may still talk to it as they stop).
                foreach (var stage in children.Select(c => c.StopStage).Distinct().Order().ToArray())
                    await Task.WhenAll(children.Where(c => c.StopStage == stage).Select(c => StopAsync(c, processes)));
            }
        });
    }

    /// <summary>Servers started at once (each further one starts when one of these is serving; a cluster counts as one).</summary>
    internal const int ServersStartingAtOnce = 2;

    /// <summary>What the cluster server is made of, as the table and summary say it.</summary>
    public static string ClusterShape => string.Create(CultureInfo.InvariantCulture, $"1 front + {DemoOptions.ClusterWorkers} workers");

    /// <summary>Start of the line a cluster worker (<c>btcli run server --cluster.role worker</c>) prints when a front acknowledged it.</summary>
    public const string WorkerRegisteredLine = "worker registered with the front at";

    /// <summary>Start of the line a cluster worker prints when it answered its first call (then the front's address).</summary>
    public const string WorkerFirstCallLine = "worker answered its first call, from the front at";

    /// <summary>Start of the line a cluster worker prints when it drained and left (then "; it served N calls, M on the data plane").</summary>
    public const string WorkerLeftLine = "worker drained and left the cluster";

    /// <summary>
    /// Start of the line a cluster front (<c>btcli run server --cluster.role front</c>) prints as soon as its cluster node
    /// runs, followed by the node's address (<c>akka.tcp://bittensor@127.0.0.1:PORT</c>; port 0 is bound by then).
    /// </summary>
    public const string FrontNodeLine = "cluster front node started at";

    /// <summary>Start of the line a cluster front (<c>btcli run server --cluster.role front</c>) prints once its axon is served on chain.</summary>
    internal const string FrontServedLine = "cluster front: this node is the front; axon ";

    private const int WorkerStage = 0;
    private const int FrontStage = 1;
    private const int NodeStage = 2;

    private static async Task StopAsync(DemoChild child, ProcessDemoOptions processes)
    {
        // A cluster worker says how many calls it served as it leaves.
        var left = child.Name.Contains("_worker", StringComparison.Ordinal) ? child.Line(WorkerLeftLine) : null;
        await child.StopAsync(processes.StopGrace);
        var said = left is { IsCompletedSuccessfully: true } ? ": " + left.Result : "";
        processes.Log?.WriteLine($"demo: {child} stopped (exit code {await child.Exited}){said}");
    }

    /// <summary>
    /// The chain's genesis, written in this process before the node starts: every participant's coldkey funded and the
    /// demo subnet created by its owner with the demo's hyperparameters (a node has no call to relax them afterwards).
    /// </summary>
    private static async Task<ushort> GenesisAsync(DemoOptions options, DemoPeople people, string path, CancellationToken cancellationToken)
    {
        await using var localnet = Localnet.Open(new LocalnetOptions
        {
            Name = "demo",
            Path = path,
            SubnetDefaults = DemoNetwork.Hyperparameters(options),
            GenesisBalances = DemoNetwork.GenesisBalances(people),
        });
        var owner = people.Owner;
        var call = owner.SignWithColdkey(new RegisterNetwork(), await localnet.GetNonceAsync(owner.ColdkeyAccount, cancellationToken),
            await localnet.GetIdentityAsync(cancellationToken));
        var submitted = localnet.SubmitAsync(call, cancellationToken);
        await localnet.ProduceBlockAsync(cancellationToken);
        var result = await submitted;
        if (!result.IsSuccess) throw new NeuronException($"creating the demo subnet failed: {result}");
        return (await localnet.GetSubnetsAsync(cancellationToken)).Where(s => s.Owner == owner.ColdkeyAccount).Select(s => s.Netuid).Max();
    }

    private static async Task<DemoResult> RunAsync(DemoOptions options, ProcessDemoOptions processes, string folder, DemoPeople people,
        DemoNetwork.DemoState state, string localnetPath, List<DemoChild> children, long started, Action<DemoProgress>? progress,
        Action<int, IReadOnlyList<DemoNeuron>>? epoch, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // A child that exits while the demo needs it ends the demo with its last lines.
        Exception? childFailure = null;
        // Children this process kills on purpose (--kill_worker_at_epoch): their exit does not end the demo.
        var killed = new HashSet<DemoChild>();
        DemoChild Start(string name, IEnumerable<string> args, int stopStage = WorkerStage)
        {
            var child = DemoChild.Start(processes.Btcli, name, args, folder, stopStage);
            lock (children) children.Add(child);
            _ = child.Exited.ContinueWith(t =>
            {
                if (stop.IsCancellationRequested) return;
                lock (killed)
                    if (killed.Contains(child)) return;
                Interlocked.CompareExchange(ref childFailure, new DemoChildExitedException(child, t.Result), null);
                stop.Cancel();
            }, TaskScheduler.Default);
            return child;
        }
        async Task<string> LineOf(DemoChild child, string prefix)
        {
            try
            {
                return await child.Line(prefix).WaitAsync(stop.Token);
            }
            catch (DemoChildExitedException e)
            {
                Interlocked.CompareExchange(ref childFailure, e, null);
                throw new OperationCanceledException(e.Message, e, stop.Token);
            }
        }

        var netuid = state.Netuid!.Value;
        var configs = Directory.CreateDirectory(Path.Combine(folder, "config")).FullName;
        var config = options.Config ?? ConfigurationFactory.ParseString(DemoOptions.OwnDefaults).WithFallback(BittensorRuntime.ReferenceConfig);
        try
        {
            state.Phase = "starting the node";
            progress?.Invoke(state.Progress(ulong.MaxValue));
            var node = Start("node", ["localnet", "run", "--localnet.path", localnetPath, "--localnet.name", "demo", "--rpc.port", "0", "--manual_seal"], NodeStage);
            var endpoint = (await LineOf(node, "rpc: ")).Split(' ')[1];
            processes.Log?.WriteLine($"demo: {node} serves {endpoint}");
            var subtensor = SubtensorSettings.Create(BittensorRuntime.Section(config, SubtensorSettings.SectionPath));
            await using var chain = await ConnectToNodeAsync(subtensor.BackendOptions(endpoint), node, processes.Log, stop.Token);

            // Blocks: this process is the node's only producer (manual seal).
            var blockProduced = new SemaphoreSlim(0, int.MaxValue);
            var driver = new BlockDriver(async ct =>
            {
                var hash = await chain.Client.RequestAsync("dev_newBlock", [new Dictionary<string, object?> { ["count"] = 1 }], null, ct);
                var header = await chain.Client.RequestAsync("chain_getHeader", [hash.GetString()], null, ct);
                blockProduced.Release();
                return ulong.Parse(header.GetProperty("number").GetString()!.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            }, options.BlockTime, options.StepsPerBlock, DemoNetwork.StallTimeout);
            // The validator child reads the same configuration: its weights go out at this many blocks before an epoch, and the
            // block after that waits for them (BlockDriver.SetsWeightsAt).
            // (At least 2: DemoOptions.Create refused less, ValidatorOptions.MinWeightsLeadBlocks.)
            var lead = (ulong)Math.Clamp(config.GetInt("bittensor.validator.weights_lead_blocks", ValidatorOptions.MinWeightsLeadBlocks), 0, options.Tempo);
            driver.SetsWeightsAt = b => state.Netuid is { } n && WeightSetter.BlocksUntilEpoch(n, options.Tempo, b) == lead;
            // --kill_worker_at_epoch: once that many epochs are done, a cluster worker is killed and restarted while the
            // chain waits (the next epochs run with both workers again).
            ClusterRun? cluster = null;
            var killDone = options.KillWorkerAtEpoch == 0;
            var blocks = Task.Run(() => driver.RunAsync(async b =>
            {
                var more = await DemoNetwork.OnBlockAsync(chain, state, b, progress, epoch, stop.Token);
                if (more && !killDone && state.EpochsDone >= options.KillWorkerAtEpoch && Volatile.Read(ref cluster) is { } c)
                {
                    killDone = true;
                    try
                    {
                        await KillAndRestartWorkerAsync(c);
                    }
                    catch (Exception e) when (e is NeuronException or DemoChildExitedException)
                    {
                        // Ends the demo with this reason (the epochs wait on `stop`).
                        Interlocked.CompareExchange(ref childFailure, e, null);
                        await stop.CancelAsync();
                        return false;
                    }
                }
                return more;
            }, stop.Token), CancellationToken.None);
            async Task KillAndRestartWorkerAsync(ClusterRun c)
            {
                var victim = c.Workers[0];
                var at = state.EpochsDone;
                lock (killed) killed.Add(victim);
                state.Phase = $"kill -9 of {victim.Name} (epoch {at}); the chain waits until it is back";
                progress?.Invoke(state.Progress(ulong.MaxValue));
                victim.Kill();
                var code = await victim.Exited.WaitAsync(stop.Token);
                processes.Log?.WriteLine($"demo: {victim} killed with SIGKILL after epoch {at} (exit code {code}); restarting it");
                c.Person.Cluster = $"{ClusterShape}; {victim.Name} killed (kill -9) after epoch {at}, restarting";
                var restarted = Start(victim.Name, c.WorkerArgs);
                c.Workers[0] = restarted;
                var firstCall = restarted.Line(WorkerFirstCallLine);
                var since = Stopwatch.GetTimestamp();
                string line;
                try
                {
                    // Bounded: a worker that cannot rejoin ends the demo with its reason instead of holding the chain forever.
                    line = await restarted.Line(WorkerRegisteredLine).WaitAsync(RestartBound, stop.Token);
                }
                catch (TimeoutException)
                {
                    throw new NeuronException($"{restarted}, restarted after kill -9, did not register with the front within {RestartBound.TotalSeconds:F0} s; its last lines:{Environment.NewLine}{restarted.Tail()}");
                }
                processes.Log?.WriteLine($"demo: {restarted} restarted; {line}");
                c.Person.Cluster = $"{ClusterShape}; {victim.Name} killed (kill -9) after epoch {at}, restarted, registered again";
                // Registered is not yet serving: the front gives a fresh replica no call until it has the cluster's averaged
                // checkpoint (or, without one, until the front's hold ends; docs/cluster.md). The validator keeps querying
                // while the chain waits, so the worker's first call comes; until it does, the next epoch would run without it
                // (a busy sweep: the demo ended before the restarted worker had served a call).
                state.Phase = $"{victim.Name} restarted after kill -9; the chain waits for its first call";
                progress?.Invoke(state.Progress(ulong.MaxValue));
                var left = RestartBound - Stopwatch.GetElapsedTime(since);
                try
                {
                    line = await firstCall.WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero, stop.Token);
                }
                catch (TimeoutException)
                {
                    throw new NeuronException($"{restarted}, restarted after kill -9, registered with the front but answered no call within {RestartBound.TotalSeconds:F0} s; its last lines:{Environment.NewLine}{restarted.Tail()}");
                }
                processes.Log?.WriteLine($"demo: {restarted} {line}");
                c.Person.Cluster = $"{ClusterShape}; {victim.Name} killed (kill -9) after epoch {at}, restarted, serving again";
                // The next blocks wait for batches the validator completes from now on, with both workers serving.
                driver.DropBankedBatches();
                state.Phase = $"{victim.Name} restarted after kill -9";
            }
            // Event-driven blocks (--block_time 0): a block whenever the node's pool holds a call. The pool has no
            // subscription, so it is looked at every 20 ms until a block has taken what it held.
            var watching = options.BlockTime == TimeSpan.Zero ? Task.Run(() => WatchPoolAsync(chain, driver, blockProduced, people.Validator.HotkeyAccount, stop.Token), CancellationToken.None) : Task.CompletedTask;
            try
            {
                string[] overWire = ["--netuid", netuid.ToString(CultureInfo.InvariantCulture), "--subtensor.chain_endpoint", endpoint, "--wallet.path", Path.Combine(folder, "wallets"),
                    "--wallet.hotkey", "default"];
                state.Phase = "starting the servers";
                // At most two servers start at once: a cold btcli spends its first seconds compiling (TorchSharp,
                // Kestrel, gRPC), and more at once on a small machine only makes each wait longer.
                var starting = new SemaphoreSlim(ServersStartingAtOnce);
                var servers = new List<Task>();
                var index = 0;
                foreach (var p in people.Servers.Concat(people.BadServers))
                {
                    var i = index++;
                    var setup = DemoNetwork.ServerSetup.Of(options, p, i);
                    var file = Path.Combine(configs, p.Name + ".conf");
                    await File.WriteAllTextAsync(file, ChildConfig(config, processes.ConfigText,
                        Render(config, $"{DemoOptions.SectionPath}.server_model", "bittensor.model") +
                        string.Create(CultureInfo.InvariantCulture, $"bittensor.model.seed = {setup.ModelSeed}\n")), stop.Token);
                    string[] bad = p.Kind is { } kind ? ["--bad_kind", kind] : [];
                    await starting.WaitAsync(stop.Token);
                    string[] serverArgs = ["run", "server", .. overWire, "--wallet.name", p.Name, "--axon.ip", setup.Ip, "--axon.port", "0",
                        "--neuron.full_path", Path.Combine(folder, "neurons", p.Name), "--config", file, .. bad];
                    if (p.Kind is null && i == options.ClusterServer - 1)
                    {
                        // This server as a cluster: a front (its wallet, chain, metagraph and axon) and workers hosting its
                        // model, each seeded as the server itself would be (they read the same file).
                        var front = Start(p.Name, [.. serverArgs, "--cluster.role", "front", "--cluster.port", "0"], FrontStage);
                        state.Phase = $"starting {p.Name} (cluster front)";
                        servers.Add(ClusterRunningAsync(p, front, file));
                        continue;
                    }
                    var child = Start(p.Name, serverArgs);
                    state.Phase = $"starting {p.Name}";
                    servers.Add(ServerRunningAsync(child));
                }
                async Task ClusterRunningAsync(DemoPerson p, DemoChild front, string file)
                {
                    try
                    {
                        // Every line is watched from the start: the front may serve its axon before or after it says it runs.
                        var started = LineOf(front, FrontNodeLine);
                        var running = LineOf(front, "server running on subnet ");
                        var served = LineOf(front, FrontServedLine);
                        var notServed = LineOf(front, "error: cluster front: ");
                        // "cluster front node started at akka.tcp://bittensor@127.0.0.1:PORT; …": the port it bound (0 asked).
                        // The workers start now and join while the front registers on the subnet.
                        var address = (await started)[FrontNodeLine.Length..].Trim().Split(';')[0];
                        var registered = new List<Task<string>>();
                        var workers = new List<DemoChild>();
                        string[] workerArgs = ["run", "server", "--netuid", netuid.ToString(CultureInfo.InvariantCulture),
                            "--cluster.role", "worker", "--cluster.seed_nodes", address, "--cluster.port", "0", "--config", file];
                        for (var w = 1; w <= DemoOptions.ClusterWorkers; w++)
                        {
                            var worker = Start(string.Create(CultureInfo.InvariantCulture, $"{p.Name}_worker{w}"), workerArgs);
                            workers.Add(worker);
                            registered.Add(LineOf(worker, WorkerRegisteredLine));
                        }
                        state.Phase = $"starting {p.Name} (cluster: front and {DemoOptions.ClusterWorkers} workers)";
                        var line = await running;
                        if (await Task.WhenAny(served, notServed) == notServed) throw new NeuronException($"{front}: {(await notServed)[7..]}");
                        var axon = (await served)[FrontServedLine.Length..].Split(' ')[0];
                        for (var w = 0; w < workers.Count; w++)
                            processes.Log?.WriteLine($"demo: {workers[w]} {await registered[w]}");
                        p.Cluster = ClusterShape;
                        Volatile.Write(ref cluster, new ClusterRun(p, workers, workerArgs));
                        processes.Log?.WriteLine($"demo: {front} {line[..line.IndexOf(" (state in", StringComparison.Ordinal)]} at {axon} (cluster: {ClusterShape})");
                    }
                    finally
                    {
                        starting.Release();
                    }
                }
                async Task ServerRunningAsync(DemoChild child)
                {
                    try
                    {
                        var line = await LineOf(child, "server running on subnet ");
                        processes.Log?.WriteLine($"demo: {child} {line[..line.IndexOf(" (state in", StringComparison.Ordinal)]}");
                    }
                    finally
                    {
                        starting.Release();
                    }
                }
                await Task.WhenAll(servers);

                state.Phase = "registering and staking the validator";
                var validatorFile = Path.Combine(configs, "validator.conf");
                await File.WriteAllTextAsync(validatorFile, ChildConfig(config, processes.ConfigText,
                    Render(config, $"{DemoOptions.SectionPath}.pipeline", "bittensor.validator.pipeline") + string.Create(CultureInfo.InvariantCulture,
                        $"bittensor.validator.pipeline.seed = {options.Seed}\nbittensor.validator.nucleus.seed = {options.Seed}\n")), stop.Token);
                var validator = Start("validator", ["run", "validator", .. overWire, "--wallet.name", people.Validator.Name,
                    "--stake", DemoNetwork.ValidatorStake.Tao.ToString(CultureInfo.InvariantCulture), "--neuron.full_path", Path.Combine(folder, "neurons", "validator"),
                    "--config", validatorFile, "--report_batches"]);
                DemoValidatorReport? latest = null;
                validator.Lines += line =>
                {
                    DemoValidatorReport? report;
                    try
                    {
                        // "weights …": the validator tried to set weights (the live view's "weights set at block …").
                        if (DemoWeightsReport.TryParse(line) is { } weights)
                        {
                            state.LastWeights = weights.Text;
                            driver.WeightsSubmitted(); // set (and so included) or not set: either way nothing is left to wait for
                            processes.Log?.WriteLine($"demo: {validator} weights {weights.Text}");
                            return;
                        }
                        report = DemoValidatorReport.TryParse(line);
                    }
                    catch (FormatException e)
                    {
                        processes.Log?.WriteLine($"demo: {validator}: {e.Message}");
                        return;
                    }
                    if (report is null) return;
                    Volatile.Write(ref latest, report);
                    driver.BatchDone();
                    state.FirstBatch.TrySetResult();
                };
                state.Validator = () => Volatile.Read(ref latest);
                var validatorLine = await LineOf(validator, "validator running on subnet ");
                processes.Log?.WriteLine($"demo: {validator} {validatorLine[..validatorLine.IndexOf(" (state in", StringComparison.Ordinal)]}");
                state.Phase = "waiting for the validator's first batch";
                var epochs = DemoNetwork.RunEpochsAsync(state, driver, stop.Token);
                // The validator may also stop without exiting; its exit is watched above.
                await epochs;
                return await DemoNetwork.ResultAsync(chain, state, started, stop.Token);
            }
            finally
            {
                await stop.CancelAsync();
                foreach (var task in new[] { blocks, watching })
                {
                    try
                    {
                        await task;
                    }
                    catch (OperationCanceledException)
                    {
                    }
                    catch (Exception e) when (e is ChainUnavailableException or JsonRpcException)
                    {
                        // The node went away with the demo already failing; that failure is reported.
                    }
                }
            }
        }
        catch (OperationCanceledException) when (Volatile.Read(ref childFailure) is { } failure && !cancellationToken.IsCancellationRequested)
        {
            throw new NeuronException(failure.Message);
        }
    }

    /// <summary>The cluster server's processes, for <see cref="DemoOptions.KillWorkerAtEpoch"/>.</summary>
    private sealed record ClusterRun(DemoPerson Person, List<DemoChild> Workers, string[] WorkerArgs);

    /// <summary>Longest a worker restarted after kill -9 may take to register with the front again (a hang guard: start-up, model load, cluster join).</summary>
    private static readonly TimeSpan RestartBound = TimeSpan.FromMinutes(3);

    /// <summary>
    /// Connects to the node, which has printed its <c>rpc:</c> line (it listens). An attempt that fails — on a loaded
    /// machine a cold node may take longer than the connect or request deadline to answer its first WebSocket — is
    /// retried after the reconnect backoff for as long as the node runs: its exit cancels <paramref name="cancellationToken"/>
    /// (the demo then ends naming it), so the node's own fate, not the clock, ends the wait.
    /// </summary>
    private static async Task<SubstrateChainBackend> ConnectToNodeAsync(SubstrateBackendOptions options, DemoChild node, TextWriter? log, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await SubstrateChainBackend.ConnectAsync(options, cancellationToken);
            }
            catch (ChainUnavailableException e) when (!cancellationToken.IsCancellationRequested)
            {
                var delay = options.Rpc.Reconnect.Delay(attempt, Random.Shared.NextDouble());
                log?.WriteLine($"demo: {node} still running but not answering yet (attempt {attempt}: {e.Message}); trying again in {delay.TotalSeconds:F1} s");
                await Task.Delay(delay, cancellationToken);
            }
        }
    }

    /// <summary>How often the node's pool is looked at (it has no subscription).</summary>
    private static readonly TimeSpan PoolPoll = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Until cancelled: whenever the node's pool holds a call, asks for a block and waits until one is produced. While it
    /// waits it keeps looking at the pool: a block held for the validator's weights (<see cref="BlockDriver.SetsWeightsAt"/>)
    /// goes once the validator's <c>set_weights</c> is there — that call, not any other (a server's or the validator's own
    /// other calls used to release it, and the weights then missed the block before the epoch).
    /// </summary>
    private static async Task WatchPoolAsync(SubstrateChainBackend chain, BlockDriver driver, SemaphoreSlim blockProduced, AccountId validator,
        CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var pool = await chain.Client.RequestAsync("author_pendingExtrinsics", [], null, cancellationToken);
            if (pool.ValueKind == JsonValueKind.Array && pool.GetArrayLength() > 0)
            {
                while (blockProduced.CurrentCount > 0) await blockProduced.WaitAsync(cancellationToken);
                if (PoolHoldsWeightsOf(pool, validator)) driver.WeightsSubmitted();
                driver.Submitted();
                while (!await blockProduced.WaitAsync(PoolPoll, cancellationToken))
                {
                    if (PoolHoldsWeightsOf(await chain.Client.RequestAsync("author_pendingExtrinsics", [], null, cancellationToken), validator))
                        driver.WeightsSubmitted();
                }
            }
            else
            {
                await Task.Delay(PoolPoll, cancellationToken);
            }
        }
    }

    /// <summary>
    /// True when <paramref name="pool"/> (<c>author_pendingExtrinsics</c>: hex strings) holds a <c>set_weights</c> signed by
    /// <paramref name="validator"/>; an entry that is not a signed extrinsic of the localnet's layout does not count.
    /// </summary>
    internal static bool PoolHoldsWeightsOf(JsonElement pool, AccountId validator)
    {
        if (pool.ValueKind != JsonValueKind.Array) return false;
        foreach (var entry in pool.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.String || !Bittensor.Core.Hex.TryDecode(entry.GetString(), out var bytes)) continue;
            try
            {
                var (signer, call) = Localnet.ReadPendingExtrinsic(bytes);
                if (signer == validator && call is SetWeights) return true;
            }
            catch (Bittensor.Core.Scale.ScaleException)
            {
                // Not one of ours to read: not the validator's weights.
            }
        }
        return false;
    }

    /// <summary>
    /// A child's configuration file: the demo's own defaults, then the user's file (it wins over them, as in-process),
    /// then the demo's sections rendered for the role (<paramref name="role"/>).
    /// </summary>
    internal static string ChildConfig(Config config, string? userText, string role)
    {
        var text = new StringBuilder();
        text.AppendLine("# written by btcli demo --processes for one of its children");
        text.AppendLine(DemoOptions.OwnDefaults);
        if (!string.IsNullOrWhiteSpace(userText)) text.AppendLine(userText);
        // The demo's flags (--seed, …) are already in the values below; the logging level of the demo goes to every child.
        foreach (var key in new[] { "akka.loglevel", "akka.stdout-loglevel" })
            if (config.HasPath(key)) text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{key} = {JsonSerializer.Serialize(config.GetString(key))}"));
        text.Append(Render(config, Bittensor.Actors.Logging.LoggingSettings.SectionPath, Bittensor.Actors.Logging.LoggingSettings.SectionPath));
        text.Append(role);
        return text.ToString();
    }

    /// <summary>
    /// Every value under <paramref name="path"/> of <paramref name="config"/> (all layers merged) as HOCON lines under
    /// <paramref name="target"/>, so a child reads <c>bittensor.demo.server_model</c> over its <c>bittensor.model</c> as
    /// the in-process demo does.
    /// </summary>
    internal static string Render(Config config, string path, string target)
    {
        var text = new StringBuilder();
        if (!config.HasPath(path)) return "";
        foreach (var (key, value) in Leaves(config, path, ""))
            text.AppendLine($"{target}.{key} = {Literal(value)}");
        return text.ToString();
    }

    private static IEnumerable<(string Key, Akka.Configuration.Hocon.HoconValue Value)> Leaves(Config config, string path, string prefix)
    {
        var keys = config.GetConfig(path).AsEnumerable().Select(p => p.Key).Distinct(StringComparer.Ordinal).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        foreach (var key in keys)
        {
            var quoted = key.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-') ? key : JsonSerializer.Serialize(key);
            var full = $"{path}.{quoted}";
            var value = config.GetValue(full);
            if (value is null || value.IsEmpty) continue;
            if (value.IsObject())
                foreach (var leaf in Leaves(config, full, $"{prefix}{quoted}."))
                    yield return leaf;
            else
                yield return ($"{prefix}{quoted}", value);
        }
    }

    private static string Literal(Akka.Configuration.Hocon.HoconValue value) =>
        value.IsArray() ? "[" + string.Join(", ", value.GetArray().Select(Literal)) + "]" : JsonSerializer.Serialize(value.GetString());
}
