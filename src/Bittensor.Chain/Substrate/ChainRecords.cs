using System.Collections.Immutable;
using Bittensor.Core.Domain;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Substrate;

/// <summary><c>frame_system::AccountInfo</c> with subtensor's u64 balances (SUBSTRATE.md §4.4).</summary>
public sealed record AccountInfo(uint Nonce, uint Consumers, uint Providers, uint Sufficients, Balance Free, Balance Reserved, Balance Frozen, UInt128 Flags);

/// <summary>
/// subtensor's <c>NeuronInfoLite</c> (runtime API <c>NeuronInfoRuntimeApi_get_neurons_lite</c>): a neuron without
/// weights and bonds. Fractions are u16 (65535 = 1.0); <see cref="Stake"/> is the sum over its stake entries.
/// </summary>
public sealed record NeuronInfoLite(
    AccountId Hotkey,
    AccountId Coldkey,
    ushort Uid,
    ushort Netuid,
    bool Active,
    AxonInfo Axon,
    Balance Stake,
    ushort Rank,
    Balance Emission,
    ushort Incentive,
    ushort Consensus,
    ushort Trust,
    ushort ValidatorTrust,
    ushort Dividends,
    ulong LastUpdate,
    bool ValidatorPermit,
    ushort PruningScore);

/// <summary>subtensor's <c>SubnetInfo</c> (runtime API <c>SubnetInfoRuntimeApi_get_subnet_info</c>), the fields this client reads.</summary>
public sealed record SubnetInfoRecord(
    ushort Netuid,
    ushort Rho,
    ushort Kappa,
    ulong Difficulty,
    ushort ImmunityPeriod,
    ushort MaxAllowedValidators,
    ushort MinAllowedWeights,
    ushort MaxWeightsLimit,
    ushort SubnetworkN,
    ushort MaxAllowedUids,
    ulong BlocksSinceLastStep,
    ushort Tempo,
    Balance EmissionValue,
    Balance Burn,
    AccountId Owner);

/// <summary>
/// Maps generic <see cref="ScaleValue"/>s onto the typed records the actors use, by field name. A field that the
/// runtime does not have is an <see cref="InvalidCastException"/> naming it (never a silent zero).
/// </summary>
public static class ChainRecords
{
    /// <summary><c>System.Account</c> value.</summary>
    public static AccountInfo ToAccountInfo(ScaleValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var data = value.Field("data");
        return new AccountInfo(
            value.Field("nonce").AsU32(),
            value.Field("consumers").AsU32(),
            value.Field("providers").AsU32(),
            value.Field("sufficients").AsU32(),
            new Balance(data.Field("free").AsU64()),
            new Balance(data.Field("reserved").AsU64()),
            new Balance((data.TryField("frozen") ?? data.Field("misc_frozen")).AsU64()),
            data.TryField("flags")?.AsU128() ?? 0);
    }

    /// <summary><c>AxonInfo</c> (storage <c>SubtensorModule.Axons</c> or the <c>axon_info</c> field of a neuron).</summary>
    public static AxonInfo ToAxonInfo(ScaleValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new AxonInfo(
            value.Field("block").AsU64(),
            value.Field("version").AsU32(),
            value.Field("ip").AsU128(),
            value.Field("port").AsU16(),
            value.Field("ip_type").AsU8(),
            value.Field("protocol").AsU8(),
            value.Field("placeholder1").AsU8(),
            value.Field("placeholder2").AsU8());
    }

    /// <summary>A <c>NeuronInfoLite</c> value.</summary>
    public static NeuronInfoLite ToNeuronInfoLite(ScaleValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new NeuronInfoLite(
            value.Field("hotkey").AsAccountId(),
            value.Field("coldkey").AsAccountId(),
            value.Field("uid").AsU16(),
            value.Field("netuid").AsU16(),
            value.Field("active").AsBool(),
            ToAxonInfo(value.Field("axon_info")),
            SumStake(value.Field("stake")),
            value.Field("rank").AsU16(),
            new Balance(value.Field("emission").AsU64()),
            value.Field("incentive").AsU16(),
            value.Field("consensus").AsU16(),
            value.Field("trust").AsU16(),
            value.Field("validator_trust").AsU16(),
            value.Field("dividends").AsU16(),
            value.Field("last_update").AsU64(),
            value.Field("validator_permit").AsBool(),
            value.Field("pruning_score").AsU16());
    }

    /// <summary>
    /// A full <c>NeuronInfo</c> value (with weights and bonds). The runtime struct has no registration block, so
    /// the caller passes it (storage <c>BlockAtRegistration</c>).
    /// </summary>
    public static NeuronInfo ToNeuronInfo(ScaleValue value, ulong blockAtRegistration)
    {
        ArgumentNullException.ThrowIfNull(value);
        var lite = ToNeuronInfoLite(value);
        return new NeuronInfo(
            lite.Hotkey, lite.Coldkey, lite.Uid, lite.Netuid, lite.Stake, lite.Rank, lite.Trust, lite.Consensus,
            lite.Incentive, lite.Dividends, lite.Emission, lite.ValidatorTrust, lite.ValidatorPermit, lite.Active,
            lite.LastUpdate, blockAtRegistration, lite.PruningScore, lite.Axon,
            Pairs(value.Field("weights")), Pairs(value.Field("bonds")));
    }

    /// <summary>A <c>SubnetInfo</c> value.</summary>
    public static SubnetInfoRecord ToSubnetInfo(ScaleValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new SubnetInfoRecord(
            value.Field("netuid").AsU16(),
            value.Field("rho").AsU16(),
            value.Field("kappa").AsU16(),
            value.Field("difficulty").AsU64(),
            value.Field("immunity_period").AsU16(),
            value.Field("max_allowed_validators").AsU16(),
            value.Field("min_allowed_weights").AsU16(),
            value.Field("max_weights_limit").AsU16(),
            value.Field("subnetwork_n").AsU16(),
            value.Field("max_allowed_uids").AsU16(),
            value.Field("blocks_since_last_step").AsU64(),
            value.Field("tempo").AsU16(),
            new Balance(value.Field("emission_values").AsU64()),
            new Balance(value.Field("burn").AsU64()),
            value.Field("owner").AsAccountId());
    }

    private static Balance SumStake(ScaleValue stake)
    {
        ulong total = 0;
        foreach (var entry in stake.AsItems()) total = checked(total + entry.AsItems()[1].AsU64());
        return new Balance(total);
    }

    private static ImmutableArray<UidWeight> Pairs(ScaleValue rows) =>
        [.. rows.AsItems().Select(p => p.AsItems()).Select(p => new UidWeight(p[0].AsU16(), p[1].AsU16()))];
}

/// <summary>
/// Layouts of subtensor's runtime API structs for runtimes that return them as opaque <c>Vec&lt;u8&gt;</c> (before
/// ~Feb 2025, e.g. spec 218), taken from <c>pallets/subtensor/src/rpc_info/{neuron_info,subnet_info}.rs</c> of that
/// time. Newer runtimes describe these types in their V15 metadata; prefer those when present.
/// </summary>
public sealed class LegacySubtensorTypes
{
    private LegacySubtensorTypes()
    {
        var b = new RegistryBuilder();
        var u8 = b.Primitive(PrimitiveKind.U8);
        var u16 = b.Primitive(PrimitiveKind.U16);
        var u32 = b.Primitive(PrimitiveKind.U32);
        var u64 = b.Primitive(PrimitiveKind.U64);
        var u128 = b.Primitive(PrimitiveKind.U128);
        var boolean = b.Primitive(PrimitiveKind.Bool);
        var cu16 = b.Compact(u16);
        var cu64 = b.Compact(u64);
        var account = b.AccountId32();
        var axon = b.Composite("pallet_subtensor::pallet::AxonInfo",
            ("block", u64), ("version", u32), ("ip", u128), ("port", u16), ("ip_type", u8), ("protocol", u8), ("placeholder1", u8), ("placeholder2", u8));
        var prometheus = b.Composite("pallet_subtensor::pallet::PrometheusInfo",
            ("block", u64), ("version", u32), ("ip", u128), ("port", u16), ("ip_type", u8));
        var stake = b.Sequence(b.Tuple(account, cu64));
        var pairs = b.Sequence(b.Tuple(cu16, cu16));
        (string, uint)[] head =
        [
            ("hotkey", account), ("coldkey", account), ("uid", cu16), ("netuid", cu16), ("active", boolean),
            ("axon_info", axon), ("prometheus_info", prometheus), ("stake", stake), ("rank", cu16), ("emission", cu64),
            ("incentive", cu16), ("consensus", cu16), ("trust", cu16), ("validator_trust", cu16), ("dividends", cu16),
            ("last_update", cu64), ("validator_permit", boolean),
        ];
        NeuronInfoLite = b.Composite("pallet_subtensor::rpc_info::neuron_info::NeuronInfoLite", [.. head, ("pruning_score", cu16)]);
        NeuronInfo = b.Composite("pallet_subtensor::rpc_info::neuron_info::NeuronInfo", [.. head, ("weights", pairs), ("bonds", pairs), ("pruning_score", cu16)]);
        NeuronsLite = b.Sequence(NeuronInfoLite);
        Neurons = b.Sequence(NeuronInfo);
        SubnetInfo = b.Composite("pallet_subtensor::rpc_info::subnet_info::SubnetInfo",
            ("netuid", cu16), ("rho", cu16), ("kappa", cu16), ("difficulty", cu64), ("immunity_period", cu16),
            ("max_allowed_validators", cu16), ("min_allowed_weights", cu16), ("max_weights_limit", cu16),
            ("scaling_law_power", cu16), ("subnetwork_n", cu16), ("max_allowed_uids", cu16), ("blocks_since_last_step", cu64),
            ("tempo", cu16), ("network_modality", cu16), ("network_connect", b.Sequence(b.Array(u16, 2))),
            ("emission_values", cu64), ("burn", cu64), ("owner", account));
        Registry = b.Build();
    }

    /// <summary>The one instance.</summary>
    public static LegacySubtensorTypes Instance { get; } = new();

    /// <summary>The registry holding the types below.</summary>
    public PortableRegistry Registry { get; }

    /// <summary><c>NeuronInfoLite</c>.</summary>
    public uint NeuronInfoLite { get; }

    /// <summary><c>NeuronInfo</c>.</summary>
    public uint NeuronInfo { get; }

    /// <summary><c>Vec&lt;NeuronInfoLite&gt;</c>.</summary>
    public uint NeuronsLite { get; }

    /// <summary><c>Vec&lt;NeuronInfo&gt;</c>.</summary>
    public uint Neurons { get; }

    /// <summary><c>SubnetInfo</c>.</summary>
    public uint SubnetInfo { get; }

    /// <summary>
    /// Decodes a runtime API result of such a runtime: the SCALE <c>Vec&lt;u8&gt;</c> returned by <c>state_call</c>,
    /// whose content is a value of <paramref name="type"/>; an empty vector (the runtime's "none") gives null.
    /// </summary>
    public ScaleValue? DecodeWrapped(uint type, ReadOnlySpan<byte> stateCallResult)
    {
        var r = new ScaleReader(stateCallResult);
        var inner = r.Bytes();
        r.EnsureEnd();
        return inner.Length == 0 ? null : Registry.Decode(type, inner);
    }
}
