using System.Globalization;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Akka.Event;

namespace Bittensor.Actors.Cluster;

/// <summary>
/// Starting the nodes of a clustered miner (docs/cluster.md): <see cref="CreateSystem"/> builds a node's actor system
/// (Akka.Cluster over Akka.Remote's TCP transport, the two cluster serializers, the split-brain resolver) and joins
/// the seed nodes; <see cref="StartFront"/> makes a node front-capable (the front is a cluster singleton: the oldest
/// front-capable node serves the axon) and <see cref="StartWorker"/> starts a worker.
/// </summary>
public static class BittensorCluster
{
    /// <summary>Largest message between nodes (a [batch, seq, 1024] float answer is 4 KiB per token). 32 MiB.</summary>
    public const int MaxFrameBytes = 32 * 1024 * 1024;

    /// <summary>
    /// Floats in one chunk of a parameter vector crossing the cluster for averaging (4 MiB): a replica's parameters,
    /// the average and the checkpoint travel as consecutive chunks of at most this many, so a model of any size fits
    /// frames of <see cref="MaxFrameBytes"/> (docs/cluster.md "Parameter averaging").
    /// </summary>
    public const int ParameterChunkFloats = 1 << 20;

    /// <summary>Largest model averaged across workers: 2^28 floats (1 GiB per copy). A bigger one is refused at start.</summary>
    public const int MaxAveragedParameters = 1 << 28;

    /// <summary>
    /// The serializers of the cluster's messages: tensors with <see cref="ClusterTensorSerializer"/>, control messages
    /// with <see cref="ClusterControlSerializer"/> (protobuf).
    /// </summary>
    public static Config SerializationConfig { get; } = ConfigurationFactory.ParseString($$"""
        akka.actor {
          serializers {
            bittensor-cluster-tensor = "{{typeof(ClusterTensorSerializer).AssemblyQualifiedName}}"
            bittensor-cluster-control = "{{typeof(ClusterControlSerializer).AssemblyQualifiedName}}"
          }
          serialization-bindings {
            "{{typeof(IClusterTensorMessage).AssemblyQualifiedName}}" = bittensor-cluster-tensor
            "{{typeof(IClusterControlMessage).AssemblyQualifiedName}}" = bittensor-cluster-control
          }
        }
        """);

    /// <summary>
    /// The Akka configuration of one node with <paramref name="role"/> (front or worker): cluster provider, this node's
    /// hostname/port, the split-brain resolver (<see cref="ClusterSettings.SbrStrategy"/> counted over
    /// <see cref="ClusterSettings.SbrRole"/>), the failure detector's acceptable heartbeat pause, the drain phase's
    /// timeout, how long joining the seed nodes may take (<see cref="ClusterSettings.JoinTimeout"/>), a front's scheduler tick (<see cref="ClusterSettings.FrontSchedulerTick"/>), and the serializers. Seed nodes are joined by <see cref="CreateSystem"/>, not here.
    /// </summary>
    public static Config NodeConfig(ClusterSettings settings, string role)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (role is not (ClusterSettings.FrontRole or ClusterSettings.WorkerRole))
            throw new ArgumentException($"cluster role must be {ClusterSettings.FrontRole} or {ClusterSettings.WorkerRole}, not '{role}'", nameof(role));
        var drainPhase = settings.DrainTimeout + TimeSpan.FromSeconds(5);
        // A front's scheduler ticks coarser than Akka's 10 ms (ClusterSettings.FrontSchedulerTick: its idle cost), and
        // the cluster's periodic tasks use that scheduler (a cluster tick shorter than the default's would start a
        // second scheduler). Workers keep Akka's tick: their model host's batching wait runs on it.
        var tick = role == ClusterSettings.FrontRole
            ? string.Create(CultureInfo.InvariantCulture, $"""
                akka.scheduler.tick-duration = {(long)settings.FrontSchedulerTick.TotalMilliseconds}ms
                akka.cluster.scheduler.tick-duration = {(long)settings.FrontSchedulerTick.TotalMilliseconds}ms
                """)
            : "";
        var text = string.Create(CultureInfo.InvariantCulture, $$"""
            akka {
              actor.provider = cluster
              remote.dot-netty.tcp {
                hostname = "{{settings.Hostname}}"
                port = {{settings.Port}}
                maximum-frame-size = {{MaxFrameBytes}}b
                send-buffer-size = {{MaxFrameBytes + 1024}}b
                receive-buffer-size = {{MaxFrameBytes + 1024}}b
              }
              cluster {
                roles = ["{{role}}"]
                failure-detector.acceptable-heartbeat-pause = {{(long)settings.AcceptableHeartbeatPause.TotalMilliseconds}}ms
                downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
                split-brain-resolver {
                  active-strategy = {{settings.SbrStrategy}}
                  stable-after = {{(long)settings.SbrStableAfter.TotalMilliseconds}}ms
                  down-all-when-unstable = {{OffOrMs(settings.SbrDownAllWhenUnstable)}}
                  keep-majority.role = "{{settings.SbrRole}}"
                  keep-oldest {
                    role = "{{settings.SbrRole}}"
                    down-if-alone = on
                  }
                }
                run-coordinated-shutdown-when-down = on
                shutdown-after-unsuccessful-join-seed-nodes = {{OffOrMs(settings.JoinTimeout)}}
              }
              coordinated-shutdown.phases.before-cluster-shutdown.timeout = {{(long)drainPhase.TotalMilliseconds}}ms
            }
            {{tick}}
            """);
        return ConfigurationFactory.ParseString(text).WithFallback(SerializationConfig)
            .WithFallback(Akka.Cluster.Tools.Singleton.ClusterSingleton.DefaultConfig());
    }

    // A HOCON duration in milliseconds, or off.
    private static string OffOrMs(TimeSpan? value) =>
        value is { } v ? ((long)v.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms" : "off";

    /// <summary>
    /// Creates the actor system of a node: <paramref name="overrides"/> (e.g. test settings) over
    /// <see cref="NodeConfig"/> over <paramref name="config"/> (the caller's layered configuration). Then joins: the seed
    /// nodes when there are any, else itself (the first front).
    /// </summary>
    public static ActorSystem CreateSystem(ClusterSettings settings, string role, Config? config = null, Config? overrides = null,
        Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null)
    {
        var full = NodeConfig(settings, role);
        if (config is not null) full = full.WithFallback(config);
        if (overrides is not null) full = overrides.WithFallback(full);
        var system = Logging.BittensorLogging.CreateSystem(settings.SystemName, full, loggerFactory);
        _ = BittensorRuntime.Get(system);
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (settings.SeedNodes.Count == 0) cluster.Join(cluster.SelfAddress);
        else cluster.JoinSeedNodes(settings.SeedNodes.Select(s => Address.Parse(ClusterSettings.SeedAddress(s, settings.SystemName))));
        return system;
    }

    /// <summary>
    /// Why a front-capable node's actor system ended when nobody asked it to (the verbs print it and exit 1): downed by the
    /// cluster while alive (a front does not rejoin by itself: docs/cluster.md "Split brain"), its seed nodes never
    /// answered within <see cref="ClusterSettings.JoinTimeout"/>, or another reason by name.
    /// </summary>
    public static string FrontNodeEnded(ActorSystem system, ClusterSettings settings)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(settings);
        return CoordinatedShutdown.Get(system).ShutdownReason switch
        {
            CoordinatedShutdown.ClusterDowningReason =>
                "this front node was downed by the cluster while alive (the split-brain resolver took it for dead: a stalled process or machine, " +
                "or a partition); a front node does not rejoin by itself: restart it with bittensor.cluster.seed_nodes naming a live node",
            CoordinatedShutdown.ClusterJoinUnsuccessfulReason => JoinFailed("this front node", settings),
            var reason => $"this front node was removed from the cluster ({reason?.GetType().Name ?? "stopped"}); restart it to rejoin",
        };
    }

    /// <summary>The line for a node (<paramref name="what"/>) whose seed nodes never answered within <see cref="ClusterSettings.JoinTimeout"/>.</summary>
    public static string JoinFailed(string what, ClusterSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var within = settings.JoinTimeout is { } t ? t.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + " s" : "its join timeout";
        return $"{what} could not join the cluster through {string.Join(", ", settings.SeedNodes)} within {within} " +
            "(bittensor.cluster.join_timeout): no seed node answered; start a node there or name a live one in bittensor.cluster.seed_nodes, then restart it";
    }

    /// <summary>
    /// Makes this node front-capable: starts the front's singleton manager as <c>/user/cluster-front</c>. The oldest
    /// front-capable node of the cluster runs the front (<see cref="ClusterFrontSingleton"/>: the router and the axon
    /// built by <paramref name="axonProps"/> around it); when that node dies or leaves, the next oldest takes over
    /// and binds its own axon. <see cref="ClusterFrontActivated"/> / <see cref="ClusterFrontDeactivated"/> on the
    /// system's event stream say when this node's front serves and stops.
    /// </summary>
    /// <param name="system">A node of role front (<see cref="CreateSystem"/>).</param>
    /// <param name="settings">The cluster settings.</param>
    /// <param name="axonProps">The axon, given the router as its model host (e.g. <c>r => AxonActor.Props(axon, r, options)</c>).</param>
    /// <param name="time">Clock of the router's deadlines.</param>
    public static IActorRef StartFront(ActorSystem system, ClusterSettings settings, Func<IActorRef, Props> axonProps, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(axonProps);
        if (!Akka.Cluster.Cluster.Get(system).SelfRoles.Contains(ClusterSettings.FrontRole))
            throw new InvalidOperationException($"this node has no {ClusterSettings.FrontRole} role; create it with CreateSystem(settings, \"{ClusterSettings.FrontRole}\")");
        var singleton = ClusterFrontSingleton.Props(settings, axonProps, time);
        var managerSettings = Akka.Cluster.Tools.Singleton.ClusterSingletonManagerSettings.Create(system)
            .WithRole(ClusterSettings.FrontRole).WithSingletonName(ClusterSettings.FrontSingletonName);
        return system.ActorOf(Akka.Cluster.Tools.Singleton.ClusterSingletonManager.Props(singleton, StopFront.Instance, managerSettings), ClusterSettings.FrontName);
    }

    /// <summary>
    /// The front's activations and deactivations on this node (<see cref="ClusterFrontActivated"/>,
    /// <see cref="ClusterFrontDeactivated"/>) as a channel, for code outside actors (the CLI prints them). Bounded: at
    /// most <paramref name="capacity"/> unread events are kept, the oldest dropped first. Subscribe before
    /// <see cref="StartFront"/> so the first activation is not missed.
    /// </summary>
    public static System.Threading.Channels.ChannelReader<object> FrontEvents(ActorSystem system, int capacity = 64)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        var channel = System.Threading.Channels.Channel.CreateBounded<object>(new System.Threading.Channels.BoundedChannelOptions(capacity)
        {
            FullMode = System.Threading.Channels.BoundedChannelFullMode.DropOldest, SingleReader = false, SingleWriter = true,
        });
        var listener = system.ActorOf(FactoryProps.For(() => new FrontEventListener(channel.Writer)));
        system.EventStream.Subscribe(listener, typeof(ClusterFrontActivated));
        system.EventStream.Subscribe(listener, typeof(ClusterFrontDeactivated));
        _ = system.WhenTerminated.ContinueWith(_ => channel.Writer.TryComplete(), TaskScheduler.Default);
        return channel.Reader;
    }

    /// <summary>
    /// Writes one line through <paramref name="write"/> each time this node sees a member become Up (the members already
    /// up when it starts included): "cluster member ADDRESS (ROLES) is up". A standby front prints it too, so an operator
    /// (or a test) knows which members this node's split-brain resolver counts before a front is stopped.
    /// </summary>
    public static void LogMembersUp(ActorSystem system, Action<string> write)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(write);
        var logger = system.ActorOf(FactoryProps.For(() => new MemberUpLogger(write)));
        Akka.Cluster.Cluster.Get(system).Subscribe(logger, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp));
    }

    private sealed class MemberUpLogger : ReceiveActor
    {
        public MemberUpLogger(Action<string> write)
        {
            Receive<ClusterEvent.MemberUp>(m => write($"cluster member {m.Member.Address} ({string.Join(",", m.Member.Roles)}) is up"));
            ReceiveAny(_ => { });
        }
    }

    private sealed class FrontEventListener : ReceiveActor
    {
        public FrontEventListener(System.Threading.Channels.ChannelWriter<object> writer) => ReceiveAny(m => writer.TryWrite(m));
    }

    /// <summary>
    /// Starts a worker as <c>/user/cluster-worker</c> hosting the model host built from <paramref name="hostProps"/>, and
    /// adds the CoordinatedShutdown task that drains it before the node leaves the cluster (phase before-cluster-shutdown).
    /// </summary>
    /// <param name="system">A node of role worker.</param>
    /// <param name="settings">The cluster settings.</param>
    /// <param name="hostProps">The model host.</param>
    /// <param name="capacity">Calls the worker takes at once.</param>
    /// <param name="parameters">The replica's parameters when its model takes part in averaging (docs/cluster.md "Parameter averaging").</param>
    /// <param name="hostedParameters">The host's own model (a hosted <c>ITextModel</c> that implements <c>IFlatParameters</c>)
    /// takes part in averaging, through the host's queue.</param>
    public static IActorRef StartWorker(ActorSystem system, ClusterSettings settings, Props hostProps, int capacity, IReplicaParameters? parameters = null,
        bool hostedParameters = false) => StartReplicaWorker(system, settings, hostProps, capacity, parameters, hostedParameters, memory: null);

    /// <summary>As the public overload; <paramref name="memory"/> carries a replica's averaging state across the nodes of a <see cref="ClusterWorkerNode"/>.</summary>
    internal static IActorRef StartReplicaWorker(ActorSystem system, ClusterSettings settings, Props hostProps, int capacity, IReplicaParameters? parameters,
        bool hostedParameters, ClusterWorkerMemory? memory)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(settings);
        // The data plane (docs/cluster.md "Data plane"): bound now, so a port in use is an error here; it lives as long
        // as the node's actor system.
        DataPlaneListener? listener = null;
        if (settings.DataPlane)
        {
            var log = Akka.Event.Logging.GetLogger(system, "cluster-data-plane");
            listener = DataPlaneListener.Bind(settings.Hostname, settings.DataPort, Akka.Cluster.Cluster.Get(system).SelfAddress.ToString(),
                ClusterFrontActor.MaxQueuedPerConnection, m => log.Warning(m));
            _ = system.WhenTerminated.ContinueWith(_ => listener.Dispose(), TaskScheduler.Default);
        }
        IActorRef worker;
        try
        {
            worker = system.ActorOf(ClusterWorkerActor.ReplicaProps(settings, hostProps, capacity, parameters, hostedParameters, listener?.Port ?? 0, memory),
                ClusterSettings.WorkerName);
        }
        catch
        {
            listener?.Dispose();
            throw;
        }
        if (listener is not null)
        {
            var l = listener;
            l.Start(connection => connection.Start((c, kind, payload) =>
            {
                switch (kind)
                {
                    case DataPlaneFrames.Call:
                        worker.Tell(new ClusterWorkerActor.DataCall(c, ClusterTensorSerializer.ReadCall(payload)));
                        break;
                    case DataPlaneFrames.Averaged:
                        worker.Tell(new ClusterWorkerActor.DataAveraged(c, ClusterTensorSerializer.ReadAveraged(payload)));
                        break;
                    case DataPlaneFrames.DrainAck:
                        if (payload.Length != 0) throw new DataPlaneException("data plane: a drain acknowledgement with a payload");
                        worker.Tell(new ClusterWorkerActor.DataDrainAck(c));
                        break;
                    default:
                        throw new DataPlaneException($"data plane: the front sent frame kind {kind}; calls, averages and drain acknowledgements are expected");
                }
            }, (c, reason) =>
            {
                l.Closed(c);
                if (!reason.StartsWith("the peer closed", StringComparison.Ordinal) && !reason.StartsWith("the worker's data plane stopped", StringComparison.Ordinal))
                    Akka.Event.Logging.GetLogger(system, "cluster-data-plane").Warning("cluster worker: the data connection from {0} closed: {1}", c.Peer, reason);
            }));
        }
        var drainFor = settings.DrainTimeout + TimeSpan.FromSeconds(2);
        CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeClusterShutdown, "bittensor-worker-drain", async () =>
        {
            try
            {
                await worker.Ask<Akka.Done>(DrainWorker.Instance, drainFor).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                // The worker answers at drain_timeout itself; a dead worker has nothing left to drain.
            }
            return Akka.Done.Instance;
        });
        return worker;
    }
}
