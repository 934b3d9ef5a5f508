using System.Collections.Immutable;

namespace Bittensor.Core.Domain;

/// <summary>
/// An immutable view of one subnet's neurons at one block: arrays indexed by uid (0 … N−1), read in one sync.
/// Fractions the chain stores as u16 (rank, trust, …) are kept raw (<c>…U16</c>) and as doubles in [0, 1];
/// stake and emission are kept as rao and as TAO doubles.
/// </summary>
/// <remarks>
/// Mapping to Python's <c>bittensor.metagraph</c>: <c>metagraph.uids</c> → <see cref="Uids"/>,
/// <c>metagraph.hotkeys</c> → <see cref="Hotkeys"/> (SS58 strings), <c>metagraph.coldkeys</c> → <see cref="Coldkeys"/>,
/// <c>metagraph.S</c> → <see cref="S"/>, <c>R</c> → <see cref="R"/>, <c>T</c> → <see cref="T"/>,
/// <c>C</c> → <see cref="C"/>, <c>I</c> → <see cref="I"/>, <c>D</c> → <see cref="D"/>, <c>E</c> → <see cref="E"/>,
/// <c>metagraph.endpoints</c> / <c>axons</c> → <see cref="Endpoints"/>, <c>metagraph.n</c> → <see cref="N"/>,
/// <c>metagraph.block</c> → <see cref="Block"/>, <c>W</c>/<c>B</c> → <see cref="W"/>/<see cref="B"/> (sparse rows,
/// densify with <see cref="DenseWeights"/>). Python's lowercase names are properties here, in C# casing.
/// </remarks>
public sealed class MetagraphSnapshot
{
    private ImmutableArray<string> _hotkeys;
    private ImmutableArray<string> _coldkeys;

    /// <summary>
    /// Builds a snapshot; every per-uid array must have the same length as <paramref name="hotkeyIds"/>.
    /// <paramref name="genesisHash"/> names the chain it was read from (<see cref="GenesisHex"/>; null when not known).
    /// </summary>
    /// <exception cref="ArgumentException">An array's length differs from N, N exceeds 65 536, or the genesis hash is not 0x and 64 lowercase hex digits.</exception>
    public MetagraphSnapshot(
        string network, ushort netuid, ulong block,
        ImmutableArray<AccountId> hotkeyIds, ImmutableArray<AccountId> coldkeyIds,
        ImmutableArray<ulong> stakeRao,
        ImmutableArray<ushort> rankU16, ImmutableArray<ushort> trustU16, ImmutableArray<ushort> consensusU16,
        ImmutableArray<ushort> incentiveU16, ImmutableArray<ushort> dividendsU16, ImmutableArray<ushort> validatorTrustU16,
        ImmutableArray<ulong> emissionRao,
        ImmutableArray<bool> validatorPermit, ImmutableArray<bool> active, ImmutableArray<ulong> lastUpdate,
        ImmutableArray<Endpoint> endpoints,
        ImmutableArray<ImmutableArray<UidWeight>> weights, ImmutableArray<ImmutableArray<UidWeight>> bonds,
        string? genesisHash = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (genesisHash is not null && !IsGenesisHex(genesisHash))
            throw new ArgumentException($"genesis hash '{genesisHash}' is not 0x followed by 64 lowercase hex digits", nameof(genesisHash));
        var n = hotkeyIds.IsDefault ? 0 : hotkeyIds.Length;
        if (n > 65_536) throw new ArgumentException($"a subnet has at most 65536 uids, got {n}");
        Check(coldkeyIds, n, "coldkeys");
        Check(stakeRao, n, "stake");
        Check(rankU16, n, "rank");
        Check(trustU16, n, "trust");
        Check(consensusU16, n, "consensus");
        Check(incentiveU16, n, "incentive");
        Check(dividendsU16, n, "dividends");
        Check(validatorTrustU16, n, "validator_trust");
        Check(emissionRao, n, "emission");
        Check(validatorPermit, n, "validator_permit");
        Check(active, n, "active");
        Check(lastUpdate, n, "last_update");
        Check(endpoints, n, "axons");
        Check(weights, n, "weights");
        Check(bonds, n, "bonds");

        Network = network;
        GenesisHash = genesisHash;
        Netuid = netuid;
        Block = block;
        HotkeyIds = OrEmpty(hotkeyIds);
        ColdkeyIds = OrEmpty(coldkeyIds);
        StakeRao = OrEmpty(stakeRao);
        RankU16 = OrEmpty(rankU16);
        TrustU16 = OrEmpty(trustU16);
        ConsensusU16 = OrEmpty(consensusU16);
        IncentiveU16 = OrEmpty(incentiveU16);
        DividendsU16 = OrEmpty(dividendsU16);
        ValidatorTrustU16 = OrEmpty(validatorTrustU16);
        EmissionRao = OrEmpty(emissionRao);
        ValidatorPermit = OrEmpty(validatorPermit);
        Active = OrEmpty(active);
        LastUpdate = OrEmpty(lastUpdate);
        Endpoints = OrEmpty(endpoints);
        W = OrEmpty(weights);
        B = OrEmpty(bonds);

        var uids = new ushort[n];
        for (var i = 0; i < n; i++) uids[i] = (ushort)i;
        Uids = ImmutableArray.Create(uids);
        S = Tao(StakeRao);
        E = Tao(EmissionRao);
        R = Fraction(RankU16);
        T = Fraction(TrustU16);
        C = Fraction(ConsensusU16);
        I = Fraction(IncentiveU16);
        D = Fraction(DividendsU16);
        ValidatorTrust = Fraction(ValidatorTrustU16);
    }

    /// <summary>An empty snapshot (N = 0) of a subnet at block 0, used before the first sync.</summary>
    public static MetagraphSnapshot Empty(string network, ushort netuid) => new(network, netuid, 0,
        [], [], [], [], [], [], [], [], [], [], [], [], [], [], [], []);

    /// <summary>
    /// Builds a snapshot from a chain read: <paramref name="neurons"/> must be ordered by uid with uids 0 … N−1
    /// (what <c>IChainBackend.GetNeuronsAsync</c> returns); otherwise <see cref="ArgumentException"/>.
    /// </summary>
    public static MetagraphSnapshot FromNeurons(string network, ushort netuid, ulong block, IReadOnlyList<NeuronInfo> neurons, string? genesisHash = null)
    {
        ArgumentNullException.ThrowIfNull(neurons);
        var n = neurons.Count;
        var hot = new AccountId[n];
        var cold = new AccountId[n];
        var stake = new ulong[n];
        var rank = new ushort[n];
        var trust = new ushort[n];
        var cons = new ushort[n];
        var inc = new ushort[n];
        var div = new ushort[n];
        var vtrust = new ushort[n];
        var emission = new ulong[n];
        var permit = new bool[n];
        var active = new bool[n];
        var last = new ulong[n];
        var endpoints = new Endpoint[n];
        var weights = new ImmutableArray<UidWeight>[n];
        var bonds = new ImmutableArray<UidWeight>[n];
        for (var i = 0; i < n; i++)
        {
            var x = neurons[i];
            if (x.Uid != i) throw new ArgumentException($"neuron at position {i} has uid {x.Uid}: neurons must be ordered by uid 0..n-1");
            hot[i] = x.Hotkey;
            cold[i] = x.Coldkey;
            stake[i] = x.Stake.Rao;
            rank[i] = x.Rank;
            trust[i] = x.Trust;
            cons[i] = x.Consensus;
            inc[i] = x.Incentive;
            div[i] = x.Dividends;
            vtrust[i] = x.ValidatorTrust;
            emission[i] = x.Emission.Rao;
            permit[i] = x.ValidatorPermit;
            active[i] = x.Active;
            last[i] = x.LastUpdate;
            var a = x.Axon ?? AxonInfo.Empty;
            endpoints[i] = new Endpoint(x.Uid, x.Hotkey, x.Coldkey, a);
            weights[i] = x.Weights.IsDefault ? [] : x.Weights;
            bonds[i] = x.Bonds.IsDefault ? [] : x.Bonds;
        }
        return new MetagraphSnapshot(network, netuid, block, [.. hot], [.. cold], [.. stake], [.. rank], [.. trust], [.. cons],
            [.. inc], [.. div], [.. vtrust], [.. emission], [.. permit], [.. active], [.. last], [.. endpoints], [.. weights], [.. bonds], genesisHash);
    }

    /// <summary>Network the snapshot was read from (<c>local</c>, <c>finney</c>, …).</summary>
    public string Network { get; }

    /// <summary>
    /// Genesis hash of the chain the snapshot was read from, as <see cref="GenesisHex"/> writes it; null when not known
    /// (an empty snapshot, a file saved before snapshots named their chain). Two chains may share a network name
    /// (every localnet is <c>local</c>); only the genesis tells them apart.
    /// </summary>
    public string? GenesisHash { get; }

    /// <summary>A genesis hash as snapshots hold it: <c>0x</c> and 64 lowercase hex digits.</summary>
    /// <exception cref="ArgumentException">The hash is not 32 bytes.</exception>
    public static string GenesisHex(ReadOnlySpan<byte> genesis) =>
        genesis.Length == 32 ? "0x" + Convert.ToHexStringLower(genesis) : throw new ArgumentException($"a genesis hash is 32 bytes, got {genesis.Length}", nameof(genesis));

    private static bool IsGenesisHex(string s) =>
        s.Length == 66 && s.StartsWith("0x", StringComparison.Ordinal) && !s.AsSpan(2).ContainsAnyExcept("0123456789abcdef");

    /// <summary>Subnet id.</summary>
    public ushort Netuid { get; }

    /// <summary>Block number the snapshot was read at (<c>metagraph.block</c>).</summary>
    public ulong Block { get; }

    /// <summary>Number of neurons (<c>metagraph.n</c>).</summary>
    public int N => HotkeyIds.Length;

    /// <summary>Uids 0 … N−1 (<c>metagraph.uids</c>).</summary>
    public ImmutableArray<ushort> Uids { get; }

    /// <summary>Hotkeys as account ids, by uid.</summary>
    public ImmutableArray<AccountId> HotkeyIds { get; }

    /// <summary>Coldkeys as account ids, by uid.</summary>
    public ImmutableArray<AccountId> ColdkeyIds { get; }

    /// <summary>Hotkeys as SS58 addresses, by uid (<c>metagraph.hotkeys</c>); computed on first use.</summary>
    public ImmutableArray<string> Hotkeys => _hotkeys.IsDefault ? _hotkeys = Ss58(HotkeyIds) : _hotkeys;

    /// <summary>Coldkeys as SS58 addresses, by uid (<c>metagraph.coldkeys</c>); computed on first use.</summary>
    public ImmutableArray<string> Coldkeys => _coldkeys.IsDefault ? _coldkeys = Ss58(ColdkeyIds) : _coldkeys;

    /// <summary>Total stake on each hotkey in rao.</summary>
    public ImmutableArray<ulong> StakeRao { get; }

    /// <summary>Total stake on each hotkey in TAO (<c>metagraph.S</c>).</summary>
    public ImmutableArray<double> S { get; }

    /// <summary>Rank as stored on chain (fraction × 65535).</summary>
    public ImmutableArray<ushort> RankU16 { get; }

    /// <summary>Trust as stored on chain (fraction × 65535).</summary>
    public ImmutableArray<ushort> TrustU16 { get; }

    /// <summary>Consensus as stored on chain (fraction × 65535).</summary>
    public ImmutableArray<ushort> ConsensusU16 { get; }

    /// <summary>Incentive as stored on chain (fraction × 65535).</summary>
    public ImmutableArray<ushort> IncentiveU16 { get; }

    /// <summary>Dividends as stored on chain (fraction × 65535).</summary>
    public ImmutableArray<ushort> DividendsU16 { get; }

    /// <summary>Validator trust as stored on chain (fraction × 65535).</summary>
    public ImmutableArray<ushort> ValidatorTrustU16 { get; }

    /// <summary>Rank in [0, 1] (<c>metagraph.R</c>).</summary>
    public ImmutableArray<double> R { get; }

    /// <summary>Trust in [0, 1] (<c>metagraph.T</c>).</summary>
    public ImmutableArray<double> T { get; }

    /// <summary>Consensus in [0, 1] (<c>metagraph.C</c>).</summary>
    public ImmutableArray<double> C { get; }

    /// <summary>Incentive in [0, 1] (<c>metagraph.I</c>).</summary>
    public ImmutableArray<double> I { get; }

    /// <summary>Dividends in [0, 1] (<c>metagraph.D</c>).</summary>
    public ImmutableArray<double> D { get; }

    /// <summary>Validator trust in [0, 1] (<c>metagraph.validator_trust</c>).</summary>
    public ImmutableArray<double> ValidatorTrust { get; }

    /// <summary>Emission per epoch in rao.</summary>
    public ImmutableArray<ulong> EmissionRao { get; }

    /// <summary>Emission per epoch in TAO (<c>metagraph.E</c>).</summary>
    public ImmutableArray<double> E { get; }

    /// <summary>Whether each neuron holds a validator permit (<c>metagraph.validator_permit</c>).</summary>
    public ImmutableArray<bool> ValidatorPermit { get; }

    /// <summary>Whether each neuron is active (updated within the activity cutoff; <c>metagraph.active</c>).</summary>
    public ImmutableArray<bool> Active { get; }

    /// <summary>Block of each neuron's last weight update (<c>metagraph.last_update</c>).</summary>
    public ImmutableArray<ulong> LastUpdate { get; }

    /// <summary>Each neuron's axon (<c>metagraph.endpoints</c> / <c>metagraph.axons</c>).</summary>
    public ImmutableArray<Endpoint> Endpoints { get; }

    /// <summary>Alias of <see cref="Endpoints"/> with today's SDK name.</summary>
    public ImmutableArray<Endpoint> Axons => Endpoints;

    /// <summary>Weights set by each uid, sparse (<c>metagraph.W</c>).</summary>
    public ImmutableArray<ImmutableArray<UidWeight>> W { get; }

    /// <summary>Bonds held by each uid, sparse (<c>metagraph.B</c>).</summary>
    public ImmutableArray<ImmutableArray<UidWeight>> B { get; }

    /// <summary>The uid of a hotkey, or −1 when it is not registered in this snapshot.</summary>
    public int UidOf(AccountId hotkey)
    {
        for (var i = 0; i < HotkeyIds.Length; i++)
            if (HotkeyIds[i] == hotkey) return i;
        return -1;
    }

    /// <summary>Row <paramref name="uid"/> of W as a dense vector of fractions (each u16 / 65535).</summary>
    public double[] DenseWeights(int uid)
    {
        var row = new double[N];
        foreach (var e in W[uid])
            if (e.Uid < N) row[e.Uid] = e.Value / 65535.0;
        return row;
    }

    private static ImmutableArray<T1> OrEmpty<T1>(ImmutableArray<T1> a) => a.IsDefault ? [] : a;

    private static void Check<T1>(ImmutableArray<T1> a, int n, string name)
    {
        var len = a.IsDefault ? 0 : a.Length;
        if (len != n) throw new ArgumentException($"metagraph column '{name}' has {len} entries for {n} uids");
    }

    private static ImmutableArray<double> Tao(ImmutableArray<ulong> rao)
    {
        var r = new double[rao.Length];
        for (var i = 0; i < r.Length; i++) r[i] = rao[i] / (double)Balance.RaoPerTao;
        return ImmutableArray.Create(r);
    }

    private static ImmutableArray<double> Fraction(ImmutableArray<ushort> u16)
    {
        var r = new double[u16.Length];
        for (var i = 0; i < r.Length; i++) r[i] = u16[i] / 65535.0;
        return ImmutableArray.Create(r);
    }

    private static ImmutableArray<string> Ss58(ImmutableArray<AccountId> ids)
    {
        var r = new string[ids.Length];
        for (var i = 0; i < r.Length; i++) r[i] = ids[i].ToSs58();
        return ImmutableArray.Create(r);
    }
}
