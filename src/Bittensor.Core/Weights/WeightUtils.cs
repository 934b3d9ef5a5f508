namespace Bittensor.Core.Weights;

/// <summary>
/// Turns a validator's float scores into the u16 <c>set_weights</c> arguments subtensor accepts, the way the Python
/// SDK does (<c>bittensor.utils.weight_utils</c>): <see cref="ProcessWeightsForNetuid"/> applies the subnet's
/// min-allowed-weights and max-weight-limit, <see cref="ConvertWeightsAndUidsForEmit"/> max-upscales to u16
/// (largest → 65535, round half to even like Python's <c>round</c>) and drops zeros.
/// </summary>
public static class WeightUtils
{
    /// <summary>u16 maximum, the chain's unit for weights and fractions.</summary>
    public const ushort U16Max = ushort.MaxValue;

    /// <summary>A u16 fraction as a double in [0, 1] (the SDK's <c>U16_NORMALIZED_FLOAT</c>).</summary>
    public static double U16ToFloat(ushort value) => value / (double)U16Max;

    /// <summary>
    /// Scales <paramref name="x"/> to sum 1 with no entry above <paramref name="limit"/>, clipping the largest entries
    /// to a common cutoff (the SDK's <c>normalize_max_weight</c>). When the limit cannot be met (n·limit ≤ 1) or all
    /// entries are zero, the result is uniform.
    /// </summary>
    public static double[] NormalizeMaxWeight(ReadOnlySpan<double> x, double limit = 0.1)
    {
        const double epsilon = 1e-7;
        var n = x.Length;
        if (n == 0) return [];
        foreach (var v in x)
            if (!(v >= 0) || double.IsInfinity(v)) throw new ArgumentException("weights must be finite and non-negative");
        var weights = x.ToArray();
        var sum = Sum(weights);
        if (sum == 0 || n * limit <= 1) return Uniform(n);

        var values = (double[])weights.Clone();
        Array.Sort(values);
        var estimation = new double[n];
        var max = 0.0;
        for (var i = 0; i < n; i++)
        {
            estimation[i] = values[i] / sum;
            max = Math.Max(max, estimation[i]);
        }
        if (max <= limit) return Scale(weights, 1 / sum);

        var cumsum = new double[n];
        var acc = 0.0;
        for (var i = 0; i < n; i++) cumsum[i] = acc += estimation[i];
        var nValues = 0;
        for (var i = 0; i < n; i++)
        {
            var estimationSum = (n - i - 1) * estimation[i];
            if (estimation[i] / (estimationSum + cumsum[i] + epsilon) < limit) nValues++;
        }
        // nValues ≥ 1 here: the smallest entry is at most the mean 1/n < limit.
        var cutoffScale = (limit * cumsum[nValues - 1] - epsilon) / (1 - limit * (n - nValues));
        var cutoff = cutoffScale * sum;
        for (var i = 0; i < n; i++)
            if (weights[i] > cutoff) weights[i] = cutoff;
        return Scale(weights, 1 / Sum(weights));
    }

    /// <summary>
    /// Max-upscales float weights to u16 (the largest becomes 65535), rounds half to even, and drops uids whose
    /// value rounds to 0 (the SDK's <c>convert_weights_and_uids_for_emit</c>). All-zero weights give empty arrays.
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ, a weight is negative or not finite, or a uid is out of u16.</exception>
    public static (ushort[] Uids, ushort[] Values) ConvertWeightsAndUidsForEmit(ReadOnlySpan<long> uids, ReadOnlySpan<double> weights)
    {
        if (uids.Length != weights.Length)
            throw new ArgumentException($"{uids.Length} uids but {weights.Length} weights: they must have the same length");
        var max = 0.0;
        for (var i = 0; i < weights.Length; i++)
        {
            if (!(weights[i] >= 0) || double.IsInfinity(weights[i])) throw new ArgumentException($"weight {weights[i]} is negative or not finite");
            if (uids[i] is < 0 or > U16Max) throw new ArgumentException($"uid {uids[i]} is outside 0..65535");
            max = Math.Max(max, weights[i]);
        }
        if (max == 0) return ([], []);
        var outUids = new List<ushort>(uids.Length);
        var outValues = new List<ushort>(uids.Length);
        for (var i = 0; i < weights.Length; i++)
        {
            var v = Math.Round(weights[i] / max * U16Max, MidpointRounding.ToEven);
            if (v == 0) continue;
            outUids.Add((ushort)uids[i]);
            outValues.Add((ushort)v);
        }
        return (outUids.ToArray(), outValues.ToArray());
    }

    /// <summary>
    /// Applies a subnet's limits to a validator's weights (the SDK's <c>process_weights_for_netuid</c>): zero weights
    /// are dropped; with no non-zero weight, or fewer neurons than <paramref name="minAllowedWeights"/>, the result is
    /// uniform over all n uids; with fewer non-zero weights than the minimum, every uid gets 1e-5 plus its weight;
    /// otherwise the lowest <paramref name="excludeQuantile"/> (u16 fraction) is cut, as far as the minimum allows.
    /// The result is normalised to sum 1 with no entry above <paramref name="maxWeightLimit"/> / 65535.
    /// </summary>
    /// <param name="uids">Uids the weights refer to (each &lt; <paramref name="n"/>).</param>
    /// <param name="weights">Non-negative scores, any scale.</param>
    /// <param name="n">Number of neurons on the subnet.</param>
    /// <param name="minAllowedWeights">The subnet's <c>MinAllowedWeights</c>.</param>
    /// <param name="maxWeightLimit">The subnet's <c>MaxWeightsLimit</c> as the chain's u16.</param>
    /// <param name="excludeQuantile">Lowest quantile to drop, as a u16 fraction (0 = keep all).</param>
    public static (long[] Uids, double[] Weights) ProcessWeightsForNetuid(ReadOnlySpan<long> uids, ReadOnlySpan<double> weights,
        int n, int minAllowedWeights, ushort maxWeightLimit, ushort excludeQuantile = 0)
    {
        if (uids.Length != weights.Length)
            throw new ArgumentException($"{uids.Length} uids but {weights.Length} weights: they must have the same length");
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        var limit = U16ToFloat(maxWeightLimit);
        var nzUids = new List<long>();
        var nzWeights = new List<double>();
        for (var i = 0; i < uids.Length; i++)
        {
            if (uids[i] < 0 || uids[i] >= n) throw new ArgumentException($"uid {uids[i]} is not on a subnet of {n} neurons");
            if (!(weights[i] >= 0) || double.IsInfinity(weights[i])) throw new ArgumentException($"weight {weights[i]} is negative or not finite");
            if (weights[i] > 0)
            {
                nzUids.Add(uids[i]);
                nzWeights.Add(weights[i]);
            }
        }

        if (nzWeights.Count == 0 || n < minAllowedWeights)
            return (Range(n), Uniform(n));

        if (nzWeights.Count < minAllowedWeights)
        {
            var padded = new double[n];
            Array.Fill(padded, 1e-5);
            for (var i = 0; i < nzUids.Count; i++) padded[nzUids[i]] += nzWeights[i];
            return (Range(n), NormalizeMaxWeight(padded, limit));
        }

        var maxExclude = Math.Max(0, nzWeights.Count - minAllowedWeights) / (double)nzWeights.Count;
        var quantile = Math.Min(U16ToFloat(excludeQuantile), maxExclude);
        var lowest = Quantile(nzWeights, quantile);
        var keptUids = new List<long>();
        var keptWeights = new List<double>();
        for (var i = 0; i < nzWeights.Count; i++)
        {
            if (lowest > nzWeights[i]) continue;
            keptUids.Add(nzUids[i]);
            keptWeights.Add(nzWeights[i]);
        }
        return (keptUids.ToArray(), NormalizeMaxWeight(keptWeights.ToArray(), limit));
    }

    /// <summary>
    /// The chain's max-weight check (<c>check_vec_max_limited</c>): true when the largest of <paramref name="values"/>,
    /// as a share of their sum, is at most <paramref name="maxWeightLimit"/> / 65535, or the limit is 65535.
    /// </summary>
    public static bool IsMaxWeightLimited(ReadOnlySpan<ushort> values, ushort maxWeightLimit)
    {
        if (maxWeightLimit == U16Max || values.IsEmpty) return true;
        ulong sum = 0;
        ushort max = 0;
        foreach (var v in values)
        {
            sum += v;
            max = Math.Max(max, v);
        }
        return sum == 0 || (double)max / sum <= U16ToFloat(maxWeightLimit);
    }

    /// <summary>Linear-interpolated quantile of the values (numpy's default method).</summary>
    internal static double Quantile(IReadOnlyList<double> values, double q)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        var pos = q * (sorted.Length - 1);
        var lo = (int)Math.Floor(pos);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }

    private static double Sum(ReadOnlySpan<double> values)
    {
        var s = 0.0;
        foreach (var v in values) s += v;
        return s;
    }

    private static double[] Scale(double[] values, double factor)
    {
        for (var i = 0; i < values.Length; i++) values[i] *= factor;
        return values;
    }

    private static double[] Uniform(int n)
    {
        var r = new double[n];
        Array.Fill(r, 1.0 / n);
        return r;
    }

    private static long[] Range(int n)
    {
        var r = new long[n];
        for (var i = 0; i < n; i++) r[i] = i;
        return r;
    }
}
