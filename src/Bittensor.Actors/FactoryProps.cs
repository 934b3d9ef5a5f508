using Akka.Actor;

namespace Bittensor.Actors;

/// <summary>
/// Props from a factory delegate, for actors whose constructors take internal types or nulls (Akka's
/// expression-based <c>Props.Create</c> needs a public constructor it can match by argument types).
/// Local-only: such Props cannot be deployed remotely.
/// </summary>
internal static class FactoryProps
{
    public static Props For<TActor>(Func<TActor> factory) where TActor : ActorBase =>
        Props.CreateBy(new Producer<TActor>(factory));

    private sealed class Producer<TActor>(Func<TActor> factory) : IIndirectActorProducer where TActor : ActorBase
    {
        public Type ActorType => typeof(TActor);

        public ActorBase Produce() => factory();

        public void Release(ActorBase actor)
        {
        }
    }
}
