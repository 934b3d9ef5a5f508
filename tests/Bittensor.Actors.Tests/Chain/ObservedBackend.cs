using System.Threading.Channels;
using Bittensor.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Tests.Chain;

/// <summary>
/// Forwards to a real backend and tells the test when a submitted call has entered the pool, so the test can
/// produce the block that includes it — blocks are driven explicitly, never by waiting on a clock.
/// </summary>
internal sealed class ObservedBackend(IChainBackend inner) : IChainBackend
{
    private readonly Channel<SignedCall> _accepted = Channel.CreateUnbounded<SignedCall>();

    public async Task<SignedCall> NextAcceptedAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a bound on a call that does come, for a busy machine
        return await _accepted.Reader.ReadAsync(cts.Token);
    }

    public ChainCall ForRuntime(ChainCall call) => inner.ForRuntime(call);

    public Task<CallResult> SubmitAsync(SignedCall call, CancellationToken cancellationToken = default)
    {
        var pending = inner.SubmitAsync(call, cancellationToken);
        _accepted.Writer.TryWrite(call);
        return pending;
    }

    public ValueTask<ChainIdentity> GetIdentityAsync(CancellationToken cancellationToken = default) => inner.GetIdentityAsync(cancellationToken);
    public ValueTask<BlockInfo> GetCurrentBlockAsync(CancellationToken cancellationToken = default) => inner.GetCurrentBlockAsync(cancellationToken);
    public IAsyncEnumerable<BlockInfo> SubscribeBlocksAsync(CancellationToken cancellationToken = default) => inner.SubscribeBlocksAsync(cancellationToken);
    public ValueTask<IReadOnlyList<SubnetInfo>> GetSubnetsAsync(CancellationToken cancellationToken = default) => inner.GetSubnetsAsync(cancellationToken);
    public ValueTask<SubnetInfo?> GetSubnetAsync(ushort netuid, CancellationToken cancellationToken = default) => inner.GetSubnetAsync(netuid, cancellationToken);
    public ValueTask<SubnetHyperparameters?> GetHyperparametersAsync(ushort netuid, CancellationToken cancellationToken = default) =>
        inner.GetHyperparametersAsync(netuid, cancellationToken);
    public ValueTask<IReadOnlyList<NeuronInfo>> GetNeuronsAsync(ushort netuid, CancellationToken cancellationToken = default) =>
        inner.GetNeuronsAsync(netuid, cancellationToken);
    public ValueTask<NeuronInfo?> GetNeuronAsync(ushort netuid, ushort uid, CancellationToken cancellationToken = default) =>
        inner.GetNeuronAsync(netuid, uid, cancellationToken);
    public ValueTask<Balance> GetBalanceAsync(AccountId account, CancellationToken cancellationToken = default) => inner.GetBalanceAsync(account, cancellationToken);
    public ValueTask<IReadOnlyList<StakeInfo>> GetStakesForColdkeyAsync(AccountId coldkey, CancellationToken cancellationToken = default) =>
        inner.GetStakesForColdkeyAsync(coldkey, cancellationToken);
    public ValueTask<Balance> GetTotalStakeForHotkeyAsync(AccountId hotkey, CancellationToken cancellationToken = default) =>
        inner.GetTotalStakeForHotkeyAsync(hotkey, cancellationToken);
    public ValueTask<AccountId?> GetHotkeyOwnerAsync(AccountId hotkey, CancellationToken cancellationToken = default) =>
        inner.GetHotkeyOwnerAsync(hotkey, cancellationToken);
    public ValueTask<Balance> GetNetworkLockCostAsync(CancellationToken cancellationToken = default) => inner.GetNetworkLockCostAsync(cancellationToken);
    public ValueTask<uint> GetNonceAsync(AccountId account, CancellationToken cancellationToken = default) => inner.GetNonceAsync(account, cancellationToken);
    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
