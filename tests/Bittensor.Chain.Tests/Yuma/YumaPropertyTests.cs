using Bittensor.Chain.Yuma;
using FsCheck.Xunit;

namespace Bittensor.Chain.Tests.Yuma;

/// <summary>
/// Properties over random chain-plausible inputs. FsCheck supplies the seed; <see cref="EpochCases.Random"/> turns
/// it into a reproducible case (the failing seed is printed by FsCheck).
/// </summary>
public sealed class YumaPropertyTests
{
    [Property(MaxTest = 300)]
    public bool Incentive_sums_to_65535_within_rounding_whenever_any_rank_is_positive(int seed)
    {
        var input = EpochCases.Random(seed);
        var o = YumaEpoch.Run(input);
        long sum = o.Incentive.Sum(v => (long)v);
        if (sum == 0) return true;
        // Each entry loses < 1 unit to flooring and the normalisation loses < 1 unit of 2^-32 per entry.
        return sum <= 65535 && sum >= 65535 - o.Incentive.Length;
    }

    [Property(MaxTest = 200)]
    public bool A_single_active_validator_with_a_weight_on_another_neuron_always_yields_full_incentive(int seed)
    {
        var rng = new Random(seed);
        int n = rng.Next(2, 12);
        int v = rng.Next(n);
        int target = (v + 1 + rng.Next(n - 1)) % n;
        var neurons = new EpochNeuron[n];
        for (int i = 0; i < n; i++)
        {
            UidValue[] w = i == v ? [new UidValue((ushort)target, (ushort)rng.Next(1, 65536))] : [];
            neurons[i] = new EpochNeuron((ushort)i, i == v ? (ulong)rng.NextInt64(1, 1L << 50) : 0, 50, 0, w, []);
        }
        var o = YumaEpoch.Run(EpochCases.Input(60, EpochCases.Hyper(maxValidators: 1), neurons));
        long sum = o.Incentive.Sum(x => (long)x);
        return sum >= 65535 - n && sum <= 65535 && o.Incentive[target] > 0;
    }

    [Property(MaxTest = 300)]
    public bool Consensus_never_exceeds_the_largest_normalised_weight_in_its_column(int seed)
    {
        var input = EpochCases.Random(seed);
        var o = YumaEpoch.Run(input);
        var p = Prepared.From(input);
        int n = p.N;
        // Recompute the masked, row-normalised weights of the rows that carry active stake.
        var stake = YumaEpoch.NormalizedStake(p.StakeRao);
        var permits = p.PrevValidatorPermit ?? YumaMath.IsTopK(stake, input.Hyperparams.MaxAllowedValidators);
        var forbid = permits.Select(x => !x).ToArray();
        var w = Csr.Build(n, p.Weights, forbid, maskDiagonal: true, p.LastUpdate, p.BlockAtRegistration);
        w.InplaceRowNormalize();
        var maxCol = new ushort[n];
        for (int i = 0; i < n; i++)
        {
            bool activeRow = permits[i] && p.LastUpdate[i] + input.Hyperparams.ActivityCutoff >= p.Block && p.StakeRao[i] > 0;
            if (!activeRow) continue;
            for (int t = w.RowPtr[i]; t < w.RowPtr[i + 1]; t++)
            {
                var u = YumaMath.FixedProportionToU16(I32F32.FromBits(w.Val[t]));
                if (u > maxCol[w.Col[t]]) maxCol[w.Col[t]] = u;
            }
        }
        for (int j = 0; j < n; j++) if (o.Consensus[j] > maxCol[j]) return false;
        return true;
    }

    [Property(MaxTest = 300)]
    public bool A_neuron_without_stake_or_bonds_gets_no_dividends(int seed)
    {
        var input = EpochCases.Random(seed, bondsOnlyWhenStaked: true);
        var o = YumaEpoch.Run(input);
        foreach (var ne in input.Neurons)
            if (ne.StakeRao == 0 && o.Dividends[ne.Uid] != 0) return false;
        return true;
    }

    [Property(MaxTest = 200)]
    public bool Permuting_uids_permutes_every_output(int seed)
    {
        // Distinct stakes: is_topk breaks ties by uid, the only place where uid order matters.
        var input = EpochCases.Random(seed, distinctStakes: true);
        int n = input.Neurons.Count;
        var rng = new Random(seed ^ 0x5eed);
        var perm = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToArray(); // old uid → new uid
        UidValue[] MapRow(IReadOnlyList<UidValue> row) => [.. row.Select(e => new UidValue((ushort)perm[e.Uid], e.Value))];
        var neurons = input.Neurons
            .Select(ne => ne with { Uid = (ushort)perm[ne.Uid], Weights = MapRow(ne.Weights), Bonds = MapRow(ne.Bonds) })
            .OrderBy(_ => rng.Next()) // listing order of neurons must not matter either
            .ToArray();
        bool[]? prev = null;
        if (input.PrevValidatorPermit is { } pv)
        {
            prev = new bool[n];
            for (int i = 0; i < n; i++) prev[perm[i]] = pv[i];
        }
        var a = YumaEpoch.Run(input);
        var b = YumaEpoch.Run(input with { Neurons = neurons, PrevValidatorPermit = prev });
        for (int i = 0; i < n; i++)
        {
            int j = perm[i];
            if (a.Rank[i] != b.Rank[j] || a.Trust[i] != b.Trust[j] || a.Consensus[i] != b.Consensus[j]
                || a.Incentive[i] != b.Incentive[j] || a.Dividends[i] != b.Dividends[j]
                || a.ValidatorTrust[i] != b.ValidatorTrust[j] || a.ValidatorPermit[i] != b.ValidatorPermit[j]
                || a.EmissionRao[i] != b.EmissionRao[j] || a.ServerEmissionRao[i] != b.ServerEmissionRao[j]
                || a.ValidatorEmissionRao[i] != b.ValidatorEmissionRao[j] || a.PruningScores[i] != b.PruningScores[j]
                || a.Active[i] != b.Active[j])
                return false;
            var rowA = EpochCases.Dense(MapRow(a.Bonds[i]), n);
            var rowB = EpochCases.Dense(b.Bonds[j], n);
            if (!rowA.SequenceEqual(rowB)) return false;
        }
        return true;
    }

    [Property(MaxTest = 300)]
    public bool The_sparse_epoch_agrees_with_the_dense_epoch_on_every_output(int seed) =>
        SparseEqualsDense(EpochCases.Random(seed, maxN: 12));

    [Property(MaxTest = 500)]
    public bool The_sparse_epoch_agrees_with_the_dense_epoch_with_tied_weights_and_extreme_kappa(int seed) =>
        SparseEqualsDense(EpochCases.Random(seed, maxN: 12, ties: true));

    [Property(MaxTest = 30)]
    public bool The_sparse_epoch_agrees_with_the_dense_epoch_on_larger_subnets(int seed) =>
        SparseEqualsDense(EpochCases.Random(seed, maxN: 80, ties: seed % 2 == 0));

    private static bool SparseEqualsDense(EpochInput input)
    {
        var s = YumaEpoch.Run(input);
        var d = YumaEpochDense.Run(input);
        int n = input.Neurons.Count;
        for (int i = 0; i < n; i++)
            if (!EpochCases.Dense(s.Bonds[i], n).SequenceEqual(EpochCases.Dense(d.Bonds[i], n))) return false;
        return s.Rank.SequenceEqual(d.Rank) && s.Trust.SequenceEqual(d.Trust) && s.Consensus.SequenceEqual(d.Consensus)
            && s.Incentive.SequenceEqual(d.Incentive) && s.Dividends.SequenceEqual(d.Dividends)
            && s.ValidatorTrust.SequenceEqual(d.ValidatorTrust) && s.ValidatorPermit.SequenceEqual(d.ValidatorPermit)
            && s.EmissionRao.SequenceEqual(d.EmissionRao) && s.ServerEmissionRao.SequenceEqual(d.ServerEmissionRao)
            && s.ValidatorEmissionRao.SequenceEqual(d.ValidatorEmissionRao) && s.PruningScores.SequenceEqual(d.PruningScores)
            && s.Active.SequenceEqual(d.Active);
    }

    [Property(MaxTest = 200)]
    public bool Emission_never_exceeds_the_epoch_emission(int seed)
    {
        var input = EpochCases.Random(seed);
        var o = YumaEpoch.Run(input);
        UInt128 total = 0;
        foreach (var e in o.EmissionRao) total += e;
        UInt128 split = 0;
        for (int i = 0; i < o.ServerEmissionRao.Length; i++) split += (UInt128)o.ServerEmissionRao[i] + o.ValidatorEmissionRao[i];
        return total <= input.EmissionRao && split <= input.EmissionRao;
    }
}
