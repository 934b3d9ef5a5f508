using Akka.Actor;
using Akka.Configuration;
using Akka.Event;

namespace Bittensor.Actors.Cluster;

/// <summary>One cluster node of a <see cref="ClusterWorkerNode"/>: its number (1 = the first), actor system and worker.</summary>
public sealed record ClusterWorkerIncarnation(int Number, ActorSystem System, IActorRef Worker);

/// <summary>Why a <see cref="ClusterWorkerNode"/> ended.</summary>
public enum ClusterWorkerNodeEnd
{
    /// <summary>It drained and left (<see cref="ClusterWorkerNode.LeaveAsync"/>).</summary>
    Left,

    /// <summary>Its worker stopped (the model host stopped or cannot start); the node left.</summary>
    WorkerStopped,

    /// <summary>The cluster downed it and <see cref="ClusterSettings.Rejoin"/> is off.</summary>
    Downed,

    /// <summary>Its actor system stopped for another reason (terminated from outside, or a new node could not start).</summary>
    Stopped,

    /// <summary>
    /// It could not join any of its seed nodes within <see cref="ClusterSettings.JoinTimeout"/> (none answered: dead, wrong
    /// address, another system name), at start or as a new node after a downing; <see cref="ClusterWorkerNode.Failure"/> says so.
    /// </summary>
    JoinFailed,
}

/// <summary>
/// A worker process's place in the cluster (docs/cluster.md "Split brain"): a cluster node hosting the worker
/// (<see cref="BittensorCluster.CreateSystem"/> + <see cref="BittensorCluster.StartWorker"/>) that, when the cluster
/// <b>downs it while the process is alive</b> — the split-brain resolver took a slow worker for dead (a loaded machine,
/// a long GC pause, a front take-over), or an operator downed it — starts a new node (a new incarnation: same settings,
/// a new actor system and member) and joins again through the seed nodes; it then registers with the front like any
/// joining worker. A downed Akka node cannot rejoin as the same member (its system is shut down by
/// <c>run-coordinated-shutdown-when-down</c>), so without this a live worker was lost to the miner until restarted.
/// With <see cref="ClusterSettings.Rejoin"/> off it ends (<see cref="ClusterWorkerNodeEnd.Downed"/>) and the verbs exit 1.
/// </summary>
/// <remarks>
/// What survives a re-incarnation: the model of an <see cref="IReplicaParameters"/> replica (the same object) and the
/// averaging state that belongs to it (the last average applied and its round: the new node registers with that round,
/// so the front neither overwrites the replica's steps nor loses the checkpoint it could pull from it). A model host
/// (<c>hostProps</c>) is built anew in the new node — a hosted model reloads and registers as a fresh replica (round 0,
/// it gets the front's checkpoint). Calls in flight at the downed node are lost with it (the front re-routes forwards).
/// </remarks>
public sealed class ClusterWorkerNode
{
    /// <summary>The reason a node's CoordinatedShutdown runs with when its worker actor stopped.</summary>
    public sealed class WorkerStoppedReason : CoordinatedShutdown.Reason
    {
        /// <summary>The one instance.</summary>
        public static WorkerStoppedReason Instance { get; } = new();

        private WorkerStoppedReason()
        {
        }

        /// <inheritdoc />
        public override int ExitCode => 1;
    }

    private readonly ClusterSettings _settings;
    private readonly Props _hostProps;
    private readonly int _capacity;
    private readonly Config? _config;
    private readonly Config? _overrides;
    private readonly Microsoft.Extensions.Logging.ILoggerFactory? _loggerFactory;
    private readonly IReplicaParameters? _parameters;
    private readonly bool _hostedParameters;
    private readonly Action<ClusterWorkerIncarnation>? _started;
    private readonly Action<ActorSystem>? _created;
    private readonly ClusterWorkerMemory? _memory;
    private readonly object _gate = new();
    private ClusterWorkerIncarnation _current;
    private bool _leaving;
    private bool _stopping;
    private string? _failure;

    private ClusterWorkerNode(ClusterSettings settings, Props hostProps, int capacity, Config? config, Config? overrides,
        Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory, IReplicaParameters? parameters, bool hostedParameters,
        Action<ClusterWorkerIncarnation>? started, Action<ActorSystem>? created)
    {
        _settings = settings;
        _created = created;
        _hostProps = hostProps;
        _capacity = capacity;
        _config = config;
        _overrides = overrides;
        _loggerFactory = loggerFactory;
        _parameters = parameters;
        _hostedParameters = hostedParameters;
        _started = started;
        // Only a replica whose parameters outlive the node keeps its averaging state across incarnations.
        _memory = parameters is null ? null : new ClusterWorkerMemory();
        _current = Incarnate(1);
        Completion = Task.Run(RunAsync);
    }

    /// <summary>
    /// Starts a worker node (its first incarnation at once: a port in use or bad settings throw here) joining
    /// <see cref="ClusterSettings.SeedNodes"/>.
    /// </summary>
    /// <param name="settings">The cluster settings (<see cref="ClusterSettings.Rejoin"/> decides what a downing does).</param>
    /// <param name="hostProps">The model host (built anew in each incarnation).</param>
    /// <param name="capacity">Calls the worker takes at once.</param>
    /// <param name="config">The caller's layered configuration (under the node's own, as for <see cref="BittensorCluster.CreateSystem"/>).</param>
    /// <param name="overrides">Settings over the node's own (tests).</param>
    /// <param name="loggerFactory">Where the nodes log.</param>
    /// <param name="parameters">The replica's parameters when its model takes part in averaging.</param>
    /// <param name="hostedParameters">The host's own model takes part in averaging (through its queue).</param>
    /// <param name="started">Called with each incarnation once its worker is started (the first before this returns),
    /// e.g. to subscribe to its event stream.</param>
    /// <param name="created">Called with each incarnation's actor system before its worker (and model host) starts.</param>
    public static ClusterWorkerNode Start(ClusterSettings settings, Props hostProps, int capacity, Config? config = null, Config? overrides = null,
        Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null, IReplicaParameters? parameters = null, bool hostedParameters = false,
        Action<ClusterWorkerIncarnation>? started = null, Action<ActorSystem>? created = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(hostProps);
        settings.Validate();
        return new ClusterWorkerNode(settings, hostProps, capacity, config, overrides, loggerFactory, parameters, hostedParameters, started, created);
    }

    /// <summary>The current incarnation (the node serving now, or the last one once <see cref="Completion"/> is done).</summary>
    public ClusterWorkerIncarnation Current
    {
        get
        {
            lock (_gate) return _current;
        }
    }

    /// <summary>Completes when the worker node ends for good, with why (a downing with rejoin on does not end it).</summary>
    public Task<ClusterWorkerNodeEnd> Completion { get; }

    /// <summary>
    /// Why no new node could start after a downing (<see cref="ClusterWorkerNodeEnd.Stopped"/>) or why the node could not join
    /// (<see cref="ClusterWorkerNodeEnd.JoinFailed"/>), else null.
    /// </summary>
    public string? Failure
    {
        get
        {
            lock (_gate) return _failure;
        }
    }

    /// <summary>Drains the worker and leaves the cluster (CoordinatedShutdown of the current node); no further incarnation.</summary>
    public Task LeaveAsync()
    {
        ClusterWorkerIncarnation current;
        lock (_gate)
        {
            _leaving = true;
            current = _current;
        }
        return CoordinatedShutdown.Get(current.System).Run(CoordinatedShutdown.ClrExitReason.Instance);
    }

    /// <summary>Stops the current node at once (no drain, no leave: as its process ending) and starts no other.</summary>
    public async Task<ClusterWorkerNodeEnd> StopAsync()
    {
        ClusterWorkerIncarnation current;
        lock (_gate)
        {
            _stopping = true;
            current = _current;
        }
        await current.System.Terminate().ConfigureAwait(false);
        return await Completion.ConfigureAwait(false);
    }

    private ClusterWorkerIncarnation Incarnate(int number)
    {
        var system = BittensorCluster.CreateSystem(_settings, ClusterSettings.WorkerRole, _config, _overrides, _loggerFactory);
        try
        {
            _created?.Invoke(system);
            var worker = BittensorCluster.StartReplicaWorker(system, _settings, _hostProps, _capacity, _parameters, _hostedParameters, _memory);
            // The worker actor stops only if its model host stopped: then the node leaves (the first reason a
            // CoordinatedShutdown runs with is the one it keeps, so a downing stays a downing).
            _ = worker.WatchAsync(CancellationToken.None).ContinueWith(_ => CoordinatedShutdown.Get(system).Run(WorkerStoppedReason.Instance),
                TaskScheduler.Default);
            var incarnation = new ClusterWorkerIncarnation(number, system, worker);
            _started?.Invoke(incarnation);
            return incarnation;
        }
        catch
        {
            system.Terminate().Wait(TimeSpan.FromSeconds(30));
            throw;
        }
    }

    private async Task<ClusterWorkerNodeEnd> RunAsync()
    {
        while (true)
        {
            var current = Current;
            await current.System.WhenTerminated.ConfigureAwait(false);
            var reason = CoordinatedShutdown.Get(current.System).ShutdownReason;
            lock (_gate)
            {
                if (_leaving) return ClusterWorkerNodeEnd.Left;
                if (_stopping) return ClusterWorkerNodeEnd.Stopped;
            }
            if (reason is WorkerStoppedReason) return ClusterWorkerNodeEnd.WorkerStopped;
            if (reason is CoordinatedShutdown.ClusterJoinUnsuccessfulReason)
            {
                lock (_gate) _failure = BittensorCluster.JoinFailed($"node {current.Number} of this worker", _settings);
                return ClusterWorkerNodeEnd.JoinFailed;
            }
            if (reason is not CoordinatedShutdown.ClusterDowningReason) return ClusterWorkerNodeEnd.Stopped;
            if (!_settings.Rejoin) return ClusterWorkerNodeEnd.Downed;
            var next = await RejoinAsync(current).ConfigureAwait(false);
            if (next is null)
            {
                lock (_gate) return _leaving ? ClusterWorkerNodeEnd.Left : ClusterWorkerNodeEnd.Stopped;
            }
            bool leave, stop;
            lock (_gate)
            {
                _current = next;
                leave = _leaving;
                stop = _stopping;
            }
            if (stop) _ = next.System.Terminate();
            else if (leave) _ = CoordinatedShutdown.Get(next.System).Run(CoordinatedShutdown.ClrExitReason.Instance);
        }
    }

    // A new node after a downing. Its ports may still be held for a moment by the node that just stopped (a fixed
    // cluster or data port): tried again every register_interval, at most 30 times; then the worker ends.
    private async Task<ClusterWorkerIncarnation?> RejoinAsync(ClusterWorkerIncarnation downed)
    {
        const int attempts = 30;
        var address = Akka.Cluster.Cluster.Get(downed.System).SelfAddress;
        for (var attempt = 1; ; attempt++)
        {
            lock (_gate)
            {
                if (_stopping || _leaving) return null;
            }
            try
            {
                var next = Incarnate(downed.Number + 1);
                Akka.Event.Logging.GetLogger(next.System, "cluster-worker-node").Warning(
                    "cluster worker: the node {0} was downed by the cluster while alive; joining again as {1} (incarnation {2})",
                    address, Akka.Cluster.Cluster.Get(next.System).SelfAddress, next.Number);
                return next;
            }
            catch (Exception e) when (e is not OutOfMemoryException && attempt < attempts)
            {
                await Task.Delay(_settings.RegisterInterval).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                lock (_gate) _failure = $"the worker was downed by the cluster and could not start a new node ({attempts} tries): {e.Message}";
                return null;
            }
        }
    }
}

/// <summary>
/// The averaging state of a replica that outlives its cluster node (<see cref="ClusterWorkerNode"/>): the last average
/// it applied, with its round. Read by each new worker actor at start, written as averages are applied; one worker
/// actor at a time uses it.
/// </summary>
internal sealed class ClusterWorkerMemory
{
    private readonly object _gate = new();
    private (long Round, int Replicas, float[] Values)? _lastAverage;

    public (long Round, int Replicas, float[] Values)? LastAverage
    {
        get
        {
            lock (_gate) return _lastAverage;
        }
        set
        {
            lock (_gate) _lastAverage = value;
        }
    }
}
