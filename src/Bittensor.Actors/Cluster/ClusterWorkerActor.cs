using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Bittensor.Actors.Axon;
using Bittensor.Actors.ModelHost;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Cluster;

/// <summary>
/// A worker node's actor: it owns the node's model host (a <see cref="ModelHostActor"/> — a hosted text model or
/// delegates, with its queue, batching, deadlines and supervision), registers with every front that is Up in the
/// cluster (<c>/user/cluster-front</c> on nodes of role front), and serves their <see cref="WorkerCall"/>s: each is
/// handed to the host as an <see cref="AxonModelCall"/> and its answer goes back as one <see cref="WorkerReply"/>.
/// </summary>
/// <remarks>
/// Leaving (<see cref="DrainWorker"/>, sent by the CoordinatedShutdown task <see cref="BittensorCluster.StartWorker"/>
/// adds before the cluster-leave phase): the worker tells each front it drains, waits until every front acknowledged
/// (after that no call can arrive) and every call at its host is answered, then answers <see cref="Akka.Done"/>;
/// at most drain_timeout. If the model host stops, every call at it answers NotServingNucleus and the worker stops
/// (the fronts then route around it).
/// </remarks>
public sealed class ClusterWorkerActor : ReceiveActor, IWithTimers
{
    private sealed record RegisterTick : INoSerializationVerificationNeeded
    {
        public static RegisterTick Instance { get; } = new();
    }

    private sealed record DrainTimedOut : INoSerializationVerificationNeeded
    {
        public static DrainTimedOut Instance { get; } = new();
    }

    private sealed class Front
    {
        public IActorRef? Actor { get; set; }
        public bool Acknowledged { get; set; }
        public bool DrainAcknowledged { get; set; }
    }

    private readonly ClusterSettings _settings;
    private readonly Props _hostProps;
    private readonly int _capacity;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<Address, Front> _fronts = [];
    private readonly Dictionary<long, (IActorRef Front, long Id)> _calls = [];
    private IActorRef _host = ActorRefs.Nobody;
    private string _replica = "";
    private long _nextId;
    private long _served;
    private bool _draining;
    private IActorRef? _drainReplyTo;

    private ClusterWorkerActor(ClusterSettings settings, Props hostProps, int capacity)
    {
        _settings = settings;
        _hostProps = hostProps;
        _capacity = capacity;
        Receive<WorkerCall>(OnCall);
        Receive<AxonModelReply>(OnHostReply);
        Receive<ClusterEvent.MemberUp>(m =>
        {
            if (!m.Member.HasRole(ClusterSettings.FrontRole) || _fronts.ContainsKey(m.Member.Address)) return;
            _fronts[m.Member.Address] = new Front();
            SendRegister(m.Member.Address);
        });
        Receive<ClusterEvent.MemberRemoved>(m =>
        {
            if (!_fronts.Remove(m.Member.Address)) return;
            CheckDrained();
        });
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<RegisterTick>(_ =>
        {
            foreach (var (address, front) in _fronts)
                if (!front.Acknowledged) SendRegister(address);
        });
        Receive<WorkerRegistered>(r =>
        {
            if (!_fronts.TryGetValue(Sender.Path.Address, out var front)) return;
            if (!front.Acknowledged) _log.Info("cluster worker: registered with the front at {0} ({1} workers there)", Sender.Path.Address, r.Workers);
            front.Acknowledged = true;
            front.Actor = Sender;
            if (_draining) Sender.Tell(WorkerDraining.Instance);
        });
        Receive<DrainWorker>(_ =>
        {
            _drainReplyTo = Sender;
            if (_draining) return;
            _draining = true;
            _log.Info("cluster worker: draining ({0} calls in flight)", _calls.Count);
            foreach (var front in _fronts.Values) front.Actor?.Tell(WorkerDraining.Instance);
            Timers.StartSingleTimer(DrainTimedOut.Instance, DrainTimedOut.Instance, _settings.DrainTimeout);
            CheckDrained();
        });
        Receive<DrainAck>(_ =>
        {
            if (_fronts.TryGetValue(Sender.Path.Address, out var front)) front.DrainAcknowledged = true;
            CheckDrained();
        });
        Receive<DrainTimedOut>(_ =>
        {
            _log.Warning("cluster worker: drain_timeout passed with {0} calls in flight; leaving anyway", _calls.Count);
            _drainReplyTo?.Tell(Akka.Done.Instance);
            _drainReplyTo = null;
        });
        Receive<GetClusterWorkerState>(_ => Sender.Tell(new ClusterWorkerState(_fronts.Values.Count(f => f.Acknowledged), _calls.Count, _served, _draining)));
        Receive<Terminated>(t => t.ActorRef.Equals(_host), _ =>
        {
            _log.Warning("cluster worker: the model host stopped; this worker stops");
            Context.Stop(Self);
        });
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>
    /// Props of a worker whose model host is built from <paramref name="hostProps"/> (started as its child <c>model</c>),
    /// taking at most <paramref name="capacity"/> calls at once.
    /// </summary>
    public static Props Props(ClusterSettings settings, Props hostProps, int capacity)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(hostProps);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        settings.Validate();
        return FactoryProps.For(() => new ClusterWorkerActor(settings, hostProps, capacity));
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        _replica = cluster.SelfAddress.ToString();
        _host = Context.ActorOf(_hostProps, "model");
        Context.Watch(_host);
        cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent));
        Timers.StartPeriodicTimer(RegisterTick.Instance, RegisterTick.Instance, _settings.RegisterInterval);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        // No answers from here for the calls still at the host: the fronts watch this actor and re-route its
        // forwards when it stops (a node that dies abruptly could not answer either).
        _calls.Clear();
        _drainReplyTo?.Tell(Akka.Done.Instance);
    }

    private void SendRegister(Address front) =>
        Context.ActorSelection(new RootActorPath(front) / "user" / ClusterSettings.FrontName).Tell(new RegisterWorker(_capacity, _draining, _replica), Self);

    private void OnCall(WorkerCall call)
    {
        if (call.IsBackward && call.Grads is null)
        {
            Sender.Tell(new WorkerReply(call.RequestId, ReturnCode.InvalidRequest, "a backward call without gradients", null), Self);
            return;
        }
        var id = ++_nextId;
        _calls[id] = (Sender, call.RequestId);
        var message = call.IsBackward
            ? new AxonModelCall(id, null, new BackwardRequest(call.CallerHotkey, call.CallerStake, call.Modality, call.Inputs,
                call.Grads!)
            {
                Priority = call.Priority, DeadlineUtc = call.DeadlineUtc,
            })
            : new AxonModelCall(id, new ForwardRequest(call.CallerHotkey, call.CallerStake, call.Modality, call.Inputs)
            {
                Priority = call.Priority, DeadlineUtc = call.DeadlineUtc,
            }, null);
        _host.Tell(message, Self);
    }

    private void OnHostReply(AxonModelReply reply)
    {
        if (!_calls.Remove(reply.RequestId, out var to)) return;
        _served++;
        var r = reply.Response;
        to.Front.Tell(new WorkerReply(to.Id, r.Code, r.Message, r.Code == ReturnCode.Success ? r.Outputs : null), Self);
        CheckDrained();
    }

    private void CheckDrained()
    {
        if (!_draining || _drainReplyTo is null || _calls.Count > 0) return;
        if (_fronts.Values.Any(f => f.Actor is not null && !f.DrainAcknowledged)) return;
        _log.Info("cluster worker: drained ({0} calls served)", _served);
        Timers.Cancel(DrainTimedOut.Instance);
        _drainReplyTo.Tell(Akka.Done.Instance);
        _drainReplyTo = null;
    }
}
