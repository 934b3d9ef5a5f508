namespace Bittensor.Chain.Yuma;

/// <summary>
/// Classic Yuma consensus exactly as subtensor's sparse <c>epoch()</c> computed it in May 2024 (runtime spec 148,
/// opentensor/subtensor da21fb6a, pallets/subtensor/src/epoch.rs and math.rs), with the same fixed-point rounding.
/// Pure: no I/O, no clock, arrays by uid.
/// </summary>
public static class YumaEpoch
{
    /// <summary>Largest subnet size the chain can address (uids are u16).</summary>
    public const int MaxNeurons = ushort.MaxValue;

    /// <summary>Runs one epoch over <paramref name="input"/> and returns what the chain would store.</summary>
    /// <exception cref="EpochInputException">The input names a uid out of range, a duplicate uid, a duplicate
    /// target in a row, a permit vector of the wrong length, or stakes whose sum overflows the chain's I64F64.</exception>
    public static EpochOutput Run(EpochInput input)
    {
        var p = Prepared.From(input);
        return RunSparse(p);
    }

    internal static EpochOutput RunSparse(Prepared p)
    {
        int n = p.N;
        var hp = p.Hyperparams;

        // == Active & updated ==
        var inactive = new bool[n];
        var active = new bool[n];
        for (int i = 0; i < n; i++)
        {
            inactive[i] = unchecked(p.LastUpdate[i] + hp.ActivityCutoff) < p.Block;
            active[i] = !inactive[i];
        }

        // == Stake ==
        var stake = NormalizedStake(p.StakeRao);

        // == Validator permits ==
        var validatorPermits = p.PrevValidatorPermit ?? YumaMath.IsTopK(stake, hp.MaxAllowedValidators);
        var validatorForbids = new bool[n];
        for (int i = 0; i < n; i++) validatorForbids[i] = !validatorPermits[i];
        var newValidatorPermits = YumaMath.IsTopK(stake, hp.MaxAllowedValidators);

        // == Active stake ==
        var activeStake = (I32F32[])stake.Clone();
        YumaMath.InplaceMaskVector(inactive, activeStake);
        YumaMath.InplaceMaskVector(validatorForbids, activeStake);
        YumaMath.InplaceNormalize(activeStake);

        // == Weights == (mask_rows_sparse, mask_diag_sparse, vec_mask_sparse_matrix(updated <= registered))
        var weights = Csr.Build(n, p.Weights, validatorForbids, maskDiagonal: true, p.LastUpdate, p.BlockAtRegistration);
        weights.InplaceRowNormalize();

        // == Consensus, validator trust ==
        var preranks = weights.MatMul(activeStake);
        var kappa = I32F32.FromInt(hp.Kappa) / YumaMath.U16Max;
        var consensus = weights.WeightedMedianCol(activeStake, kappa);
        weights.ColClip(consensus);
        var validatorTrust = weights.RowSum();

        // == Ranks, trust, incentive ==
        var ranks = weights.MatMul(activeStake);
        var trust = YumaMath.VecDiv(ranks, preranks);
        YumaMath.InplaceNormalize(ranks);
        var incentive = ranks;

        // == Bonds and dividends ==
        var bonds = Csr.Build(n, p.Bonds, dropRows: null, maskDiagonal: false, p.LastUpdate, p.BlockAtRegistration);
        bonds.InplaceColNormalize();
        weights.InplaceRowHadamard(activeStake); // ΔB = W∘S; the clipped weights are not needed afterwards
        var bondsDelta = weights;
        bondsDelta.InplaceColNormalize();
        var alpha = BondsAlpha(hp.BondsMovingAverage);
        var emaBonds = Csr.MatEma(bondsDelta, bonds, alpha);
        emaBonds.InplaceColNormalize();
        var dividends = emaBonds.MatMulTranspose(incentive);
        YumaMath.InplaceNormalize(dividends);

        var (server, validator, combined, pruning) = Emission(incentive, dividends, stake, activeStake, p.EmissionRao);

        emaBonds.InplaceColMaxUpscale();
        var newBonds = new UidValue[n][];
        for (int i = 0; i < n; i++)
        {
            if (newValidatorPermits[i]) newBonds[i] = emaBonds.RowToU16(i);
            else if (validatorPermits[i]) newBonds[i] = [];
            else newBonds[i] = p.BondsRaw(i);
        }

        return new EpochOutput(
            Rank: ToU16(ranks),
            Trust: ToU16(trust),
            Consensus: ToU16(consensus),
            Incentive: ToU16(incentive),
            Dividends: ToU16(dividends),
            ValidatorTrust: ToU16(validatorTrust),
            ValidatorPermit: newValidatorPermits,
            EmissionRao: combined,
            ServerEmissionRao: server,
            ValidatorEmissionRao: validator,
            PruningScores: pruning,
            Active: active,
            Bonds: newBonds);
    }

    internal static I32F32[] NormalizedStake(ulong[] stakeRao)
    {
        var stake64 = new I64F64[stakeRao.Length];
        for (int i = 0; i < stakeRao.Length; i++) stake64[i] = I64F64.FromInt(stakeRao[i]);
        YumaMath.InplaceNormalize64(stake64);
        return YumaMath.VecFixed64ToFixed32(stake64);
    }

    /// <summary>alpha = 1 - I32F32(I64F64(bma) / I64F64(1_000_000)).</summary>
    internal static I32F32 BondsAlpha(ulong bondsMovingAverage)
    {
        var bma = I64F64.FromInt(bondsMovingAverage) / I64F64.FromInt(1_000_000);
        return I32F32.One - I32F32.FromI64F64(bma);
    }

    /// <summary>The emission split and pruning scores, identical in the dense and sparse epochs.</summary>
    internal static (ulong[] Server, ulong[] Validator, ulong[] Combined, ushort[] Pruning) Emission(
        I32F32[] incentive, I32F32[] dividends, I32F32[] stake, I32F32[] activeStake, ulong raoEmission)
    {
        int n = incentive.Length;
        var combinedEmission = new I32F32[n];
        for (int i = 0; i < n; i++) combinedEmission[i] = incentive[i] + dividends[i];
        var emissionSum = YumaMath.Sum(combinedEmission);

        var normServer = (I32F32[])incentive.Clone();
        var normValidator = (I32F32[])dividends.Clone();
        var normCombined = (I32F32[])combinedEmission.Clone();
        YumaMath.InplaceNormalizeUsingSum(normServer, emissionSum);
        YumaMath.InplaceNormalizeUsingSum(normValidator, emissionSum);
        YumaMath.InplaceNormalize(normCombined);

        if (emissionSum == I32F32.Zero)
        {
            // No weights set, outdated weights or only self-weights: emission follows stake.
            var source = YumaMath.Sum(activeStake) == I32F32.Zero ? stake : activeStake;
            normValidator = (I32F32[])source.Clone();
            normCombined = (I32F32[])source.Clone();
        }

        var rao = I96F32.FromInt(raoEmission);
        var server = new ulong[n];
        var validator = new ulong[n];
        var combined = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            server[i] = (I96F32.FromI32F32(normServer[i]) * rao).ToU64();
            validator[i] = (I96F32.FromI32F32(normValidator[i]) * rao).ToU64();
            combined[i] = (I96F32.FromI32F32(normCombined[i]) * rao).ToU64();
        }
        return (server, validator, combined, YumaMath.VecMaxUpscaleToU16(normCombined));
    }

    internal static ushort[] ToU16(I32F32[] x)
    {
        var r = new ushort[x.Length];
        for (int i = 0; i < x.Length; i++) r[i] = YumaMath.FixedProportionToU16(x[i]);
        return r;
    }
}

/// <summary>An <see cref="EpochInput"/> checked and laid out by uid.</summary>
internal sealed class Prepared
{
    public required int N { get; init; }
    public required ulong Block { get; init; }
    public required ulong EmissionRao { get; init; }
    public required YumaHyperparams Hyperparams { get; init; }
    public required ulong[] StakeRao { get; init; }
    public required ulong[] LastUpdate { get; init; }
    public required ulong[] BlockAtRegistration { get; init; }
    public required IReadOnlyList<UidValue>[] Weights { get; init; }
    public required IReadOnlyList<UidValue>[] Bonds { get; init; }

    /// <summary>The unchanged stored bonds row of <paramref name="uid"/> (kept when it neither had nor gets a permit).</summary>
    public UidValue[] BondsRaw(int uid) => Bonds[uid] as UidValue[] ?? [.. Bonds[uid]];
    public required bool[]? PrevValidatorPermit { get; init; }

    public static Prepared From(EpochInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Hyperparams is null) throw new EpochInputException("hyperparams: missing");
        if (input.Neurons is null) throw new EpochInputException("neurons: missing");
        int n = input.Neurons.Count;
        if (n > YumaEpoch.MaxNeurons)
            throw new EpochInputException($"neurons: {n} entries, at most {YumaEpoch.MaxNeurons} allowed");

        var stake = new ulong[n];
        var lastUpdate = new ulong[n];
        var bar = new ulong[n];
        var weights = new IReadOnlyList<UidValue>[n];
        var bonds = new IReadOnlyList<UidValue>[n];
        var seen = new bool[n];
        var rowSeen = new int[n]; // stamp per target uid: detects duplicate targets in one row without clearing
        int stamp = 0;
        UInt128 stakeSum = 0;
        for (int k = 0; k < n; k++)
        {
            var neuron = input.Neurons[k] ?? throw new EpochInputException($"neurons[{k}]: null");
            int uid = neuron.Uid;
            if (uid >= n)
                throw new EpochInputException($"neurons[{k}].uid: {uid} out of range (n = {n}, uids must be 0..{n - 1})");
            if (seen[uid]) throw new EpochInputException($"neurons[{k}].uid: duplicate uid {uid}");
            seen[uid] = true;
            stake[uid] = neuron.StakeRao;
            stakeSum += neuron.StakeRao;
            lastUpdate[uid] = neuron.LastUpdate;
            bar[uid] = neuron.BlockAtRegistration;
            weights[uid] = CheckRow(neuron.Weights, n, uid, "weights", rowSeen, ++stamp);
            bonds[uid] = CheckRow(neuron.Bonds, n, uid, "bonds", rowSeen, ++stamp);
        }
        // I64F64::from_num(stake) and the I64F64 sum must not leave the signed 64-bit integer range.
        if (stakeSum > (UInt128)long.MaxValue)
            throw new EpochInputException("neurons: total stake_rao exceeds 2^63-1 (the chain's I64F64 stake range)");

        bool[]? prev = null;
        if (input.PrevValidatorPermit is { } pv)
        {
            if (pv.Count != n)
                throw new EpochInputException($"prev_validator_permit: {pv.Count} entries, expected one per neuron ({n})");
            prev = [.. pv];
        }

        return new Prepared
        {
            N = n,
            Block = input.Block,
            EmissionRao = input.EmissionRao,
            Hyperparams = input.Hyperparams,
            StakeRao = stake,
            LastUpdate = lastUpdate,
            BlockAtRegistration = bar,
            Weights = weights,
            Bonds = bonds,
            PrevValidatorPermit = prev,
        };
    }

    private static IReadOnlyList<UidValue> CheckRow(IReadOnlyList<UidValue>? row, int n, int uid, string what, int[] rowSeen, int stamp)
    {
        if (row is null) return [];
        if (row.Count > n)
            throw new EpochInputException($"uid {uid} {what}: {row.Count} entries, at most n = {n}");
        if (row is UidValue[] arr)
        {
            for (int t = 0; t < arr.Length; t++) Check(arr[t].Uid, t);
            return arr;
        }
        for (int t = 0; t < row.Count; t++) Check(row[t].Uid, t);
        return row;

        void Check(int j, int t)
        {
            if (j >= n) throw new EpochInputException($"uid {uid} {what}[{t}]: target uid {j} out of range (n = {n})");
            if (rowSeen[j] == stamp) throw new EpochInputException($"uid {uid} {what}: duplicate target uid {j}");
            rowSeen[j] = stamp;
        }
    }
}
