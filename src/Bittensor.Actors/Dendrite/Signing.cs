using Akka.Actor;
using Bittensor.Core.Crypto;
using Grpc.Core;

namespace Bittensor.Actors.Dendrite;

/// <summary>Signs outgoing requests with a hotkey (sr25519, context <c>substrate</c>).</summary>
public interface IRequestSigner
{
    /// <summary>The signing hotkey's SS58 address (sent in the signature header and the message).</summary>
    string Hotkey { get; }

    /// <summary>Returns the 64-byte signature of <paramref name="message"/>.</summary>
    Task<byte[]> SignAsync(byte[] message, CancellationToken cancellationToken);
}

/// <summary>Signs directly with an in-memory key pair (tests, dev keys such as <c>//Alice</c>). Does not own the pair.</summary>
public sealed class KeyPairSigner(Sr25519KeyPair keyPair) : IRequestSigner
{
    /// <inheritdoc />
    public string Hotkey { get; } = keyPair.ToSs58();

    /// <inheritdoc />
    public Task<byte[]> SignAsync(byte[] message, CancellationToken cancellationToken) => Task.FromResult(keyPair.Sign(message));
}

/// <summary>
/// Signs by asking an actor (e.g. the wallet's signer actor) with a timeout; <paramref name="request"/> builds the
/// actor's sign message from the bytes and <paramref name="signature"/> extracts the signature from its reply.
/// </summary>
public sealed class ActorSigner(IActorRef signer, string hotkey, Func<byte[], object> request, Func<object, byte[]> signature, TimeSpan timeout) : IRequestSigner
{
    /// <inheritdoc />
    public string Hotkey { get; } = hotkey;

    /// <inheritdoc />
    public async Task<byte[]> SignAsync(byte[] message, CancellationToken cancellationToken)
    {
        var reply = await signer.Ask<object>(request(message), timeout, cancellationToken);
        return reply is Akka.Actor.Status.Failure f ? throw new InvalidOperationException("signer refused", f.Cause) : signature(reply);
    }
}

/// <summary>Seam over the Protocol layer's header builder (the three metadata entries, in order).</summary>
internal interface IRequestHeaderFactory
{
    Task<Metadata> CreateAsync(IRequestSigner signer, CancellationToken cancellationToken);
}
