using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.ModelHost;
using Bittensor.Actors.Tests.Axon;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// Several cluster nodes in this test process: each an ActorSystem of its own on loopback (port 0), every message
/// checked by serialization (<c>akka.actor.serialize-messages = on</c>), a real Kestrel axon on the front.
/// </summary>
public abstract class ClusterTestBase(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    /// <summary>
    /// The collection of the specs that start cluster nodes: they run alone, one class at a time. Several nodes per
    /// spec share this process; next to other parallel classes on a busy 2-core machine their actors went unanswered
    /// for 20 s and more (take-over specs failed in full runs at load 47–60).
    /// </summary>
    public const string Nodes = "cluster nodes";

    protected const int Dim = 16;

    private readonly List<ActorSystem> _nodes = [];
    private readonly List<ClusterWorkerNode> _workerNodes = [];
    private readonly Xunit.Abstractions.ITestOutputHelper _output = output;

    /// <summary>
    /// A node's warnings and errors in the test's output, named by the node's port (unreachability marks, the split-brain
    /// resolver's decisions, downing): a failure shows what each node saw, not only the end state.
    /// </summary>
    private sealed class NodeLog : ReceiveActor
    {
        public NodeLog(Xunit.Abstractions.ITestOutputHelper output, int port) => Receive<Akka.Event.LogEvent>(e =>
        {
            try
            {
                output.WriteLine($"[node {port} {e.LogLevel()} {e.Timestamp:HH:mm:ss.fff} {e.LogSource}] {e.Message}");
            }
            catch (InvalidOperationException)
            {
                // The test is over.
            }
        });
    }

    protected void Logged(ActorSystem node)
    {
        var log = node.ActorOf(Props.Create(() => new NodeLog(_output, Akka.Cluster.Cluster.Get(node).SelfAddress.Port ?? 0)), "test-node-log");
        node.EventStream.Subscribe(log, typeof(Akka.Event.Warning));
        node.EventStream.Subscribe(log, typeof(Akka.Event.Error));
    }

    /// <summary>
    /// The failure detector's acceptable heartbeat pause on every node these specs start (not
    /// <see cref="SplitBrainUnstableSpec"/>'s, whose 3 s is its subject). No spec but that one tests failure detection:
    /// a live node marked unreachable only breaks them (an averaging round then counts one replica less, a take-over's
    /// surviving front or a worker is downed). Several nodes share this process beside the rest of the suite; on a
    /// starved machine (one core at load ~68, docs/testing.md "Session 25, flake-a") a live node's heartbeats came 14 s
    /// late, past the 10 s these specs had, so 30 s. Akka.NET 1.5.75's phi-accrual detector (heartbeats every 1 s,
    /// threshold 8, min-std-deviation 100 ms) marks a silent node unreachable about 0.5 s past this pause plus the mean
    /// interval, checked every 1 s (unreachable-nodes-reaper-interval): a node that really dies (the take-over specs
    /// terminate the front's actor system without leaving: its transport is gone, nobody is told) is marked unreachable
    /// ~32 s after its last heartbeat, downed by the resolver after <c>sbr_stable_after</c> (7 s), and the front
    /// singleton moves once it is removed and the hand-over has waited stable-after again (down-removal-margin off,
    /// docs/cluster.md): ~50 s on an idle machine, awaited as an event within <see cref="TakeOverBound"/>.
    /// Specs that need a live node gone at once down it (<c>Cluster.Down</c>) or let it leave (CoordinatedShutdown).
    /// </summary>
    protected static readonly TimeSpan HeartbeatPause = TimeSpan.FromSeconds(30);

    /// <summary>Hang guard of a take-over: the dead front's detection and hand-over (see <see cref="HeartbeatPause"/>, ~50 s idle) several times over.</summary>
    protected static readonly TimeSpan TakeOverBound = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Every node runs with these: messages serialized on every Tell (Akka's node-local cluster events exempt, see
    /// <see cref="LocalEventSerializer"/>: the JSON fallback dropped ReachabilityChanged, so the split-brain resolver
    /// never downed a killed front and take-over specs timed out), quiet logs, and a failure detector that
    /// tolerates <see cref="HeartbeatPause"/> of heartbeat silence.
    /// The resolver's "down all when unstable" is the shipped one (<c>bittensor.cluster.sbr_down_all_when_unstable</c>,
    /// off): with it on, at load 45-55 a worker that had not yet heard that the leader downed the killed front (gossip
    /// late) downed the whole cluster, itself included, 13 s after the kill.
    /// </summary>
    protected static readonly Config TestOverrides = ConfigurationFactory.ParseString($$"""
        akka.cluster.failure-detector.acceptable-heartbeat-pause = {{(long)HeartbeatPause.TotalSeconds}}s
        akka.loglevel = WARNING
        akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
        """).WithFallback(LocalEventSerializer.SerializeMessagesCheck);

    protected static ClusterSettings Settings(params IReadOnlyList<string> seeds) => ClusterSettings.Default with
    {
        Hostname = "127.0.0.1", Port = 0, SeedNodes = seeds, DrainTimeout = TimeSpan.FromSeconds(60), RegisterInterval = TimeSpan.FromMilliseconds(300),
        AveragingInterval = TimeSpan.Zero, // rounds only on AverageNow, unless a test sets an interval
    };

    /// <summary>The first front node: it seeds itself, becomes the front singleton and serves its router behind an axon (real gRPC on loopback port 0).</summary>
    protected async Task<(ActorSystem System, IActorRef Front, int AxonPort)> StartFront(AxonSettings? axon = null)
    {
        var (system, events) = StartFrontNode(axon);
        var active = await Activated(events, TimeSpan.FromSeconds(60));
        return (system, active.Router, active.Endpoint.Port);
    }

    /// <summary>
    /// A front-capable node (joined through <paramref name="seeds"/>, or the first one): its events (activation,
    /// deactivation) are read from the returned probe, subscribed before the singleton manager starts.
    /// </summary>
    protected (ActorSystem System, Akka.TestKit.TestProbe Events) StartFrontNode(AxonSettings? axon = null, Config? extra = null,
        Func<ClusterSettings, ClusterSettings>? adjust = null, params string[] seeds)
    {
        var settings = adjust is null ? Settings(seeds) : adjust(Settings(seeds));
        var overrides = extra is null ? TestOverrides : extra.WithFallback(TestOverrides);
        var system = BittensorCluster.CreateSystem(settings, ClusterSettings.FrontRole, overrides: overrides);
        lock (_nodes) _nodes.Add(system);
        Logged(system);
        var probe = CreateTestProbe(system);
        system.EventStream.Subscribe(probe.Ref, typeof(ClusterFrontActivated));
        system.EventStream.Subscribe(probe.Ref, typeof(ClusterFrontDeactivated));
        var axonSettings = axon ?? Loopback(networkDim: Dim, callTimeout: TimeSpan.FromSeconds(60));
        BittensorCluster.StartFront(system, settings, router => AxonActor.Props(axonSettings, router));
        return (system, probe);
    }

    /// <summary>The next activation of the front on the node of <paramref name="events"/> (fails on a deactivation by failure first).</summary>
    protected static async Task<ClusterFrontActivated> Activated(Akka.TestKit.TestProbe events, TimeSpan within)
    {
        var message = await events.FishForMessageAsync(m => m is ClusterFrontActivated || m is ClusterFrontDeactivated { Failed: true }, within);
        return message as ClusterFrontActivated ?? throw new Xunit.Sdk.XunitException($"the front failed on this node: {((ClusterFrontDeactivated)message).Reason}");
    }

    /// <summary>A worker node joined through <paramref name="front"/>'s node, hosting <paramref name="handlers"/>.</summary>
    protected ActorSystem StartWorker(ActorSystem front, AxonHandlers handlers, int concurrency = 4, int queue = 16, Config? extra = null)
    {
        var settings = Settings(Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        return StartWorker(settings, ModelHostActor.ForHandlers(handlers, concurrency, queue, TimeSpan.FromSeconds(60)), concurrency + queue, extra);
    }

    /// <summary>A worker node with <paramref name="settings"/> hosting <paramref name="host"/>.</summary>
    protected ActorSystem StartWorker(ClusterSettings settings, Props host, int capacity, Config? extra = null, IReplicaParameters? parameters = null)
    {
        var overrides = extra is null ? TestOverrides : extra.WithFallback(TestOverrides);
        var system = BittensorCluster.CreateSystem(settings, ClusterSettings.WorkerRole, overrides: overrides);
        lock (_nodes) _nodes.Add(system);
        Logged(system);
        BittensorCluster.StartWorker(system, settings, host, capacity, parameters);
        return system;
    }

    /// <summary>
    /// A worker as a worker process runs it (<see cref="ClusterWorkerNode"/>, as <c>btcli axon worker</c>): downed while
    /// alive, it joins again as a new node (<paramref name="adjust"/> may turn that off). <paramref name="started"/> sees
    /// each of its nodes (e.g. to subscribe to the new node's events); each is logged and described like the others.
    /// Its seeds are <paramref name="seeds"/>' nodes: a worker next to a standby front names both fronts (as docs/cluster.md
    /// advises), so that a new node can join while either is alive.
    /// </summary>
    protected ClusterWorkerNode StartWorkerNode(ActorSystem[] seeds, Props host, int capacity, Config? extra = null, IReplicaParameters? parameters = null,
        Func<ClusterSettings, ClusterSettings>? adjust = null, Action<ClusterWorkerIncarnation>? started = null)
    {
        var settings = Settings([.. seeds.Select(n => Akka.Cluster.Cluster.Get(n).SelfAddress.ToString())]);
        if (adjust is not null) settings = adjust(settings);
        var overrides = extra is null ? TestOverrides : extra.WithFallback(TestOverrides);
        var node = ClusterWorkerNode.Start(settings, host, capacity, overrides: overrides, parameters: parameters, started: n =>
        {
            lock (_nodes) _nodes.Add(n.System);
            Logged(n.System);
            started?.Invoke(n);
        });
        lock (_workerNodes) _workerNodes.Add(node);
        return node;
    }

    /// <summary>Terminates <paramref name="node"/> (a node the test made itself) with the others after the test.</summary>
    protected void Track(ActorSystem node)
    {
        lock (_nodes) _nodes.Add(node);
    }

    protected static TensorMessage Row(long first) => Row(first, Alice);

    // Calls in flight at once are signed by different keys: one key's nonces must arrive in order.
    protected static TensorMessage Row(long first, Bittensor.Core.Crypto.Sr25519KeyPair caller) => TextRequest(caller, [1, 3], [first, 7, 9]);

    protected static void AssertEcho(TensorMessage answer, long first)
    {
        Assert.True(answer.ReturnCode == ReturnCode.Success, $"{answer.ReturnCode}: {answer.Message}");
        var decoded = TensorCodec.Decode(answer.Tensors[0]);
        Assert.True(decoded.IsSuccess);
        var floats = decoded.Tensor.ToFloat32Array();
        Assert.Equal(3 * Dim, floats.Length);
        Assert.Equal(first * 1e-3, floats[0], 5);
        Assert.Equal((9 * 1e-3) + ((Dim - 1) * 1e-6), floats[^1], 5);
    }

    /// <summary>Completes when <paramref name="node"/> is Up in the cluster (a standby front is one only from then).</summary>
    protected static Task Up(ActorSystem node)
    {
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Akka.Cluster.Cluster.Get(node).RegisterOnMemberUp(() => up.TrySetResult());
        return up.Task;
    }

    protected static async Task<ClusterFrontStatus> Status(IActorRef front) => await front.Ask<ClusterFrontStatus>(GetClusterFrontStatus.Instance, TimeSpan.FromSeconds(60));

    /// <summary>Waits (event by event, bounded) until the front routes to <paramref name="workers"/> reachable, non-draining workers.</summary>
    /// <remarks>On a timeout the failure names the workers the front knew and their state (a take-over test failed here once
    /// at load ~38 with one of two workers missing; the message tells a worker that never registered from one marked unreachable).</remarks>
    protected async Task AwaitWorkers(IActorRef front, int workers)
    {
        try
        {
            await AwaitAssertAsync(async () => Assert.Equal(workers, (await Status(front)).Workers.Count(w => w.Reachable && !w.Draining)),
                TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));
        }
        catch (Xunit.Sdk.XunitException e)
        {
            var s = await Status(front);
            var known = s.Workers.Count == 0 ? "none" : string.Join("; ", s.Workers.Select(w =>
                $"{w.Replica} at {w.Worker.Path.Address} reachable={w.Reachable} draining={w.Draining} held={w.Held} receiving={w.Receiving} " +
                $"data={w.DataPlane ?? "-"}"));
            var connecting = s.Connecting is { Count: > 0 } c ? string.Join(", ", c) : "none";
            throw new Xunit.Sdk.XunitException($"{workers} reachable, non-draining workers expected; the front knew: {known} " +
                $"(data plane connecting: {connecting}; checkpoint round {s.CheckpointRound}, rounds {s.AveragingRounds}). Nodes: {await DescribeNodes()} {e.Message}");
        }
    }

    // Each live node's own view (its status, the members it sees and which it marks unreachable) and, on a worker node,
    // whether its worker thinks it is registered: tells a worker that was downed from one whose registration is lost.
    protected async Task<string> DescribeNodes()
    {
        var parts = new List<string>();
        ActorSystem[] nodes;
        lock (_nodes) nodes = [.. _nodes];
        foreach (var node in nodes.Where(n => !n.WhenTerminated.IsCompleted))
        {
            var cluster = Akka.Cluster.Cluster.Get(node);
            var state = cluster.State;
            var members = string.Join(", ", state.Members.Select(m => $"{m.Address.Port}:{m.Status}{(state.Unreachable.Contains(m) ? "(unreachable)" : "")}"));
            var worker = "";
            if (cluster.SelfRoles.Contains(ClusterSettings.WorkerRole))
            {
                try
                {
                    var w = await node.ActorSelection($"/user/{ClusterSettings.WorkerName}").Ask<ClusterWorkerState>(GetClusterWorkerState.Instance, TimeSpan.FromSeconds(5));
                    worker = $" worker registered with {w.Front ?? "none"}";
                }
                catch (Exception ex) when (ex is AskTimeoutException or ActorNotFoundException or TaskCanceledException)
                {
                    worker = $" worker: no answer ({ex.GetType().Name})";
                }
            }
            parts.Add($"[{cluster.SelfAddress.Port} {string.Join('/', cluster.SelfRoles)} {cluster.SelfMember.Status}{worker}; sees {members}]");
        }
        return string.Join(" ", parts);
    }

    protected override void AfterAll()
    {
        // Worker nodes first, for good: a worker downed while the others stop must not start a new node after the test.
        ClusterWorkerNode[] workers;
        lock (_workerNodes) workers = [.. _workerNodes];
        foreach (var worker in workers)
        {
            try
            {
                worker.StopAsync().Wait(TimeSpan.FromSeconds(30));
            }
            catch (AggregateException)
            {
            }
        }
        ActorSystem[] all;
        lock (_nodes) all = [.. _nodes];
        foreach (var node in all)
        {
            try
            {
                node.Terminate().Wait(TimeSpan.FromSeconds(30));
            }
            catch (AggregateException)
            {
            }
        }
        base.AfterAll();
    }
}

/// <summary>See <see cref="ClusterTestBase.Nodes"/>.</summary>
[CollectionDefinition(ClusterTestBase.Nodes, DisableParallelization = true)]
public sealed class ClusterNodesCollection;
