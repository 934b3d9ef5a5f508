using System.IO.Hashing;
using System.Runtime.InteropServices;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Bittensor.Actors.Axon;
using Bittensor.Actors.ModelHost;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Cluster;

/// <summary>
/// The front's router: what a clustered miner's axon uses as its model host. It takes the axon's
/// <see cref="AxonModelCall"/> (a Tell with the axon's reply sink as sender, as a local <see cref="ModelHostActor"/>
/// would) and sends it as a <see cref="WorkerCall"/> to one of the workers that registered with it, then answers the
/// sink with exactly one <see cref="AxonModelReply"/>.
/// </summary>
/// <remarks>
/// <para>Routing: least in-flight among the workers that are reachable, not draining and below their capacity (ties
/// rotate). When every worker is at its capacity the call is answered NucleusFull at once (back-pressure: nothing
/// queues at the front); with no worker at all, NotServingNucleus.</para>
/// <para>Affinity: a backward carries the inputs of its forward (2021 wire: there is no request id across the two
/// calls), so the front remembers which worker answered each forward by (caller hotkey, XxHash3 of the inputs) in a
/// bounded LRU table; a backward goes to that replica when it is available, else to the least loaded one.</para>
/// <para>Faults: when the failure detector marks a worker's node unreachable (or the worker stops or leaves the
/// cluster), the front stops routing to it and re-sends its forwards to another worker (a forward is idempotent);
/// its backwards answer NotServingNucleus (the step may or may not have been applied). Every accepted call is
/// answered at the latest at its deadline (NucleusTimeout), whatever the workers do.</para>
/// </remarks>
public sealed class ClusterFrontActor : ReceiveActor, IWithTimers
{
    private sealed class Worker(IActorRef actor, string replica, int capacity, long order)
    {
        public int ParameterCount { get; set; }
        public long AveragedRound { get; set; }
        public bool Held { get; set; }
        // The averaged checkpoint is on its way to this replica before its first call: no calls until the worker
        // acknowledged its last chunk (the chunks past chunks_in_flight leave only as the ones before are acknowledged).
        public bool Receiving { get; set; }
        public bool PullFailed { get; set; }
        public IActorRef Actor { get; } = actor;
        public Address Address => Actor.Path.Address;
        public string Replica { get; } = replica;
        public int Capacity { get; set; } = capacity;
        public int InFlight { get; set; }
        public bool Reachable { get; set; } = true;
        public bool Draining { get; set; }
        public long Served { get; set; }
        public long Order { get; } = order;
        // The worker's data plane (0: none, its calls travel over Akka.Remote) and the connection to it (null while
        // it is being reconnected: no calls then).
        public int DataPort { get; init; }
        public DataPlaneConnection? Data { get; set; }
        public bool Connecting { get; set; }
        public bool Available => Reachable && !Draining && !Held && !Receiving && InFlight < Capacity && (DataPort == 0 || Data is not null);
    }

    private sealed record DataConnected(IActorRef Worker, DataPlaneConnection Connection) : INoSerializationVerificationNeeded;

    private sealed record DataConnectFailed(IActorRef Worker, string Reason) : INoSerializationVerificationNeeded;

    private sealed record DataLost(IActorRef Worker, DataPlaneConnection Connection, string Reason) : INoSerializationVerificationNeeded;

    private sealed record DataReply(IActorRef Worker, WorkerReply Reply) : INoSerializationVerificationNeeded;

    private sealed record Reconnect(IActorRef Worker) : INoSerializationVerificationNeeded;

    /// <summary>Calls or replies queued on one data connection behind a worker that does not read; more are refused NucleusFull.</summary>
    internal const int MaxQueuedPerConnection = 1024;

    private sealed class Call(long id, IActorRef replyTo, AxonModelCall source, DateTime deadline, AffinityKey? key)
    {
        public long Id { get; } = id;
        public IActorRef ReplyTo { get; } = replyTo;
        public AxonModelCall Source { get; } = source;
        public DateTime Deadline { get; } = deadline;
        public AffinityKey? Key { get; } = key;
        public Worker? Worker { get; set; }
    }

    private readonly record struct AffinityKey(string Hotkey, ulong InputsHash);

    private sealed record CallDeadline(long Id) : INoSerializationVerificationNeeded;

    private sealed record AveragingTick : INoSerializationVerificationNeeded
    {
        public static AveragingTick Instance { get; } = new();
    }

    private sealed record RoundTimedOut(long Round) : INoSerializationVerificationNeeded
    {
        public const string Key = "averaging-round";
    }

    private sealed class Round(long id, int count, IActorRef? replyTo)
    {
        public long Id { get; } = id;
        public int Count { get; } = count;
        public IActorRef? ReplyTo { get; } = replyTo;
        public HashSet<IActorRef> Pending { get; } = [];
        // Pending replicas not asked yet: an average or checkpoint this front sent them is still arriving, so what they
        // hold now is not what they will hold (a joiner: its starting weights). Asked once its last chunk is acknowledged.
        public HashSet<IActorRef> Deferred { get; } = [];
        public List<IActorRef> Contributors { get; } = [];
        // Elements received so far from each replica whose chunks are arriving (in order): a replica is a contributor
        // only once all its chunks are in the sum; one that stops half-way makes the whole round void.
        public Dictionary<IActorRef, int> Received { get; } = [];
        public float[] Sum { get; } = new float[count];
    }

    private sealed record PullTimedOut(long Round) : INoSerializationVerificationNeeded
    {
        public const string Key = "checkpoint-pull";
    }

    private sealed record HoldWindowEnded : INoSerializationVerificationNeeded
    {
        public const string Key = "hold-window";
        public static HoldWindowEnded Instance { get; } = new();
    }

    private const string AveragingTimer = "averaging";

    private readonly ClusterSettings _settings;
    private readonly TimeProvider _time;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<IActorRef, Worker> _workers = [];
    private readonly List<Worker> _ordered = [];
    private readonly Dictionary<long, Call> _calls = [];
    private readonly Dictionary<AffinityKey, LinkedListNode<(AffinityKey Key, IActorRef Worker)>> _affinity = [];
    private readonly LinkedList<(AffinityKey Key, IActorRef Worker)> _affinityOrder = new();
    private long _nextId;
    private long _nextOrder;
    private long _rotate;
    private long _rerouted;
    private long _refusedFull;
    private long _affinityHits;
    private long _nextRound;
    private long _roundsDone;
    private Round? _round;
    private (long Round, float[] Values)? _checkpoint;
    private (IActorRef Worker, long Round)? _pull;
    private ParameterAssembly? _pulled;
    private DateTime _startedAt;
    // Parameter chunks to the workers (averages, checkpoints), paced by their acknowledgements (averaging.chunks_in_flight).
    private ChunkPacer _pacer = null!;
    // Registrations waiting for their worker's data connection (the worker is acknowledged once it is connected).
    private readonly Dictionary<IActorRef, RegisterWorker> _connecting = [];
    // Registrations of new workers waiting until every reachable node has seen their node Up (see KnownUpByAll).
    private readonly Dictionary<IActorRef, RegisterWorker> _awaitingUp = [];
    private readonly CancellationTokenSource _stopping = new();
    private string _selfAddress = "";

    private ClusterFrontActor(ClusterSettings settings, TimeProvider? time)
    {
        _settings = settings;
        _time = time ?? TimeProvider.System;
        Receive<AxonModelCall>(OnCall);
        Receive<WorkerReply>(r => OnReply(r, Sender));
        Receive<DataReply>(r => OnReply(r.Reply, r.Worker));
        Receive<DataConnected>(OnDataConnected);
        Receive<DataConnectFailed>(OnDataConnectFailed);
        Receive<DataLost>(OnDataLost);
        Receive<Reconnect>(r =>
        {
            if (_workers.TryGetValue(r.Worker, out var w) && w.Data is null && !w.Connecting) ConnectData(r.Worker, w.DataPort);
        });
        Receive<CallDeadline>(OnDeadline);
        Receive<RegisterWorker>(r => OnRegister(Sender, r));
        Receive<RecheckAwaitingUp>(_ => RecheckUp());
        Receive<WorkerDraining>(_ =>
        {
            if (_workers.TryGetValue(Sender, out var w) && !w.Draining)
            {
                w.Draining = true;
                _log.Info("cluster front: worker {0} drains ({1} in flight)", w.Replica, w.InFlight);
            }
            // On the data connection when there is one: it follows every call sent there, so nothing arrives after it.
            if (w?.Data is not { } data || data.Send(DataPlaneFrames.DrainAck, null) != DataPlaneSend.Sent) Sender.Tell(DrainAck.Instance);
        });
        Receive<ClusterEvent.UnreachableMember>(m => ForWorkersAt(m.Member.Address, w =>
        {
            if (!w.Reachable) return;
            w.Reachable = false;
            _log.Warning("cluster front: worker {0} is unreachable; routing around it", w.Replica);
            Reroute(w, "its worker became unreachable");
        }, then: ReleaseHeld));
        Receive<ClusterEvent.ReachableMember>(m => ForWorkersAt(m.Member.Address, w =>
        {
            if (w.Reachable) return;
            w.Reachable = true;
            _log.Info("cluster front: worker {0} is reachable again", w.Replica);
        }));
        Receive<ClusterEvent.MemberRemoved>(m =>
        {
            ForWorkersAt(m.Member.Address, w => Remove(w, "its node left the cluster"));
            foreach (var gone in _connecting.Keys.Where(a => a.Path.Address.Equals(m.Member.Address)).ToList()) _connecting.Remove(gone);
            foreach (var gone in _awaitingUp.Keys.Where(a => a.Path.Address.Equals(m.Member.Address)).ToList()) _awaitingUp.Remove(gone);
            ReleaseHeld();
        });
        Receive<ClusterEvent.IMemberEvent>(m =>
        {
            // Leaving or exiting: no new work (a worker that drained announced it already).
            if (m.Member.Status is MemberStatus.Leaving or MemberStatus.Exiting or MemberStatus.Down)
                ForWorkersAt(m.Member.Address, w => w.Draining = true);
            ReleaseHeld();
            if (_awaitingUp.Count > 0) RecheckUp();
        });
        Receive<Terminated>(t =>
        {
            if (_workers.TryGetValue(t.ActorRef, out var w)) Remove(w, "its worker stopped");
        });
        Receive<GetClusterFrontStatus>(_ => Sender.Tell(Status()));
        Receive<AverageNow>(_ => StartRound(Sender));
        Receive<AveragingTick>(_ =>
        {
            if (_round is null) StartRound(null);
        });
        Receive<ReplicaParameters>(p =>
        {
            Sender.Tell(new ParameterChunkAck(p.Round, p.Offset), Self); // every chunk, whatever becomes of it: the sender's pacing
            OnParameters(p);
        });
        Receive<AveragedParameters>(a =>
        {
            Sender.Tell(new ParameterChunkAck(a.Round, a.Offset), Self);
            OnCheckpoint(a);
        });
        Receive<ParameterChunkAck>(_ =>
        {
            _pacer.Acked(Sender, Self);
            if (_round is { } round && !_pacer.Sending(Sender) && round.Deferred.Remove(Sender))
            {
                // It holds everything this front sent it (the worker acknowledges a chunk as it takes it and applies a
                // whole average in the same message): its parameters now take part in the round.
                Sender.Tell(new CollectParameters(round.Id), Self);
            }
            if (_workers.TryGetValue(Sender, out var w) && w.Receiving && !_pacer.Sending(Sender))
            {
                // Its last chunk arrived (the worker acknowledges a chunk as it takes it, then applies the whole
                // average in the same message): every call sent from now on reaches it after the checkpoint.
                w.Receiving = false;
                _log.Info("cluster front: worker {0} has the averaged checkpoint of round {1}; it serves", w.Replica, w.AveragedRound);
            }
        });
        Receive<ChunkPacer.AckTimedOut>(t =>
        {
            if (_pacer.TimedOut(t) is var dropped and >= 0)
                _log.Warning("cluster front: no acknowledgement of parameter chunks from {0} for {1}; {2} waiting chunks dropped",
                    t.To.Path.Address, _settings.AveragingTimeout, dropped);
            if (_round is { } round && !_pacer.Sending(t.To) && round.Deferred.Remove(t.To))
            {
                // It dropped the incomplete average (same timeout): what it holds is not caught up, so it is left out.
                round.Pending.Remove(t.To);
                _log.Warning("cluster front: averaging round {0}: a replica at {1} did not take the last average; left out", round.Id, t.To.Path.Address);
                if (round.Pending.Count == 0) FinishRound();
            }
            if (_workers.TryGetValue(t.To, out var w) && w.Receiving)
            {
                // It drops the incomplete checkpoint by the same timeout: it serves from its own weights, as without one.
                w.Receiving = false;
                _log.Warning("cluster front: worker {0} did not acknowledge the averaged checkpoint; it serves from its own weights", w.Replica);
            }
        });
        Receive<PullTimedOut>(t =>
        {
            if (_pull is not { } pull || pull.Round != t.Round) return;
            _pull = null;
            _pulled = null;
            if (_workers.TryGetValue(pull.Worker, out var w)) w.PullFailed = true;
            _log.Warning("cluster front: worker {0} did not send the averaged checkpoint of round {1} in time", w?.Replica ?? pull.Worker.Path.Address.ToString(), t.Round);
            PullNext();
            ReleaseHeld();
        });
        Receive<HoldWindowEnded>(_ => ReleaseHeld());
        Receive<RoundTimedOut>(t =>
        {
            if (_round?.Id != t.Round) return;
            if (_round.Received.Count > 0)
            {
                Abandon($"{_round.Received.Count} workers had sent only part of their parameters by averaging.timeout");
                return;
            }
            _log.Warning("cluster front: averaging round {0}: {1} workers did not send their parameters in time; averaging the {2} that did",
                t.Round, _round.Pending.Count, _round.Contributors.Count);
            _round.Pending.Clear();
            FinishRound();
        });
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Props of a front router with <paramref name="settings"/>; start it as <c>/user/cluster-front</c> (<see cref="BittensorCluster.StartFront"/>).</summary>
    public static Props Props(ClusterSettings settings, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        return FactoryProps.For(() => new ClusterFrontActor(settings, time));
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
        if (_settings.AveragingInterval > TimeSpan.Zero)
            Timers.StartPeriodicTimer(AveragingTimer, AveragingTick.Instance, _settings.AveragingInterval);
        _startedAt = _time.GetUtcNow().UtcDateTime;
        _pacer = new ChunkPacer(_settings.ChunksInFlight, Timers, _settings.AveragingTimeout)
        {
            Route = (to, chunk) => _workers.GetValueOrDefault(to)?.Data is { } data && data.Send(DataPlaneFrames.Averaged, chunk) == DataPlaneSend.Sent,
        };
        _selfAddress = Akka.Cluster.Cluster.Get(Context.System).SelfAddress.ToString();
        Timers.StartSingleTimer(HoldWindowEnded.Key, HoldWindowEnded.Instance, _settings.AveragingTimeout);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        _stopping.Cancel();
        foreach (var w in _ordered) w.Data?.Close("the cluster front stopped");
        foreach (var c in _calls.Values) c.ReplyTo.Tell(new AxonModelReply(c.Source.RequestId, new ModelResponse(null, ReturnCode.NotServingNucleus, "the cluster front stopped")));
        _calls.Clear();
    }

    private ClusterFrontStatus Status() => new(
        [.. _ordered.Select(w => new ClusterWorkerStatus(w.Replica, w.Actor, w.Capacity, w.InFlight, w.Reachable, w.Draining, w.Served, w.Data?.Remote,
            w.Held, w.Receiving))],
        _calls.Count, _rerouted, _refusedFull, _affinityHits, _roundsDone, _checkpoint?.Round ?? 0, _round?.Deferred.Count ?? 0,
        [.. _connecting.Values.Select(r => r.Replica)]);

    private void OnRegister(IActorRef sender, RegisterWorker r)
    {
        if (!_workers.ContainsKey(sender) && !KnownUpByAll(sender))
        {
            // Not yet: acknowledged (and served) once every node counts it (RecheckUp, on member events and a timer).
            if (_awaitingUp.Count >= MaxAwaitingUp && !_awaitingUp.ContainsKey(sender)) return; // bounded; the worker repeats its registration
            if (_awaitingUp.TryAdd(sender, r))
                _log.Info("cluster front: worker {0} registers; acknowledged once every node sees its node Up", r.Replica);
            else _awaitingUp[sender] = r;
            if (!Timers.IsTimerActive(RecheckAwaitingUp.Key))
                Timers.StartPeriodicTimer(RecheckAwaitingUp.Key, RecheckAwaitingUp.Instance, RecheckUpInterval);
            return;
        }
        _awaitingUp.Remove(sender);
        if (!_workers.ContainsKey(sender) && _settings.DataPlane && r.DataPort > 0)
        {
            // A worker with a data plane is acknowledged once the front is connected to it (so it is routable at once).
            var attempt = !_connecting.ContainsKey(sender);
            _connecting[sender] = r;
            if (attempt) ConnectData(sender, r.DataPort);
            return;
        }
        Join(sender, r, null);
    }

    /// <summary>Most registrations held until their node is Up everywhere (one per worker actor; more are dropped, the workers repeat).</summary>
    internal const int MaxAwaitingUp = 1024;

    private static readonly TimeSpan RecheckUpInterval = TimeSpan.FromMilliseconds(200);

    private sealed class RecheckAwaitingUp
    {
        public static readonly RecheckAwaitingUp Instance = new();
        public const string Key = "recheck-awaiting-up";
    }

    private void RecheckUp()
    {
        foreach (var (sender, r) in _awaitingUp.ToList())
        {
            if (KnownUpByAll(sender)) OnRegister(sender, r);
        }
        if (_awaitingUp.Count == 0) Timers.Cancel(RecheckAwaitingUp.Key);
    }

    /// <summary>
    /// A new worker is acknowledged (and served) only once its node is Up and every reachable Up node has seen that
    /// (the front's latest gossip is seen by all of them). Each node's split-brain resolver counts Up members only, in
    /// its own view: a worker served before a standby front knew it Up was not counted there, and the active front
    /// dying in that window left the standby alone against the dead oldest front (1:1 of 2 members): keep-oldest then
    /// downs the standby and every worker it sees — the whole miner (the take-over flake of sessions 14-15, 1 of 3 runs at
    /// load 40+, node logs: "SBR took decision DownReachable … [1] unreachable of [2] members" on the standby).
    /// </summary>
    private bool KnownUpByAll(IActorRef worker)
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        var address = worker.Path.Address.HasLocalScope ? cluster.SelfAddress : worker.Path.Address;
        var state = cluster.State;
        var member = state.Members.FirstOrDefault(m => m.Address.Equals(address));
        if (member is null || member.Status != MemberStatus.Up) return false;
        return state.Members.All(m => m.Status is not (MemberStatus.Up or MemberStatus.Leaving) || state.Unreachable.Contains(m) || state.SeenBy.Contains(m.Address));
    }

    private void Join(IActorRef actor, RegisterWorker r, DataPlaneConnection? data)
    {
        var joined = false;
        if (_workers.TryGetValue(actor, out var known))
        {
            known.Capacity = r.Capacity;
            known.Draining |= r.Draining;
            known.AveragedRound = Math.Max(known.AveragedRound, r.AveragedRound);
        }
        else
        {
            var w = new Worker(actor, r.Replica, r.Capacity, _nextOrder++)
            {
                Draining = r.Draining, ParameterCount = r.ParameterCount, AveragedRound = r.AveragedRound,
                DataPort = data is null ? 0 : r.DataPort, Data = data,
            };
            _workers[actor] = w;
            _ordered.Add(w);
            Context.Watch(actor);
            if (data is not null) StartReading(actor, data);
            joined = true;
            _log.Info("cluster front: worker {0} joined (capacity {1}{2}); {3} workers", r.Replica, r.Capacity,
                data is null ? "" : $", data plane {data.Remote}", _workers.Count);
        }
        actor.Tell(new WorkerRegistered(_workers.Count), Self);
        // Rounds continue after a take-over: a new round's number is above every round a replica applied.
        _nextRound = Math.Max(_nextRound, r.AveragedRound);
        if (!joined || r.ParameterCount <= 0) return;
        var worker = _workers[actor];
        if (r.AveragedRound > (_checkpoint?.Round ?? 0))
        {
            // This replica applied a later average than this front holds (it took over): pull it as the checkpoint.
            PullNext();
        }
        else if (r.AveragedRound == 0 && MustHold())
        {
            // A fresh replica while this front may still learn of a checkpoint (a pull runs, or live workers have not
            // registered yet after a take-over): no calls until then, at most averaging.timeout.
            worker.Held = true;
            _log.Info("cluster front: worker {0} waits for the averaged checkpoint before it serves", r.Replica);
        }
        else
        {
            SendCheckpointTo(worker, beforeServing: true);
        }
        ReleaseHeld();
    }

    // Connects to a worker's data plane off the actor's thread; the outcome comes back as a message.
    private void ConnectData(IActorRef worker, int port)
    {
        var host = worker.Path.Address.Host ?? "127.0.0.1";
        var self = Self;
        var selfAddress = _selfAddress;
        var stopping = _stopping.Token;
        if (_workers.TryGetValue(worker, out var w)) w.Connecting = true;
        _ = Task.Run(async () =>
        {
            try
            {
                var connection = await DataPlaneConnection.ConnectAsync(host, port, selfAddress, DataPlaneListener.HandshakeTimeout, MaxQueuedPerConnection, stopping)
                    .ConfigureAwait(false);
                if (connection.Peer != worker.Path.Address.ToString())
                {
                    connection.Dispose();
                    self.Tell(new DataConnectFailed(worker, $"{host}:{port} is the data plane of {connection.Peer}, not of {worker.Path.Address}"));
                }
                else if (stopping.IsCancellationRequested) connection.Dispose();
                else self.Tell(new DataConnected(worker, connection));
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // The front stopped.
            }
            catch (Exception e)
            {
                // Every outcome comes back: a registration waits in _connecting until one does (its repetitions start no
                // second attempt meanwhile), so an attempt that ended unreported would leave the worker unacknowledged.
                self.Tell(new DataConnectFailed(worker, e is DataPlaneException ? e.Message : $"{e.GetType().Name}: {e.Message}"));
            }
        }, CancellationToken.None);
    }

    private void StartReading(IActorRef worker, DataPlaneConnection connection)
    {
        var self = Self;
        connection.Start((c, kind, payload) =>
        {
            if (kind != DataPlaneFrames.Reply) throw new DataPlaneException($"data plane: a worker sent frame kind {kind}; only replies are expected");
            self.Tell(new DataReply(worker, ClusterTensorSerializer.ReadReply(payload)));
        }, (c, reason) => self.Tell(new DataLost(worker, c, reason)));
    }

    private void OnDataConnected(DataConnected m)
    {
        if (_workers.TryGetValue(m.Worker, out var w))
        {
            // A joined worker's connection came back.
            w.Connecting = false;
            if (w.Data is not null)
            {
                m.Connection.Dispose();
                return;
            }
            w.Data = m.Connection;
            StartReading(m.Worker, m.Connection);
            _log.Info("cluster front: worker {0}'s data plane is connected again ({1})", w.Replica, m.Connection.Remote);
            return;
        }
        if (!_connecting.Remove(m.Worker, out var r))
        {
            m.Connection.Dispose(); // the worker went meanwhile
            return;
        }
        Join(m.Worker, r, m.Connection);
    }

    private void OnDataConnectFailed(DataConnectFailed m)
    {
        if (_connecting.Remove(m.Worker, out var r))
        {
            _log.Warning("cluster front: worker {0} is not acknowledged: {1} (its next registration tries again)", r.Replica, m.Reason);
            return;
        }
        if (!_workers.TryGetValue(m.Worker, out var w)) return;
        w.Connecting = false;
        _log.Debug("cluster front: worker {0}'s data plane: {1}", w.Replica, m.Reason);
        Timers.StartSingleTimer(("data", m.Worker), new Reconnect(m.Worker), _settings.RegisterInterval);
    }

    // The connection to a worker closed (the worker died, its node went, or a protocol error): its calls are handled
    // as for an unreachable worker, and the front connects again while the worker is a member.
    private void OnDataLost(DataLost m)
    {
        if (!_workers.TryGetValue(m.Worker, out var w) || !ReferenceEquals(w.Data, m.Connection)) return;
        w.Data = null;
        _log.Warning("cluster front: worker {0}'s data connection closed: {1}; routing around it", w.Replica, m.Reason);
        Reroute(w, $"its data connection closed ({m.Reason})");
        Timers.StartSingleTimer(("data", m.Worker), new Reconnect(m.Worker), _settings.RegisterInterval);
    }

    // A joining replica (or one that missed rounds) starts from the latest averaged checkpoint. A joiner gets no call
    // until it acknowledged the checkpoint's last chunk (beforeServing): the chunks past chunks_in_flight wait here for
    // acknowledgements, so a call sent meanwhile would reach the worker before them. A replica that applied this round
    // already keeps its own state (its steps since).
    private void SendCheckpointTo(Worker w, bool beforeServing = false)
    {
        if (_checkpoint is not { } checkpoint || w.AveragedRound >= checkpoint.Round) return;
        if (checkpoint.Values.Length != w.ParameterCount)
        {
            _log.Warning("cluster front: worker {0} has {1} parameters, the averaged checkpoint {2}: it keeps its own", w.Replica, w.ParameterCount, checkpoint.Values.Length);
            return;
        }
        SendAverage(w.Actor, checkpoint.Round, true, 0, checkpoint.Values);
        w.AveragedRound = checkpoint.Round;
        w.Receiving |= beforeServing && _pacer.Sending(w.Actor);
    }

    // Fresh replicas wait while a checkpoint pull runs, or — without any checkpoint, in this front's first
    // averaging.timeout — while a live (reachable, Up) worker node has not registered: after a take-over the old
    // replicas register one by one, and one of them may hold the latest average.
    private bool MustHold()
    {
        if (_pull is not null) return true;
        if (_checkpoint is not null || _time.GetUtcNow().UtcDateTime - _startedAt >= _settings.AveragingTimeout) return false;
        var state = Akka.Cluster.Cluster.Get(Context.System).State;
        var registered = _workers.Values.Select(w => w.Address).ToHashSet();
        return state.Members.Any(m => m.Status == MemberStatus.Up && m.HasRole(ClusterSettings.WorkerRole) && !registered.Contains(m.Address)
            && !state.Unreachable.Contains(m));
    }

    private void ReleaseHeld()
    {
        if (!_workers.Values.Any(w => w.Held) || MustHold()) return;
        foreach (var w in _ordered.Where(w => w.Held))
        {
            w.Held = false;
            SendCheckpointTo(w, beforeServing: true);
            _log.Info("cluster front: worker {0} {1}", w.Replica,
                _checkpoint is { } c ? $"serves once it has the checkpoint of round {c.Round}" : "serves (no checkpoint in the cluster)");
        }
    }

    // Pulls the latest average a registered replica applied, when it is later than this front's checkpoint.
    private void PullNext()
    {
        if (_pull is not null) return;
        var from = _ordered.Where(w => w.ParameterCount > 0 && w.Reachable && !w.PullFailed && w.AveragedRound > (_checkpoint?.Round ?? 0))
            .OrderByDescending(w => w.AveragedRound).ThenBy(w => w.Order).FirstOrDefault();
        if (from is null) return;
        _pull = (from.Actor, from.AveragedRound);
        from.Actor.Tell(new SendCheckpoint(from.AveragedRound), Self);
        Timers.StartSingleTimer(PullTimedOut.Key, new PullTimedOut(from.AveragedRound), _settings.AveragingTimeout);
    }

    private void OnCheckpoint(AveragedParameters a)
    {
        if (_pull is not { } pull || !pull.Worker.Equals(Sender)) return;
        var from = _workers.GetValueOrDefault(Sender);
        // The checkpoint arrives in chunks, in order: it counts only once whole.
        if (a.Offset == 0) _pulled = new ParameterAssembly(a.Round, a.Total);
        var problem = _pulled is null ? $"a chunk at {a.Offset} arrived first" : _pulled.Add(a.Round, a.Offset, a.Total, a.Values);
        if (problem is null && !_pulled!.Complete) return;
        var pulled = problem is null ? _pulled : null;
        _pulled = null;
        _pull = null;
        Timers.Cancel(PullTimedOut.Key);
        if (problem is not null) _log.Warning("cluster front: the averaged checkpoint from worker {0} is dropped: {1}", from?.Replica ?? Sender.Path.Address.ToString(), problem);
        if (pulled is not null && pulled.Round > (_checkpoint?.Round ?? 0) && from is not null && pulled.Total == from.ParameterCount)
        {
            _checkpoint = (pulled.Round, pulled.Values);
            _nextRound = Math.Max(_nextRound, pulled.Round);
            _log.Info("cluster front: took the averaged checkpoint of round {0} ({1} parameters) from worker {2}", pulled.Round, pulled.Total, from.Replica);
            // Registered replicas that have not applied it (joined in the meantime, or missed the round) take it now.
            foreach (var w in _ordered.Where(w => !w.Held && w.ParameterCount > 0)) SendCheckpointTo(w);
        }
        else if (from is not null)
        {
            from.PullFailed = true;
        }
        PullNext();
        ReleaseHeld();
    }

    private void OnCall(AxonModelCall call)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        var deadline = call.DeadlineUtc ?? now + TimeSpan.FromSeconds(12);
        var replyTo = Sender;
        if (deadline <= now)
        {
            replyTo.Tell(new AxonModelReply(call.RequestId, new ModelResponse(null, ReturnCode.NucleusTimeout, "the call's deadline had passed when it reached the cluster front")));
            return;
        }
        var inputs = call.Forward?.Inputs ?? call.Backward!.Inputs;
        var key = _settings.AffinityCapacity > 0 ? new AffinityKey(call.Forward?.CallerHotkey ?? call.Backward!.CallerHotkey, Hash(inputs)) : (AffinityKey?)null;
        Worker? worker = null;
        if (call.Backward is not null && key is { } k && _affinity.TryGetValue(k, out var node)
            && _workers.TryGetValue(node.Value.Worker, out var preferred) && preferred.Available)
        {
            worker = preferred;
            _affinityHits++;
        }
        worker ??= Pick(exclude: null);
        if (worker is null)
        {
            ModelResponse refusal;
            // Full only when a worker serves; one that waits for the averaged checkpoint (held, or receiving it) does not yet.
            if (_workers.Values.Any(w => w.Reachable && !w.Draining && !w.Held && !w.Receiving))
            {
                _refusedFull++;
                refusal = new ModelResponse(null, ReturnCode.NucleusFull,
                    $"every worker is full ({_workers.Values.Where(w => w.Reachable && !w.Draining).Sum(w => w.InFlight)} calls in flight)");
            }
            else
            {
                var waiting = _workers.Values.Count(w => w.Reachable && !w.Draining && (w.Held || w.Receiving));
                refusal = new ModelResponse(null, ReturnCode.NotServingNucleus, waiting == 0
                    ? "no worker is serving in this cluster"
                    : $"no worker is serving in this cluster yet ({waiting} waiting for the averaged checkpoint)");
            }
            replyTo.Tell(new AxonModelReply(call.RequestId, refusal));
            return;
        }
        var c = new Call(++_nextId, replyTo, call, deadline, key);
        if (Send(c, worker) is { } refused)
        {
            replyTo.Tell(new AxonModelReply(call.RequestId, refused));
            return;
        }
        _calls[c.Id] = c;
        Timers.StartSingleTimer(c.Id, new CallDeadline(c.Id), deadline - now);
    }

    // Sends the call to the worker: on its data connection when it has one, else over Akka.Remote. Null when sent (a
    // connection found closed counts as sent: its DataLost re-routes the call); else the answer to give at once.
    private ModelResponse? Send(Call c, Worker w)
    {
        var s = c.Source;
        var message = s.Forward is { } f
            ? new WorkerCall(c.Id, false, f.CallerHotkey, f.CallerStake, f.Modality, f.Inputs, null, f.Priority, c.Deadline)
            : new WorkerCall(c.Id, true, s.Backward!.CallerHotkey, s.Backward.CallerStake, s.Backward.Modality, s.Backward.Inputs, s.Backward.Grads,
                s.Backward.Priority, c.Deadline);
        if (w.Data is { } data)
        {
            try
            {
                if (data.Send(DataPlaneFrames.Call, message) == DataPlaneSend.Backlogged)
                    return new ModelResponse(null, ReturnCode.NucleusFull, $"worker {w.Replica} does not read its calls ({MaxQueuedPerConnection} queued)");
            }
            catch (System.Runtime.Serialization.SerializationException e)
            {
                return new ModelResponse(null, ReturnCode.InvalidRequest, $"the call cannot be sent to a worker: {e.Message}");
            }
        }
        else
        {
            w.Actor.Tell(message, Self);
        }
        c.Worker = w;
        w.InFlight++;
        return null;
    }

    // Least in flight among the available workers; equal loads rotate so light traffic spreads too.
    private Worker? Pick(Worker? exclude)
    {
        Worker? best = null;
        var n = _ordered.Count;
        if (n == 0) return null;
        var start = (int)(_rotate++ % n);
        for (var j = 0; j < n; j++)
        {
            var w = _ordered[(start + j) % n];
            if (w == exclude || !w.Available) continue;
            if (best is null || w.InFlight < best.InFlight) best = w;
        }
        return best;
    }

    private void OnReply(WorkerReply reply, IActorRef from)
    {
        if (!_calls.Remove(reply.RequestId, out var c)) return; // answered already (deadline, re-routed and answered elsewhere)
        Timers.Cancel(c.Id);
        if (c.Worker is { } w)
        {
            w.InFlight--;
            if (w.Actor.Equals(from)) w.Served++;
            else if (_workers.TryGetValue(from, out var other)) other.Served++;
        }
        if (reply.Code == ReturnCode.Success && c.Source.Forward is not null && c.Key is { } key) Remember(key, from);
        c.ReplyTo.Tell(new AxonModelReply(c.Source.RequestId, new ModelResponse(reply.Outputs, reply.Code, reply.Message)));
    }

    private void OnDeadline(CallDeadline d)
    {
        if (!_calls.Remove(d.Id, out var c)) return;
        if (c.Worker is { } w) w.InFlight--;
        c.ReplyTo.Tell(new AxonModelReply(c.Source.RequestId, new ModelResponse(null, ReturnCode.NucleusTimeout, "no worker answered before the call's deadline")));
    }

    private void ForWorkersAt(Address address, Action<Worker> action, Action? then = null)
    {
        foreach (var w in _workers.Values.Where(w => w.Address.Equals(address)).ToList()) action(w);
        then?.Invoke();
    }

    private void Remove(Worker w, string why)
    {
        if (!_workers.Remove(w.Actor)) return;
        _ordered.Remove(w);
        Context.Unwatch(w.Actor);
        _pacer.Drop(w.Actor);
        Timers.Cancel(("data", w.Actor));
        w.Data?.Close($"the worker was removed ({why})");
        w.Data = null;
        _log.Info("cluster front: worker {0} removed ({1}); {2} workers", w.Replica, why, _workers.Count);
        Reroute(w, why);
        if (_round is not null && _round.Received.ContainsKey(w.Actor)) Abandon($"worker {w.Replica} went while its parameters were arriving ({why})");
        else if (_round is not null && _round.Pending.Remove(w.Actor))
        {
            _round.Deferred.Remove(w.Actor);
            if (_round.Pending.Count == 0) FinishRound();
        }
        foreach (var stale in _affinityOrder.Where(e => e.Worker.Equals(w.Actor)).Select(e => e.Key).ToList()) Forget(stale);
    }

    // The calls at a worker that is gone or unreachable: forwards go to another worker, backwards answer a clear code.
    private void Reroute(Worker from, string why)
    {
        var (resent, refused) = (0, 0);
        foreach (var c in _calls.Values.Where(c => c.Worker == from).ToList())
        {
            from.InFlight--;
            c.Worker = null;
            Worker? to = c.Source.Forward is not null ? Pick(exclude: from) : null;
            if (to is null)
            {
                _calls.Remove(c.Id);
                Timers.Cancel(c.Id);
                var message = c.Source.Forward is not null
                    ? $"{why} and no other worker has room"
                    : $"{why} during this backward; its optimizer step may or may not have been applied";
                c.ReplyTo.Tell(new AxonModelReply(c.Source.RequestId, new ModelResponse(null, ReturnCode.NotServingNucleus, message)));
                refused++;
                continue;
            }
            if (Send(c, to) is { } refusal)
            {
                _calls.Remove(c.Id);
                Timers.Cancel(c.Id);
                c.ReplyTo.Tell(new AxonModelReply(c.Source.RequestId, refusal));
                refused++;
                continue;
            }
            _rerouted++;
            resent++;
        }
        if (resent + refused > 0)
            _log.Info("cluster front: {0} calls of worker {1} re-sent to other workers, {2} answered NotServingNucleus ({3})", resent, from.Replica, refused, why);
    }

    // Averaging round: collect every available replica's parameters, average element-wise with equal weights, send
    // the average back, keep it as the checkpoint for joining workers (docs/cluster.md "Parameter averaging").
    private void StartRound(IActorRef? replyTo)
    {
        if (_round is not null)
        {
            replyTo?.Tell(new AveragingResult(_round.Id, 0, $"round {_round.Id} is in progress"));
            return;
        }
        var replicas = _ordered.Where(w => w.ParameterCount > 0 && w.Reachable && !w.Draining && !w.Held).ToList();
        if (replicas.Count == 0)
        {
            replyTo?.Tell(new AveragingResult(0, 0, "no available worker has parameters to average"));
            return;
        }
        // The replicas of one miner run one model: the size most of them have is the model's; others are left out.
        var count = replicas.GroupBy(w => w.ParameterCount).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        var round = new Round(++_nextRound, count, replyTo);
        foreach (var w in replicas)
        {
            if (w.ParameterCount != count)
            {
                _log.Warning("cluster front: worker {0} has {1} parameters, the others {2}: left out of averaging", w.Replica, w.ParameterCount, count);
                continue;
            }
            round.Pending.Add(w.Actor);
            // A replica whose checkpoint (a joiner) or last average is still arriving is asked once it has it all: asked
            // now, it would send what it held before (a joiner's starting weights) into the average.
            if (_pacer.Sending(w.Actor)) round.Deferred.Add(w.Actor);
            else w.Actor.Tell(new CollectParameters(round.Id), Self);
        }
        _round = round;
        Timers.StartSingleTimer(RoundTimedOut.Key, new RoundTimedOut(round.Id), _settings.AveragingTimeout);
    }

    // One chunk of a replica's parameters (they arrive in order): added to the sum at once, so the front holds one
    // vector per round whatever the number of replicas. A replica counts once its last chunk is in; one whose
    // chunks stop or go wrong half-way voids the round (its part cannot be taken out of the sum exactly).
    private void OnParameters(ReplicaParameters p)
    {
        if (_round is not { } round || round.Id != p.Round || !round.Pending.Contains(Sender)) return; // late or unknown: dropped
        var next = round.Received.GetValueOrDefault(Sender);
        if (p.Total != round.Count || p.Offset != next || p.Values.Length == 0 || p.Values.Length > round.Count - next)
        {
            var what = p.Total != round.Count ? $"{p.Total} parameters instead of {round.Count}" : $"a chunk at {p.Offset} where {next} was expected";
            if (next > 0)
            {
                Abandon($"a replica sent {what} half-way through its parameters");
                return;
            }
            round.Pending.Remove(Sender);
            _log.Warning("cluster front: averaging round {0}: a replica sent {1}; left out", round.Id, what);
        }
        else
        {
            var sum = round.Sum.AsSpan(p.Offset, p.Values.Length);
            var values = p.Values.Span;
            for (var i = 0; i < sum.Length; i++) sum[i] += values[i];
            next += values.Length;
            if (next < round.Count)
            {
                round.Received[Sender] = next;
                return;
            }
            round.Received.Remove(Sender);
            round.Pending.Remove(Sender);
            round.Contributors.Add(Sender);
        }
        if (round.Pending.Count == 0) FinishRound();
    }

    // A round that cannot be completed exactly is dropped whole: no average is sent, the checkpoint stays as it was,
    // and every replica keeps its own parameters (the next round starts over).
    private void Abandon(string why)
    {
        var round = _round!;
        _round = null;
        Timers.Cancel(RoundTimedOut.Key);
        _log.Warning("cluster front: averaging round {0} abandoned: {1}; nothing applied", round.Id, why);
        round.ReplyTo?.Tell(new AveragingResult(round.Id, 0, $"round {round.Id} abandoned: {why}"));
    }

    // The average goes out as consecutive chunks (slices of the one array: nothing is copied until each is serialized),
    // paced per worker: at most chunks_in_flight unacknowledged, so its calls are not queued behind the whole vector; on
    // the worker's data connection when it has one (the pacer's Route), so the chunks keep their order with the calls sent there.
    private void SendAverage(IActorRef to, long round, bool exact, int replicas, float[] values) =>
        _pacer.Send(to, ParameterChunks.Of(values).Select(x => (object)new AveragedParameters(round, exact, replicas, x.Offset, values.Length, x.Values)), Self);

    private void FinishRound()
    {
        var round = _round!;
        _round = null;
        Timers.Cancel(RoundTimedOut.Key);
        var n = round.Contributors.Count;
        if (n == 0)
        {
            round.ReplyTo?.Tell(new AveragingResult(round.Id, 0, "no worker sent its parameters"));
            return;
        }
        var average = round.Sum;
        if (n > 1) for (var i = 0; i < average.Length; i++) average[i] /= n;
        _checkpoint = (round.Id, average);
        _roundsDone++;
        var contributors = round.Contributors.ToHashSet();
        foreach (var c in round.Contributors) SendAverage(c, round.Id, false, n, average);
        // Replicas that joined during the round or did not answer take the average as it is.
        foreach (var w in _ordered.Where(w => w.ParameterCount == average.Length && !w.Held))
        {
            if (!contributors.Contains(w.Actor)) SendAverage(w.Actor, round.Id, true, n, average);
            w.AveragedRound = round.Id;
        }
        _log.Info("cluster front: averaging round {0}: {1} replicas, {2} parameters", round.Id, n, average.Length);
        round.ReplyTo?.Tell(new AveragingResult(round.Id, n, null));
    }

    private void Remember(AffinityKey key, IActorRef worker)
    {
        if (_affinity.TryGetValue(key, out var node))
        {
            _affinityOrder.Remove(node);
            _affinity.Remove(key);
        }
        _affinity[key] = _affinityOrder.AddLast((key, worker));
        while (_affinity.Count > _settings.AffinityCapacity) Forget(_affinityOrder.First!.Value.Key);
    }

    private void Forget(AffinityKey key)
    {
        if (_affinity.Remove(key, out var node)) _affinityOrder.Remove(node);
    }

    private static ulong Hash(DenseTensor t)
    {
        var hash = new XxHash3();
        hash.Append(MemoryMarshal.AsBytes(((long[])[.. t.Shape]).AsSpan()));
        hash.Append(t.Floats is { } f ? MemoryMarshal.AsBytes(f.AsSpan()) : MemoryMarshal.AsBytes(t.Longs.AsSpan()));
        return hash.GetCurrentHashAsUInt64();
    }
}
