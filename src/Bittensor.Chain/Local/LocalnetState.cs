using System.Collections.Immutable;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Local;

/// <summary>One neuron slot of a subnet (what subtensor keeps in its per-uid vectors and maps).</summary>
internal sealed class NeuronSlot
{
    public AccountId Hotkey;
    public ushort Rank, Trust, Consensus, Incentive, Dividends, ValidatorTrust, PruningScore;
    public ulong Emission, LastUpdate, BlockAtRegistration;
    public bool ValidatorPermit, Active = true;
    public ImmutableArray<UidWeight> Weights = [];
    public ImmutableArray<UidWeight> Bonds = [];

    public void Write(ScaleWriter w)
    {
        Hotkey.Encode(w);
        w.U16(Rank).U16(Trust).U16(Consensus).U16(Incentive).U16(Dividends).U16(ValidatorTrust).U16(PruningScore);
        w.U64(Emission).U64(LastUpdate).U64(BlockAtRegistration).Bool(ValidatorPermit).Bool(Active);
        WriteRow(w, Weights);
        WriteRow(w, Bonds);
    }

    public static NeuronSlot Read(ref ScaleReader r)
    {
        var n = new NeuronSlot
        {
            Hotkey = AccountId.Decode(ref r),
            Rank = r.U16(), Trust = r.U16(), Consensus = r.U16(), Incentive = r.U16(), Dividends = r.U16(),
            ValidatorTrust = r.U16(), PruningScore = r.U16(),
            Emission = r.U64(), LastUpdate = r.U64(), BlockAtRegistration = r.U64(),
            ValidatorPermit = r.Bool(), Active = r.Bool(),
        };
        n.Weights = ReadRow(ref r);
        n.Bonds = ReadRow(ref r);
        return n;
    }

    private static void WriteRow(ScaleWriter w, ImmutableArray<UidWeight> row)
    {
        w.Compact((ulong)row.Length);
        foreach (var e in row) w.U16(e.Uid).U16(e.Value);
    }

    private static ImmutableArray<UidWeight> ReadRow(ref ScaleReader r)
    {
        var row = r.Vec((ref ScaleReader x) => new UidWeight(x.U16(), x.U16()), 4, 65536);
        return ImmutableArray.Create(row);
    }
}

/// <summary>One subnet.</summary>
internal sealed class SubnetState
{
    public ushort Netuid;
    public AccountId Owner;
    public ulong RegisteredAt, LockedRao, PendingEmission, LastAdjustmentBlock;
    public ushort RegistrationsThisBlock, RegistrationsThisInterval;
    public SubnetHyperparameters Hyper = SubnetHyperparameters.Default;
    public List<NeuronSlot> Neurons = [];
    public Dictionary<AccountId, ushort> Uids = [];
    public Dictionary<AccountId, AxonInfo> Axons = [];

    /// <summary>Emission computed at the last epoch, paid into stake at the start of the next block.</summary>
    public List<(AccountId Hotkey, ulong Rao)> LoadedEmission = [];

    public void Write(ScaleWriter w)
    {
        w.U16(Netuid);
        Owner.Encode(w);
        w.U64(RegisteredAt).U64(LockedRao).U64(PendingEmission).U64(LastAdjustmentBlock);
        w.U16(RegistrationsThisBlock).U16(RegistrationsThisInterval);
        WriteHyper(w, Hyper);
        w.Compact((ulong)Neurons.Count);
        foreach (var n in Neurons) n.Write(w);
        w.Compact((ulong)Axons.Count);
        foreach (var (hotkey, axon) in Axons.OrderBy(a => a.Key))
        {
            hotkey.Encode(w);
            axon.Encode(w);
        }
        w.Compact((ulong)LoadedEmission.Count);
        foreach (var (hotkey, rao) in LoadedEmission)
        {
            hotkey.Encode(w);
            w.U64(rao);
        }
    }

    public static SubnetState Read(ref ScaleReader r)
    {
        var s = new SubnetState
        {
            Netuid = r.U16(),
            Owner = AccountId.Decode(ref r),
            RegisteredAt = r.U64(), LockedRao = r.U64(), PendingEmission = r.U64(), LastAdjustmentBlock = r.U64(),
            RegistrationsThisBlock = r.U16(), RegistrationsThisInterval = r.U16(),
            Hyper = ReadHyper(ref r),
        };
        // Smallest neuron slot: hotkey, 7 u16, 3 u64, 2 bools, two empty rows.
        var n = r.Length(AccountId.Size + 14 + 24 + 2 + 2);
        for (var i = 0; i < n; i++)
        {
            var slot = NeuronSlot.Read(ref r);
            s.Neurons.Add(slot);
            if (!s.Uids.TryAdd(slot.Hotkey, (ushort)i)) throw new ScaleException("hotkey registered twice in one subnet", r.Position);
        }
        var axons = r.Length(AccountId.Size + AxonInfo.EncodedSize);
        for (var i = 0; i < axons; i++)
        {
            var hotkey = AccountId.Decode(ref r);
            s.Axons[hotkey] = AxonInfo.Decode(ref r);
        }
        var loaded = r.Length(AccountId.Size + 8);
        for (var i = 0; i < loaded; i++) s.LoadedEmission.Add((AccountId.Decode(ref r), r.U64()));
        return s;
    }

    private static void WriteHyper(ScaleWriter w, SubnetHyperparameters h) =>
        w.U16(h.Tempo).U16(h.Kappa).U16(h.ImmunityPeriod).U16(h.MaxAllowedUids).U16(h.MaxAllowedValidators)
            .U16(h.MinAllowedWeights).U16(h.MaxWeightsLimit).U64(h.WeightsRateLimit).U64(h.WeightsVersionKey)
            .U16(h.ActivityCutoff).U64(h.BondsMovingAverage).U64(h.Burn).U64(h.MinBurn).U64(h.MaxBurn)
            .U64(h.ServingRateLimit).U16(h.MaxRegistrationsPerBlock).U16(h.TargetRegistrationsPerInterval)
            .U16(h.AdjustmentInterval).Bool(h.RegistrationAllowed).U64(h.WeightsMinStake).U64(h.AdjustmentAlpha);

    private static SubnetHyperparameters ReadHyper(ref ScaleReader r) => new()
    {
        Tempo = r.U16(), Kappa = r.U16(), ImmunityPeriod = r.U16(), MaxAllowedUids = r.U16(), MaxAllowedValidators = r.U16(),
        MinAllowedWeights = r.U16(), MaxWeightsLimit = r.U16(), WeightsRateLimit = r.U64(), WeightsVersionKey = r.U64(),
        ActivityCutoff = r.U16(), BondsMovingAverage = r.U64(), Burn = r.U64(), MinBurn = r.U64(), MaxBurn = r.U64(),
        ServingRateLimit = r.U64(), MaxRegistrationsPerBlock = r.U16(), TargetRegistrationsPerInterval = r.U16(),
        AdjustmentInterval = r.U16(), RegistrationAllowed = r.Bool(), WeightsMinStake = r.U64(), AdjustmentAlpha = r.U64(),
    };
}

/// <summary>The whole chain state: what one block commits. Only the owning <see cref="Localnet"/> touches it, under its lock.</summary>
internal sealed class LocalnetState
{
    public string Name = "default";
    public byte[] GenesisHash = new byte[32];
    public ulong Block;
    public byte[] BlockHash = new byte[32];
    public long TimestampUnixMs;
    public ulong TotalIssuance;
    public ulong NetworkLastLockCost, NetworkLastLockBlock;
    public Dictionary<AccountId, ulong> Free = [];
    public Dictionary<AccountId, uint> Nonces = [];
    public Dictionary<AccountId, AccountId> Owner = [];
    public Dictionary<(AccountId Hotkey, AccountId Coldkey), ulong> Stake = [];
    public Dictionary<(AccountId Coldkey, AccountId Hotkey), (ulong Count, ulong LastBlock)> StakesThisInterval = [];
    public SortedDictionary<ushort, SubnetState> Subnets = [];

    /// <summary>
    /// SCALE headers of the most recent blocks, oldest first (at most <see cref="LocalnetMetadata.BlockHashCount"/> + 1;
    /// their hashes are System.BlockHash and the birth blocks of mortal eras). Empty for a chain created before
    /// headers were kept (state files without the trailing section).
    /// </summary>
    public List<byte[]> Headers = [];

    /// <summary>
    /// Bodies of the most recent blocks, oldest first (block hash, timestamp, extrinsics, System.Events bytes), so that
    /// <c>chain_getBlock</c> and the events of recent blocks survive a restart. Bounded by <see cref="MaxBodies"/> blocks
    /// and <see cref="MaxBodyBytes"/> bytes (the oldest go first). Empty in state files written before it existed.
    /// </summary>
    public List<BlockBody> Bodies = [];

    /// <summary>At most this many bodies are kept.</summary>
    public const int MaxBodies = (int)LocalnetMetadata.BlockHashCount + 1;

    /// <summary>At most this many bytes of bodies are kept (extrinsics + events).</summary>
    public const long MaxBodyBytes = 4L << 20;

    /// <summary>Adds a block's body and drops the oldest beyond the bounds.</summary>
    public void AddBody(BlockBody body)
    {
        Bodies.Add(body);
        var bytes = 0L;
        foreach (var b in Bodies) bytes += b.Size;
        while (Bodies.Count > 1 && (Bodies.Count > MaxBodies || bytes > MaxBodyBytes))
        {
            bytes -= Bodies[0].Size;
            Bodies.RemoveAt(0);
        }
    }

    public ulong BalanceOf(AccountId a) => Free.GetValueOrDefault(a);

    public ulong TotalHotkeyStake(AccountId hotkey)
    {
        ulong total = 0;
        foreach (var ((hot, _), amount) in Stake)
            if (hot == hotkey) total = checked(total + amount);
        return total;
    }

    /// <summary>Total stake per hotkey, computed in one pass.</summary>
    public Dictionary<AccountId, ulong> HotkeyTotals()
    {
        var totals = new Dictionary<AccountId, ulong>();
        foreach (var ((hot, _), amount) in Stake) totals[hot] = checked(totals.GetValueOrDefault(hot) + amount);
        return totals;
    }

    public void Write(ScaleWriter w)
    {
        w.String(Name).Raw(GenesisHash).U64(Block).Raw(BlockHash).U64((ulong)TimestampUnixMs);
        w.U64(TotalIssuance).U64(NetworkLastLockCost).U64(NetworkLastLockBlock);
        w.Compact((ulong)Free.Count);
        foreach (var (a, v) in Free.OrderBy(e => e.Key))
        {
            a.Encode(w);
            w.U64(v);
        }
        w.Compact((ulong)Nonces.Count);
        foreach (var (a, v) in Nonces.OrderBy(e => e.Key))
        {
            a.Encode(w);
            w.U32(v);
        }
        w.Compact((ulong)Owner.Count);
        foreach (var (hot, cold) in Owner.OrderBy(e => e.Key))
        {
            hot.Encode(w);
            cold.Encode(w);
        }
        w.Compact((ulong)Stake.Count);
        foreach (var ((hot, cold), v) in Stake.OrderBy(e => e.Key.Hotkey).ThenBy(e => e.Key.Coldkey))
        {
            hot.Encode(w);
            cold.Encode(w);
            w.U64(v);
        }
        w.Compact((ulong)StakesThisInterval.Count);
        foreach (var ((cold, hot), (count, last)) in StakesThisInterval.OrderBy(e => e.Key.Coldkey).ThenBy(e => e.Key.Hotkey))
        {
            cold.Encode(w);
            hot.Encode(w);
            w.U64(count).U64(last);
        }
        w.Compact((ulong)Subnets.Count);
        foreach (var s in Subnets.Values) s.Write(w);
        w.Compact((ulong)Headers.Count);
        foreach (var h in Headers) w.Bytes(h);
        w.Compact((ulong)Bodies.Count);
        foreach (var b in Bodies)
        {
            w.Raw(b.Hash).U64((ulong)b.TimestampUnixMs);
            w.Compact((ulong)b.Extrinsics.Length);
            foreach (var x in b.Extrinsics) w.Bytes(x);
            w.Bytes(b.Events);
        }
    }

    public static LocalnetState Read(ReadOnlySpan<byte> payload)
    {
        var r = new ScaleReader(payload);
        var s = new LocalnetState
        {
            Name = r.String(1024),
            GenesisHash = r.Raw(32).ToArray(),
            Block = r.U64(),
            BlockHash = r.Raw(32).ToArray(),
            TimestampUnixMs = (long)r.U64(),
            TotalIssuance = r.U64(),
            NetworkLastLockCost = r.U64(),
            NetworkLastLockBlock = r.U64(),
        };
        var n = r.Length(40);
        for (var i = 0; i < n; i++) s.Free[AccountId.Decode(ref r)] = r.U64();
        n = r.Length(36);
        for (var i = 0; i < n; i++) s.Nonces[AccountId.Decode(ref r)] = r.U32();
        n = r.Length(64);
        for (var i = 0; i < n; i++) s.Owner[AccountId.Decode(ref r)] = AccountId.Decode(ref r);
        n = r.Length(72);
        for (var i = 0; i < n; i++) s.Stake[(AccountId.Decode(ref r), AccountId.Decode(ref r))] = r.U64();
        n = r.Length(80);
        for (var i = 0; i < n; i++) s.StakesThisInterval[(AccountId.Decode(ref r), AccountId.Decode(ref r))] = (r.U64(), r.U64());
        n = r.Length(50);
        for (var i = 0; i < n; i++)
        {
            var subnet = SubnetState.Read(ref r);
            s.Subnets[subnet.Netuid] = subnet;
        }
        if (r.Remaining > 0)
        {
            // Trailing section added with the JSON-RPC node; older files end before it.
            n = r.Length(1 + 32 + 1 + 32 + 32 + 1);
            for (var i = 0; i < n; i++) s.Headers.Add(r.Bytes(4096));
        }
        if (r.Remaining > 0)
        {
            // Trailing section added with persisted block bodies; older files end before it.
            n = r.Length(32 + 8 + 1 + 1);
            for (var i = 0; i < n; i++)
            {
                var hash = r.Raw(32).ToArray();
                var timestamp = (long)r.U64();
                var count = r.Length(1);
                var extrinsics = new byte[count][];
                for (var j = 0; j < count; j++) extrinsics[j] = r.Bytes(64 << 20);
                s.Bodies.Add(new BlockBody(hash, timestamp, extrinsics, r.Bytes(64 << 20)));
            }
        }
        r.EnsureEnd();
        return s;
    }
}

/// <summary>A block's body as the state file keeps it.</summary>
internal sealed record BlockBody(byte[] Hash, long TimestampUnixMs, byte[][] Extrinsics, byte[] Events)
{
    public long Size => Events.Length + Extrinsics.Sum(x => (long)x.Length) + 48;
}
