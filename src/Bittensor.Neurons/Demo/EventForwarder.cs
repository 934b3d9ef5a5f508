using Akka.Actor;

namespace Bittensor.Neurons.Demo;

/// <summary>Hands every EventStream event of type <typeparamref name="T"/> to a callback (for host code outside the actor system).</summary>
internal sealed class EventForwarder<T> : ReceiveActor
{
    public EventForwarder(Action<T> callback) => Receive<T>(callback);

    public static Props Props(Action<T> callback) => Akka.Actor.Props.Create(() => new EventForwarder<T>(callback));

    protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(T));

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);
}
