using System.CommandLine;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.ModelHost;
using Bittensor.Neurons.Demo;

namespace Bittensor.Cli.Commands;

/// <summary>The <c>--cluster.*</c> flags both cluster verbs take (hostname, port, seed nodes, worker capacity).</summary>
internal sealed class ClusterFlags
{
    private Option<string?> Hostname { get; } = new("--cluster.hostname")
    {
        Description = "Address this node binds and announces to the other nodes (default 127.0.0.1; on several machines: this machine's address)",
    };

    private Option<int?> Port { get; } = new("--cluster.port") { Description = "TCP port of this node's cluster transport (0 = any free port; default 0)" };

    private Option<string?> SeedNodes { get; } = new("--cluster.seed_nodes")
    {
        Description = "Nodes to join through, comma-separated: HOST:PORT (the front's --cluster.port) or akka.tcp://bittensor@HOST:PORT",
    };

    private Option<int?> Capacity { get; } = new("--cluster.capacity")
    {
        Description = "Calls this worker takes at once before the front sends elsewhere (default: --axon.max_workers + --axon.queue_capacity)",
    };

    private Option<string?> DataPlane { get; } = new("--cluster.data_plane")
    {
        Description = "on: the front sends calls on one TCP connection per worker (the worker's data port); off: over Akka.Remote (default on; docs/cluster.md \"Data plane\")",
    };

    private Option<int?> DataPort { get; } = new("--cluster.data_port")
    {
        Description = "TCP port of this worker's data plane, on --cluster.hostname (0 = any free port, announced to the front; default 0)",
    };

    private Option<string?> Rejoin { get; } = new("--cluster.rejoin")
    {
        Description = "on: a worker the cluster downs while alive joins again as a new node in this process; off: it exits 1 (default on; docs/cluster.md \"Split brain\")",
    };

    private Option<string?> JoinTimeout { get; } = new("--cluster.join_timeout")
    {
        Description = "Longest this node tries to join --cluster.seed_nodes before it exits 1 saying so (a duration, e.g. 60s, or off: for ever; default 60s)",
    };

    private Option<string?> DownAllWhenUnstable { get; } = new("--cluster.sbr_down_all_when_unstable")
    {
        Description = "The split-brain resolver's down-all-when-unstable: off (default: a node whose view is late never downs the cluster), on (Akka's 3/4 of " +
            "sbr_stable_after, at least 4s) or a duration; every node must use the same (docs/cluster.md \"Split brain\")",
    };

    /// <summary><c>--model echo|random</c>, <c>--model.delay_ms</c> and <c>--model.cpu_ms</c> as handlers.</summary>
    public static AxonHandlers Model(string? name, int delayMs, int networkDim, double cpuMs = 0)
    {
        if (delayMs < 0) throw new CliException("--model.delay_ms must be 0 or positive");
        if (!(cpuMs >= 0) || cpuMs > 60_000) throw new CliException("--model.cpu_ms must be between 0 and 60000");
        var handlers = name switch
        {
            "echo" => DemoModels.Echo(networkDim),
            "random" => DemoModels.Random(networkDim),
            var other => throw new CliException($"unknown --model '{other}' (use echo, random or server)"),
        };
        return DemoModels.Delayed(DemoModels.Burning(handlers, TimeSpan.FromMilliseconds(cpuMs)), TimeSpan.FromMilliseconds(delayMs));
    }

    /// <summary>The <c>--model.cpu_ms</c> option: a fixed CPU cost per call (benchmarks: the front's cost next to a model that computes).</summary>
    public static Option<double> CpuOption() => new("--model.cpu_ms")
    {
        Description = "Fixed CPU cost of each call in ms (the call's thread spins for that much of its own CPU time, as a model computing on the CPU would; default 0)",
    };

    /// <summary>
    /// <c>--model server</c>: the TorchSharp <c>ServerTextModel</c> that <c>btcli run server</c> hosts (its <c>bittensor.model</c>
    /// settings, batching, queue), behind the runtime's model host; null for the delegate models.
    /// </summary>
    public static Props? ServerModel(string? name, Config hocon, int delayMs, double cpuMs)
    {
        if (name != "server") return null;
        if (delayMs != 0 || cpuMs != 0) throw new CliException("--model.delay_ms / --model.cpu_ms are for --model echo|random; the server model costs what it computes");
        if (Bittensor.Models.TorchNative.Check() is { } why) throw new CliException(why);
        return Bittensor.Neurons.Roles.ServerModelHost.Props(CliConfig.Settings(hocon, ModelSettings.SectionPath, ModelSettings.Create));
    }

    public static ClusterFlags AddTo(Command command, bool worker = false)
    {
        var flags = new ClusterFlags();
        command.Options.Add(flags.Hostname);
        command.Options.Add(flags.Port);
        command.Options.Add(flags.SeedNodes);
        command.Options.Add(flags.DataPlane);
        command.Options.Add(flags.JoinTimeout);
        command.Options.Add(flags.DownAllWhenUnstable);
        if (worker) command.Options.Add(flags.Capacity);
        if (worker) command.Options.Add(flags.DataPort);
        if (worker) command.Options.Add(flags.Rejoin);
        return flags;
    }

    /// <summary>The flags as dotted HOCON keys for <see cref="CliConfig.Load"/>.</summary>
    public IEnumerable<(string Key, object? Value)> Values(ParseResult parse)
    {
        yield return ("bittensor.cluster.hostname", parse.GetValue(Hostname));
        yield return ("bittensor.cluster.port", parse.GetValue(Port));
        if (parse.GetValue(SeedNodes) is { } seeds)
            yield return ("bittensor.cluster.seed_nodes", seeds.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        yield return ("bittensor.cluster.worker.capacity", parse.GetValue(Capacity));
        yield return ("bittensor.cluster.worker.data_port", parse.GetValue(DataPort));
        yield return ("bittensor.cluster.join_timeout", parse.GetValue(JoinTimeout));
        yield return ("bittensor.cluster.sbr_down_all_when_unstable", parse.GetValue(DownAllWhenUnstable));
        if (parse.GetValue(Rejoin) is { } rejoin)
        {
            yield return ("bittensor.cluster.worker.rejoin", rejoin switch
            {
                "on" => true,
                "off" => false,
                _ => throw new CliException($"--cluster.rejoin must be on or off, not '{rejoin}'"),
            });
        }
        if (parse.GetValue(DataPlane) is { } dataPlane)
        {
            yield return ("bittensor.cluster.data_plane", dataPlane switch
            {
                "on" => true,
                "off" => false,
                _ => throw new CliException($"--cluster.data_plane must be on or off, not '{dataPlane}'"),
            });
        }
    }
}

internal static partial class AxonCommands
{
    private static Command Worker()
    {
        var model = new Option<string>("--model")
        {
            Description = "echo (deterministic: out[b,s,d] = token*1e-3 + d*1e-6), random, or server (the TorchSharp model of `btcli run server`, bittensor.model.*)",
            DefaultValueFactory = _ => "echo",
        };
        var workers = new Option<int?>("--axon.max_workers") { Description = "Calls this worker's model runs at once (default 10)" };
        var queue = new Option<int?>("--axon.queue_capacity") { Description = "Calls that may wait at this worker's model (default 256)" };
        var delay = new Option<int>("--model.delay_ms") { Description = "Fixed cost of each call in ms (the model waits, as a GPU-bound one would; default 0)" };
        var worker = new Command("worker", "Host a model replica for a cluster front (btcli axon serve --cluster.role front); " +
            "Ctrl-C / SIGTERM drains the calls in flight, then leaves the cluster (docs/cluster.md)");
        worker.Options.Add(model);
        worker.Options.Add(workers);
        worker.Options.Add(queue);
        worker.Options.Add(delay);
        var cpu = ClusterFlags.CpuOption();
        worker.Options.Add(cpu);
        var flags = ClusterFlags.AddTo(worker, worker: true);
        var config = CliConfig.AddTo(worker);
        var logging = CliLogging.AddFlags(worker);
        worker.SetAction(async (parse, ct) =>
        {
            var hocon = CliConfig.Load(parse, config,
            [
                .. logging(parse),
                ("bittensor.axon.max_workers", parse.GetValue(workers)),
                ("bittensor.axon.queue_capacity", parse.GetValue(queue)),
                .. flags.Values(parse),
            ]);
            var axon = CliConfig.Settings(hocon, AxonSettings.SectionPath, AxonSettings.Create);
            var cluster = CliConfig.Settings(hocon, ClusterSettings.SectionPath, ClusterSettings.Create);
            if (cluster.Role == ClusterSettings.FrontRole)
                throw new CliException("bittensor.cluster.role = front: a front is `btcli axon serve --cluster.role front`; `axon worker` hosts a model");
            if (cluster.SeedNodes.Count == 0)
                throw new CliException("a worker joins a cluster through --cluster.seed_nodes HOST:PORT (the front's --cluster.port)");
            var name = parse.GetValue(model);
            var capacity = cluster.WorkerCapacity > 0 ? cluster.WorkerCapacity : axon.MaxWorkers + axon.QueueCapacity;
            // The server model is not averaged here (`btcli run server --cluster.role worker` does that): a replica for benchmarks.
            var host = ClusterFlags.ServerModel(name, hocon, parse.GetValue(delay), parse.GetValue(cpu))
                ?? ModelHostActor.ForHandlers(ClusterFlags.Model(name, parse.GetValue(delay), axon.NetworkDim, parse.GetValue(cpu)),
                    axon.MaxWorkers, axon.QueueCapacity, axon.CallTimeout);
            return await RunWorker(hocon, cluster with { Role = ClusterSettings.WorkerRole }, host, name!, capacity, ct).ConfigureAwait(false);
        });
        return worker;
    }

    /// <summary>Start of the line a worker prints each time a front acknowledged it.</summary>
    internal const string RegisteredLine = ProcessNetwork.WorkerRegisteredLine;

    /// <summary>Start of the line a worker prints when it drained and left after Ctrl-C (then "; it served N calls, M on the data plane").</summary>
    internal const string LeftLine = ProcessNetwork.WorkerLeftLine;

    /// <summary>
    /// Runs a worker node hosting <paramref name="host"/> until Ctrl-C (drain, leave: 0) or until its host stops, or it is
    /// downed with <c>bittensor.cluster.worker.rejoin = off</c> (1). Downed with rejoin on (the default), it joins again as a
    /// new node (<see cref="ClusterWorkerNode"/>) and says so on stderr.
    /// </summary>
    internal static async Task<int> RunWorker(Config hocon, ClusterSettings cluster, Props host, string model, int capacity, CancellationToken cancellation,
        bool hostedParameters = false)
    {
        var config = ConfigurationFactory.ParseString("akka.coordinated-shutdown.run-by-clr-shutdown-hook = off").WithFallback(hocon);
        using var logs = CliLogging.Start(hocon);
        // A model that cannot start (bad checkpoint, out of memory at load): its reason goes into the error line.
        using var gaveUpStop = new CancellationTokenSource();
        Task<ModelHostGaveUp>? gaveUp = null;
        // How many calls it served: each node's worker publishes its counts once it drained (ClusterWorkerDrained), and the
        // node's last shutdown phase adds them. Before, that phase asked the worker, after the cluster had shut down, with a
        // 5 s timeout equal to the phase's own: on a starved machine the phase could end first and the line had no counts
        // (a candidate for the kill -9 demo's missing stop line, which was not reproduced).
        long served = 0, servedOnData = 0;
        var counted = false;
        var node = ClusterWorkerNode.Start(cluster, host, capacity, config, loggerFactory: logs.Factory, hostedParameters: hostedParameters,
            // Each node's system (a new one after a rejoin) bounds how long the process waits after Ctrl-C: its drain included.
            created: system => gaveUp = ModelHostEvents.GaveUpAsync(Termination.Allow(system), gaveUpStop.Token), started: n =>
        {
            var system = n.System;
            var self = Akka.Cluster.Cluster.Get(system);
            Console.Error.WriteLine(n.Number == 1
                ? $"worker {self.SelfAddress} joining {string.Join(",", cluster.SeedNodes)}: model {model}, capacity {capacity}; Ctrl-C to drain and leave"
                : $"{RejoinLine} {self.SelfAddress} (node {n.Number} of this worker) joining {string.Join(",", cluster.SeedNodes)}");
            self.RegisterOnMemberUp(() => Console.Error.WriteLine($"worker {self.SelfAddress} is up in the cluster"));
            // One line each time a front acknowledges this worker (btcli demo --processes waits for it before its validator starts).
            system.ActorOf(EventForwarder<ClusterWorkerJoinedFront>.Props(j =>
                Console.Error.WriteLine($"{RegisteredLine} {j.Front} ({j.Workers} workers there)")), "joined-front-lines");
            system.ActorOf(EventForwarder<ClusterWorkerFirstCall>.Props(f => Console.Error.WriteLine($"{ProcessNetwork.WorkerFirstCallLine} {f.Front}")), "first-call-line");
            var drained = new TaskCompletionSource<ClusterWorkerDrained>(TaskCreationOptions.RunContinuationsAsynchronously);
            system.ActorOf(EventForwarder<ClusterWorkerDrained>.Props(d => drained.TrySetResult(d)), "drained-counts");
            CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeActorSystemTerminate, "worker-served", async () =>
            {
                try
                {
                    // Published in before-cluster-shutdown, phases ago: normally here already; the wait covers a forwarder
                    // not yet run on a starved machine. No drain (the worker actor had stopped): nothing to count.
                    var d = await drained.Task.WaitAsync(TimeSpan.FromSeconds(4)).ConfigureAwait(false);
                    Interlocked.Add(ref served, d.Served);
                    Interlocked.Add(ref servedOnData, d.ServedOnDataPlane);
                    Volatile.Write(ref counted, true);
                }
                catch (TimeoutException)
                {
                }
                return Akka.Done.Instance;
            });
        });
        ClusterWorkerNodeEnd end;
        using (cancellation.Register(() => _ = node.LeaveAsync()))
            end = await node.Completion.ConfigureAwait(false);
        if (end == ClusterWorkerNodeEnd.Left || cancellation.IsCancellationRequested)
        {
            Console.Error.WriteLine($"{LeftLine}{(Volatile.Read(ref counted) ? $"; it served {Interlocked.Read(ref served)} calls, {Interlocked.Read(ref servedOnData)} on the data plane" : "")}");
            return 0;
        }
        var why = gaveUp is { IsCompletedSuccessfully: true } g ? $": its model cannot start ({g.Result.Attempts} tries): {g.Result.Reason}" : "";
        await gaveUpStop.CancelAsync().ConfigureAwait(false);
        Console.Error.WriteLine(end switch
        {
            ClusterWorkerNodeEnd.WorkerStopped => $"error: the worker's model host stopped{why}; the worker left the cluster",
            ClusterWorkerNodeEnd.Downed => "error: the worker was downed by the cluster (bittensor.cluster.worker.rejoin = off); restart it to rejoin",
            ClusterWorkerNodeEnd.JoinFailed => $"error: {node.Failure}",
            _ => $"error: the worker's cluster node stopped ({node.Failure ?? CoordinatedShutdown.Get(node.Current.System).ShutdownReason?.GetType().Name ?? "stopped"}); restart it to rejoin",
        });
        return CliApp.UserError;
    }

    /// <summary>Start of the line a worker prints when the cluster downed it while alive and it joins again as a new node.</summary>
    internal const string RejoinLine = "worker was downed by the cluster while alive; joining again as";
}
