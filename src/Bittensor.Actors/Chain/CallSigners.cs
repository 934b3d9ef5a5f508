using Bittensor.Chain;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Chain;

/// <summary>
/// The seam between the <see cref="ChainActor"/> and whoever holds a key: signs an encoded call at a nonce for one
/// chain. Implementations: <see cref="KeyPairSigner"/> (a key in memory, for tests and dev accounts) and, with the
/// wallet runtime, an adapter that asks the WalletSignerActor so secrets never leave it.
/// </summary>
public interface ICallSigner
{
    /// <summary>The signing account (nonces are tracked per account).</summary>
    AccountId Account { get; }

    /// <summary>Signs <paramref name="call"/> at <paramref name="nonce"/> for <paramref name="chain"/>.</summary>
    Task<SignedCall> SignAsync(ChainCall call, uint nonce, ChainIdentity chain, CancellationToken cancellationToken);

    /// <summary>
    /// Signs a payload a Substrate node's runtime defined for <paramref name="call"/> (its metadata's extension list,
    /// a mortal era; see <see cref="IRemoteChainBackend.PrepareAsync"/>) and returns the 64-byte sr25519 signature.
    /// Signers that cannot sign arbitrary payloads keep this default and can only sign for the embedded localnet.
    /// </summary>
    Task<byte[]> SignPayloadAsync(ChainCall call, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) =>
        throw new NotSupportedException($"{GetType().Name} signs localnet calls only");
}

/// <summary>Signs with an sr25519 key pair held in memory. The caller keeps ownership of the key pair.</summary>
public sealed class KeyPairSigner : ICallSigner
{
    private readonly Sr25519KeyPair _key;

    /// <summary>Wraps <paramref name="key"/>.</summary>
    public KeyPairSigner(Sr25519KeyPair key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _key = key;
        Account = new AccountId(key.PublicKey.Span);
    }

    /// <inheritdoc />
    public AccountId Account { get; }

    /// <inheritdoc />
    public Task<SignedCall> SignAsync(ChainCall call, uint nonce, ChainIdentity chain, CancellationToken cancellationToken) =>
        Task.FromResult(CallSigner.Sign(call, _key, nonce, chain));

    /// <inheritdoc />
    public Task<byte[]> SignPayloadAsync(ChainCall call, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) =>
        Task.FromResult(_key.Sign(payload.Span));

    /// <inheritdoc />
    public override string ToString() => $"KeyPairSigner({Account.ToHex()})";
}
