namespace Bittensor.Chain.Yuma;

/// <summary>One sparse matrix cell as the chain stores it: a target uid and a u16 value.</summary>
/// <param name="Uid">Column (target neuron uid).</param>
/// <param name="Value">Raw u16 value (weights: row max-upscaled; bonds: column max-upscaled).</param>
public readonly record struct UidValue(ushort Uid, ushort Value);

/// <summary>
/// Subnet hyperparameters that matter to an epoch. Only <see cref="Kappa"/>, <see cref="BondsMovingAverage"/>,
/// <see cref="ActivityCutoff"/> and <see cref="MaxAllowedValidators"/> enter subtensor's May 2024 <c>epoch()</c>;
/// the other three are carried so a case file describes the whole subnet (they act at registration and
/// <c>set_weights</c> time, not in the epoch).
/// </summary>
/// <param name="Kappa">Consensus majority as a u16 fraction (32767 ≈ 0.5).</param>
/// <param name="BondsMovingAverage">Bonds EMA retention ×10^6 (900 000 → α = 0.1).</param>
/// <param name="ActivityCutoff">Blocks after its last weight update that a neuron still counts as active.</param>
/// <param name="MaxAllowedValidators">k for the top-k-by-stake validator permits.</param>
/// <param name="ImmunityPeriod">Blocks of immunity from pruning after registration (not used by the epoch).</param>
/// <param name="MinAllowedWeights">Minimum weights per set_weights call (not used by the epoch).</param>
/// <param name="MaxWeightsLimit">Largest normalised single weight as a u16 fraction (not used by the epoch).</param>
public sealed record YumaHyperparams(
    ushort Kappa,
    ulong BondsMovingAverage,
    ushort ActivityCutoff,
    ushort MaxAllowedValidators,
    ushort ImmunityPeriod,
    ushort MinAllowedWeights,
    ushort MaxWeightsLimit)
{
    /// <summary>The finney runtime defaults of spec 148 (runtime/src/lib.rs <c>SubtensorInitial*</c>).</summary>
    public static YumaHyperparams Default { get; } = new(32_767, 900_000, 5_000, 128, 4_096, 1_024, 1_000);
}

/// <summary>One registered neuron as the epoch sees it.</summary>
/// <param name="Uid">Position in the subnet, 0..n-1.</param>
/// <param name="StakeRao">Total stake on the hotkey in rao.</param>
/// <param name="LastUpdate">Block of the neuron's last <c>set_weights</c> (or registration).</param>
/// <param name="BlockAtRegistration">Block the current hotkey registered into this uid.</param>
/// <param name="Weights">Stored weights row (row max-upscaled u16 values).</param>
/// <param name="Bonds">Stored bonds row (column max-upscaled u16 values).</param>
public sealed record EpochNeuron(
    ushort Uid,
    ulong StakeRao,
    ulong LastUpdate,
    ulong BlockAtRegistration,
    IReadOnlyList<UidValue> Weights,
    IReadOnlyList<UidValue> Bonds);

/// <summary>Everything one epoch reads from the chain.</summary>
/// <param name="Block">Current block number.</param>
/// <param name="Tempo">Subnet tempo (informational; the epoch itself does not read it).</param>
/// <param name="EmissionRao">Rao to distribute in this epoch.</param>
/// <param name="Hyperparams">Subnet hyperparameters.</param>
/// <param name="Neurons">Exactly one entry per uid 0..n-1 (any order).</param>
/// <param name="PrevValidatorPermit">Stored permits from the previous epoch, by uid; null = top-k by stake.</param>
public sealed record EpochInput(
    ulong Block,
    ushort Tempo,
    ulong EmissionRao,
    YumaHyperparams Hyperparams,
    IReadOnlyList<EpochNeuron> Neurons,
    IReadOnlyList<bool>? PrevValidatorPermit = null);

/// <summary>
/// What the epoch writes back, arrays indexed by uid, u16 fractions scaled by 65535 as the chain stores them.
/// </summary>
/// <param name="Rank">Normalised ranks (equal to incentive in this runtime version).</param>
/// <param name="Trust">Server trust: rank after clipping over rank before clipping.</param>
/// <param name="Consensus">Stake-weighted median weight per column at majority kappa.</param>
/// <param name="Incentive">Normalised ranks.</param>
/// <param name="Dividends">Normalised bonds·incentive.</param>
/// <param name="ValidatorTrust">Sum of each validator's clipped weights.</param>
/// <param name="ValidatorPermit">New permits: top-k by stake.</param>
/// <param name="EmissionRao">Combined emission stored in <c>Emission</c>.</param>
/// <param name="ServerEmissionRao">Incentive share in rao (paid through the hotkey as server emission).</param>
/// <param name="ValidatorEmissionRao">Dividend share in rao (paid through the hotkey as validator emission).</param>
/// <param name="PruningScores">Combined emission share, max-upscaled to u16.</param>
/// <param name="Active">last_update + activity_cutoff ≥ block.</param>
/// <param name="Bonds">Bonds row per uid after the epoch (new rows for permitted uids, empty rows for uids that
/// lost their permit, the old row unchanged otherwise).</param>
public sealed record EpochOutput(
    ushort[] Rank,
    ushort[] Trust,
    ushort[] Consensus,
    ushort[] Incentive,
    ushort[] Dividends,
    ushort[] ValidatorTrust,
    bool[] ValidatorPermit,
    ulong[] EmissionRao,
    ulong[] ServerEmissionRao,
    ulong[] ValidatorEmissionRao,
    ushort[] PruningScores,
    bool[] Active,
    UidValue[][] Bonds);

/// <summary>An epoch input that the chain could not have produced (bad uid, duplicate, missing field...).</summary>
public sealed class EpochInputException : Exception
{
    /// <summary>Creates the exception with a one-line message naming the offending field.</summary>
    public EpochInputException(string message) : base(message) { }

    /// <summary>Creates the exception with a one-line message and the parser failure underneath.</summary>
    public EpochInputException(string message, Exception inner) : base(message, inner) { }
}
