using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Threading.Channels;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Local;

/// <summary>
/// An embedded chain that follows subtensor's May-2024 rules: accounts and balances, subnets with their
/// hyperparameters, burned registration with pruning, serving, staking, transfers and set_weights, with the
/// runtime's checks and error names, emission per block and Yuma epochs every tempo. Calls are verified
/// (sr25519 signature over the Substrate signing payload, per-account nonce) when submitted and applied in
/// order when a block is produced. Blocks are produced only by <see cref="ProduceBlockAsync"/> (tests drive it;
/// <see cref="LocalnetBlockProducer"/> calls it on a timer). With a <see cref="LocalnetOptions.Path"/> every block
/// is committed to disk atomically before any call result is reported, and the folder is locked to this process.
/// Thread-safe.
/// </summary>
public sealed class Localnet : IChainBackend
{
    private readonly object _sync = new();
    private readonly LocalnetOptions _options;
    private readonly LocalnetRuntime _runtime;
    private readonly LocalnetStore? _store;
    private readonly LocalnetState _state;
    private readonly ChainIdentity _identity;
    private readonly List<Pending> _pending = [];
    private readonly Dictionary<AccountId, uint> _pendingPerSigner = [];
    private readonly List<Pending> _future = [];
    private readonly List<Channel<BlockInfo>> _subscribers = [];
    private readonly List<LocalnetBlock> _recent = [];
    private Exception? _fault;
    private bool _disposed;

    private sealed record Pending(CheckedExtrinsic Extrinsic, TaskCompletionSource<CallResult> Completion);

    private Localnet(LocalnetOptions options, IEpochRunner epochRunner, LocalnetStore? store, LocalnetState state, string? warning)
    {
        _options = options;
        _runtime = new LocalnetRuntime(options, epochRunner);
        _store = store;
        _state = state;
        RecoveryWarning = warning;
        _identity = new ChainIdentity("localnet:" + state.Name, state.GenesisHash.ToArray(), options.SpecVersion, options.TransactionVersion);
        Metadata = LocalnetMetadata.For(options);
        foreach (var header in state.Headers)
        {
            var block = LocalnetBlock.FromHeader(header);
            // Bodies kept in the state file (the most recent blocks) come back with their headers.
            var body = state.Bodies.FirstOrDefault(b => block.Hash.Span.SequenceEqual(b.Hash));
            if (body is not null)
                block = block with { Timestamp = DateTimeOffset.FromUnixTimeMilliseconds(body.TimestampUnixMs), Extrinsics = body.Extrinsics, Events = body.Events };
            _recent.Add(block);
        }
    }

    /// <summary>The options the chain was opened with.</summary>
    public LocalnetOptions Options => _options;

    /// <summary>The state at the best block as Substrate storage, built from scratch under the lock (O(state); the node updates its views incrementally instead).</summary>
    public LocalnetStorage BuildStorage() => Read(s => LocalnetStorage.Build(s, BestBlockUnlocked(s), _options));

    /// <summary>The best block; call under the chain's lock (inside <see cref="Read{T}"/>).</summary>
    internal LocalnetBlock BestBlockUnlocked(LocalnetState s) =>
        _recent.Count > 0 && _recent[^1].Number == s.Block
            ? _recent[^1]
            : new LocalnetBlock(s.Block, s.BlockHash.ToArray(), new byte[32], new byte[32], new byte[32], Array.Empty<byte>());

    /// <summary>The node's own runtime metadata (what the JSON-RPC node serves and how it encodes events).</summary>
    public LocalnetMetadata Metadata { get; }

    /// <summary>
    /// Called under the chain's lock after each block is committed, with the state as of that block (the JSON-RPC
    /// node builds its storage view here). Must be quick and must not block.
    /// </summary>
    internal Action<LocalnetState, LocalnetBlock>? BlockCommitted { get; set; }

    /// <summary>
    /// Called under the chain's lock whenever the calls ready for the next block may have changed (a call entered the
    /// ready queue, a block took them), with how many are ready now; in the order of the changes (the JSON-RPC node's
    /// <c>dev_subscribePendingExtrinsics</c>). Must be quick and must not block.
    /// </summary>
    internal Action<int>? PoolChanged { get; set; }

    /// <summary>Runs <paramref name="read"/> on the current state under the chain's lock.</summary>
    internal T Read<T>(Func<LocalnetState, T> read)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            return read(_state);
        }
    }

    /// <summary>
    /// Opens the localnet in <see cref="LocalnetOptions.Path"/> (creating its genesis if the folder has no state)
    /// or, without a path, creates one in memory. Throws <see cref="LocalnetException"/> when another process owns
    /// the folder or its state is unreadable.
    /// </summary>
    public static Localnet Open(LocalnetOptions options, IEpochRunner epochRunner)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(epochRunner);
        options.Validate();
        if (options.Path is null) return new Localnet(options, epochRunner, null, Genesis(options), null);
        var store = LocalnetStore.Open(options.Path);
        try
        {
            var state = store.Load(out var warning);
            if (state is null)
            {
                state = Genesis(options);
                store.Commit(state);
            }
            return new Localnet(options, epochRunner, store, state, warning);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>Opens (or creates) a localnet whose epochs run <see cref="YumaEpochRunner"/>.</summary>
    public static Localnet Open(LocalnetOptions options) => Open(options, YumaEpochRunner.Instance);

    /// <summary>Deletes the state of the localnet in <paramref name="path"/> (fails if another process owns it).</summary>
    public static void Reset(string path)
    {
        using var store = LocalnetStore.Open(path);
        store.Reset();
    }

    private static LocalnetState Genesis(LocalnetOptions options)
    {
        var s = new LocalnetState { Name = options.Name, TimestampUnixMs = options.Clock.GetUtcNow().ToUnixTimeMilliseconds() };
        foreach (var (_, account) in DevAccounts.All) s.Free[account] = options.DevAccountBalance.Rao;
        foreach (var (account, balance) in options.GenesisBalances) s.Free[account] = balance.Rao;
        foreach (var v in s.Free.Values) s.TotalIssuance = checked(s.TotalIssuance + v);
        // A random salt makes every genesis distinct, so signatures never replay across resets. The genesis hash is
        // the hash of a Substrate header (parent zero, number 0) whose state root commits to the salt.
        var w = new ScaleWriter();
        w.String("bittensor-localnet").String(options.Name).Raw(RandomNumberGenerator.GetBytes(32));
        var header = LocalnetBlock.EncodeHeader(new byte[32], 0, Blake2b.Hash256(w.WrittenSpan), Blake2b.Hash256([0]));
        s.GenesisHash = Blake2b.Hash256(header);
        s.BlockHash = s.GenesisHash.ToArray();
        s.Headers.Add(header);
        return s;
    }

    /// <summary>The state folder, or null for an in-memory chain.</summary>
    public string? Path => _store?.Folder;

    /// <summary>Set when the last snapshot was unusable and the chain restarted from the one before.</summary>
    public string? RecoveryWarning { get; }

    /// <summary>Current block number.</summary>
    public ulong BlockNumber
    {
        get { lock (_sync) return _state.Block; }
    }

    /// <summary>Chain identity (synchronous form of <see cref="GetIdentityAsync"/>).</summary>
    public ChainIdentity Identity => _identity;

    /// <summary>
    /// Produces the next block: the block step (registration counters, emission, due epochs), then every queued
    /// call in submission order; commits the block (to disk when persistent) and then completes the calls'
    /// results and notifies subscribers.
    /// </summary>
    public Task<BlockInfo> ProduceBlockAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        List<(TaskCompletionSource<CallResult> Completion, CallResult Result)> results;
        LocalnetBlock produced;
        BlockInfo block;
        Channel<BlockInfo>[] subscribers;
        lock (_sync)
        {
            ThrowIfUnusable();
            var batch = _pending.ToList();
            _pending.Clear();
            _pendingPerSigner.Clear();
            results = new(batch.Count);
            try
            {
                var s = _state;
                s.Block++;
                s.TimestampUnixMs = _options.Clock.GetUtcNow().ToUnixTimeMilliseconds();
                _runtime.BlockStep(s);
                var events = new LocalnetEvents(Metadata);
                var extrinsics = new List<byte[]>(batch.Count);
                for (var i = 0; i < batch.Count; i++)
                {
                    var p = batch[i];
                    var signer = p.Extrinsic.Signer;
                    s.Nonces[signer] = s.Nonces.GetValueOrDefault(signer) + 1;
                    extrinsics.Add(p.Extrinsic.Bytes);
                    CallResult result;
                    var before = events.Before(s, p.Extrinsic.Call);
                    try
                    {
                        _runtime.Apply(s, signer, p.Extrinsic.Call);
                        events.Succeeded((uint)i, s, signer, p.Extrinsic.Call, before);
                        result = new CallResult.InBlock(s.Block, i);
                    }
                    catch (DispatchException e)
                    {
                        events.Failed((uint)i, p.Extrinsic.Call, e.Error);
                        result = new CallResult.Failed(e.Error, e.Message, s.Block);
                    }
                    results.Add((p.Completion, result));
                }
                var body = new ScaleWriter();
                body.Compact((ulong)extrinsics.Count);
                foreach (var x in extrinsics) body.Raw(x);
                var extrinsicsRoot = Blake2b.Hash256(body.WrittenSpan);
                var eventBytes = events.Encode();
                var root = new ScaleWriter(128);
                root.Raw(s.BlockHash).U64(s.Block).U64((ulong)s.TimestampUnixMs).Raw(extrinsicsRoot).Raw(Blake2b.Hash256(eventBytes));
                var header = LocalnetBlock.EncodeHeader(s.BlockHash, s.Block, Blake2b.Hash256(root.WrittenSpan), extrinsicsRoot);
                s.BlockHash = Blake2b.Hash256(header);
                s.Headers.Add(header);
                if (s.Headers.Count > LocalnetMetadata.BlockHashCount + 1) s.Headers.RemoveRange(0, s.Headers.Count - (int)LocalnetMetadata.BlockHashCount - 1);
                produced = LocalnetBlock.FromHeader(header) with
                {
                    Timestamp = DateTimeOffset.FromUnixTimeMilliseconds(s.TimestampUnixMs),
                    Extrinsics = [.. extrinsics],
                    Events = eventBytes,
                };
                s.AddBody(new BlockBody(s.BlockHash.ToArray(), s.TimestampUnixMs, [.. extrinsics], eventBytes));
                _store?.Commit(s);
                _recent.Add(produced);
                if (_recent.Count > LocalnetMetadata.BlockHashCount + 1) _recent.RemoveRange(0, _recent.Count - (int)LocalnetMetadata.BlockHashCount - 1);
                BlockCommitted?.Invoke(s, produced);
            }
            catch (Exception e)
            {
                // The in-memory state may be half-applied; refuse further use so a restart resumes from the last commit.
                _fault = e;
                foreach (var p in batch.Concat(_future))
                    p.Completion.TrySetResult(new CallResult.Failed("ChainUnavailable", "block production failed: " + e.Message));
                _future.Clear();
                throw new ChainUnavailableException($"localnet block production failed: {e.Message}", e);
            }
            PruneAndPromoteFuture(results);
            PoolChanged?.Invoke(_pending.Count);
            block = CurrentBlockInfo();
            subscribers = _subscribers.ToArray();
        }
        foreach (var (completion, result) in results) completion.TrySetResult(result);
        foreach (var channel in subscribers) channel.Writer.TryWrite(block);
        return Task.FromResult(block);
    }

    /// <summary>
    /// Changes a subnet's hyperparameters at once (what the subnet owner or sudo does through AdminUtils on the
    /// real chain); persisted with the next block. Throws <see cref="ArgumentException"/> for an unknown subnet.
    /// </summary>
    public void SetHyperparameters(ushort netuid, Func<SubnetHyperparameters, SubnetHyperparameters> update)
    {
        ArgumentNullException.ThrowIfNull(update);
        lock (_sync)
        {
            ThrowIfUnusable();
            if (!_state.Subnets.TryGetValue(netuid, out var net)) throw new ArgumentException($"subnet {netuid} does not exist");
            net.Hyper = update(net.Hyper).Validate();
        }
    }

    /// <summary>Mints <paramref name="amount"/> into an account (a faucet); persisted with the next block.</summary>
    public void Fund(AccountId account, Balance amount)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            _state.Free[account] = checked(_state.BalanceOf(account) + amount.Rao);
            _state.TotalIssuance = checked(_state.TotalIssuance + amount.Rao);
        }
    }

    /// <summary>Total TAO in existence (free balances, stake and locked), as subtensor's TotalIssuance tracks it.</summary>
    public Balance TotalIssuance
    {
        get { lock (_sync) return new Balance(_state.TotalIssuance); }
    }

    /// <summary>Emission queued for a subnet's next epoch.</summary>
    public Balance PendingEmission(ushort netuid)
    {
        lock (_sync) return new Balance(_state.Subnets.TryGetValue(netuid, out var n) ? n.PendingEmission : 0);
    }

    private void ThrowIfUnusable()
    {
        if (_disposed) throw new ChainUnavailableException("the localnet has been disposed");
        if (_fault is not null) throw new ChainUnavailableException($"the localnet stopped after a failure: {_fault.Message}", _fault);
    }

    private BlockInfo CurrentBlockInfo() =>
        new(_state.Block, _state.BlockHash.ToArray(), DateTimeOffset.FromUnixTimeMilliseconds(_state.TimestampUnixMs));

    // ---- IChainBackend ----------------------------------------------------------------------------------

    /// <inheritdoc />
    public ValueTask<ChainIdentity> GetIdentityAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(_identity);

    /// <inheritdoc />
    public ValueTask<BlockInfo> GetCurrentBlockAsync(CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            return ValueTask.FromResult(CurrentBlockInfo());
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<BlockInfo> SubscribeBlocksAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateBounded<BlockInfo>(new BoundedChannelOptions(64)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
            SingleWriter = false,
        });
        lock (_sync)
        {
            ThrowIfUnusable();
            _subscribers.Add(channel);
        }
        try
        {
            while (await channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                while (channel.Reader.TryRead(out var block))
                    yield return block;
        }
        finally
        {
            lock (_sync) _subscribers.Remove(channel);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<SubnetInfo>> GetSubnetsAsync(CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            IReadOnlyList<SubnetInfo> list = _state.Subnets.Values.Select(SubnetInfoOf).ToList();
            return ValueTask.FromResult(list);
        }
    }

    /// <inheritdoc />
    public ValueTask<SubnetInfo?> GetSubnetAsync(ushort netuid, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            return ValueTask.FromResult(_state.Subnets.TryGetValue(netuid, out var n) ? SubnetInfoOf(n) : null);
        }
    }

    private SubnetInfo SubnetInfoOf(SubnetState n) =>
        new(n.Netuid, n.Owner, (ushort)n.Neurons.Count, n.RegisteredAt,
            new Balance(_options.BlockEmissionRao / (ulong)Math.Max(1, _state.Subnets.Count)), new Balance(n.LockedRao), n.Hyper);

    /// <inheritdoc />
    public ValueTask<SubnetHyperparameters?> GetHyperparametersAsync(ushort netuid, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            return ValueTask.FromResult(_state.Subnets.TryGetValue(netuid, out var n) ? n.Hyper : null);
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NeuronInfo>> GetNeuronsAsync(ushort netuid, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            if (!_state.Subnets.TryGetValue(netuid, out var net)) return ValueTask.FromResult<IReadOnlyList<NeuronInfo>>([]);
            var totals = _state.HotkeyTotals();
            IReadOnlyList<NeuronInfo> list = net.Neurons.Select((slot, uid) => NeuronOf(net, slot, (ushort)uid, totals)).ToList();
            return ValueTask.FromResult(list);
        }
    }

    /// <inheritdoc />
    public ValueTask<NeuronInfo?> GetNeuronAsync(ushort netuid, ushort uid, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            if (!_state.Subnets.TryGetValue(netuid, out var net) || uid >= net.Neurons.Count) return ValueTask.FromResult<NeuronInfo?>(null);
            return ValueTask.FromResult<NeuronInfo?>(NeuronOf(net, net.Neurons[uid], uid, _state.HotkeyTotals()));
        }
    }

    private NeuronInfo NeuronOf(SubnetState net, NeuronSlot slot, ushort uid, Dictionary<AccountId, ulong> totals) =>
        new(slot.Hotkey, _state.Owner.GetValueOrDefault(slot.Hotkey), uid, net.Netuid, new Balance(totals.GetValueOrDefault(slot.Hotkey)),
            slot.Rank, slot.Trust, slot.Consensus, slot.Incentive, slot.Dividends, new Balance(slot.Emission), slot.ValidatorTrust,
            slot.ValidatorPermit, slot.Active, slot.LastUpdate, slot.BlockAtRegistration, slot.PruningScore,
            net.Axons.GetValueOrDefault(slot.Hotkey) ?? AxonInfo.Empty, slot.Weights, slot.Bonds);

    /// <inheritdoc />
    public ValueTask<Balance> GetBalanceAsync(AccountId account, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            return ValueTask.FromResult(new Balance(_state.BalanceOf(account)));
        }
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<StakeInfo>> GetStakesForColdkeyAsync(AccountId coldkey, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            IReadOnlyList<StakeInfo> list = _state.Stake.Where(e => e.Key.Coldkey == coldkey)
                .OrderBy(e => e.Key.Hotkey)
                .Select(e => new StakeInfo(e.Key.Hotkey, coldkey, new Balance(e.Value))).ToList();
            return ValueTask.FromResult(list);
        }
    }

    /// <inheritdoc />
    public ValueTask<Balance> GetTotalStakeForHotkeyAsync(AccountId hotkey, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            return ValueTask.FromResult(new Balance(_state.TotalHotkeyStake(hotkey)));
        }
    }

    /// <inheritdoc />
    public ValueTask<AccountId?> GetHotkeyOwnerAsync(AccountId hotkey, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            return ValueTask.FromResult<AccountId?>(_state.Owner.TryGetValue(hotkey, out var c) ? c : null);
        }
    }

    /// <inheritdoc />
    public ValueTask<Balance> GetNetworkLockCostAsync(CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            return ValueTask.FromResult(new Balance(_runtime.NetworkLockCost(_state)));
        }
    }

    /// <inheritdoc />
    public ValueTask<uint> GetNonceAsync(AccountId account, CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            ThrowIfUnusable();
            return ValueTask.FromResult(_state.Nonces.GetValueOrDefault(account) + _pendingPerSigner.GetValueOrDefault(account));
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// The localnet runs spec-148 rules: <c>add_stake</c>/<c>remove_stake</c> take (hotkey, amount) and there is one
    /// stake per hotkey, so a netuid is dropped here (a subnet that does not exist is not an error, as on a
    /// spec-148 node). Its blocks then hold only calls its own metadata describes, which polkadot-js can decode when
    /// the folder is later served by <c>btcli localnet run</c>.
    /// </remarks>
    public ChainCall ForRuntime(ChainCall call) => call switch
    {
        AddStake { Netuid: not null } a => a with { Netuid = null },
        RemoveStake { Netuid: not null } r => r with { Netuid = null },
        _ => call,
    };

    /// <inheritdoc />
    public Task<CallResult> SubmitAsync(SignedCall call, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(call);
        var submission = Submit(call.ToExtrinsic());
        return submission.Included is { } included ? included.WaitAsync(cancellationToken) : Task.FromResult<CallResult>(submission.Rejected!);
    }

    /// <summary>
    /// Submits a signed v4 extrinsic (the bytes <c>author_submitExtrinsic</c> receives): checks its format, call,
    /// era and signature (see <see cref="LocalnetMetadata"/> for the extension list) and the nonce against the
    /// account and the pool. Either <see cref="LocalnetSubmission.Rejected"/> is set (pool reasons: <c>BadFormat</c>,
    /// <c>BadCall</c>, <c>Unsigned</c>, <c>BadSigner</c>, <c>BadSignature</c>, <c>AncientBirthBlock</c>,
    /// <c>Unsupported</c>, <c>Stale</c>, <c>Future</c>, <c>PriorityTooLow</c>, <c>AlreadyImported</c>,
    /// <c>PoolFull</c>) or <see cref="LocalnetSubmission.Included"/> completes when a block includes it.
    /// </summary>
    public LocalnetSubmission Submit(ReadOnlySpan<byte> extrinsic)
    {
        ulong best;
        lock (_sync)
        {
            ThrowIfUnusable();
            best = _state.Block;
        }
        var checkedX = LocalnetExtrinsics.Check(extrinsic, _identity, best, BlockHashOf, out var failure);
        if (failure is not null) return new LocalnetSubmission(Blake2b.Hash256(extrinsic), failure, null);
        var completion = new TaskCompletionSource<CallResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_sync)
        {
            ThrowIfUnusable();
            var signer = checkedX.Signer;
            var committed = _state.Nonces.GetValueOrDefault(signer);
            var next = committed + _pendingPerSigner.GetValueOrDefault(signer);
            CallResult.Failed? refused = null;
            if (_pending.Any(p => p.Extrinsic.Hash.AsSpan().SequenceEqual(checkedX.Hash)) || _future.Any(p => p.Extrinsic.Hash.AsSpan().SequenceEqual(checkedX.Hash)))
                refused = new CallResult.Failed("AlreadyImported", "this extrinsic is already in the pool");
            else if (checkedX.Nonce < committed)
                refused = new CallResult.Failed("Stale", $"nonce {checkedX.Nonce} is already used; the next nonce is {next}");
            else if (checkedX.Nonce < next || _future.Any(p => p.Extrinsic.Signer == signer && p.Extrinsic.Nonce == checkedX.Nonce))
                refused = new CallResult.Failed("PriorityTooLow", $"a call with nonce {checkedX.Nonce} from this signer is already in the pool; the next nonce is {next}");
            else if (checkedX.Nonce > next && checkedX.Nonce - next > FutureNonceWindow)
                refused = new CallResult.Failed("Future", $"nonce {checkedX.Nonce} is more than {FutureNonceWindow} ahead of the next nonce {next}");
            else if (_pending.Count + _future.Count >= _options.MaxPendingCalls)
                refused = new CallResult.Failed("PoolFull", $"{_pending.Count + _future.Count} calls are waiting in the pool");
            if (refused is not null) return new LocalnetSubmission(checkedX.Hash, refused, null);
            if (checkedX.Nonce > next)
            {
                // A gap: wait in the future queue until the missing nonces arrive (Substrate's "future" pool).
                _future.Add(new Pending(checkedX, completion));
                return new LocalnetSubmission(checkedX.Hash, null, completion.Task, Future: true);
            }
            _pending.Add(new Pending(checkedX, completion));
            _pendingPerSigner[signer] = _pendingPerSigner.GetValueOrDefault(signer) + 1;
            Promote(signer);
            PoolChanged?.Invoke(_pending.Count);
        }
        return new LocalnetSubmission(checkedX.Hash, null, completion.Task);
    }

    /// <summary>How far ahead of an account's next nonce a call may wait in the future queue.</summary>
    public const uint FutureNonceWindow = 64;

    /// <summary>Moves the signer's future calls whose nonce is now next into the ready queue, in nonce order (under the lock).</summary>
    private void Promote(AccountId signer)
    {
        while (_future.Count > 0)
        {
            var next = _state.Nonces.GetValueOrDefault(signer) + _pendingPerSigner.GetValueOrDefault(signer);
            var i = _future.FindIndex(p => p.Extrinsic.Signer == signer && p.Extrinsic.Nonce == next);
            if (i < 0) return;
            _pending.Add(_future[i]);
            _future.RemoveAt(i);
            _pendingPerSigner[signer] = _pendingPerSigner.GetValueOrDefault(signer) + 1;
        }
    }

    /// <summary>After a block: future calls whose nonce the chain has passed are dropped as stale; the rest move up when their turn came.</summary>
    private void PruneAndPromoteFuture(List<(TaskCompletionSource<CallResult> Completion, CallResult Result)> results)
    {
        if (_future.Count == 0) return;
        for (var i = _future.Count - 1; i >= 0; i--)
        {
            var p = _future[i];
            var committed = _state.Nonces.GetValueOrDefault(p.Extrinsic.Signer);
            if (p.Extrinsic.Nonce >= committed) continue;
            _future.RemoveAt(i);
            results.Add((p.Completion, new CallResult.Failed("Stale", $"nonce {p.Extrinsic.Nonce} was used by another call while this one waited for a gap")));
        }
        foreach (var signer in _future.Select(p => p.Extrinsic.Signer).Distinct().ToList()) Promote(signer);
    }

    /// <summary>
    /// The signer and call of one extrinsic of <see cref="PendingExtrinsics"/> (or of a node's <c>author_pendingExtrinsics</c>),
    /// e.g. to tell a validator's <c>set_weights</c> among the pooled calls. The signature is not checked again.
    /// </summary>
    /// <exception cref="Bittensor.Core.Scale.ScaleException">Not a signed extrinsic of the localnet's layout, or a call it does not implement.</exception>
    public static (AccountId Signer, ChainCall Call) ReadPendingExtrinsic(ReadOnlySpan<byte> extrinsic) => LocalnetExtrinsics.ReadSignerAndCall(extrinsic);

    /// <summary>The extrinsics waiting for the next block, in order (<c>author_pendingExtrinsics</c>).</summary>
    public IReadOnlyList<byte[]> PendingExtrinsics()
    {
        lock (_sync) return _pending.Select(p => p.Extrinsic.Bytes).ToList();
    }

    /// <summary>How many extrinsics wait for the next block (the length of <see cref="PendingExtrinsics"/>).</summary>
    public int PendingCount
    {
        get { lock (_sync) return _pending.Count; }
    }

    /// <summary>The hash of block <paramref name="number"/> when it is one of the recent blocks (or genesis), else null.</summary>
    public byte[]? BlockHashOf(ulong number)
    {
        lock (_sync)
        {
            if (number == 0) return _state.GenesisHash.ToArray();
            foreach (var b in _recent)
                if (b.Number == number) return b.Hash.ToArray();
            return null;
        }
    }

    /// <summary>A recent block (or genesis when its header is known) by number, or null.</summary>
    public LocalnetBlock? FindBlock(ulong number)
    {
        lock (_sync)
        {
            foreach (var b in _recent)
                if (b.Number == number) return b;
            return null;
        }
    }

    /// <summary>A recent block by hash, or null.</summary>
    public LocalnetBlock? FindBlock(ReadOnlySpan<byte> hash)
    {
        lock (_sync)
        {
            foreach (var b in _recent)
                if (b.Hash.Span.SequenceEqual(hash)) return b;
            return null;
        }
    }

    /// <summary>The best (= finalized) block, or null for a chain created before headers were kept that has produced none since.</summary>
    public LocalnetBlock? BestBlock
    {
        get
        {
            lock (_sync) return _recent.Count > 0 && _recent[^1].Number == _state.Block ? _recent[^1] : null;
        }
    }

    /// <summary>Fails waiting calls, ends subscriptions and releases the folder lock. The last committed block stays on disk.</summary>
    public ValueTask DisposeAsync()
    {
        Channel<BlockInfo>[] subscribers;
        Pending[] pending;
        lock (_sync)
        {
            if (_disposed) return ValueTask.CompletedTask;
            _disposed = true;
            subscribers = _subscribers.ToArray();
            pending = [.. _pending, .. _future];
            _pending.Clear();
            _future.Clear();
            _store?.Dispose();
        }
        foreach (var p in pending) p.Completion.TrySetResult(new CallResult.Failed("ChainUnavailable", "the localnet was stopped before the call was included"));
        foreach (var c in subscribers) c.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }
}
