using Akka.Actor;
using Bittensor.Actors.Wallet;
using Bittensor.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Chain;

/// <summary>
/// Signs chain calls through a <see cref="WalletSignerActor"/>, so the secret never leaves that actor: the payload
/// goes there, a signature comes back and is checked to come from the expected account. The key must be unlocked
/// (<see cref="Unlock"/>) first; a refusal surfaces as <c>SignerFailed</c> in the <see cref="SubmitResult"/>.
/// </summary>
public sealed class WalletCallSigner : ICallSigner
{
    private readonly IActorRef _walletSigner;
    private readonly KeyRole _role;
    private readonly TimeSpan _timeout;

    /// <summary>Wraps <paramref name="walletSigner"/> for the key <paramref name="role"/> whose public key is <paramref name="account"/>.</summary>
    public WalletCallSigner(IActorRef walletSigner, KeyRole role, AccountId account, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(walletSigner);
        _walletSigner = walletSigner;
        _role = role;
        Account = account;
        _timeout = timeout ?? TimeSpan.FromSeconds(30);
    }

    /// <summary>Asks the wallet signer for its public keys and wraps the one of <paramref name="role"/>.</summary>
    public static async Task<WalletCallSigner> CreateAsync(IActorRef walletSigner, KeyRole role, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(walletSigner);
        var keys = await walletSigner.Ask<PublicKeys>(GetPublicKeys.Instance, timeout ?? TimeSpan.FromSeconds(30));
        var ss58 = (role == KeyRole.Coldkey ? keys.ColdkeySs58 : keys.HotkeySs58)
            ?? throw new InvalidOperationException($"wallet '{keys.WalletName}' has no {role.ToString().ToLowerInvariant()}");
        return new WalletCallSigner(walletSigner, role, AccountId.Parse(ss58), timeout);
    }

    /// <inheritdoc />
    public AccountId Account { get; }

    /// <inheritdoc />
    public async Task<SignedCall> SignAsync(ChainCall call, uint nonce, ChainIdentity chain, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        var expected = call.Signer == SignerRole.Coldkey ? KeyRole.Coldkey : KeyRole.Hotkey;
        if (expected != _role) throw new InvalidOperationException($"{call.Name} must be signed by the {expected}, not the {_role}");
        var bytes = call.ToBytes();
        var signature = await SignPayloadAsync(call, SignedCall.SigningPayload(bytes, nonce, chain), cancellationToken);
        return new SignedCall(bytes, Account, nonce, signature);
    }

    /// <inheritdoc />
    public async Task<byte[]> SignPayloadAsync(ChainCall call, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(call);
        var expected = call.Signer == SignerRole.Coldkey ? KeyRole.Coldkey : KeyRole.Hotkey;
        if (expected != _role) throw new InvalidOperationException($"{call.Name} must be signed by the {expected}, not the {_role}");
        var requestId = Guid.NewGuid().ToString("N");
        var reply = await _walletSigner.Ask<object>(new Sign(requestId, [.. payload.Span], _role), _timeout, cancellationToken);
        return reply switch
        {
            Signed s when s.RequestId == requestId && s.PublicKey.AsSpan().SequenceEqual(Account.ToArray()) => s.Signature.ToArray(),
            Signed => throw new InvalidOperationException("the wallet signed with a different key than expected"),
            SignFailed f => throw new InvalidOperationException(f.Reason),
            _ => throw new InvalidOperationException($"unexpected reply {reply.GetType().Name} from the wallet signer"),
        };
    }
}
