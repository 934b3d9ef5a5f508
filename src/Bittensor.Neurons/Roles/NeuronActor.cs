using Akka.Actor;
using Bittensor.Actors;
using Akka.Event;

namespace Bittensor.Neurons.Roles;

/// <summary>
/// The parent of one neuron's actors (<c>/user/&lt;role&gt;-&lt;hotkey&gt;</c>): the roles start their named children
/// through it (<c>axon</c>, <c>model</c>, <c>metagraph</c>, <c>dendrite</c>, <c>weights</c>), so stopping the neuron
/// stops all of them and a failure is handled by one explicit strategy:
/// <list type="bullet">
/// <item>a child that throws while running is <b>restarted</b> alone (one-for-one; the others keep their state: a
/// metagraph hiccup does not drop the model's weights or the axon's connections);</item>
/// <item>a child that cannot start (<see cref="ActorInitializationException"/>), is killed, or fails more than
/// <see cref="MaxRestarts"/> times within <see cref="RestartWindow"/> is <b>stopped</b>;</item>
/// <item>when a <em>critical</em> child stops (the axon or model of a server, the metagraph or weight setter of a
/// validator) the <b>neuron stops</b>: a server without its axon is not a server, and restarting the parts one by
/// one would hide the fault. Watch the neuron (or <see cref="ServerNeuron.Neuron"/>) to learn of it.</item>
/// </list>
/// </summary>
public sealed class NeuronActor : ReceiveActor
{
    /// <summary>Restarts of one child tolerated within <see cref="RestartWindow"/> before it is stopped.</summary>
    public const int MaxRestarts = 10;

    /// <summary>Window of <see cref="MaxRestarts"/>.</summary>
    public static readonly TimeSpan RestartWindow = TimeSpan.FromMinutes(1);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<IActorRef> _critical = [];

    public NeuronActor()
    {
        Receive<StartChild>(start =>
        {
            IActorRef child;
            try
            {
                child = Context.ActorOf(start.Props, start.Name);
            }
            catch (InvalidActorNameException e)
            {
                // Answer instead of failing: a restart of this parent would stop every running child.
                Sender.Tell(new Status.Failure(e));
                return;
            }
            Context.Watch(child);
            if (start.Critical) _critical.Add(child);
            Sender.Tell(child);
        });
        Receive<Terminated>(t =>
        {
            if (!_critical.Contains(t.ActorRef)) return;
            _log.Error("neuron {0}: its {1} stopped; stopping the neuron", Self.Path.Name, t.ActorRef.Path.Name);
            Context.Stop(Self);
        });
    }

    /// <summary>Starts a child named <paramref name="Name"/>; answered with its <see cref="IActorRef"/> (or a failure for a taken name).</summary>
    /// <param name="Name">The child's name (axon, model, metagraph, dendrite, weights, …).</param>
    /// <param name="Props">The child's props.</param>
    /// <param name="Critical">When this child stops, the neuron stops.</param>
    public sealed record StartChild(string Name, Props Props, bool Critical);

    /// <summary>Props of a neuron parent.</summary>
    public static Props Props() => Akka.Actor.Props.Create(() => new NeuronActor());

    /// <summary>The strategy described on the class.</summary>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(MaxRestarts, RestartWindow, Decide);

    /// <summary>The decider of <see cref="SupervisorStrategy"/>: stop what cannot start or was killed, restart the rest.</summary>
    public static Directive Decide(Exception failure) => failure switch
    {
        ActorInitializationException or ActorKilledException => Directive.Stop,
        _ => Directive.Restart,
    };
}

/// <summary>Creating, using and stopping <see cref="NeuronActor"/> parents from outside an actor (the roles' <c>StartAsync</c>/<c>DisposeAsync</c>).</summary>
public static class NeuronActors
{
    /// <summary>
    /// Creates the parent of a <paramref name="role"/> neuron for <paramref name="hotkeySs58"/> under the runtime's
    /// guardian, named <c>/user/bittensor/&lt;role&gt;-&lt;hotkey&gt;</c> (a suffix <c>-2</c>… if that name is taken).
    /// </summary>
    public static Task<IActorRef> CreateAsync(ActorSystem system, string role, string hotkeySs58, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(system);
        return BittensorRuntime.Get(system).StartUniqueAsync(NeuronActor.Props(), $"{role}-{hotkeySs58}", cancellationToken);
    }

    /// <summary>Asks <paramref name="neuron"/> to start a named child and returns it.</summary>
    public static async Task<IActorRef> StartChildAsync(IActorRef neuron, string name, Props props, bool critical, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(neuron);
        return await neuron.Ask<IActorRef>(new NeuronActor.StartChild(name, props, critical), TimeSpan.FromSeconds(30), cancellationToken);
    }

    /// <summary>Stops <paramref name="neuron"/> and its children and waits for it (bounded); never throws for a neuron already gone.</summary>
    public static async Task StopAsync(IActorRef neuron, TimeSpan timeout)
    {
        try
        {
            await neuron.GracefulStop(timeout);
        }
        catch (TaskCanceledException)
        {
        }
    }
}
