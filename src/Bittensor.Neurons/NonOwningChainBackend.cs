using Bittensor.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Neurons;

/// <summary>
/// Hands a shared backend (one localnet for the whole demo) to several ChainActors: every call goes through, but
/// <see cref="DisposeAsync"/> does nothing, because the ChainActor disposes its backend when it stops or reconnects
/// and the owner of the localnet must be the one to close it. <c>submitted</c> is told about every submission once the
/// backend has taken it (a localnet pools it before <see cref="IChainBackend.SubmitAsync"/> returns: block drivers);
/// <c>beforeSubmit</c> is a test seam awaited before a call is handed on (it forces an ordering; null everywhere else).
/// </summary>
internal sealed class NonOwningChainBackend(IChainBackend inner, Action<SignedCall>? submitted = null,
    Func<SignedCall, CancellationToken, Task>? beforeSubmit = null) : IChainBackend
{
    public ValueTask<ChainIdentity> GetIdentityAsync(CancellationToken cancellationToken = default) => inner.GetIdentityAsync(cancellationToken);
    public ValueTask<BlockInfo> GetCurrentBlockAsync(CancellationToken cancellationToken = default) => inner.GetCurrentBlockAsync(cancellationToken);
    public IAsyncEnumerable<BlockInfo> SubscribeBlocksAsync(CancellationToken cancellationToken = default) => inner.SubscribeBlocksAsync(cancellationToken);
    public ValueTask<IReadOnlyList<SubnetInfo>> GetSubnetsAsync(CancellationToken cancellationToken = default) => inner.GetSubnetsAsync(cancellationToken);
    public ValueTask<SubnetInfo?> GetSubnetAsync(ushort netuid, CancellationToken cancellationToken = default) => inner.GetSubnetAsync(netuid, cancellationToken);
    public ValueTask<SubnetHyperparameters?> GetHyperparametersAsync(ushort netuid, CancellationToken cancellationToken = default) => inner.GetHyperparametersAsync(netuid, cancellationToken);
    public ValueTask<IReadOnlyList<NeuronInfo>> GetNeuronsAsync(ushort netuid, CancellationToken cancellationToken = default) => inner.GetNeuronsAsync(netuid, cancellationToken);
    public ValueTask<NeuronInfo?> GetNeuronAsync(ushort netuid, ushort uid, CancellationToken cancellationToken = default) => inner.GetNeuronAsync(netuid, uid, cancellationToken);
    public ValueTask<Balance> GetBalanceAsync(AccountId account, CancellationToken cancellationToken = default) => inner.GetBalanceAsync(account, cancellationToken);
    public ValueTask<IReadOnlyList<StakeInfo>> GetStakesForColdkeyAsync(AccountId coldkey, CancellationToken cancellationToken = default) => inner.GetStakesForColdkeyAsync(coldkey, cancellationToken);
    public ValueTask<Balance> GetTotalStakeForHotkeyAsync(AccountId hotkey, CancellationToken cancellationToken = default) => inner.GetTotalStakeForHotkeyAsync(hotkey, cancellationToken);
    public ValueTask<Balance> GetStakeForHotkeyOnSubnetAsync(AccountId hotkey, ushort netuid, CancellationToken cancellationToken = default) =>
        inner.GetStakeForHotkeyOnSubnetAsync(hotkey, netuid, cancellationToken);
    public ValueTask<AccountId?> GetHotkeyOwnerAsync(AccountId hotkey, CancellationToken cancellationToken = default) => inner.GetHotkeyOwnerAsync(hotkey, cancellationToken);
    public ValueTask<Balance> GetNetworkLockCostAsync(CancellationToken cancellationToken = default) => inner.GetNetworkLockCostAsync(cancellationToken);
    public ValueTask<uint> GetNonceAsync(AccountId account, CancellationToken cancellationToken = default) => inner.GetNonceAsync(account, cancellationToken);
    public ChainCall ForRuntime(ChainCall call) => inner.ForRuntime(call);

    public Task<CallResult> SubmitAsync(SignedCall call, CancellationToken cancellationToken = default)
    {
        return beforeSubmit is null ? Submit() : SeamedAsync();

        Task<CallResult> Submit()
        {
            // The localnet pools the call before SubmitAsync returns, so a block produced after this callback includes it.
            var result = inner.SubmitAsync(call, cancellationToken);
            submitted?.Invoke(call);
            return result;
        }

        async Task<CallResult> SeamedAsync()
        {
            await beforeSubmit(call, cancellationToken);
            return await Submit();
        }
    }
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
