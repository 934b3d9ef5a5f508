using System.Net;
using Akka.Actor;
using Akka.Event;
using Bittensor.Actors.Axon;

namespace Bittensor.Actors.Cluster;

/// <summary>
/// The active front of a clustered miner: a cluster singleton (Akka.Cluster.Tools) among the nodes of role front, so
/// exactly one node serves the hotkey's axon and a second front-capable node takes over when the first dies or leaves.
/// It owns the router (<see cref="ClusterFrontActor"/>, child <c>router</c>) and the axon built around it (child
/// <c>axon</c>), forwards the workers' registrations (they reach it through a singleton proxy) to the router, and
/// says on the event stream when it serves (<see cref="ClusterFrontActivated"/>) and when it stops
/// (<see cref="ClusterFrontDeactivated"/>).
/// </summary>
/// <remarks>
/// <para>Hand-over (<see cref="StopFront"/>, sent by the singleton manager when this node leaves): the axon unbinds
/// (Kestrel drains its connections), then the singleton stops and the next oldest front-capable node starts its own.</para>
/// <para>If the axon cannot bind (port taken) or stops, this node cannot be the front: it logs why and leaves the
/// cluster, so the singleton moves to the next front-capable node instead of staying here, dead.</para>
/// </remarks>
public sealed class ClusterFrontSingleton : ReceiveActor
{
    private sealed record Unbound : INoSerializationVerificationNeeded
    {
        public static Unbound Instance { get; } = new();
    }

    private readonly ClusterSettings _settings;
    private readonly Func<IActorRef, Props> _axonProps;
    private readonly TimeProvider? _time;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private IActorRef _router = ActorRefs.Nobody;
    private IActorRef _axon = ActorRefs.Nobody;
    private IPEndPoint? _endpoint;
    private string _stopReason = "handed over";
    private bool _failed;
    private bool _stopping;

    private ClusterFrontSingleton(ClusterSettings settings, Func<IActorRef, Props> axonProps, TimeProvider? time)
    {
        _settings = settings;
        _axonProps = axonProps;
        _time = time;
        Receive<AxonActor.Bound>(b =>
        {
            _endpoint = b.Endpoint;
            var node = Akka.Cluster.Cluster.Get(Context.System).SelfAddress;
            _log.Info("cluster front: this node ({0}) is the front; axon serving on {1}", node, b.Endpoint);
            Context.System.EventStream.Publish(new ClusterFrontActivated(_router, _axon, b.Endpoint, node));
        });
        Receive<Status.Failure>(f => Fail($"the axon could not listen: {f.Cause?.Message}"));
        Receive<StopFront>(_ =>
        {
            if (_stopping) return;
            _stopping = true;
            _log.Info("cluster front: handing over; the axon unbinds");
            _axon.Ask<Akka.Done>(AxonActor.Unbind.Instance, TimeSpan.FromSeconds(15))
                .ContinueWith(_ => (object)Unbound.Instance, TaskScheduler.Default).PipeTo(Self);
        });
        Receive<Unbound>(_ => Context.Stop(Self));
        Receive<Terminated>(t =>
        {
            if (_stopping) return;
            Fail(t.ActorRef.Equals(_axon) ? "the axon stopped" : "the router stopped");
        });
        // Registrations through the workers' singleton proxy, and status queries: the router's.
        Receive<RegisterWorker>(r => _router.Forward(r));
        Receive<GetClusterFrontStatus>(r => _router.Forward(r));
    }

    /// <summary>Props of the front singleton (started by <see cref="BittensorCluster.StartFront"/>'s singleton manager).</summary>
    public static Props Props(ClusterSettings settings, Func<IActorRef, Props> axonProps, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(axonProps);
        settings.Validate();
        return FactoryProps.For(() => new ClusterFrontSingleton(settings, axonProps, time));
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        _router = Context.ActorOf(ClusterFrontActor.Props(_settings, _time), "router");
        _axon = Context.ActorOf(_axonProps(_router), "axon");
        Context.Watch(_router);
        Context.Watch(_axon);
        _axon.Tell(AxonActor.GetBinding.Instance, Self);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _log.Info("cluster front: stopped on this node ({0})", _stopReason);
        Context.System.EventStream.Publish(new ClusterFrontDeactivated(_endpoint, _stopReason, _failed));
    }

    private void Fail(string why)
    {
        if (_failed) return;
        _failed = true;
        _stopReason = why;
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        _log.Error("cluster front: {0}; this node leaves the cluster so that another front-capable node takes over", why);
        cluster.Leave(cluster.SelfAddress);
        Context.Stop(Self);
    }
}

/// <summary>The singleton manager's message to the front singleton on hand-over: unbind the axon, then stop (local only).</summary>
public sealed record StopFront : INoSerializationVerificationNeeded
{
    /// <summary>The only instance.</summary>
    public static StopFront Instance { get; } = new();
    private StopFront() { }
}

/// <summary>Published on the event stream of the node whose front became active: its axon is listening.</summary>
/// <param name="Router">The front's router (<see cref="ClusterFrontActor"/>): ask it <see cref="GetClusterFrontStatus"/>.</param>
/// <param name="Axon">The axon actor (stakes, stats, unbind).</param>
/// <param name="Endpoint">The address the axon listens on.</param>
/// <param name="Node">This node's cluster address.</param>
public sealed record ClusterFrontActivated(IActorRef Router, IActorRef Axon, IPEndPoint Endpoint, Address Node) : INoSerializationVerificationNeeded;

/// <summary>Published on the event stream of the node whose front stopped (handed over, node leaving, or failed).</summary>
/// <param name="Endpoint">The address its axon listened on, if it got that far.</param>
/// <param name="Reason">Why it stopped.</param>
/// <param name="Failed">True when it stopped because the axon could not bind or stopped (the node then leaves the cluster).</param>
public sealed record ClusterFrontDeactivated(IPEndPoint? Endpoint, string Reason, bool Failed) : INoSerializationVerificationNeeded;
