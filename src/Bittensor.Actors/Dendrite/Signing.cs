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

/// <summary>Request signing through the wallet's <see cref="Wallet.WalletSignerActor"/> (the secret stays in that actor).</summary>
public static class WalletRequestSigner
{
    /// <summary>
    /// Unlocks the wallet's hotkey in <paramref name="walletSigner"/> (<paramref name="password"/> only for an
    /// encrypted hotkey) and returns a signer that asks the actor for each signature, with <paramref name="timeout"/>.
    /// Throws <see cref="InvalidOperationException"/> with the actor's reason when the hotkey cannot be unlocked.
    /// </summary>
    public static async Task<IRequestSigner> CreateAsync(IActorRef walletSigner, TimeSpan timeout, Bittensor.Wallet.PasswordSource? password = null)
    {
        ArgumentNullException.ThrowIfNull(walletSigner);
        var reply = await walletSigner.Ask<object>(new Wallet.Unlock(Wallet.KeyRole.Hotkey, password), timeout).ConfigureAwait(false);
        var hotkey = reply switch
        {
            Wallet.Unlocked u => u.Ss58Address,
            Wallet.UnlockFailed f => throw new InvalidOperationException(f.Reason),
            _ => throw new InvalidOperationException($"unexpected answer to Unlock: {reply.GetType().Name}"),
        };
        return new DelegateRequestSigner(hotkey, async (message, ct) =>
        {
            var id = Guid.NewGuid().ToString("N");
            var answer = await walletSigner.Ask<object>(
                new Wallet.Sign(id, System.Collections.Immutable.ImmutableArray.Create(message.Span), Wallet.KeyRole.Hotkey), timeout, ct).ConfigureAwait(false);
            return answer switch
            {
                Wallet.Signed s => s.Signature.ToArray(),
                Wallet.SignFailed f => throw new InvalidOperationException($"the wallet refused to sign: {f.Reason}"),
                _ => throw new InvalidOperationException($"unexpected answer to Sign: {answer.GetType().Name}"),
            };
        });
    }
}
