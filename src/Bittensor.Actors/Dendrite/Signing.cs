using Akka.Actor;
using Bittensor.Protocol;

namespace Bittensor.Actors.Dendrite;

/// <summary>Request signers backed by an actor (e.g. the wallet's signer actor) through an Ask with a timeout.</summary>
public static class ActorRequestSigner
{
    /// <summary>
    /// A signer that asks <paramref name="signer"/>: <paramref name="request"/> builds the actor's sign message from the
    /// bytes and <paramref name="signature"/> takes the 64-byte signature out of its reply.
    /// </summary>
    public static IRequestSigner Create(IActorRef signer, string hotkeySs58, Func<byte[], object> request, Func<object, byte[]> signature, TimeSpan timeout) =>
        new DelegateRequestSigner(hotkeySs58, async (message, ct) =>
        {
            var reply = await signer.Ask<object>(request(message.ToArray()), timeout, ct).ConfigureAwait(false);
            return reply is Akka.Actor.Status.Failure f ? throw new InvalidOperationException("the signer actor refused to sign", f.Cause) : signature(reply);
        });
}
