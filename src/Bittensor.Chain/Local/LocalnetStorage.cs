using System.Buffers.Binary;
using Bittensor.Chain.Substrate;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Local;

/// <summary>
/// The localnet's state at one block as Substrate storage: every item <see cref="LocalnetMetadata"/> lists, under
/// its real key (<c>twox128(pallet) ‖ twox128(item) ‖ hashed keys</c>) with its SCALE value, sorted by key so that
/// <c>state_getKeysPaged</c> pages like a node. Immutable once built; built from the state under the chain's lock.
/// Items whose value is absent are simply not present (the RPC answers null and clients apply the default).
/// </summary>
public sealed class LocalnetStorage
{
    private readonly byte[][] _keys;
    private readonly byte[][] _values;

    private LocalnetStorage(ulong number, byte[] blockHash, List<(byte[] Key, byte[] Value)> entries)
    {
        Number = number;
        BlockHash = blockHash;
        entries.Sort((a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key));
        _keys = new byte[entries.Count][];
        _values = new byte[entries.Count][];
        for (var i = 0; i < entries.Count; i++)
        {
            if (i > 0 && entries[i].Key.AsSpan().SequenceEqual(entries[i - 1].Key))
                throw new InvalidOperationException("a storage key was written twice: " + Convert.ToHexString(entries[i].Key));
            _keys[i] = entries[i].Key;
            _values[i] = entries[i].Value;
        }
    }

    /// <summary>The block this state belongs to.</summary>
    public ulong Number { get; }

    /// <summary>That block's hash.</summary>
    public byte[] BlockHash { get; }

    /// <summary>Number of keys.</summary>
    public int Count => _keys.Length;

    /// <summary>The value under <paramref name="key"/>, or null.</summary>
    public byte[]? Get(ReadOnlySpan<byte> key)
    {
        var i = Find(key);
        return i >= 0 ? _values[i] : null;
    }

    /// <summary>Up to <paramref name="count"/> keys starting with <paramref name="prefix"/>, in order, strictly after <paramref name="startKey"/> when given.</summary>
    public List<byte[]> KeysPaged(ReadOnlySpan<byte> prefix, int count, ReadOnlySpan<byte> startKey)
    {
        var result = new List<byte[]>(Math.Min(count, 1024));
        int i;
        if (startKey.Length > 0 && startKey.SequenceCompareTo(prefix) >= 0)
        {
            i = Find(startKey);
            i = i >= 0 ? i + 1 : ~i;
        }
        else
        {
            i = Find(prefix);
            if (i < 0) i = ~i;
        }
        for (; i < _keys.Length && result.Count < count; i++)
        {
            if (!_keys[i].AsSpan().StartsWith(prefix)) break;
            result.Add(_keys[i]);
        }
        return result;
    }

    private int Find(ReadOnlySpan<byte> key)
    {
        int lo = 0, hi = _keys.Length - 1;
        while (lo <= hi)
        {
            var mid = lo + ((hi - lo) >> 1);
            var c = _keys[mid].AsSpan().SequenceCompareTo(key);
            if (c == 0) return mid;
            if (c < 0) lo = mid + 1;
            else hi = mid - 1;
        }
        return ~lo;
    }

    /// <summary>Prefix of a storage item: <c>twox128(pallet) ‖ twox128(item)</c>.</summary>
    public static byte[] Prefix(string pallet, string item) => StorageKeys.Prefix(pallet, item);

    /// <summary>The state at <paramref name="block"/> (which <paramref name="s"/> is the state after).</summary>
    internal static LocalnetStorage Build(LocalnetState s, LocalnetBlock block, LocalnetOptions options)
    {
        var b = new Builder();
        var number = (uint)s.Block;

        // ---- System, Timestamp, Balances --------------------------------------------------------------------
        var accounts = new HashSet<AccountId>(s.Free.Keys);
        accounts.UnionWith(s.Nonces.Keys);
        foreach (var a in accounts)
        {
            var w = new ScaleWriter(80);
            var free = s.BalanceOf(a);
            w.U32(s.Nonces.GetValueOrDefault(a)).U32(0).U32(free > 0 ? 1u : 0u).U32(0);
            w.U64(free).U64(0).U64(0).U64(0);
            b.Add(b.Key("System", "Account").Blake2Concat(a.ToArray()), w.ToArray());
        }
        b.Add(b.Key("System", "BlockHash").Twox64Concat(BitConverter.GetBytes(0u)), s.GenesisHash.ToArray());
        foreach (var h in s.Headers)
        {
            var hb = LocalnetBlock.FromHeader(h);
            if (hb.Number == 0 || hb.Number > uint.MaxValue) continue;
            b.Add(b.Key("System", "BlockHash").Twox64Concat(BitConverter.GetBytes((uint)hb.Number)), hb.Hash.ToArray());
        }
        b.Add(b.Key("System", "Number").Done(), BitConverter.GetBytes(number));
        b.Add(b.Key("System", "ParentHash").Done(), block.ParentHash.ToArray());
        var events = block.Events ?? [0];
        b.Add(b.Key("System", "Events").Done(), events);
        var er = new ScaleReader(events);
        b.Add(b.Key("System", "EventCount").Done(), BitConverter.GetBytes((uint)er.CompactU64()));
        b.Add(b.Key("Timestamp", "Now").Done(), BitConverter.GetBytes((ulong)s.TimestampUnixMs));
        b.Add(b.Key("Balances", "TotalIssuance").Done(), BitConverter.GetBytes(s.TotalIssuance));

        // ---- SubtensorModule: chain-wide ---------------------------------------------------------------------
        const string M = "SubtensorModule";
        ulong totalStake = 0;
        var hotTotals = new Dictionary<AccountId, ulong>();
        var coldTotals = new Dictionary<AccountId, ulong>();
        foreach (var ((hot, cold), amount) in s.Stake)
        {
            totalStake = checked(totalStake + amount);
            hotTotals[hot] = checked(hotTotals.GetValueOrDefault(hot) + amount);
            coldTotals[cold] = checked(coldTotals.GetValueOrDefault(cold) + amount);
            b.Add(b.Key(M, "Stake").Blake2Concat(hot.ToArray()).Identity(cold.ToArray()), BitConverter.GetBytes(amount));
        }
        foreach (var (hot, v) in hotTotals) b.Add(b.Key(M, "TotalHotkeyStake").Identity(hot.ToArray()), BitConverter.GetBytes(v));
        foreach (var (cold, v) in coldTotals) b.Add(b.Key(M, "TotalColdkeyStake").Identity(cold.ToArray()), BitConverter.GetBytes(v));
        foreach (var (hot, cold) in s.Owner) b.Add(b.Key(M, "Owner").Blake2Concat(hot.ToArray()), cold.ToArray());
        b.Add(b.Key(M, "TotalStake").Done(), BitConverter.GetBytes(totalStake));
        b.Add(b.Key(M, "BlockEmission").Done(), BitConverter.GetBytes(options.BlockEmissionRao));
        b.Add(b.Key(M, "TotalIssuance").Done(), BitConverter.GetBytes(s.TotalIssuance));
        b.Add(b.Key(M, "TargetStakesPerInterval").Done(), BitConverter.GetBytes(options.TargetStakesPerInterval));
        b.Add(b.Key(M, "StakeInterval").Done(), BitConverter.GetBytes(options.StakeInterval));
        b.Add(b.Key(M, "SubnetLimit").Done(), BitConverter.GetBytes(options.SubnetLimit));
        b.Add(b.Key(M, "TotalNetworks").Done(), BitConverter.GetBytes((ushort)s.Subnets.Count));
        b.Add(b.Key(M, "NetworkMinLockCost").Done(), BitConverter.GetBytes(options.NetworkMinLockCost));
        b.Add(b.Key(M, "NetworkLastLockCost").Done(), BitConverter.GetBytes(s.NetworkLastLockCost));
        b.Add(b.Key(M, "NetworkLockReductionInterval").Done(), BitConverter.GetBytes(options.NetworkLockReductionInterval));
        b.Add(b.Key(M, "SubnetOwnerCut").Done(), BitConverter.GetBytes(options.SubnetOwnerCut));
        b.Add(b.Key(M, "NetworkRateLimit").Done(), BitConverter.GetBytes(options.NetworkRateLimit));

        // ---- SubtensorModule: per subnet and per neuron ---------------------------------------------------
        var perSubnetEmission = s.Subnets.Count == 0 ? 0 : options.BlockEmissionRao / (ulong)s.Subnets.Count;
        foreach (var net in s.Subnets.Values)
        {
            var n = net.Netuid;
            var nid = BitConverter.GetBytes(n);
            var h = net.Hyper;
            void U16(string item, ushort v) => b.Add(b.Key(M, item).Identity(nid), BitConverter.GetBytes(v));
            void U64(string item, ulong v) => b.Add(b.Key(M, item).Identity(nid), BitConverter.GetBytes(v));
            void Bool(string item, bool v) => b.Add(b.Key(M, item).Identity(nid), [v ? (byte)1 : (byte)0]);
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
            b.Add(b.Key(M, "SubnetOwner").Identity(nid), net.Owner.ToArray());
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
                b.Add(b.Key(M, "LoadedEmission").Identity(nid), w.ToArray());
            }
            var neurons = net.Neurons;
            void VecU16(string item, Func<NeuronSlot, ushort> f)
            {
                var w = new ScaleWriter(4 + neurons.Count * 2);
                w.Compact((ulong)neurons.Count);
                foreach (var x in neurons) w.U16(f(x));
                b.Add(b.Key(M, item).Identity(nid), w.ToArray());
            }
            void VecU64(string item, Func<NeuronSlot, ulong> f)
            {
                var w = new ScaleWriter(4 + neurons.Count * 8);
                w.Compact((ulong)neurons.Count);
                foreach (var x in neurons) w.U64(f(x));
                b.Add(b.Key(M, item).Identity(nid), w.ToArray());
            }
            void VecBool(string item, Func<NeuronSlot, bool> f)
            {
                var w = new ScaleWriter(4 + neurons.Count);
                w.Compact((ulong)neurons.Count);
                foreach (var x in neurons) w.Bool(f(x));
                b.Add(b.Key(M, item).Identity(nid), w.ToArray());
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
            for (var uid = 0; uid < neurons.Count; uid++)
            {
                var slot = neurons[uid];
                var u = BitConverter.GetBytes((ushort)uid);
                var hot = slot.Hotkey.ToArray();
                b.Add(b.Key(M, "Keys").Identity(nid).Identity(u), hot);
                b.Add(b.Key(M, "Uids").Identity(nid).Blake2Concat(hot), u);
                b.Add(b.Key(M, "BlockAtRegistration").Identity(nid).Identity(u), BitConverter.GetBytes(slot.BlockAtRegistration));
                b.Add(b.Key(M, "IsNetworkMember").Blake2Concat(hot).Identity(nid), [1]);
                if (slot.Weights.Length > 0) b.Add(b.Key(M, "Weights").Identity(nid).Identity(u), Row(slot.Weights));
                if (slot.Bonds.Length > 0) b.Add(b.Key(M, "Bonds").Identity(nid).Identity(u), Row(slot.Bonds));
            }
            foreach (var (hot, axon) in net.Axons)
            {
                var w = new ScaleWriter(AxonInfo.EncodedSize);
                axon.Encode(w);
                b.Add(b.Key(M, "Axons").Identity(nid).Blake2Concat(hot.ToArray()), w.ToArray());
            }
        }
        return new LocalnetStorage(block.Number, block.Hash.ToArray(), b.Entries);
    }

    private static byte[] Row(System.Collections.Immutable.ImmutableArray<UidWeight> row)
    {
        var w = new ScaleWriter(4 + row.Length * 4);
        w.Compact((ulong)row.Length);
        foreach (var e in row) w.U16(e.Uid).U16(e.Value);
        return w.ToArray();
    }

    /// <summary>Collects entries; item prefixes and account hashes are computed once per build.</summary>
    private sealed class Builder
    {
        private readonly Dictionary<(string, string), byte[]> _prefixes = [];
        private readonly Dictionary<AccountIdBytes, byte[]> _blake2 = [];

        public List<(byte[] Key, byte[] Value)> Entries { get; } = new(1024);

        public KeyWriter Key(string pallet, string item)
        {
            if (!_prefixes.TryGetValue((pallet, item), out var p)) _prefixes[(pallet, item)] = p = StorageKeys.Prefix(pallet, item);
            return new KeyWriter(p, this);
        }

        /// <summary>BLAKE2b-128 of a 32-byte key, cached (hotkeys appear under several items).</summary>
        public byte[] Blake2Of(ReadOnlySpan<byte> encoded)
        {
            if (encoded.Length != 32) return Blake2b.Hash128(encoded);
            var k = new AccountIdBytes(encoded);
            if (!_blake2.TryGetValue(k, out var h)) _blake2[k] = h = Blake2b.Hash128(encoded);
            return h;
        }

        public void Add(byte[] key, byte[] value) => Entries.Add((key, value));

        public void Add(KeyWriter key, byte[] value) => Entries.Add((key.Done(), value));
    }

    /// <summary>32 bytes as a dictionary key.</summary>
    private readonly record struct AccountIdBytes(ulong A, ulong B, ulong C, ulong D)
    {
        public AccountIdBytes(ReadOnlySpan<byte> b)
            : this(BinaryPrimitives.ReadUInt64LittleEndian(b), BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(b[16..]), BinaryPrimitives.ReadUInt64LittleEndian(b[24..]))
        {
        }
    }

    /// <summary>Appends hashed key parts to an item prefix.</summary>
    private sealed class KeyWriter
    {
        private readonly Builder _builder;
        private byte[] _buffer = new byte[128];
        private int _length;

        public KeyWriter(byte[] prefix, Builder builder)
        {
            _builder = builder;
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

        public KeyWriter Blake2Concat(ReadOnlySpan<byte> encoded)
        {
            Append(_builder.Blake2Of(encoded));
            Append(encoded);
            return this;
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

    /// <summary>The committed nonce in a <c>System.Account</c> value (its first field).</summary>
    public static uint NonceOf(byte[]? accountInfo) => accountInfo is { Length: >= 4 } ? BinaryPrimitives.ReadUInt32LittleEndian(accountInfo) : 0;
}
