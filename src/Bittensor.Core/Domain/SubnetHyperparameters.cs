namespace Bittensor.Core.Domain;

/// <summary>
/// Per-subnet parameters as subtensor held them in May 2024 (runtime spec 148, opentensor/subtensor commit
/// da21fb6a). <see cref="Default"/> gives the values <c>register_network</c> gave a new subnet then: the pallet
/// storage defaults from <c>runtime/src/lib.rs</c> (<c>SubtensorInitial*</c>) overridden by
/// <c>init_new_network</c> in <c>pallets/subtensor/src/root.rs</c>.
/// </summary>
public sealed record SubnetHyperparameters
{
    /// <summary>Blocks between epochs (init_new_network: 360; runtime default SubtensorInitialTempo = 99).</summary>
    public ushort Tempo { get; init; } = 360;

    /// <summary>Consensus majority as a u16 fraction (SubtensorInitialKappa = 32_767, i.e. 0.5).</summary>
    public ushort Kappa { get; init; } = 32_767;

    /// <summary>Blocks after registration during which a neuron cannot be pruned (init_new_network: 5000).</summary>
    public ushort ImmunityPeriod { get; init; } = 5000;

    /// <summary>Maximum neurons (init_new_network: 256; runtime default 4096).</summary>
    public ushort MaxAllowedUids { get; init; } = 256;

    /// <summary>Top-k stakes that get a validator permit (init_new_network: 64; runtime default 128).</summary>
    public ushort MaxAllowedValidators { get; init; } = 64;

    /// <summary>Minimum entries in a weight vector (init_new_network: 1; runtime default 1024).</summary>
    public ushort MinAllowedWeights { get; init; } = 1;

    /// <summary>Largest normalised weight as a u16 fraction (init_new_network: u16::MAX, i.e. no limit).</summary>
    public ushort MaxWeightsLimit { get; init; } = ushort.MaxValue;

    /// <summary>Blocks between two set_weights of one neuron (DefaultWeightsSetRateLimit = 100).</summary>
    public ulong WeightsRateLimit { get; init; } = 100;

    /// <summary>Minimum version_key accepted by set_weights; 0 accepts any (SubtensorInitialWeightsVersionKey = 0).</summary>
    public ulong WeightsVersionKey { get; init; }

    /// <summary>Blocks without a weight update after which a neuron counts as inactive (SubtensorInitialActivityCutoff = 5000).</summary>
    public ushort ActivityCutoff { get; init; } = 5000;

    /// <summary>Bonds EMA moving average ×10^6; α = 1 − this/10^6 (SubtensorInitialBondsMovingAverage = 900_000).</summary>
    public ulong BondsMovingAverage { get; init; } = 900_000;

    /// <summary>Burned registration cost in rao (SubtensorInitialBurn = 1 TAO).</summary>
    public ulong Burn { get; init; } = 1_000_000_000;

    /// <summary>Lower bound of the adjusted burn in rao (init_new_network: 1).</summary>
    public ulong MinBurn { get; init; } = 1;

    /// <summary>Upper bound of the adjusted burn in rao (SubtensorInitialMaxBurn = 100 TAO).</summary>
    public ulong MaxBurn { get; init; } = 100_000_000_000;

    /// <summary>Blocks between two serve_axon of one hotkey (SubtensorInitialServingRateLimit = 50).</summary>
    public ulong ServingRateLimit { get; init; } = 50;

    /// <summary>Registrations allowed per block (SubtensorInitialMaxRegistrationsPerBlock = 1).</summary>
    public ushort MaxRegistrationsPerBlock { get; init; } = 1;

    /// <summary>Target registrations per interval; more than 3× this per interval is refused (init_new_network: 1).</summary>
    public ushort TargetRegistrationsPerInterval { get; init; } = 1;

    /// <summary>Blocks per registration interval (init_new_network: 360).</summary>
    public ushort AdjustmentInterval { get; init; } = 360;

    /// <summary>
    /// Weight of the old burn when it is adjusted each interval, as a fraction of u64::MAX
    /// (init_new_network: 17_893_341_751_498_265_066 ≈ 0.97).
    /// </summary>
    public ulong AdjustmentAlpha { get; init; } = 17_893_341_751_498_265_066;

    /// <summary>True when burned registration is open (init_new_network sets it true).</summary>
    public bool RegistrationAllowed { get; init; } = true;

    /// <summary>Minimum total stake to set weights in rao (DefaultWeightsMinStake = 0).</summary>
    public ulong WeightsMinStake { get; init; }

    /// <summary>The May-2024 values a new subnet got.</summary>
    public static SubnetHyperparameters Default { get; } = new();

    /// <summary>Checks ranges the epoch and the call checks rely on; throws <see cref="ArgumentException"/>.</summary>
    public SubnetHyperparameters Validate()
    {
        if (MaxAllowedUids == 0) throw new ArgumentException("max_allowed_uids must be at least 1");
        if (BondsMovingAverage > 1_000_000) throw new ArgumentException("bonds_moving_average is at most 1_000_000");
        if (MinBurn > MaxBurn) throw new ArgumentException("min_burn exceeds max_burn");
        return this;
    }
}
