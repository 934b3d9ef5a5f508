using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Bittensor.Chain.Substrate;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Rpc;

/// <summary>Settings of a <see cref="SubstrateChainBackend"/>.</summary>
public sealed record SubstrateBackendOptions
{
    /// <summary>The JSON-RPC connection.</summary>
    public required JsonRpcOptions Rpc { get; init; }

    /// <summary>Mortal era length in blocks for signed calls (rounded up to a power of two in 4..65536).</summary>
    public ulong EraPeriod { get; init; } = 64;

    /// <summary>Keys per <c>state_queryStorageAt</c> request.</summary>
    public int StorageBatchKeys { get; init; } = 256;

    /// <summary>Requests of one bulk read in flight at once.</summary>
    public int StorageParallelism { get; init; } = 4;

    /// <summary>Bound on keys listed by one <c>state_getKeysPaged</c> walk.</summary>
    public int MaxListedKeys { get; init; } = 1_000_000;

    /// <summary>Re-submissions of the same signed bytes after the node lost them (a restart); each is checked first.</summary>
    public int MaxResubmissions { get; init; } = 5;
}

/// <summary>
/// <see cref="IChainBackend"/> over Substrate JSON-RPC, driven by the runtime's metadata: storage keys, calls,
/// signed extensions, events and module errors all come from the metadata fetched at connect (V15 when the runtime
/// offers it, else V14) and again when the spec version changes. Works against subtensor runtimes of spec 148
/// semantics (one TAO stake per hotkey) and of dynamic TAO (spec 218: stake per subnet, read as the subnet's alpha
/// through <see cref="GetStakeForHotkeyOnSubnetAsync"/> and the neurons); what has no single-number answer there
/// (one total stake per hotkey or coldkey) fails with <see cref="ChainNotSupportedException"/> instead of a wrong number.
/// </summary>
public sealed class SubstrateChainBackend : IRemoteChainBackend
{
    private readonly JsonRpcClient _client;
    private readonly SubstrateBackendOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Channel<BlockInfo>, byte> _blockSubscribers = new();
    private readonly SemaphoreSlim _runtimeLock = new(1, 1);
    private readonly object _headGate = new();
    private RuntimeState _runtime;
    private BlockInfo _best;
    private ulong _finalized;
    private ulong _lastPosted;
    private TaskCompletionSource _headSignal = NewSignal();
    private TaskCompletionSource _finalSignal = NewSignal();
    private bool _headerHashByRpc;
    private readonly List<RpcSubscription> _subscriptions = [];
    private readonly List<Task> _pumps = [];
    private int _disposed;

    private SubstrateChainBackend(JsonRpcClient client, SubstrateBackendOptions options, string name, byte[] genesis, RuntimeState runtime, BlockInfo best)
    {
        _client = client;
        _options = options;
        Name = name;
        GenesisHash = genesis;
        _runtime = runtime;
        _best = best;
        _lastPosted = best.Number;
        _client.ConnectionChanged += c => ConnectionChanged?.Invoke(new ChainConnectionChanged(c.Connected, c.Reason, c.Attempt, c.RetryIn));
    }

    /// <inheritdoc />
    public event Action<ChainConnectionChanged>? ConnectionChanged;

    /// <summary>The chain's name (<c>system_chain</c>).</summary>
    public string Name { get; }

    /// <summary>The genesis hash.</summary>
    public ReadOnlyMemory<byte> GenesisHash { get; }

    /// <summary>The current runtime's metadata.</summary>
    public RuntimeMetadata Metadata => Volatile.Read(ref _runtime).Metadata;

    /// <summary>The current runtime's spec version.</summary>
    public uint SpecVersion => Volatile.Read(ref _runtime).Spec;

    /// <summary>
    /// Raised with the new spec version once a runtime upgrade (or a node that came back with another runtime) has been
    /// read and <see cref="Metadata"/> and <see cref="SpecVersion"/> describe it.
    /// </summary>
    public event Action<uint>? RuntimeChanged;

    /// <summary>The underlying JSON-RPC client.</summary>
    public JsonRpcClient Client => _client;

    /// <summary>Connects, reads the genesis hash, runtime version and metadata, and subscribes to new, finalized heads and runtime upgrades.</summary>
    public static async Task<SubstrateChainBackend> ConnectAsync(SubstrateBackendOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var client = await JsonRpcClient.ConnectAsync(options.Rpc, cancellationToken).ConfigureAwait(false);
        try
        {
            var genesis = RpcHex.FromJson(await client.RequestAsync("chain_getBlockHash", [0], null, cancellationToken).ConfigureAwait(false))
                ?? throw new ChainUnavailableException("the node has no genesis block hash");
            string name;
            try
            {
                name = (await client.RequestAsync("system_chain", [], null, cancellationToken).ConfigureAwait(false)).GetString() ?? "substrate";
            }
            catch (JsonRpcException)
            {
                name = "substrate";
            }
            var runtime = await LoadRuntimeAsync(client, null, cancellationToken).ConfigureAwait(false);
            var header = await client.RequestAsync("chain_getHeader", [], null, cancellationToken).ConfigureAwait(false);
            var number = RpcHex.Number(header.GetProperty("number"));
            var rpcHash = RpcHex.FromJson(await client.RequestAsync("chain_getBlockHash", [number], null, cancellationToken).ConfigureAwait(false))!;
            var byRpc = !HeaderHash(header).AsSpan().SequenceEqual(rpcHash);
            var backend = new SubstrateChainBackend(client, options, name, genesis, runtime, new BlockInfo(number, rpcHash, DateTimeOffset.UtcNow))
            {
                _headerHashByRpc = byRpc,
            };
            await backend.StartAsync(cancellationToken).ConfigureAwait(false);
            return backend;
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartAsync(CancellationToken ct)
    {
        var heads = await _client.SubscribeAsync("chain_subscribeNewHeads", "chain_unsubscribeNewHeads", [], true, null, ct).ConfigureAwait(false);
        _subscriptions.Add(heads);
        _pumps.Add(Task.Run(() => PumpHeadsAsync(heads, finalized: false)));
        try
        {
            var fin = await _client.SubscribeAsync("chain_subscribeFinalizedHeads", "chain_unsubscribeFinalizedHeads", [], true, null, ct).ConfigureAwait(false);
            _subscriptions.Add(fin);
            _pumps.Add(Task.Run(() => PumpHeadsAsync(fin, finalized: true)));
        }
        catch (JsonRpcException)
        {
            // No finality stream: finality waits fall back to chain_getFinalizedHead on each new head.
        }
        try
        {
            var versions = await _client.SubscribeAsync("state_subscribeRuntimeVersion", "state_unsubscribeRuntimeVersion", [], true, null, ct).ConfigureAwait(false);
            _subscriptions.Add(versions);
            _pumps.Add(Task.Run(() => PumpRuntimeVersionsAsync(versions)));
        }
        catch (JsonRpcException)
        {
            // No upgrade notifications: the runtime version is checked again after every reconnect.
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    // ---------------------------------------------------------------- runtime and metadata

    private sealed record RuntimeState(uint Spec, uint TxVersion, string SpecName, RuntimeMetadata Metadata, ExtrinsicBuilder Builder);

    private static async Task<RuntimeState> LoadRuntimeAsync(JsonRpcClient client, string? at, CancellationToken ct)
    {
        var version = await client.RequestAsync("state_getRuntimeVersion", at is null ? [] : [at], null, ct).ConfigureAwait(false);
        var spec = version.GetProperty("specVersion").GetUInt32();
        var tx = version.GetProperty("transactionVersion").GetUInt32();
        var specName = version.TryGetProperty("specName", out var sn) ? sn.GetString() ?? "" : "";
        RuntimeMetadata? metadata = null;
        try
        {
            var versions = RpcHex.FromJson(await client.RequestAsync("state_call", Args("Metadata_metadata_versions", "0x", at), null, ct).ConfigureAwait(false));
            if (versions is not null && DecodeU32Vec(versions).Contains(15u))
            {
                var v15 = RpcHex.FromJson(await client.RequestAsync("state_call", Args("Metadata_metadata_at_version", "0x0f000000", at), null, ct)
                    .ConfigureAwait(false));
                if (v15 is not null) metadata = RuntimeMetadata.Decode(v15);
            }
        }
        catch (JsonRpcException)
        {
            // The runtime predates the Metadata v2 API: use state_getMetadata (V14).
        }
        catch (ScaleException)
        {
            // An answer we cannot read as a version list: use state_getMetadata.
        }
        if (metadata is null)
        {
            var raw = RpcHex.FromJson(await client.RequestAsync("state_getMetadata", at is null ? [] : [at], null, ct).ConfigureAwait(false))
                ?? throw new ChainUnavailableException("state_getMetadata returned nothing");
            metadata = RuntimeMetadata.Decode(raw);
        }
        return new RuntimeState(spec, tx, specName, metadata, new ExtrinsicBuilder(metadata));
    }

    private static object?[] Args(string method, string data, string? at) => at is null ? [method, data] : [method, data, at];

    private static List<uint> DecodeU32Vec(byte[] bytes)
    {
        var r = new ScaleReader(bytes);
        var n = r.CompactU64();
        if (n > 64) throw new ScaleException("too many metadata versions", 0);
        var list = new List<uint>((int)n);
        for (var i = 0UL; i < n; i++) list.Add(r.U32());
        return list;
    }

    private async Task RefreshRuntimeAsync(uint? announcedSpec)
    {
        await _runtimeLock.WaitAsync(_stop.Token).ConfigureAwait(false);
        try
        {
            if (announcedSpec is { } s && s == Volatile.Read(ref _runtime).Spec) return;
            var fresh = await LoadRuntimeAsync(_client, null, _stop.Token).ConfigureAwait(false);
            var before = Volatile.Read(ref _runtime).Spec;
            Volatile.Write(ref _runtime, fresh);
            if (fresh.Spec != before) RuntimeChanged?.Invoke(fresh.Spec);
        }
        finally
        {
            _runtimeLock.Release();
        }
    }

    private async Task PumpRuntimeVersionsAsync(RpcSubscription sub)
    {
        try
        {
            await foreach (var item in sub.Items.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    if (item.Signal == SubscriptionSignal.Notification)
                        await RefreshRuntimeAsync(item.Value.GetProperty("specVersion").GetUInt32()).ConfigureAwait(false);
                    else if (item.Signal == SubscriptionSignal.Resubscribed)
                        await RefreshRuntimeAsync(null).ConfigureAwait(false);
                }
                catch (Exception e) when (e is ChainUnavailableException or JsonRpcException or KeyNotFoundException or InvalidOperationException
                                              or ScaleException or MetadataException)
                {
                    // Keep the old runtime; the next notification or reconnect tries again.
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ChannelClosedException)
        {
        }
    }

    // ---------------------------------------------------------------- heads

    /// <summary>BLAKE2b-256 of the SCALE header built from its JSON form.</summary>
    internal static byte[] HeaderHash(JsonElement header)
    {
        var w = new ScaleWriter(256);
        w.Raw(RpcHex.FromJson(header.GetProperty("parentHash")));
        w.Compact(RpcHex.Number(header.GetProperty("number")));
        w.Raw(RpcHex.FromJson(header.GetProperty("stateRoot")));
        w.Raw(RpcHex.FromJson(header.GetProperty("extrinsicsRoot")));
        var logs = header.TryGetProperty("digest", out var d) && d.TryGetProperty("logs", out var l) ? l : default;
        var items = logs.ValueKind == JsonValueKind.Array ? logs.EnumerateArray().ToList() : [];
        w.Compact((ulong)items.Count);
        foreach (var log in items) w.Raw(RpcHex.FromJson(log));
        return Blake2b.Hash256(w.WrittenSpan);
    }

    private async Task PumpHeadsAsync(RpcSubscription sub, bool finalized)
    {
        try
        {
            await foreach (var item in sub.Items.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                if (item.Signal != SubscriptionSignal.Notification) continue;
                try
                {
                    var number = RpcHex.Number(item.Value.GetProperty("number"));
                    if (finalized)
                    {
                        lock (_headGate)
                        {
                            if (number > _finalized) _finalized = number;
                            var s = _finalSignal;
                            _finalSignal = NewSignal();
                            s.TrySetResult();
                        }
                        continue;
                    }
                    var hash = _headerHashByRpc
                        ? RpcHex.FromJson(await _client.RequestAsync("chain_getBlockHash", [number], null, _stop.Token).ConfigureAwait(false))!
                        : HeaderHash(item.Value);
                    var block = new BlockInfo(number, hash, DateTimeOffset.UtcNow);
                    lock (_headGate)
                    {
                        _best = block;
                        var s = _headSignal;
                        _headSignal = NewSignal();
                        s.TrySetResult();
                        if (number <= _lastPosted) continue;
                        _lastPosted = number;
                    }
                    foreach (var ch in _blockSubscribers.Keys) ch.Writer.TryWrite(block);
                }
                catch (Exception e) when (e is KeyNotFoundException or FormatException or InvalidOperationException or ChainUnavailableException
                                              or JsonRpcException)
                {
                    // A malformed or unreadable head: skip it, the next one carries the chain forward.
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ChannelClosedException)
        {
        }
        finally
        {
            if (!finalized)
            {
                foreach (var ch in _blockSubscribers.Keys) ch.Writer.TryComplete(_stop.IsCancellationRequested ? null : new ChainUnavailableException("the head subscription ended"));
            }
        }
    }

    private Task NextHeadAsync(CancellationToken ct)
    {
        lock (_headGate) return _headSignal.Task.WaitAsync(ct);
    }

    private Task NextFinalizedAsync(CancellationToken ct)
    {
        lock (_headGate) return _finalSignal.Task.WaitAsync(ct);
    }

    // ---------------------------------------------------------------- IChainBackend reads

    /// <inheritdoc />
    public ValueTask<ChainIdentity> GetIdentityAsync(CancellationToken cancellationToken = default)
    {
        var rt = Volatile.Read(ref _runtime);
        return ValueTask.FromResult(new ChainIdentity(Name, GenesisHash, rt.Spec, rt.TxVersion));
    }

    /// <inheritdoc />
    public async ValueTask<BlockInfo> GetCurrentBlockAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var header = await _client.RequestAsync("chain_getHeader", [], null, cancellationToken).ConfigureAwait(false);
        var number = RpcHex.Number(header.GetProperty("number"));
        var hash = _headerHashByRpc
            ? RpcHex.FromJson(await _client.RequestAsync("chain_getBlockHash", [number], null, cancellationToken).ConfigureAwait(false))!
            : HeaderHash(header);
        return new BlockInfo(number, hash, DateTimeOffset.UtcNow);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<BlockInfo> SubscribeBlocksAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var ch = Channel.CreateBounded<BlockInfo>(new BoundedChannelOptions(64) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        _blockSubscribers[ch] = 0;
        try
        {
            ulong last = 0;
            await foreach (var b in ch.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (b.Number <= last) continue;
                last = b.Number;
                yield return b;
            }
        }
        finally
        {
            _blockSubscribers.TryRemove(ch, out _);
        }
    }

    private string BestHashHex => RpcHex.Encode(Volatile.Read(ref _best).Hash.Span);

    private async Task<string> AtAsync(CancellationToken ct)
    {
        // Read a consistent snapshot at one block: the latest best head (fresh from the node, not the cached one).
        var header = await _client.RequestAsync("chain_getHeader", [], null, ct).ConfigureAwait(false);
        var number = RpcHex.Number(header.GetProperty("number"));
        if (_headerHashByRpc)
            return (await _client.RequestAsync("chain_getBlockHash", [number], null, ct).ConfigureAwait(false)).GetString()!;
        return RpcHex.Encode(HeaderHash(header));
    }

    private StorageEntryMetadata Require(RuntimeMetadata md, string pallet, string item, string what)
    {
        var p = md.FindPallet(pallet) ?? throw new ChainNotSupportedException($"this runtime (spec {SpecVersion}) has no pallet {pallet} ({what})");
        return p.FindStorage(item) ?? throw new ChainNotSupportedException($"this runtime (spec {SpecVersion}) has no {pallet}.{item} ({what})");
    }

    /// <summary>Reads raw values of <paramref name="keys"/> at block <paramref name="at"/>: batched <c>state_queryStorageAt</c>, <c>state_getStorage</c> when that is not served.</summary>
    public async Task<byte[]?[]> ReadRawAsync(IReadOnlyList<byte[]> keys, string at, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var result = new byte[]?[keys.Count];
        var batches = new List<(int Start, int Count)>();
        for (var i = 0; i < keys.Count; i += _options.StorageBatchKeys) batches.Add((i, Math.Min(_options.StorageBatchKeys, keys.Count - i)));
        await Parallel.ForEachAsync(batches, new ParallelOptions { MaxDegreeOfParallelism = _options.StorageParallelism, CancellationToken = ct },
            async (batch, token) =>
            {
                var hexKeys = new string[batch.Count];
                for (var j = 0; j < batch.Count; j++) hexKeys[j] = RpcHex.Encode(keys[batch.Start + j]);
                if (!_noQueryStorageAt)
                {
                    try
                    {
                        var answer = await _client.RequestAsync("state_queryStorageAt", [hexKeys, at], null, token).ConfigureAwait(false);
                        var byKey = new Dictionary<string, byte[]?>(StringComparer.OrdinalIgnoreCase);
                        foreach (var set in answer.EnumerateArray())
                        {
                            foreach (var change in set.GetProperty("changes").EnumerateArray())
                                byKey[change[0].GetString()!] = RpcHex.FromJson(change[1]);
                        }
                        for (var j = 0; j < batch.Count; j++) result[batch.Start + j] = byKey.GetValueOrDefault(hexKeys[j]);
                        return;
                    }
                    catch (JsonRpcException e) when (e.Code == -32601)
                    {
                        _noQueryStorageAt = true;
                    }
                }
                for (var j = 0; j < batch.Count; j++)
                    result[batch.Start + j] = RpcHex.FromJson(await _client.RequestAsync("state_getStorage", [hexKeys[j], at], null, token).ConfigureAwait(false));
            }).ConfigureAwait(false);
        return result;
    }

    private volatile bool _noQueryStorageAt;

    /// <summary>Every key under <paramref name="prefix"/> at <paramref name="at"/> (paged <c>state_getKeysPaged</c>, bounded).</summary>
    public async Task<List<byte[]>> ListKeysAsync(byte[] prefix, string at, CancellationToken ct)
    {
        const int page = 1000;
        var keys = new List<byte[]>();
        string? start = null;
        var hexPrefix = RpcHex.Encode(prefix);
        while (true)
        {
            var answer = await _client.RequestAsync("state_getKeysPaged", [hexPrefix, page, start, at], null, ct).ConfigureAwait(false);
            var n = 0;
            foreach (var k in answer.EnumerateArray())
            {
                var s = k.GetString()!;
                keys.Add(RpcHex.Decode(s));
                start = s;
                n++;
            }
            if (keys.Count > _options.MaxListedKeys) throw new ChainUnavailableException($"more than {_options.MaxListedKeys} keys under {hexPrefix}");
            if (n < page) return keys;
        }
    }

    private sealed class Batch(SubstrateChainBackend owner, RuntimeMetadata md)
    {
        private readonly List<(string Pallet, string Item, byte[] Key)> _reads = [];
        private byte[]?[] _values = [];

        public int Add(string pallet, string item, params ScaleValue[] keys)
        {
            owner.Require(md, pallet, item, "needed by this read");
            _reads.Add((pallet, item, StorageKeys.Key(md, pallet, item, keys)));
            return _reads.Count - 1;
        }

        /// <summary>Adds a read of an item the runtime may not have; -1 when it has not.</summary>
        public int AddOptional(string pallet, string item, params ScaleValue[] keys) =>
            md.FindPallet(pallet)?.FindStorage(item) is null ? -1 : Add(pallet, item, keys);

        public async Task RunAsync(string at, CancellationToken ct) => _values = await owner.ReadRawAsync(_reads.Select(r => r.Key).ToList(), at, ct).ConfigureAwait(false);

        public bool Present(int i) => _values[i] is not null;

        public ScaleValue? Value(int i)
        {
            var (pallet, item, _) = _reads[i];
            var raw = _values[i];
            return StorageKeys.DecodeValue(md, pallet, item, raw ?? [], raw is not null);
        }

        public ScaleValue Get(int i) => Value(i) ?? throw new ChainUnavailableException($"{_reads[i].Pallet}.{_reads[i].Item} has no value");
    }

    private static ScaleValue U16(ushort v) => ScaleValue.Int(v);

    /// <summary>
    /// Reads <c>pallet.item(keys…)</c> at the best block, decoded with the runtime's metadata: the value, the declared
    /// default when absent for a default-valued item, null when absent for an optional one.
    /// </summary>
    public async Task<ScaleValue?> ReadStorageAsync(string pallet, string item, ScaleValue[] keys, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var b = new Batch(this, Metadata);
        var i = b.Add(pallet, item, keys);
        await b.RunAsync(await AtAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return b.Value(i);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<SubnetInfo>> GetSubnetsAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var md = Metadata;
        Require(md, "SubtensorModule", "NetworksAdded", "the subnet list");
        var at = await AtAsync(cancellationToken).ConfigureAwait(false);
        var keys = await ListKeysAsync(StorageKeys.Key(md, "SubtensorModule", "NetworksAdded"), at, cancellationToken).ConfigureAwait(false);
        var values = await ReadRawAsync(keys, at, cancellationToken).ConfigureAwait(false);
        var netuids = new List<ushort>();
        for (var i = 0; i < keys.Count; i++)
        {
            if (values[i] is not { } v || !StorageKeys.DecodeValue(md, "SubtensorModule", "NetworksAdded", v)!.AsBool()) continue;
            netuids.Add(StorageKeys.DecodeKey(md, "SubtensorModule", "NetworksAdded", keys[i])[0].AsU16());
        }
        netuids.Sort();
        var result = new List<SubnetInfo>(netuids.Count);
        foreach (var n in netuids)
        {
            if (await ReadSubnetAsync(md, n, at, cancellationToken).ConfigureAwait(false) is { } s) result.Add(s);
        }
        return result;
    }

    /// <inheritdoc />
    public async ValueTask<SubnetInfo?> GetSubnetAsync(ushort netuid, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var at = await AtAsync(cancellationToken).ConfigureAwait(false);
        return await ReadSubnetAsync(Metadata, netuid, at, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<SubnetHyperparameters?> GetHyperparametersAsync(ushort netuid, CancellationToken cancellationToken = default) =>
        (await GetSubnetAsync(netuid, cancellationToken).ConfigureAwait(false))?.Hyperparameters;

    private static readonly string[] HyperItems =
    [
        "Tempo", "Kappa", "ImmunityPeriod", "MaxAllowedUids", "MaxAllowedValidators", "MinAllowedWeights", "MaxWeightsLimit",
        "WeightsSetRateLimit", "WeightsVersionKey", "ActivityCutoff", "BondsMovingAverage", "Burn", "MinBurn", "MaxBurn", "ServingRateLimit",
        "MaxRegistrationsPerBlock", "TargetRegistrationsPerInterval", "AdjustmentInterval", "AdjustmentAlpha", "NetworkRegistrationAllowed",
    ];

    private async Task<SubnetInfo?> ReadSubnetAsync(RuntimeMetadata md, ushort netuid, string at, CancellationToken ct)
    {
        var b = new Batch(this, md);
        var added = b.Add("SubtensorModule", "NetworksAdded", U16(netuid));
        var owner = b.Add("SubtensorModule", "SubnetOwner", U16(netuid));
        var n = b.Add("SubtensorModule", "SubnetworkN", U16(netuid));
        var registeredAt = b.Add("SubtensorModule", "NetworkRegisteredAt", U16(netuid));
        var emission = b.Add("SubtensorModule", "EmissionValues", U16(netuid));
        var locked = b.Add("SubtensorModule", "SubnetLocked", U16(netuid));
        var hyper = HyperItems.Select(item => b.Add("SubtensorModule", item, U16(netuid))).ToArray();
        // A runtime without the item has no such rule: no minimum stake to set weights.
        var minStake = b.AddOptional("SubtensorModule", "WeightsMinStake");
        await b.RunAsync(at, ct).ConfigureAwait(false);
        if (!b.Get(added).AsBool()) return null;
        var h = hyper.Select(b.Get).ToArray();
        var parameters = new SubnetHyperparameters
        {
            Tempo = h[0].AsU16(),
            Kappa = h[1].AsU16(),
            ImmunityPeriod = h[2].AsU16(),
            MaxAllowedUids = h[3].AsU16(),
            MaxAllowedValidators = h[4].AsU16(),
            MinAllowedWeights = h[5].AsU16(),
            MaxWeightsLimit = h[6].AsU16(),
            WeightsRateLimit = h[7].AsU64(),
            WeightsVersionKey = h[8].AsU64(),
            ActivityCutoff = h[9].AsU16(),
            BondsMovingAverage = h[10].AsU64(),
            Burn = h[11].AsU64(),
            MinBurn = h[12].AsU64(),
            MaxBurn = h[13].AsU64(),
            ServingRateLimit = h[14].AsU64(),
            MaxRegistrationsPerBlock = h[15].AsU16(),
            TargetRegistrationsPerInterval = h[16].AsU16(),
            AdjustmentInterval = h[17].AsU16(),
            AdjustmentAlpha = h[18].AsU64(),
            RegistrationAllowed = h[19].AsBool(),
            WeightsMinStake = minStake < 0 ? 0 : b.Get(minStake).AsU64(),
        };
        return new SubnetInfo(netuid, b.Get(owner).AsAccountId(), b.Get(n).AsU16(), b.Get(registeredAt).AsU64(),
            new Balance(b.Get(emission).AsU64()), new Balance(b.Get(locked).AsU64()), parameters);
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<NeuronInfo>> GetNeuronsAsync(ushort netuid, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var at = await AtAsync(cancellationToken).ConfigureAwait(false);
        return await ReadNeuronsAsync(Metadata, netuid, null, at, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask<NeuronInfo?> GetNeuronAsync(ushort netuid, ushort uid, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var at = await AtAsync(cancellationToken).ConfigureAwait(false);
        var list = await ReadNeuronsAsync(Metadata, netuid, uid, at, cancellationToken).ConfigureAwait(false);
        return list.Count == 1 ? list[0] : null;
    }

    private static readonly string[] NeuronVectors =
        ["Rank", "Trust", "Consensus", "Incentive", "Dividends", "Emission", "ValidatorTrust", "ValidatorPermit", "Active", "LastUpdate", "PruningScores"];

    /// <summary>
    /// True when the runtime keeps stake per subnet (dynamic TAO, spec 218 and later: <c>SubtensorModule.TotalHotkeyAlpha</c>
    /// and no <c>TotalHotkeyStake</c>); stake calls then take a netuid and stake reads are per subnet, in the subnet's alpha.
    /// </summary>
    public bool StakePerSubnet => IsStakePerSubnet(Metadata);

    private static bool IsStakePerSubnet(RuntimeMetadata md)
    {
        var sm = md.FindPallet("SubtensorModule");
        return sm?.FindStorage("TotalHotkeyStake") is null && sm?.FindStorage("TotalHotkeyAlpha") is not null;
    }

    /// <summary>Refuses by name what has no single-number answer on a runtime that keeps stake per subnet.</summary>
    private void RequireLegacyStake(RuntimeMetadata md, string what)
    {
        var sm = md.FindPallet("SubtensorModule");
        if (sm?.FindStorage("TotalHotkeyStake") is null || sm.FindStorage("Alpha") is not null)
        {
            throw new ChainNotSupportedException(
                $"this runtime (spec {SpecVersion}) keeps stake per subnet (dynamic TAO: SubtensorModule.Alpha, no TotalHotkeyStake); " +
                $"{what} is not supported by this client yet (stake on one subnet is: btcli metagraph, btcli stake add --netuid N)");
        }
    }

    /// <summary>Refuses by name a runtime whose stake this client reads neither way (no TotalHotkeyStake, no TotalHotkeyAlpha).</summary>
    private void RequireKnownStake(RuntimeMetadata md, string what)
    {
        var sm = md.FindPallet("SubtensorModule");
        if (sm?.FindStorage("TotalHotkeyStake") is null && sm?.FindStorage("TotalHotkeyAlpha") is null)
            throw new ChainNotSupportedException($"this runtime (spec {SpecVersion}) has neither SubtensorModule.TotalHotkeyStake nor TotalHotkeyAlpha; {what} is not supported by this client");
    }

    /// <summary>
    /// The stake that counts for <paramref name="hotkey"/> on subnet <paramref name="netuid"/>: on a runtime that keeps
    /// stake per subnet, <c>SubtensorModule.TotalHotkeyAlpha(hotkey, netuid)</c> (the subnet's alpha, 9 decimals, from
    /// every coldkey — what the runtime's own <c>get_stake_for_hotkey_on_subnet</c> reads); else the hotkey's one TAO
    /// stake (<c>TotalHotkeyStake</c>), the same on every subnet.
    /// </summary>
    public async ValueTask<Balance> GetStakeForHotkeyOnSubnetAsync(AccountId hotkey, ushort netuid, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var md = Metadata;
        RequireKnownStake(md, "stake of a hotkey");
        var b = new Batch(this, md);
        var i = IsStakePerSubnet(md)
            ? b.Add("SubtensorModule", "TotalHotkeyAlpha", ScaleValue.Account(hotkey), U16(netuid))
            : b.Add("SubtensorModule", "TotalHotkeyStake", ScaleValue.Account(hotkey));
        await b.RunAsync(await AtAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return new Balance(b.Get(i).AsU64());
    }

    private volatile bool _noNeuronApi;

    /// <summary>
    /// Neurons through <c>NeuronInfoRuntimeApi_get_neurons</c> / <c>_get_neuron</c> (one call instead of ~6 storage reads
    /// per neuron) when the runtime serves it in the layout this client knows; null when it does not (then storage is read).
    /// </summary>
    private async Task<IReadOnlyList<NeuronInfo>?> ReadNeuronsByApiAsync(RuntimeMetadata md, ushort netuid, ushort? only, string at, CancellationToken ct)
    {
        if (_noNeuronApi) return null;
        var args = new ScaleWriter(4).U16(netuid);
        if (only is { } u) args.U16(u);
        byte[]? raw;
        try
        {
            raw = RpcHex.FromJson(await _client.RequestAsync("state_call",
                Args(only is null ? "NeuronInfoRuntimeApi_get_neurons" : "NeuronInfoRuntimeApi_get_neuron", RpcHex.Encode(args.WrittenSpan), at), null, ct)
                .ConfigureAwait(false));
        }
        catch (JsonRpcException e)
        {
            if (e.Code == -32601 || e.RpcMessage.Contains("not found", StringComparison.OrdinalIgnoreCase)) _noNeuronApi = true;
            return null;
        }
        if (raw is null) return null;
        var types = LegacySubtensorTypes.Instance;
        List<ScaleValue> values;
        try
        {
            var decoded = types.DecodeWrapped(only is null ? types.Neurons : types.NeuronInfo, raw);
            values = decoded is null ? [] : only is null ? [.. decoded.AsItems()] : [decoded];
        }
        catch (ScaleException)
        {
            _noNeuronApi = true; // a layout this client does not know: read storage instead
            return null;
        }
        if (values.Count == 0) return [];
        var b = new Batch(this, md);
        var reg = values.Select(v => b.Add("SubtensorModule", "BlockAtRegistration", U16(netuid), U16(v.Field("uid").AsU16()))).ToArray();
        // Dynamic TAO (spec 218): the API's `stake` is not the hotkey's alpha on the subnet (raonet answers 65535 for a
        // lone staked neuron, a u16 weight), so S is read from TotalHotkeyAlpha(hotkey, netuid), as the runtime keeps it.
        var alpha = IsStakePerSubnet(md)
            ? values.Select(v => b.Add("SubtensorModule", "TotalHotkeyAlpha", ScaleValue.Account(v.Field("hotkey").AsAccountId()), U16(netuid))).ToArray()
            : null;
        await b.RunAsync(at, ct).ConfigureAwait(false);
        var result = new List<NeuronInfo>(values.Count);
        for (var i = 0; i < values.Count; i++)
        {
            var neuron = ChainRecords.ToNeuronInfo(values[i], b.Get(reg[i]).AsU64());
            result.Add(alpha is null ? neuron : neuron with { Stake = new Balance(b.Get(alpha[i]).AsU64()) });
        }
        result.Sort((x, y) => x.Uid.CompareTo(y.Uid));
        return result;
    }

    private async Task<IReadOnlyList<NeuronInfo>> ReadNeuronsAsync(RuntimeMetadata md, ushort netuid, ushort? only, string at, CancellationToken ct)
    {
        RequireKnownStake(md, "the neurons' stake (metagraph S)");
        if (await ReadNeuronsByApiAsync(md, netuid, only, at, ct).ConfigureAwait(false) is { } viaApi) return viaApi;
        var first = new Batch(this, md);
        var added = first.Add("SubtensorModule", "NetworksAdded", U16(netuid));
        var nIndex = first.Add("SubtensorModule", "SubnetworkN", U16(netuid));
        await first.RunAsync(at, ct).ConfigureAwait(false);
        if (!first.Get(added).AsBool()) return [];
        var n = first.Get(nIndex).AsU16();
        var uids = only is { } u ? (u < n ? [u] : Array.Empty<ushort>()) : Enumerable.Range(0, n).Select(i => (ushort)i).ToArray();
        if (uids.Length == 0) return [];

        var second = new Batch(this, md);
        var vectors = NeuronVectors.Select(item => second.Add("SubtensorModule", item, U16(netuid))).ToArray();
        var hotkeyIdx = uids.Select(uid => second.Add("SubtensorModule", "Keys", U16(netuid), U16(uid))).ToArray();
        var regIdx = uids.Select(uid => second.Add("SubtensorModule", "BlockAtRegistration", U16(netuid), U16(uid))).ToArray();
        var weightIdx = uids.Select(uid => second.Add("SubtensorModule", "Weights", U16(netuid), U16(uid))).ToArray();
        var bondIdx = uids.Select(uid => second.Add("SubtensorModule", "Bonds", U16(netuid), U16(uid))).ToArray();
        await second.RunAsync(at, ct).ConfigureAwait(false);
        var vec = vectors.Select(i => second.Get(i).AsItems()).ToArray();
        var hotkeys = hotkeyIdx.Select(i => second.Get(i).AsAccountId()).ToArray();

        var third = new Batch(this, md);
        var ownerIdx = hotkeys.Select(h => third.Add("SubtensorModule", "Owner", ScaleValue.Account(h))).ToArray();
        var axonIdx = hotkeys.Select(h => third.Add("SubtensorModule", "Axons", U16(netuid), ScaleValue.Account(h))).ToArray();
        // One TAO stake per hotkey (spec 148), or the hotkey's alpha on this subnet (dynamic TAO, spec 218 and later).
        var stakeIdx = IsStakePerSubnet(md)
            ? hotkeys.Select(h => third.Add("SubtensorModule", "TotalHotkeyAlpha", ScaleValue.Account(h), U16(netuid))).ToArray()
            : hotkeys.Select(h => third.Add("SubtensorModule", "TotalHotkeyStake", ScaleValue.Account(h))).ToArray();
        await third.RunAsync(at, ct).ConfigureAwait(false);

        ushort U16At(int v, ushort uid) => uid < vec[v].Length ? vec[v][uid].AsU16() : (ushort)0;
        ulong U64At(int v, ushort uid) => uid < vec[v].Length ? vec[v][uid].AsU64() : 0;
        bool BoolAt(int v, ushort uid) => uid < vec[v].Length && vec[v][uid].AsBool();
        var result = new List<NeuronInfo>(uids.Length);
        for (var i = 0; i < uids.Length; i++)
        {
            var uid = uids[i];
            var axon = third.Value(axonIdx[i]) is { } a ? ChainRecords.ToAxonInfo(a) : new AxonInfo(0, 0, 0, 0, 0, 0);
            result.Add(new NeuronInfo(
                hotkeys[i],
                third.Get(ownerIdx[i]).AsAccountId(),
                uid,
                netuid,
                new Balance(third.Get(stakeIdx[i]).AsU64()),
                U16At(0, uid),
                U16At(1, uid),
                U16At(2, uid),
                U16At(3, uid),
                U16At(4, uid),
                new Balance(U64At(5, uid)),
                U16At(6, uid),
                BoolAt(7, uid),
                BoolAt(8, uid),
                U64At(9, uid),
                second.Get(regIdx[i]).AsU64(),
                U16At(10, uid),
                axon,
                Pairs(second.Get(weightIdx[i])),
                Pairs(second.Get(bondIdx[i]))));
        }
        return result;
    }

    private static ImmutableArray<UidWeight> Pairs(ScaleValue v) =>
        [.. v.AsItems().Select(p => p.AsItems() is { Length: 2 } t ? new UidWeight(t[0].AsU16(), t[1].AsU16()) : throw new InvalidCastException("expected (u16, u16)"))];

    /// <inheritdoc />
    public async ValueTask<Balance> GetBalanceAsync(AccountId account, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var md = Metadata;
        var b = new Batch(this, md);
        var i = b.Add("System", "Account", ScaleValue.Account(account));
        await b.RunAsync(await AtAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return ChainRecords.ToAccountInfo(b.Get(i)).Free;
    }

    /// <summary>
    /// On a dev node that offers chopsticks' <c>dev_setStorage</c> (listed by <c>rpc_methods</c>): adds
    /// <paramref name="amount"/> to the account's free balance by rewriting its <c>System.Account</c> entry (nonce,
    /// reference counts and reserved kept; at least one provider, so the account exists) and returns true. False when
    /// the node offers no such method (our node, a real node): then a dev account has to pay.
    /// </summary>
    public async Task<bool> TryDevMintAsync(AccountId account, Balance amount, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var methods = await _client.RequestAsync("rpc_methods", [], null, cancellationToken).ConfigureAwait(false);
        if (methods.ValueKind != JsonValueKind.Object || !methods.TryGetProperty("methods", out var list) || list.ValueKind != JsonValueKind.Array
            || !list.EnumerateArray().Any(m => m.ValueKind == JsonValueKind.String && m.GetString() == "dev_setStorage"))
            return false;
        var md = Metadata;
        var b = new Batch(this, md);
        var i = b.Add("System", "Account", ScaleValue.Account(account));
        await b.RunAsync(await AtAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        var info = ChainRecords.ToAccountInfo(b.Get(i));
        var free = checked(info.Free.Rao + amount.Rao);
        var value = new Dictionary<string, object?>
        {
            ["nonce"] = info.Nonce,
            ["consumers"] = info.Consumers,
            ["providers"] = Math.Max(1u, info.Providers),
            ["sufficients"] = info.Sufficients,
            ["data"] = new Dictionary<string, object?>
            {
                ["free"] = free.ToString(CultureInfo.InvariantCulture),
                ["reserved"] = info.Reserved.Rao.ToString(CultureInfo.InvariantCulture),
            },
        };
        var storage = new Dictionary<string, object?>
        {
            ["System"] = new Dictionary<string, object?> { ["Account"] = new object?[] { new object?[] { new object?[] { account.ToSs58() }, value } } },
        };
        await _client.RequestAsync("dev_setStorage", [storage], null, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <inheritdoc />
    public async ValueTask<IReadOnlyList<StakeInfo>> GetStakesForColdkeyAsync(AccountId coldkey, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var md = Metadata;
        RequireLegacyStake(md, "stake per coldkey");
        Require(md, "SubtensorModule", "Stake", "stake per coldkey");
        var at = await AtAsync(cancellationToken).ConfigureAwait(false);
        var keys = await ListKeysAsync(StorageKeys.Key(md, "SubtensorModule", "Stake"), at, cancellationToken).ConfigureAwait(false);
        var mine = new List<(AccountId Hot, byte[] Key)>();
        foreach (var k in keys)
        {
            var parts = StorageKeys.DecodeKey(md, "SubtensorModule", "Stake", k);
            if (parts[1].AsAccountId() == coldkey) mine.Add((parts[0].AsAccountId(), k));
        }
        var values = await ReadRawAsync(mine.Select(m => m.Key).ToList(), at, cancellationToken).ConfigureAwait(false);
        var result = new List<StakeInfo>();
        for (var i = 0; i < mine.Count; i++)
        {
            var stake = StorageKeys.DecodeValue(md, "SubtensorModule", "Stake", values[i] ?? [], values[i] is not null)!.AsU64();
            if (stake > 0) result.Add(new StakeInfo(mine[i].Hot, coldkey, new Balance(stake)));
        }
        return result.OrderBy(s => s.Hotkey).ToList();
    }

    /// <inheritdoc />
    public async ValueTask<Balance> GetTotalStakeForHotkeyAsync(AccountId hotkey, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var md = Metadata;
        RequireLegacyStake(md, "total stake of a hotkey");
        var b = new Batch(this, md);
        var i = b.Add("SubtensorModule", "TotalHotkeyStake", ScaleValue.Account(hotkey));
        await b.RunAsync(await AtAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return new Balance(b.Get(i).AsU64());
    }

    /// <inheritdoc />
    public async ValueTask<AccountId?> GetHotkeyOwnerAsync(AccountId hotkey, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var md = Metadata;
        var b = new Batch(this, md);
        var i = b.Add("SubtensorModule", "Owner", ScaleValue.Account(hotkey));
        await b.RunAsync(await AtAsync(cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        return b.Present(i) ? b.Get(i).AsAccountId() : null;
    }

    /// <inheritdoc />
    public async ValueTask<Balance> GetNetworkLockCostAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var md = Metadata;
        var at = await AtAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var raw = RpcHex.FromJson(await _client.RequestAsync("state_call",
                Args("SubnetRegistrationRuntimeApi_get_network_registration_cost", "0x", at), null, cancellationToken).ConfigureAwait(false));
            if (raw is { Length: 8 }) return new Balance(BinaryPrimitives.ReadUInt64LittleEndian(raw));
        }
        catch (JsonRpcException)
        {
            // Not served: compute it from storage as the runtime does.
        }
        // subtensor's root.rs get_network_lock_cost, read from storage.
        var b = new Batch(this, md);
        var last = b.Add("SubtensorModule", "NetworkLastLockCost");
        var min = b.Add("SubtensorModule", "NetworkMinLockCost");
        var lastBlock = b.Add("SubtensorModule", "NetworkLastRegistered");
        var interval = b.Add("SubtensorModule", "NetworkLockReductionInterval");
        var number = b.Add("System", "Number");
        await b.RunAsync(at, cancellationToken).ConfigureAwait(false);
        var lastCost = b.Get(last).AsU64();
        var registered = b.Get(lastBlock).AsU64();
        var current = b.Get(number).AsU64();
        var reductionInterval = Math.Max(1, b.Get(interval).AsU64());
        var mult = registered == 0 ? 1UL : 2UL;
        var elapsed = current >= registered ? current - registered : 0;
        var reduction = SaturatingMul(lastCost / reductionInterval, elapsed);
        var doubled = SaturatingMul(lastCost, mult);
        var cost = doubled > reduction ? doubled - reduction : 0;
        return new Balance(Math.Max(cost, b.Get(min).AsU64()));
    }

    private static ulong SaturatingMul(ulong a, ulong b) => a != 0 && b > ulong.MaxValue / a ? ulong.MaxValue : a * b;

    /// <inheritdoc />
    public async ValueTask<uint> GetNonceAsync(AccountId account, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        try
        {
            var n = await _client.RequestAsync("system_accountNextIndex", [account.ToSs58()], null, cancellationToken).ConfigureAwait(false);
            return checked((uint)RpcHex.Number(n));
        }
        catch (JsonRpcException)
        {
            return await GetChainNonceAsync(account, null, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The account's nonce in the chain state (not counting the pool): <c>AccountNonceApi_account_nonce</c>, else <c>System.Account</c>.</summary>
    public async Task<uint> GetChainNonceAsync(AccountId account, string? at, CancellationToken ct)
    {
        try
        {
            var raw = RpcHex.FromJson(await _client.RequestAsync("state_call", Args("AccountNonceApi_account_nonce", RpcHex.Encode(account.ToArray()), at), null, ct)
                .ConfigureAwait(false));
            if (raw is { Length: 4 }) return BinaryPrimitives.ReadUInt32LittleEndian(raw);
        }
        catch (JsonRpcException)
        {
            // Not served: read System.Account.
        }
        var md = Metadata;
        var b = new Batch(this, md);
        var i = b.Add("System", "Account", ScaleValue.Account(account));
        await b.RunAsync(at ?? await AtAsync(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        return ChainRecords.ToAccountInfo(b.Get(i)).Nonce;
    }

    // ---------------------------------------------------------------- calls

    /// <summary>Encodes a domain call with the runtime's own pallet/call indices and argument types.</summary>
    public byte[] EncodeCall(ChainCall call) => EncodeCall(Metadata, call, SpecVersion);

    internal static byte[] EncodeCall(RuntimeMetadata md, ChainCall call, uint spec)
    {
        ArgumentNullException.ThrowIfNull(call);
        var (pallet, args) = call switch
        {
            SetWeights s => ("SubtensorModule", new Dictionary<string, ScaleValue>
            {
                ["netuid"] = U16(s.Netuid),
                ["dests"] = ScaleValue.Seq(s.Dests.Select(d => ScaleValue.Int(d))),
                ["weights"] = ScaleValue.Seq(s.Weights.Select(d => ScaleValue.Int(d))),
                ["version_key"] = ScaleValue.Int(s.VersionKey),
            }),
            AddStake a => ("SubtensorModule", StakeArgs(a.Hotkey, a.Amount, a.Netuid, "amount_staked")),
            RemoveStake r => ("SubtensorModule", StakeArgs(r.Hotkey, r.Amount, r.Netuid, "amount_unstaked")),
            ServeAxon x => ("SubtensorModule", new Dictionary<string, ScaleValue>
            {
                ["netuid"] = U16(x.Netuid),
                ["version"] = ScaleValue.Int(x.Version),
                ["ip"] = ScaleValue.Int(x.Ip),
                ["port"] = ScaleValue.Int(x.Port),
                ["ip_type"] = ScaleValue.Int(x.IpType),
                ["protocol"] = ScaleValue.Int(x.Protocol),
                ["placeholder1"] = ScaleValue.Int(x.Placeholder1),
                ["placeholder2"] = ScaleValue.Int(x.Placeholder2),
            }),
            BurnedRegister br => ("SubtensorModule", new Dictionary<string, ScaleValue>
            {
                ["netuid"] = U16(br.Netuid),
                ["hotkey"] = ScaleValue.Account(br.Hotkey),
            }),
            RegisterNetwork rn => ("SubtensorModule", rn.Hotkey is { } subnetHotkey
                ? new Dictionary<string, ScaleValue> { ["hotkey"] = ScaleValue.Account(subnetHotkey), ["mechid"] = U16(rn.Mechid) }
                : new Dictionary<string, ScaleValue>()),
            Transfer t => ("Balances", new Dictionary<string, ScaleValue>
            {
                ["dest"] = ScaleValue.Account(t.Dest),
                ["value"] = ScaleValue.Int(t.Value.Rao),
            }),
            _ => throw new ChainNotSupportedException($"{call.GetType().Name} has no metadata mapping in this client"),
        };
        var p = md.FindPallet(pallet) ?? throw new ChainNotSupportedException($"this runtime (spec {spec}) has no pallet {pallet}");
        TypeVariant variant;
        try
        {
            variant = MetadataCalls.FindCall(md, p, call.Name);
        }
        catch (MetadataException e)
        {
            throw new ChainNotSupportedException($"this runtime (spec {spec}): {e.Message}");
        }
        var named = new List<(string, ScaleValue)>();
        foreach (var f in variant.Fields)
        {
            if (f.Name is not { } fname || !args.TryGetValue(fname, out var v))
            {
                if (call is RegisterNetwork && string.Equals(f.Name, "hotkey", StringComparison.Ordinal))
                    throw new ChainNotSupportedException($"this runtime's {pallet}.{call.Name} takes {MetadataCalls.Signature(md, variant)}: the subnet needs a hotkey (a wallet with a hotkey)");
                if (call is AddStake or RemoveStake && fname_is_netuid(f.Name))
                    throw new ChainNotSupportedException(
                        $"this runtime (spec {spec}) keeps stake per subnet: {pallet}.{call.Name} takes {MetadataCalls.Signature(md, variant)}; give the subnet (--netuid N)");
                throw new ChainNotSupportedException(
                    $"this runtime's {pallet}.{call.Name} takes {MetadataCalls.Signature(md, variant)}; argument '{f.Name}' is not supported by this client yet");
            }
            if (md.Types[f.Type].Def is VariantDef && v is BytesValue) v = ScaleValue.Enum("Id", v); // MultiAddress::Id
            named.Add((fname, v));
        }
        return MetadataCalls.Encode(md, pallet, call.Name, [.. named]);

        static bool fname_is_netuid(string? n) => string.Equals(n, "netuid", StringComparison.Ordinal);
    }

    private static Dictionary<string, ScaleValue> StakeArgs(AccountId hotkey, Balance amount, ushort? netuid, string amountName)
    {
        var d = new Dictionary<string, ScaleValue> { ["hotkey"] = ScaleValue.Account(hotkey), [amountName] = ScaleValue.Int(amount.Rao) };
        if (netuid is { } n) d["netuid"] = U16(n);
        return d;
    }

    private sealed record Prepared(RuntimeState Runtime, TransactionParams Params, ulong FirstBlock, ulong LastValidBlock);

    /// <inheritdoc />
    public async ValueTask<PreparedExtrinsic> PrepareAsync(ChainCall call, AccountId signer, uint nonce, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        var rt = Volatile.Read(ref _runtime);
        var callBytes = EncodeCall(rt.Metadata, call, rt.Spec);
        var best = await GetCurrentBlockAsync(cancellationToken).ConfigureAwait(false);
        var era = Era.Mortal(_options.EraPeriod, best.Number);
        var birth = era.BirthBlock(best.Number);
        var birthHash = birth == best.Number
            ? best.Hash.ToArray()
            : RpcHex.FromJson(await _client.RequestAsync("chain_getBlockHash", [birth], null, cancellationToken).ConfigureAwait(false))
              ?? throw new ChainUnavailableException($"block {birth} has no hash");
        var p = new TransactionParams(rt.Spec, rt.TxVersion, GenesisHash, nonce, era, birthHash);
        var payload = rt.Builder.SigningPayload(callBytes, p);
        return new PreparedExtrinsic(call.Name, callBytes, signer, nonce, payload, new Prepared(rt, p, best.Number, birth + era.Period));
    }

    /// <inheritdoc />
    /// <remarks>Calls are encoded from the runtime's metadata in <see cref="PrepareAsync"/>, which takes the fields the runtime has.</remarks>
    public ChainCall ForRuntime(ChainCall call) => call;

    /// <inheritdoc />
    public Task<CallResult> SubmitAsync(SignedCall call, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(call);
        // A SignedCall carries the localnet's signing layout (immortal era, spec-148 call indices): it is valid on a
        // real runtime only if that layout matches, which cannot be known here. Use PrepareAsync/SubmitAsync instead.
        return Task.FromResult<CallResult>(new CallResult.Failed("BadSigner",
            "a localnet-format signed call cannot be sent to a Substrate node; sign the payload from PrepareAsync"));
    }

    /// <inheritdoc />
    public async Task<CallResult> SubmitAsync(PreparedExtrinsic prepared, ReadOnlyMemory<byte> signature, bool waitForFinalization,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prepared);
        ThrowIfDisposed();
        if (prepared.State is not Prepared state) throw new ArgumentException("prepared by another backend", nameof(prepared));
        var bytes = state.Runtime.Builder.Signed(prepared.Call.Span, prepared.Signer, signature.Span, state.Params);
        var tracker = new Tracker(this, prepared, state, bytes, waitForFinalization);
        return await tracker.RunAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Maps a pool refusal (JSON-RPC error of <c>author_submit*</c>) to a failure name.</summary>
    public static CallResult.Failed PoolFailure(JsonRpcException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var text = $"{e.RpcMessage} {e.ErrorData}";
        var lower = text.ToLowerInvariant();
        string name = e.Code switch
        {
            1011 => "UnknownTransaction",
            1012 => "TemporarilyBanned",
            1013 => "AlreadyImported",
            1014 => "PriorityTooLow",
            1016 => "Dropped",
            _ when lower.Contains("outdated", StringComparison.Ordinal) || lower.Contains("stale", StringComparison.Ordinal) => "Stale",
            _ when lower.Contains("future", StringComparison.Ordinal) => "Future",
            _ when lower.Contains("bad signature", StringComparison.Ordinal) || lower.Contains("badproof", StringComparison.Ordinal) => "BadSignature",
            _ when lower.Contains("ancient birth", StringComparison.Ordinal) || lower.Contains("ancientbirthblock", StringComparison.Ordinal) => "AncientBirthBlock",
            _ when lower.Contains("pay some fees", StringComparison.Ordinal) || lower.Contains("payment", StringComparison.Ordinal) => "Payment",
            _ when CustomCode(lower) is { } c => SubtensorCustomError(c),
            _ when lower.Contains("priority is too low", StringComparison.Ordinal) => "PriorityTooLow",
            1010 => "Invalid",
            _ => "Rejected",
        };
        return new CallResult.Failed(name, $"the node refused it: {e.Code.ToString(CultureInfo.InvariantCulture)} {text.Trim()}");
    }

    private static int? CustomCode(string lower)
    {
        var i = lower.IndexOf("custom", StringComparison.Ordinal);
        if (i < 0) return null;
        var digits = new string(lower[i..].SkipWhile(c => !char.IsAsciiDigit(c)).TakeWhile(char.IsAsciiDigit).ToArray());
        return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
    }

    /// <summary>subtensor's <c>CustomTransactionError</c> codes (common/src/transaction_error.rs).</summary>
    public static string SubtensorCustomError(int code) => code switch
    {
        0 => "ColdkeyInSwapSchedule",
        1 => "StakeAmountTooLow",
        2 => "BalanceTooLow",
        3 => "SubnetNotExists",
        4 => "HotkeyAccountDoesntExist",
        5 => "NotEnoughStakeToWithdraw",
        6 => "RateLimitExceeded",
        7 => "InsufficientLiquidity",
        8 => "SlippageTooHigh",
        9 => "TransferDisallowed",
        10 => "HotKeyNotRegisteredInNetwork",
        11 => "InvalidIpAddress",
        12 => "ServingRateLimitExceeded",
        13 => "InvalidPort",
        14 => "ZeroMaxAmount",
        15 => "InvalidRevealRound",
        16 => "CommitNotFound",
        17 => "CommitBlockNotInRevealRange",
        18 => "InputLengthsUnequal",
        19 => "UidNotFound",
        255 => "BadRequest",
        _ => $"Custom{code.ToString(CultureInfo.InvariantCulture)}",
    };

    /// <summary>Follows one extrinsic to its outcome, across disconnects, without ever sending different bytes.</summary>
    private sealed class Tracker(SubstrateChainBackend b, PreparedExtrinsic prepared, Prepared state, byte[] bytes, bool waitFinal)
    {
        private readonly string _hex = RpcHex.Encode(bytes);
        private ulong _scannedTo = state.FirstBlock;
        private int _sends;
        private bool _unreadable;

        public async Task<CallResult> RunAsync(CancellationToken ct)
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var watch = await SendAsync(ct).ConfigureAwait(false);
                if (watch.Result is { } done) return done;
                if (watch.Subscription is { } sub)
                {
                    var outcome = await WatchAsync(sub, ct).ConfigureAwait(false);
                    if (outcome is not null) return outcome;
                }
                // The connection dropped (or the node already had it): read the fate back from the chain.
                var fate = await FateAsync(watch.AlreadyPooled, ct).ConfigureAwait(false);
                if (fate is not null) return fate;
                if (_sends > b._options.MaxResubmissions)
                    return new CallResult.Failed("Dropped", $"the node lost the transaction {_sends} times; not sent again");
            }
        }

        private async Task<(CallResult? Result, RpcSubscription? Subscription, bool AlreadyPooled)> SendAsync(CancellationToken ct)
        {
            _sends++;
            try
            {
                var sub = await b._client.SubscribeAsync("author_submitAndWatchExtrinsic", "author_unwatchExtrinsic", [_hex], false, null, ct)
                    .ConfigureAwait(false);
                return (null, sub, false);
            }
            catch (JsonRpcException e) when (e.Code == -32601)
            {
                // No watch support: submit and follow blocks.
                try
                {
                    await b._client.RequestAsync("author_submitExtrinsic", [_hex], null, ct).ConfigureAwait(false);
                    return (null, null, true);
                }
                catch (JsonRpcException e2)
                {
                    return Refused(e2);
                }
            }
            catch (JsonRpcException e)
            {
                return Refused(e);
            }
            catch (ChainUnavailableException)
            {
                // Unknown whether the node received it: find out before anything else.
                return (null, null, false);
            }
        }

        private (CallResult? Result, RpcSubscription? Subscription, bool AlreadyPooled) Refused(JsonRpcException e)
        {
            var f = PoolFailure(e);
            if (f.Error == "AlreadyImported") return (null, null, true);
            // On a re-send, "stale" means our nonce was used meanwhile — maybe by this very transaction: look it up.
            if (_sends > 1 && f.Error == "Stale") return (null, null, false);
            return (f, null, false);
        }

        private async Task<CallResult?> WatchAsync(RpcSubscription sub, CancellationToken ct)
        {
            await using var watching = sub.ConfigureAwait(false);
            byte[]? inBlock = null;
            await foreach (var item in sub.Items.ReadAllAsync(ct).ConfigureAwait(false))
            {
                if (item.Signal == SubscriptionSignal.Lost) return null;
                if (item.Signal != SubscriptionSignal.Notification) continue;
                var v = item.Value;
                if (v.ValueKind == JsonValueKind.String)
                {
                    switch (v.GetString())
                    {
                        case "invalid": return await AfterInvalidAsync("Invalid", ct).ConfigureAwait(false);
                        case "dropped": return await AfterInvalidAsync("Dropped", ct).ConfigureAwait(false);
                        default: continue; // future, ready
                    }
                }
                if (v.ValueKind != JsonValueKind.Object) continue;
                if (v.TryGetProperty("inBlock", out var ib))
                {
                    inBlock = RpcHex.FromJson(ib);
                    if (!waitFinal) return await OutcomeAtAsync(inBlock!, ct).ConfigureAwait(false);
                }
                else if (v.TryGetProperty("finalized", out var fin))
                {
                    return await OutcomeAtAsync(RpcHex.FromJson(fin)!, ct).ConfigureAwait(false);
                }
                else if (v.TryGetProperty("usurped", out _))
                {
                    return new CallResult.Failed("Usurped", "another transaction with the same nonce replaced it");
                }
                else if (v.TryGetProperty("finalityTimeout", out _))
                {
                    return new CallResult.Failed("FinalityTimeout", "its block was not finalized in time");
                }
                else if (v.TryGetProperty("invalid", out _) || v.TryGetProperty("dropped", out _))
                {
                    return await AfterInvalidAsync(v.TryGetProperty("invalid", out _) ? "Invalid" : "Dropped", ct).ConfigureAwait(false);
                }
            }
            return null;
        }

        private async Task<CallResult> AfterInvalidAsync(string reason, CancellationToken ct)
        {
            // A pool verdict after acceptance (e.g. the nonce was used by a block): it may still have been included.
            var found = await ScanAsync(ct).ConfigureAwait(false);
            return found ?? new CallResult.Failed(reason, $"the node's pool reported the transaction {reason.ToLowerInvariant()}");
        }

        private async Task<CallResult?> FateAsync(bool pooled, CancellationToken ct)
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                try
                {
                    if (await ScanAsync(ct).ConfigureAwait(false) is { } found) return found;
                    var best = await b.GetCurrentBlockAsync(ct).ConfigureAwait(false);
                    var nonce = await b.GetChainNonceAsync(prepared.Signer, RpcHex.Encode(best.Hash.Span), ct).ConfigureAwait(false);
                    if (nonce > prepared.Nonce)
                    {
                        if (await ScanAsync(ct).ConfigureAwait(false) is { } late) return late;
                        if (_unreadable)
                        {
                            return new CallResult.Failed("NonceUsed",
                                $"nonce {prepared.Nonce} was used, by this transaction or another: the node does not serve every block in " +
                                $"{state.FirstBlock + 1}..{_scannedTo} any more, so which one cannot be told", best.Number);
                        }
                        return new CallResult.Failed("Usurped",
                            $"nonce {prepared.Nonce} was used by another transaction; this one is not in blocks {state.FirstBlock + 1}..{_scannedTo}");
                    }
                    if (best.Number >= state.LastValidBlock)
                        return new CallResult.Failed("Expired", $"not included before its era ended at block {state.LastValidBlock}");
                    if (!pooled) return null; // not in a block, nonce unused, era open: the same bytes may be sent again (at most once applied)
                    // The node's pool holds it: follow new blocks until it is included, replaced or expires.
                    await b.NextHeadAsync(ct).ConfigureAwait(false);
                }
                catch (ChainUnavailableException)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(200), ct).ConfigureAwait(false);
                }
            }
        }

        private async Task<CallResult?> ScanAsync(CancellationToken ct)
        {
            var best = (await b.GetCurrentBlockAsync(ct).ConfigureAwait(false)).Number;
            var last = Math.Min(best, state.LastValidBlock);
            for (var n = _scannedTo + 1; n <= last; n++)
            {
                var hash = await b._client.RequestAsync("chain_getBlockHash", [n], null, ct).ConfigureAwait(false);
                if (hash.ValueKind != JsonValueKind.String) break;
                var block = await b._client.RequestAsync("chain_getBlock", [hash.GetString()], null, ct).ConfigureAwait(false);
                if (block.ValueKind != JsonValueKind.Object)
                {
                    _unreadable = true; // the node no longer serves this body (e.g. after its restart)
                    _scannedTo = n;
                    continue;
                }
                var index = IndexIn(block);
                if (index >= 0) return await OutcomeAsync(RpcHex.FromJson(hash)!, n, index, ct).ConfigureAwait(false);
                _scannedTo = n;
            }
            return null;
        }

        private int IndexIn(JsonElement block)
        {
            var i = 0;
            foreach (var x in block.GetProperty("block").GetProperty("extrinsics").EnumerateArray())
            {
                if (string.Equals(x.GetString(), _hex, StringComparison.OrdinalIgnoreCase)) return i;
                i++;
            }
            return -1;
        }

        private async Task<CallResult> OutcomeAtAsync(byte[] blockHash, CancellationToken ct)
        {
            var hex = RpcHex.Encode(blockHash);
            var block = await b._client.RequestAsync("chain_getBlock", [hex], null, ct).ConfigureAwait(false);
            var number = RpcHex.Number(block.GetProperty("block").GetProperty("header").GetProperty("number"));
            var index = IndexIn(block);
            if (index < 0) return new CallResult.Failed("Retracted", $"block {number} was reported to hold it but does not");
            return await OutcomeAsync(blockHash, number, index, ct).ConfigureAwait(false);
        }

        private async Task<CallResult> OutcomeAsync(byte[] blockHash, ulong number, int index, CancellationToken ct)
        {
            var hex = RpcHex.Encode(blockHash);
            if (waitFinal)
            {
                while (true)
                {
                    var head = RpcHex.FromJson(await b._client.RequestAsync("chain_getFinalizedHead", [], null, ct).ConfigureAwait(false))!;
                    var fin = RpcHex.Number((await b._client.RequestAsync("chain_getHeader", [RpcHex.Encode(head)], null, ct).ConfigureAwait(false))
                        .GetProperty("number"));
                    if (fin >= number) break;
                    await Task.WhenAny(b.NextFinalizedAsync(ct), b.NextHeadAsync(ct)).ConfigureAwait(false);
                    ct.ThrowIfCancellationRequested();
                }
                var canonical = (await b._client.RequestAsync("chain_getBlockHash", [number], null, ct).ConfigureAwait(false)).GetString();
                if (!string.Equals(canonical, hex, StringComparison.OrdinalIgnoreCase))
                    return new CallResult.Failed("Retracted", $"block {number} holding it was not finalized");
            }
            var md = state.Runtime.Metadata;
            var key = RpcHex.Encode(StorageKeys.Key(md, "System", "Events"));
            var raw = RpcHex.FromJson(await b._client.RequestAsync("state_getStorage", [key, hex], null, ct).ConfigureAwait(false)) ?? [0];
            var events = MetadataEvents.DecodeEvents(md, raw);
            foreach (var e in events)
            {
                if (e.ExtrinsicIndex != (uint)index || !string.Equals(e.Pallet, "System", StringComparison.Ordinal)) continue;
                if (string.Equals(e.Name, "ExtrinsicSuccess", StringComparison.Ordinal)) return new CallResult.InBlock(number, index);
                if (string.Equals(e.Name, "ExtrinsicFailed", StringComparison.Ordinal))
                {
                    var err = MetadataEvents.ResolveDispatchError(md, e.Fields.Values[0]);
                    var docs = err.Docs.Length > 0 ? $": {err.Docs}" : "";
                    return new CallResult.Failed(err.Error ?? err.Kind, $"{err}{docs}", number);
                }
            }
            return new CallResult.Failed("NoOutcome", $"block {number} holds it at {index} but has no ExtrinsicSuccess/ExtrinsicFailed event", number);
        }
    }

    // ---------------------------------------------------------------- lifetime

    private void ThrowIfDisposed()
    {
        if (Volatile.Read(ref _disposed) != 0) throw new ChainUnavailableException("the Substrate backend was disposed");
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        foreach (var ch in _blockSubscribers.Keys) ch.Writer.TryComplete();
        await _client.DisposeAsync().ConfigureAwait(false);
        foreach (var p in _pumps)
        {
            try
            {
                await p.ConfigureAwait(false);
            }
            catch
            {
                // Ending.
            }
        }
        _stop.Dispose();
        _runtimeLock.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() => $"SubstrateChainBackend({_client.Endpoint}, spec {SpecVersion})";

    internal string DebugBest => BestHashHex;
}
