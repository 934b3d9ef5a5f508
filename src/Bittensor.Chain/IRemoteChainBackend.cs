using Bittensor.Core.Domain;

namespace Bittensor.Chain;

/// <summary>
/// A call encoded for one runtime and ready to be signed: <see cref="Payload"/> is what the signer signs (already
/// BLAKE2b-256-hashed when longer than 256 bytes). Made by <see cref="IRemoteChainBackend.PrepareAsync"/>, given
/// back with the signature to <see cref="IRemoteChainBackend.SubmitAsync(PreparedExtrinsic, ReadOnlyMemory{byte}, bool, CancellationToken)"/>.
/// </summary>
/// <param name="CallName">The call's name, e.g. <c>set_weights</c>.</param>
/// <param name="Call">The call encoded from the runtime's metadata.</param>
/// <param name="Signer">The signing account.</param>
/// <param name="Nonce">The nonce signed.</param>
/// <param name="Payload">The bytes to sign.</param>
/// <param name="State">The backend's own data (era, runtime version); opaque to callers.</param>
public sealed record PreparedExtrinsic(string CallName, ReadOnlyMemory<byte> Call, AccountId Signer, uint Nonce, ReadOnlyMemory<byte> Payload, object State);

/// <summary>A connection state change of a backend that keeps its own connection.</summary>
/// <param name="Connected">True once (re)connected.</param>
/// <param name="Reason">Why it is disconnected (null when connected).</param>
/// <param name="Attempt">Retry number of the next attempt.</param>
/// <param name="RetryIn">Delay before the next attempt.</param>
public sealed record ChainConnectionChanged(bool Connected, string? Reason, int Attempt, TimeSpan RetryIn);

/// <summary>
/// A backend that talks to a node over the network (the Substrate JSON-RPC client). It differs from the embedded
/// localnet in three ways the <c>ChainActor</c> relies on:
/// <list type="bullet">
/// <item>it keeps its connection itself (reconnect with backoff, resubscribe), so a failed read does not mean the
/// backend is gone, and <see cref="IChainBackend.SubscribeBlocksAsync"/> continues across reconnects;</item>
/// <item>calls are encoded from the runtime's metadata and signed over the runtime's own extension list with a
/// mortal era (<see cref="PrepareAsync"/>), so the signer signs the payload it is handed;</item>
/// <item>a submission survives a disconnect: its fate is read back from the chain, never blindly resubmitted.</item>
/// </list>
/// </summary>
public interface IRemoteChainBackend : IChainBackend
{
    /// <summary>Raised when the connection is lost or re-established.</summary>
    event Action<ChainConnectionChanged>? ConnectionChanged;

    /// <summary>
    /// Encodes <paramref name="call"/> for the current runtime and builds the signing payload at
    /// <paramref name="nonce"/> with a mortal era starting at the best block. A call the runtime does not have, or
    /// whose arguments differ in meaning (per-subnet stake), fails with <see cref="ChainNotSupportedException"/>.
    /// </summary>
    ValueTask<PreparedExtrinsic> PrepareAsync(ChainCall call, AccountId signer, uint nonce, CancellationToken cancellationToken = default);

    /// <summary>
    /// Submits the prepared call with its sr25519 <paramref name="signature"/> and completes when it is in a block
    /// (or in a finalized block when <paramref name="waitForFinalization"/>), or refused. Never throws for a chain
    /// or pool refusal (<see cref="CallResult.Failed"/> carries the runtime's module error name or the pool's reason).
    /// </summary>
    Task<CallResult> SubmitAsync(PreparedExtrinsic prepared, ReadOnlyMemory<byte> signature, bool waitForFinalization,
        CancellationToken cancellationToken = default);
}

/// <summary>
/// The connected runtime's semantics differ from what this client implements (e.g. per-subnet stake of dynamic
/// TAO runtimes); the message names the storage item or call. Never answered with a guessed value.
/// </summary>
public sealed class ChainNotSupportedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ChainNotSupportedException(string message) : base(message)
    {
    }
}
