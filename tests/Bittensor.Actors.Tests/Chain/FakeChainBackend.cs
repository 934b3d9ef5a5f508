using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Tests.Chain;

/// <summary>An in-memory backend whose blocks, nonces and submission outcomes a test drives by hand.</summary>
internal sealed class FakeChainBackend : IChainBackend
{
    private readonly Channel<BlockInfo> _blocks = Channel.CreateUnbounded<BlockInfo>();

    /// <summary>A backend named <paramref name="name"/> whose genesis hash is <paramref name="genesis"/> (32 zero bytes when null).</summary>
    public FakeChainBackend(string name = "fake", byte[]? genesis = null) => Identity = new ChainIdentity(name, genesis ?? new byte[32], 148, 1);

    public ChainIdentity Identity { get; }
    public ulong Head { get; set; } = 1;
    public ConcurrentDictionary<AccountId, uint> Nonces { get; } = new();
    public int NonceReads;
    public bool Disposed { get; private set; }

    /// <summary>Every submission, in the order the backend saw them, with the completion the test controls.</summary>
    public Channel<(SignedCall Call, TaskCompletionSource<CallResult> Result)> Submissions { get; } =
        Channel.CreateUnbounded<(SignedCall, TaskCompletionSource<CallResult>)>();

    public void Produce(ulong number)
    {
        Head = number;
        _blocks.Writer.TryWrite(new BlockInfo(number, new byte[32], DateTimeOffset.UnixEpoch));
    }

    public void BreakStream(Exception error) => _blocks.Writer.TryComplete(error);

    public async Task<(SignedCall Call, TaskCompletionSource<CallResult> Result)> NextSubmissionAsync()
    {
        // A bound on a submission that does come (the chain actor's next step), not a speed limit: 60 s for a busy machine.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        return await Submissions.Reader.ReadAsync(cts.Token);
    }

    public ValueTask<ChainIdentity> GetIdentityAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(Identity);

    public ValueTask<BlockInfo> GetCurrentBlockAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(new BlockInfo(Head, new byte[32], DateTimeOffset.UnixEpoch));

    public async IAsyncEnumerable<BlockInfo> SubscribeBlocksAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var b in _blocks.Reader.ReadAllAsync(cancellationToken)) yield return b;
    }

    public ValueTask<uint> GetNonceAsync(AccountId account, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref NonceReads);
        return ValueTask.FromResult(Nonces.GetValueOrDefault(account));
    }

    public ChainCall ForRuntime(ChainCall call) => call;

    public Task<CallResult> SubmitAsync(SignedCall call, CancellationToken cancellationToken = default)
    {
        var tcs = new TaskCompletionSource<CallResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        Submissions.Writer.TryWrite((call, tcs));
        return tcs.Task;
    }

    public ValueTask<IReadOnlyList<SubnetInfo>> GetSubnetsAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyList<SubnetInfo>>([]);

    public ValueTask<SubnetInfo?> GetSubnetAsync(ushort netuid, CancellationToken cancellationToken = default) => ValueTask.FromResult<SubnetInfo?>(null);

    /// <summary>What <see cref="GetHyperparametersAsync"/> answers (null: no such subnet).</summary>
    public SubnetHyperparameters? Hyperparameters { get; set; }

    public ValueTask<SubnetHyperparameters?> GetHyperparametersAsync(ushort netuid, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Hyperparameters);

    /// <summary>What <see cref="GetNeuronsAsync"/> returns; a test may hold it open with a pending task.</summary>
    public Func<ushort, Task<IReadOnlyList<NeuronInfo>>> NeuronsSource { get; set; } = _ => Task.FromResult<IReadOnlyList<NeuronInfo>>([]);

    public int NeuronReads;

    public async ValueTask<IReadOnlyList<NeuronInfo>> GetNeuronsAsync(ushort netuid, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref NeuronReads);
        return await NeuronsSource(netuid);
    }

    public ValueTask<NeuronInfo?> GetNeuronAsync(ushort netuid, ushort uid, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<NeuronInfo?>(null);

    public ValueTask<Balance> GetBalanceAsync(AccountId account, CancellationToken cancellationToken = default) => ValueTask.FromResult(Balance.Zero);

    public ValueTask<IReadOnlyList<StakeInfo>> GetStakesForColdkeyAsync(AccountId coldkey, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyList<StakeInfo>>([]);

    public ValueTask<Balance> GetTotalStakeForHotkeyAsync(AccountId hotkey, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Balance.Zero);

    public ValueTask<AccountId?> GetHotkeyOwnerAsync(AccountId hotkey, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<AccountId?>(null);

    public ValueTask<Balance> GetNetworkLockCostAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(Balance.Zero);

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        _blocks.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }
}

/// <summary>Signs with a zero signature: the fake backend does not verify, so no key material is needed.</summary>
internal sealed class FakeSigner(byte id) : ICallSigner
{
    public AccountId Account { get; } = new(Enumerable.Repeat(id, 32).ToArray());

    public Task<SignedCall> SignAsync(ChainCall call, uint nonce, ChainIdentity chain, CancellationToken cancellationToken) =>
        Task.FromResult(new SignedCall(call.ToBytes(), Account, nonce, new byte[64]));
}
