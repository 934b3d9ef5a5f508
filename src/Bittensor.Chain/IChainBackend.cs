using Bittensor.Core.Domain;

namespace Bittensor.Chain;

/// <summary>
/// The one chain interface the actors use. Implemented by the embedded <c>Localnet</c> now and by the Substrate
/// client later, so every method is async and every failure is typed: reads throw
/// <see cref="ChainUnavailableException"/> when the backend cannot be reached; submissions never throw for a
/// chain refusal but return <see cref="CallResult.Failed"/> with the runtime's error name.
/// </summary>
public interface IChainBackend : IAsyncDisposable
{
    /// <summary>Genesis hash, spec and transaction versions: the values a signature commits to.</summary>
    ValueTask<ChainIdentity> GetIdentityAsync(CancellationToken cancellationToken = default);

    /// <summary>The best (on the localnet also final) block.</summary>
    ValueTask<BlockInfo> GetCurrentBlockAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// New blocks as they are produced, starting with the next one. Each subscriber has its own bounded buffer;
    /// a subscriber that falls behind skips to the newest blocks (numbers are monotonic, never repeated).
    /// Ends when <paramref name="cancellationToken"/> fires or the backend is disposed.
    /// </summary>
    IAsyncEnumerable<BlockInfo> SubscribeBlocksAsync(CancellationToken cancellationToken = default);

    /// <summary>All subnets, ordered by netuid.</summary>
    ValueTask<IReadOnlyList<SubnetInfo>> GetSubnetsAsync(CancellationToken cancellationToken = default);

    /// <summary>One subnet, or null when it does not exist.</summary>
    ValueTask<SubnetInfo?> GetSubnetAsync(ushort netuid, CancellationToken cancellationToken = default);

    /// <summary>The subnet's parameters, or null when it does not exist.</summary>
    ValueTask<SubnetHyperparameters?> GetHyperparametersAsync(ushort netuid, CancellationToken cancellationToken = default);

    /// <summary>Every neuron of a subnet ordered by uid (with axon, weights and bonds); empty when the subnet does not exist.</summary>
    ValueTask<IReadOnlyList<NeuronInfo>> GetNeuronsAsync(ushort netuid, CancellationToken cancellationToken = default);

    /// <summary>One neuron, or null when the subnet or uid does not exist.</summary>
    ValueTask<NeuronInfo?> GetNeuronAsync(ushort netuid, ushort uid, CancellationToken cancellationToken = default);

    /// <summary>Free balance of an account (zero for an unknown account).</summary>
    ValueTask<Balance> GetBalanceAsync(AccountId account, CancellationToken cancellationToken = default);

    /// <summary>Stake positions held by a coldkey, one per hotkey.</summary>
    ValueTask<IReadOnlyList<StakeInfo>> GetStakesForColdkeyAsync(AccountId coldkey, CancellationToken cancellationToken = default);

    /// <summary>Total stake on a hotkey (from all coldkeys).</summary>
    ValueTask<Balance> GetTotalStakeForHotkeyAsync(AccountId hotkey, CancellationToken cancellationToken = default);

    /// <summary>
    /// The stake that counts for a hotkey on one subnet. Chains with one stake per hotkey (the localnet, spec 148)
    /// answer the total; chains that keep stake per subnet (dynamic TAO) answer the subnet's alpha.
    /// </summary>
    ValueTask<Balance> GetStakeForHotkeyOnSubnetAsync(AccountId hotkey, ushort netuid, CancellationToken cancellationToken = default) =>
        GetTotalStakeForHotkeyAsync(hotkey, cancellationToken);

    /// <summary>The coldkey that owns a hotkey, or null when the hotkey was never registered.</summary>
    ValueTask<AccountId?> GetHotkeyOwnerAsync(AccountId hotkey, CancellationToken cancellationToken = default);

    /// <summary>What <c>register_network</c> costs now.</summary>
    ValueTask<Balance> GetNetworkLockCostAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// The next nonce to sign with for <paramref name="account"/>, counting calls already accepted into the pool
    /// but not yet in a block (like <c>system_accountNextIndex</c>).
    /// </summary>
    ValueTask<uint> GetNonceAsync(AccountId account, CancellationToken cancellationToken = default);

    /// <summary>
    /// Submits a signed call and completes when it is included in a block (<see cref="CallResult.InBlock"/>) or
    /// refused: either by the pool before inclusion (bad signature, "Stale"/"Future" nonce, undecodable call —
    /// <see cref="CallResult.Failed.Block"/> is null) or by the runtime when applied (subtensor error names such as
    /// <c>NotRegistered</c>; the nonce is used and <see cref="CallResult.Failed.Block"/> is set).
    /// Cancelling stops waiting; it does not withdraw a call already accepted.
    /// </summary>
    Task<CallResult> SubmitAsync(SignedCall call, CancellationToken cancellationToken = default);

    /// <summary>
    /// <paramref name="call"/> as this runtime takes it, for the paths that encode a call themselves
    /// (<see cref="ChainCall.ToBytes"/>, then <see cref="SubmitAsync"/>). The embedded localnet keeps one stake per
    /// hotkey (spec-148 rules), so it drops a stake call's netuid there, as the metadata-driven encoder does for a
    /// spec-148 node; a backend that encodes from the runtime's metadata itself returns the call unchanged, and a
    /// wrapper asks what it wraps (no default: a wrapper that forgot would send the wrong layout).
    /// </summary>
    ChainCall ForRuntime(ChainCall call);
}

/// <summary>The chain backend cannot be reached or has been disposed; retry with backoff.</summary>
public sealed class ChainUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ChainUnavailableException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}
