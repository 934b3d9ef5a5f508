namespace Bittensor.Chain.Yuma;

/// <summary>
/// subtensor's <c>epoch_dense</c> (spec 148): the same mechanism on full n×n matrices. The runtime only uses it
/// in tests; here it is the oracle the sparse path is checked against.
/// </summary>
internal static class YumaEpochDense
{
    public static EpochOutput Run(EpochInput input) => Run(Prepared.From(input));

    public static EpochOutput Run(Prepared p)
    {
        int n = p.N;
        var hp = p.Hyperparams;
        var inactive = new bool[n];
        var active = new bool[n];
        for (int i = 0; i < n; i++)
        {
            inactive[i] = unchecked(p.LastUpdate[i] + hp.ActivityCutoff) < p.Block;
            active[i] = !inactive[i];
        }
        // outdated_ij = last_update_i <= block_at_registration_j
        var outdated = new bool[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                outdated[i, j] = p.LastUpdate[i] <= p.BlockAtRegistration[j];

        var stake = YumaEpoch.NormalizedStake(p.StakeRao);
        var validatorPermits = p.PrevValidatorPermit ?? YumaMath.IsTopK(stake, hp.MaxAllowedValidators);
        var validatorForbids = new bool[n];
        for (int i = 0; i < n; i++) validatorForbids[i] = !validatorPermits[i];
        var newValidatorPermits = YumaMath.IsTopK(stake, hp.MaxAllowedValidators);

        var activeStake = (I32F32[])stake.Clone();
        YumaMath.InplaceMaskVector(inactive, activeStake);
        YumaMath.InplaceMaskVector(validatorForbids, activeStake);
        YumaMath.InplaceNormalize(activeStake);

        var weights = FromRows(n, p.Weights);
        for (int i = 0; i < n; i++) if (validatorForbids[i]) for (int j = 0; j < n; j++) weights[i, j] = 0; // inplace_mask_rows
        for (int i = 0; i < n; i++) weights[i, i] = 0; // inplace_mask_diag
        Mask(weights, outdated);
        RowNormalize(weights);

        var preranks = MatMul(weights, activeStake);
        var kappa = I32F32.FromInt(hp.Kappa) / YumaMath.U16Max;
        var consensus = WeightedMedianCol(activeStake, weights, kappa);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (weights[i, j] > consensus[j].Bits) weights[i, j] = consensus[j].Bits; // inplace_col_clip
        var validatorTrust = new I32F32[n];
        for (int i = 0; i < n; i++)
        {
            long s = 0;
            for (int j = 0; j < n; j++) s = unchecked(s + weights[i, j]);
            validatorTrust[i] = I32F32.FromBits(s);
        }

        var ranks = MatMul(weights, activeStake);
        var trust = YumaMath.VecDiv(ranks, preranks);
        YumaMath.InplaceNormalize(ranks);
        var incentive = ranks;

        var bonds = FromRows(n, p.Bonds);
        Mask(bonds, outdated);
        ColNormalize(bonds);
        var delta = new long[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                delta[i, j] = I32F32.MulBits(activeStake[i].Bits, weights[i, j]); // row_hadamard
        ColNormalize(delta);
        var alpha = YumaEpoch.BondsAlpha(hp.BondsMovingAverage);
        var oneMinusAlpha = I32F32.One - alpha;
        var ema = new long[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                ema[i, j] = unchecked(I32F32.MulBits(alpha.Bits, delta[i, j]) + I32F32.MulBits(oneMinusAlpha.Bits, bonds[i, j]));
        ColNormalize(ema);
        var dividends = new I32F32[n];
        for (int i = 0; i < n; i++)
        {
            long s = 0;
            for (int j = 0; j < n; j++) s = unchecked(s + I32F32.MulBits(incentive[j].Bits, ema[i, j]));
            dividends[i] = I32F32.FromBits(s);
        }
        YumaMath.InplaceNormalize(dividends);

        var (server, validator, combined, pruning) =
            YumaEpoch.Emission(incentive, dividends, stake, activeStake, p.EmissionRao);

        ColMaxUpscale(ema);
        var newBonds = new UidValue[n][];
        for (int i = 0; i < n; i++)
        {
            if (newValidatorPermits[i])
            {
                var row = new UidValue[n];
                for (int j = 0; j < n; j++)
                    row[j] = new UidValue((ushort)j, YumaMath.FixedProportionToU16(I32F32.FromBits(ema[i, j])));
                newBonds[i] = row;
            }
            else if (validatorPermits[i]) newBonds[i] = [];
            else newBonds[i] = p.BondsRaw(i);
        }

        return new EpochOutput(
            YumaEpoch.ToU16(ranks), YumaEpoch.ToU16(trust), YumaEpoch.ToU16(consensus), YumaEpoch.ToU16(incentive),
            YumaEpoch.ToU16(dividends), YumaEpoch.ToU16(validatorTrust), newValidatorPermits, combined, server,
            validator, pruning, active, newBonds);
    }

    private static long[,] FromRows(int n, IReadOnlyList<UidValue>[] rows)
    {
        var m = new long[n, n];
        for (int i = 0; i < n; i++)
            foreach (var e in rows[i]) m[i, e.Uid] = (long)e.Value << 32;
        return m;
    }

    private static void Mask(long[,] m, bool[,] mask)
    {
        int n = m.GetLength(0);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (mask[i, j]) m[i, j] = 0;
    }

    private static void RowNormalize(long[,] m)
    {
        int n = m.GetLength(0);
        for (int i = 0; i < n; i++)
        {
            long s = 0;
            for (int j = 0; j < n; j++) s = unchecked(s + m[i, j]);
            if (s > 0) for (int j = 0; j < n; j++) m[i, j] = I32F32.DivBits(m[i, j], s);
        }
    }

    private static void ColNormalize(long[,] m)
    {
        int n = m.GetLength(0);
        for (int j = 0; j < n; j++)
        {
            long s = 0;
            for (int i = 0; i < n; i++) s = unchecked(s + m[i, j]);
            if (s == 0) continue;
            for (int i = 0; i < n; i++) m[i, j] = I32F32.DivBits(m[i, j], s);
        }
    }

    private static void ColMaxUpscale(long[,] m)
    {
        int n = m.GetLength(0);
        for (int j = 0; j < n; j++)
        {
            long mx = 0;
            for (int i = 0; i < n; i++) if (mx < m[i, j]) mx = m[i, j];
            if (mx == 0) continue;
            for (int i = 0; i < n; i++) m[i, j] = I32F32.DivBits(m[i, j], mx);
        }
    }

    private static I32F32[] MatMul(long[,] m, I32F32[] v)
    {
        int n = v.Length;
        var r = new long[n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                r[j] = unchecked(r[j] + I32F32.MulBits(v[i].Bits, m[i, j]));
        var o = new I32F32[n];
        for (int j = 0; j < n; j++) o[j] = I32F32.FromBits(r[j]);
        return o;
    }

    /// <summary>weighted_median_col (dense): per column, the rows with positive stake, stake re-normalised.</summary>
    private static I32F32[] WeightedMedianCol(I32F32[] stake, long[,] score, I32F32 majority)
    {
        int n = stake.Length;
        var median = new I32F32[n];
        var useStakeList = new List<I32F32>();
        var rows = new List<int>();
        for (int r = 0; r < n; r++) if (stake[r] > I32F32.Zero) { useStakeList.Add(stake[r]); rows.Add(r); }
        if (rows.Count == 0) return median;
        var useStake = useStakeList.ToArray();
        YumaMath.InplaceNormalize(useStake);
        var stakeSum = YumaMath.Sum(useStake);
        var minority = stakeSum - majority;
        int k = rows.Count;
        var scoreA = new long[k];
        var stakeA = new long[k];
        var scoreB = new long[k];
        var stakeB = new long[k];
        for (int c = 0; c < n; c++)
        {
            for (int q = 0; q < k; q++) { scoreA[q] = score[rows[q], c]; stakeA[q] = useStake[q].Bits; }
            median[c] = YumaMath.WeightedMedian(scoreA, stakeA, scoreB, stakeB, k, minority, I32F32.Zero, stakeSum);
        }
        return median;
    }
}
