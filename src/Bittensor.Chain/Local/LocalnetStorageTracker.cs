using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Bittensor.Chain.Substrate;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Local;

/// <summary>
/// Turns successive states into successive <see cref="LocalnetStorage"/> views without re-encoding the whole state
/// each block. Every storage entry has an identity (item and the key's parts, e.g. <c>Stake(hotkey, coldkey)</c>)
/// and a cheap source (the state fields its value is made of). Each block the state is walked once; an entry whose
/// source is unchanged costs a dictionary lookup and a comparison — no key hashing, no SCALE encoding, no
/// allocation — and only changed, new and vanished entries are written into the previous view's persistent sorted
/// set, which shares every untouched node with it. The first call (or <see cref="LocalnetStorage.Build"/>) builds
/// everything. Not thread-safe: the node calls it under the chain's lock.
/// </summary>
internal sealed class LocalnetStorageTracker
{
    private const string M = "SubtensorModule";

    // Declared first: the item ids below are initialised from them.
    private static readonly ConcurrentDictionary<(string, string), int> ItemIds = new();
    private static readonly ConcurrentDictionary<int, byte[]> ItemPrefixes = new();
    private static int _nextItem;

    private readonly Dictionary<Id, Cached> _cache = [];
    private readonly Dictionary<AccountId, byte[]> _blake2 = [];
    private readonly Dictionary<byte[], (ulong Number, byte[] Hash)> _headers = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<AccountId, ulong> _hotTotals = [];
    private readonly Dictionary<AccountId, ulong> _coldTotals = [];
    private readonly List<Id> _stale = [];
    private ImmutableSortedSet<StorageEntry> _set = StorageEntry.EmptySet;
    private ImmutableSortedSet<StorageEntry>.Builder? _builder;
    private long _generation;
    private int _seen;
    private int _changed;

    /// <summary>Entries written or removed by the last <see cref="Next"/>.</summary>
    public int LastChanged { get; private set; }

    /// <summary>The view of <paramref name="block"/>, whose post-state is <paramref name="s"/>.</summary>
    public LocalnetStorage Next(LocalnetState s, LocalnetBlock block, LocalnetOptions options)
    {
        _generation++;
        _seen = 0;
        _changed = 0;
        _builder = _set.ToBuilder();
        try
        {
            Emit(s, block, options);
            if (_seen != _cache.Count) Sweep();
            _set = _builder.ToImmutable();
        }
        catch
        {
            // The cache may be half-updated: forget everything, the next call rebuilds from scratch.
            _cache.Clear();
            _set = StorageEntry.EmptySet;
            throw;
        }
        finally
        {
            _builder = null;
        }
        LastChanged = _changed;
        if (_blake2.Count > 1 << 17) _blake2.Clear();
        return new LocalnetStorage(block.Number, block.Hash.ToArray(), _set);
    }

    // ---- what the state is as storage -------------------------------------------------------------------------

    private static readonly int SystemAccount = Item("System", "Account");
    private static readonly int SystemBlockHash = Item("System", "BlockHash");
    private static readonly int StakeItem = Item(M, "Stake");
    private static readonly int TotalHotkeyStake = Item(M, "TotalHotkeyStake");
    private static readonly int TotalColdkeyStake = Item(M, "TotalColdkeyStake");
    private static readonly int OwnerItem = Item(M, "Owner");
    private static readonly int KeysItem = Item(M, "Keys");
    private static readonly int UidsItem = Item(M, "Uids");
    private static readonly int BlockAtRegistration = Item(M, "BlockAtRegistration");
    private static readonly int IsNetworkMember = Item(M, "IsNetworkMember");
    private static readonly int WeightsItem = Item(M, "Weights");
    private static readonly int BondsItem = Item(M, "Bonds");
    private static readonly int AxonsItem = Item(M, "Axons");

    private void Emit(LocalnetState s, LocalnetBlock block, LocalnetOptions options)
    {
        var number = (uint)s.Block;

        // ---- System, Timestamp, Balances --------------------------------------------------------------------
        foreach (var (a, free) in s.Free) Account(a, free, s.Nonces.GetValueOrDefault(a));
        foreach (var (a, nonce) in s.Nonces)
            if (!s.Free.ContainsKey(a)) Account(a, 0, nonce);
        BlockHash(0, s.GenesisHash);
        if (_headers.Count > 2 * (s.Headers.Count + 1)) _headers.Clear();
        foreach (var h in s.Headers)
        {
            if (!_headers.TryGetValue(h, out var hb))
            {
                var decoded = LocalnetBlock.FromHeader(h);
                _headers[h] = hb = (decoded.Number, decoded.Hash.ToArray());
            }
            if (hb.Number == 0 || hb.Number > uint.MaxValue) continue;
            BlockHash((uint)hb.Number, hb.Hash);
        }
        Single("System", "Number", BitConverter.GetBytes(number));
        Single("System", "ParentHash", block.ParentHash.ToArray());
        var events = block.Events ?? [0];
        Single("System", "Events", events);
        var er = new ScaleReader(events);
        Single("System", "EventCount", BitConverter.GetBytes((uint)er.CompactU64()));
        Single("Timestamp", "Now", BitConverter.GetBytes((ulong)s.TimestampUnixMs));
        Single("Balances", "TotalIssuance", BitConverter.GetBytes(s.TotalIssuance));

        // ---- SubtensorModule: chain-wide ---------------------------------------------------------------------
        ulong totalStake = 0;
        _hotTotals.Clear();
        _coldTotals.Clear();
        foreach (var ((hot, cold), amount) in s.Stake)
        {
            totalStake = checked(totalStake + amount);
            _hotTotals[hot] = checked(_hotTotals.GetValueOrDefault(hot) + amount);
            _coldTotals[cold] = checked(_coldTotals.GetValueOrDefault(cold) + amount);
            var id = new Id(StakeItem, 0, 0, hot, cold);
            var src = new Src(amount, 0, default, null);
            if (!Same(id, src)) Set(id, src, Key(StakeItem).Blake2Concat(hot).Identity(cold).Done(), BitConverter.GetBytes(amount));
        }
        foreach (var (hot, v) in _hotTotals)
        {
            var id = new Id(TotalHotkeyStake, 0, 0, hot, default);
            var src = new Src(v, 0, default, null);
            if (!Same(id, src)) Set(id, src, Key(TotalHotkeyStake).Identity(hot).Done(), BitConverter.GetBytes(v));
        }
        foreach (var (cold, v) in _coldTotals)
        {
            var id = new Id(TotalColdkeyStake, 0, 0, cold, default);
            var src = new Src(v, 0, default, null);
            if (!Same(id, src)) Set(id, src, Key(TotalColdkeyStake).Identity(cold).Done(), BitConverter.GetBytes(v));
        }
        foreach (var (hot, cold) in s.Owner)
        {
            var id = new Id(OwnerItem, 0, 0, hot, default);
            var src = new Src(0, 0, cold, null);
            if (!Same(id, src)) Set(id, src, Key(OwnerItem).Blake2Concat(hot).Done(), cold.ToArray());
        }
        Single(M, "TotalStake", BitConverter.GetBytes(totalStake));
        Single(M, "BlockEmission", BitConverter.GetBytes(options.BlockEmissionRao));
        Single(M, "TotalIssuance", BitConverter.GetBytes(s.TotalIssuance));
        Single(M, "TargetStakesPerInterval", BitConverter.GetBytes(options.TargetStakesPerInterval));
        Single(M, "StakeInterval", BitConverter.GetBytes(options.StakeInterval));
        Single(M, "SubnetLimit", BitConverter.GetBytes(options.SubnetLimit));
        Single(M, "TotalNetworks", BitConverter.GetBytes((ushort)s.Subnets.Count));
        Single(M, "NetworkMinLockCost", BitConverter.GetBytes(options.NetworkMinLockCost));
        Single(M, "NetworkLastLockCost", BitConverter.GetBytes(s.NetworkLastLockCost));
        Single(M, "NetworkLockReductionInterval", BitConverter.GetBytes(options.NetworkLockReductionInterval));
        Single(M, "SubnetOwnerCut", BitConverter.GetBytes(options.SubnetOwnerCut));
        Single(M, "NetworkRateLimit", BitConverter.GetBytes(options.NetworkRateLimit));

        // ---- SubtensorModule: per subnet and per neuron ---------------------------------------------------
        var perSubnetEmission = s.Subnets.Count == 0 ? 0 : options.BlockEmissionRao / (ulong)s.Subnets.Count;
        foreach (var net in s.Subnets.Values)
        {
            var n = net.Netuid;
            var h = net.Hyper;
            void U16(string item, ushort v) => Single(M, item, n, BitConverter.GetBytes(v));
            void U64(string item, ulong v) => Single(M, item, n, BitConverter.GetBytes(v));
            void Bool(string item, bool v) => Single(M, item, n, [v ? (byte)1 : (byte)0]);
            U64("Burn", h.Burn);
            U64("MinBurn", h.MinBurn);
            U64("MaxBurn", h.MaxBurn);
            U64("LastAdjustmentBlock", net.LastAdjustmentBlock);
            U16("RegistrationsThisBlock", net.RegistrationsThisBlock);
            U16("MaxRegistrationsPerBlock", h.MaxRegistrationsPerBlock);
            U16("SubnetworkN", (ushort)net.Neurons.Count);
            Bool("NetworksAdded", true);
            Bool("NetworkRegistrationAllowed", h.RegistrationAllowed);
            U64("NetworkRegisteredAt", net.RegisteredAt);
            U16("Tempo", h.Tempo);
            U64("EmissionValues", perSubnetEmission);
            U64("PendingEmission", net.PendingEmission);
            Single(M, "SubnetOwner", n, net.Owner.ToArray());
            U64("SubnetLocked", net.LockedRao);
            U64("ServingRateLimit", h.ServingRateLimit);
            U16("Kappa", h.Kappa);
            U16("RegistrationsThisInterval", net.RegistrationsThisInterval);
            U16("BurnRegistrationsThisInterval", net.RegistrationsThisInterval);
            U16("MaxAllowedUids", h.MaxAllowedUids);
            U16("ImmunityPeriod", h.ImmunityPeriod);
            U16("ActivityCutoff", h.ActivityCutoff);
            U16("MaxWeightsLimit", h.MaxWeightsLimit);
            U64("WeightsVersionKey", h.WeightsVersionKey);
            U16("MinAllowedWeights", h.MinAllowedWeights);
            U16("MaxAllowedValidators", h.MaxAllowedValidators);
            U16("AdjustmentInterval", h.AdjustmentInterval);
            U64("BondsMovingAverage", h.BondsMovingAverage);
            U64("WeightsSetRateLimit", h.WeightsRateLimit);
            U16("TargetRegistrationsPerInterval", h.TargetRegistrationsPerInterval);
            U64("AdjustmentAlpha", h.AdjustmentAlpha);
            if (net.LoadedEmission.Count > 0)
            {
                var w = new ScaleWriter(8 + net.LoadedEmission.Count * 48);
                w.Compact((ulong)net.LoadedEmission.Count);
                foreach (var (hot, rao) in net.LoadedEmission)
                {
                    hot.Encode(w);
                    w.U64(rao).U64(0);
                }
                Single(M, "LoadedEmission", n, w.ToArray());
            }
            var neurons = net.Neurons;
            void VecU16(string item, Func<NeuronSlot, ushort> f)
            {
                var w = new ScaleWriter(4 + neurons.Count * 2);
                w.Compact((ulong)neurons.Count);
                foreach (var x in neurons) w.U16(f(x));
                Single(M, item, n, w.ToArray());
            }
            void VecU64(string item, Func<NeuronSlot, ulong> f)
            {
                var w = new ScaleWriter(4 + neurons.Count * 8);
                w.Compact((ulong)neurons.Count);
                foreach (var x in neurons) w.U64(f(x));
                Single(M, item, n, w.ToArray());
            }
            void VecBool(string item, Func<NeuronSlot, bool> f)
            {
                var w = new ScaleWriter(4 + neurons.Count);
                w.Compact((ulong)neurons.Count);
                foreach (var x in neurons) w.Bool(f(x));
                Single(M, item, n, w.ToArray());
            }
            VecBool("Active", x => x.Active);
            VecU16("Rank", x => x.Rank);
            VecU16("Trust", x => x.Trust);
            VecU16("Consensus", x => x.Consensus);
            VecU16("Incentive", x => x.Incentive);
            VecU16("Dividends", x => x.Dividends);
            VecU64("Emission", x => x.Emission);
            VecU64("LastUpdate", x => x.LastUpdate);
            VecU16("ValidatorTrust", x => x.ValidatorTrust);
            VecU16("PruningScores", x => x.PruningScore);
            VecBool("ValidatorPermit", x => x.ValidatorPermit);
            var nid = BitConverter.GetBytes(n);
            for (var uid = 0; uid < neurons.Count; uid++)
            {
                var slot = neurons[uid];
                var hot = slot.Hotkey;
                var u = (ushort)uid;

                var id = new Id(KeysItem, n, uid, default, default);
                var src = new Src(0, 0, hot, null);
                if (!Same(id, src)) Set(id, src, Key(KeysItem).Identity(nid).Identity(BitConverter.GetBytes(u)).Done(), hot.ToArray());

                id = new Id(UidsItem, n, 0, hot, default);
                src = new Src(u, 0, default, null);
                if (!Same(id, src)) Set(id, src, Key(UidsItem).Identity(nid).Blake2Concat(hot).Done(), BitConverter.GetBytes(u));

                id = new Id(BlockAtRegistration, n, uid, default, default);
                src = new Src(slot.BlockAtRegistration, 0, default, null);
                if (!Same(id, src)) Set(id, src, Key(BlockAtRegistration).Identity(nid).Identity(BitConverter.GetBytes(u)).Done(), BitConverter.GetBytes(slot.BlockAtRegistration));

                id = new Id(IsNetworkMember, n, 0, hot, default);
                src = default;
                if (!Same(id, src)) Set(id, src, Key(IsNetworkMember).Blake2Concat(hot).Identity(nid).Done(), [1]);

                if (slot.Weights.Length > 0)
                {
                    id = new Id(WeightsItem, n, uid, default, default);
                    src = new Src(0, 0, default, ImmutableCollectionsMarshal.AsArray(slot.Weights));
                    if (!Same(id, src)) Set(id, src, Key(WeightsItem).Identity(nid).Identity(BitConverter.GetBytes(u)).Done(), Row(slot.Weights));
                }
                if (slot.Bonds.Length > 0)
                {
                    id = new Id(BondsItem, n, uid, default, default);
                    src = new Src(0, 0, default, ImmutableCollectionsMarshal.AsArray(slot.Bonds));
                    if (!Same(id, src)) Set(id, src, Key(BondsItem).Identity(nid).Identity(BitConverter.GetBytes(u)).Done(), Row(slot.Bonds));
                }
            }
            foreach (var (hot, axon) in net.Axons)
            {
                var id = new Id(AxonsItem, n, 0, hot, default);
                var src = new Src(0, 0, default, axon);
                if (Same(id, src)) continue;
                var w = new ScaleWriter(AxonInfo.EncodedSize);
                axon.Encode(w);
                Set(id, src, Key(AxonsItem).Identity(nid).Blake2Concat(hot).Done(), w.ToArray());
            }
        }
    }

    private void Account(AccountId a, ulong free, uint nonce)
    {
        var id = new Id(SystemAccount, 0, 0, a, default);
        var src = new Src(free, nonce, default, null);
        if (Same(id, src)) return;
        var w = new ScaleWriter(80);
        w.U32(nonce).U32(0).U32(free > 0 ? 1u : 0u).U32(0);
        w.U64(free).U64(0).U64(0).U64(0);
        Set(id, src, Key(SystemAccount).Blake2Concat(a).Done(), w.ToArray());
    }

    private void BlockHash(uint number, byte[] hash)
    {
        var id = new Id(SystemBlockHash, 0, number, default, default);
        var src = new Src(0, 0, default, hash);
        if (!Same(id, src)) Set(id, src, Key(SystemBlockHash).Twox64Concat(BitConverter.GetBytes(number)).Done(), hash.ToArray());
    }

    /// <summary>A plain value or a per-subnet value (key = prefix ‖ netuid), compared by its bytes.</summary>
    private void Single(string pallet, string item, byte[] value) => Single(Item(pallet, item), -1, value);

    private void Single(string pallet, string item, ushort netuid, byte[] value) => Single(Item(pallet, item), netuid, value);

    private void Single(int item, int netuid, byte[] value)
    {
        var id = new Id(item, netuid, 0, default, default);
        var src = new Src(0, 0, default, value);
        if (Same(id, src)) return;
        var key = Key(item);
        if (netuid >= 0) key.Identity(BitConverter.GetBytes((ushort)netuid));
        Set(id, src, key.Done(), value);
    }

    private static byte[] Row(ImmutableArray<UidWeight> row)
    {
        var w = new ScaleWriter(4 + row.Length * 4);
        w.Compact((ulong)row.Length);
        foreach (var e in row) w.U16(e.Uid).U16(e.Value);
        return w.ToArray();
    }

    // ---- the cache ------------------------------------------------------------------------------------------

    /// <summary>True (and the entry marked as still present) when <paramref name="id"/> is cached with the same source.</summary>
    private bool Same(in Id id, in Src src)
    {
        ref var c = ref CollectionsMarshal.GetValueRefOrNullRef(_cache, id);
        if (Unsafe.IsNullRef(ref c) || !c.Src.Equals(src)) return false;
        if (c.Generation == _generation) throw new InvalidOperationException($"storage entry {id} was written twice");
        c.Generation = _generation;
        _seen++;
        return true;
    }

    /// <summary>Writes an entry whose source changed (or that is new); the key depends on the identity only.</summary>
    private void Set(in Id id, in Src src, byte[] key, byte[] value)
    {
        ref var c = ref CollectionsMarshal.GetValueRefOrAddDefault(_cache, id, out var exists);
        if (exists)
        {
            if (c.Generation == _generation) throw new InvalidOperationException($"storage entry {id} was written twice");
            if (!c.Value.AsSpan().SequenceEqual(value))
            {
                _builder!.Remove(new StorageEntry(c.Key, null));
                _builder.Add(new StorageEntry(c.Key, value));
                c.Value = value;
                _changed++;
            }
            c.Src = src;
        }
        else
        {
            if (!_builder!.Add(new StorageEntry(key, value)))
            {
                _cache.Remove(id);
                throw new InvalidOperationException("a storage key was written twice: " + Convert.ToHexString(key));
            }
            c.Key = key;
            c.Value = value;
            c.Src = src;
            _changed++;
        }
        c.Generation = _generation;
        _seen++;
    }

    /// <summary>Removes the entries the state no longer has.</summary>
    private void Sweep()
    {
        _stale.Clear();
        foreach (var (id, c) in _cache)
        {
            if (c.Generation == _generation) continue;
            _builder!.Remove(new StorageEntry(c.Key, null));
            _stale.Add(id);
        }
        foreach (var id in _stale) _cache.Remove(id);
        _changed += _stale.Count;
    }

    /// <summary>Which entry: the item and the parts of its key (netuid, uid or block number, accounts).</summary>
    private readonly record struct Id(int Item, int Netuid, long Index, AccountId A, AccountId B);

    /// <summary>What an entry's value is made of: numbers, an account, or an object compared by value (byte arrays by content).</summary>
    private readonly struct Src(ulong a, ulong b, AccountId c, object? r) : IEquatable<Src>
    {
        private readonly ulong _a = a, _b = b;
        private readonly AccountId _c = c;
        private readonly object? _r = r;

        public bool Equals(Src o) =>
            _a == o._a && _b == o._b && _c == o._c
            && (ReferenceEquals(_r, o._r) || (_r is byte[] x && o._r is byte[] y ? x.AsSpan().SequenceEqual(y) : Equals(_r, o._r)));

        public override bool Equals(object? obj) => obj is Src o && Equals(o);

        public override int GetHashCode() => HashCode.Combine(_a, _b, _c);
    }

    private struct Cached
    {
        public byte[] Key;
        public byte[] Value;
        public Src Src;
        public long Generation;
    }

    // ---- keys -------------------------------------------------------------------------------------------------

    private static int Item(string pallet, string item) =>
        ItemIds.GetOrAdd((pallet, item), k =>
        {
            var id = Interlocked.Increment(ref _nextItem);
            ItemPrefixes[id] = StorageKeys.Prefix(k.Item1, k.Item2);
            return id;
        });

    private KeyWriter Key(int item) => new(ItemPrefixes[item], this);

    /// <summary>BLAKE2b-128 of an account, cached (hotkeys appear under several items).</summary>
    private byte[] Blake2Of(AccountId a)
    {
        if (!_blake2.TryGetValue(a, out var h)) _blake2[a] = h = Blake2b.Hash128(a.ToArray());
        return h;
    }

    /// <summary>Appends hashed key parts to an item prefix.</summary>
    private sealed class KeyWriter
    {
        private readonly LocalnetStorageTracker _tracker;
        private byte[] _buffer = new byte[96];
        private int _length;

        public KeyWriter(byte[] prefix, LocalnetStorageTracker tracker)
        {
            _tracker = tracker;
            Append(prefix);
        }

        private void Append(ReadOnlySpan<byte> bytes)
        {
            if (_length + bytes.Length > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + bytes.Length));
            bytes.CopyTo(_buffer.AsSpan(_length));
            _length += bytes.Length;
        }

        public KeyWriter Identity(ReadOnlySpan<byte> encoded)
        {
            Append(encoded);
            return this;
        }

        public KeyWriter Identity(AccountId a)
        {
            Span<byte> b = stackalloc byte[AccountId.Size];
            a.CopyTo(b);
            Append(b);
            return this;
        }

        public KeyWriter Blake2Concat(AccountId a)
        {
            Append(_tracker.Blake2Of(a));
            return Identity(a);
        }

        public KeyWriter Twox64Concat(ReadOnlySpan<byte> encoded)
        {
            Span<byte> h = stackalloc byte[8];
            Twox.Hash64(encoded, h);
            Append(h);
            Append(encoded);
            return this;
        }

        public byte[] Done() => _buffer.AsSpan(0, _length).ToArray();
    }
}
