namespace Bittensor.Chain.Yuma;

/// <summary>
/// The vector helpers of subtensor's math.rs (spec 148) on <see cref="I32F32"/>; matrix steps live in
/// <see cref="YumaEpoch"/> (sparse, CSR) and <see cref="YumaEpochDense"/> (dense test oracle).
/// </summary>
internal static class YumaMath
{
    public static readonly I32F32 U16Max = I32F32.FromInt(ushort.MaxValue);

    /// <summary><c>u16_proportion_to_fixed</c>: x / 65535.</summary>
    public static I32F32 U16ProportionToFixed(ushort x) => I32F32.FromInt(x) / U16Max;

    /// <summary><c>fixed_proportion_to_u16</c>: (x · 65535).to_num::&lt;u16&gt;().</summary>
    public static ushort FixedProportionToU16(I32F32 x) => (x * U16Max).ToU16();

    /// <summary><c>sum</c>: wrapping fold from zero.</summary>
    public static I32F32 Sum(ReadOnlySpan<I32F32> x)
    {
        long s = 0;
        foreach (var v in x) s = unchecked(s + v.Bits);
        return I32F32.FromBits(s);
    }

    /// <summary><c>inplace_normalize</c>: divide by the sum unless it is zero.</summary>
    public static void InplaceNormalize(Span<I32F32> x)
    {
        var sum = Sum(x);
        if (sum == I32F32.Zero) return;
        for (int i = 0; i < x.Length; i++) x[i] = x[i] / sum;
    }

    /// <summary><c>inplace_normalize_using_sum</c>.</summary>
    public static void InplaceNormalizeUsingSum(Span<I32F32> x, I32F32 sum)
    {
        if (sum == I32F32.Zero) return;
        for (int i = 0; i < x.Length; i++) x[i] = x[i] / sum;
    }

    /// <summary><c>inplace_normalize_64</c>.</summary>
    public static void InplaceNormalize64(Span<I64F64> x)
    {
        var sum = I64F64.Zero;
        foreach (var v in x) sum += v;
        if (sum == I64F64.Zero) return;
        for (int i = 0; i < x.Length; i++) x[i] = x[i] / sum;
    }

    /// <summary><c>vec_fixed64_to_fixed32</c>.</summary>
    public static I32F32[] VecFixed64ToFixed32(ReadOnlySpan<I64F64> x)
    {
        var r = new I32F32[x.Length];
        for (int i = 0; i < x.Length; i++) r[i] = I32F32.FromI64F64(x[i]);
        return r;
    }

    /// <summary><c>inplace_mask_vector</c>: mask=true sets the entry to zero.</summary>
    public static void InplaceMaskVector(ReadOnlySpan<bool> mask, Span<I32F32> v)
    {
        for (int i = 0; i < mask.Length; i++) if (mask[i]) v[i] = I32F32.Zero;
    }

    /// <summary><c>vecdiv</c>: x/y, 0 where y is 0.</summary>
    public static I32F32[] VecDiv(ReadOnlySpan<I32F32> x, ReadOnlySpan<I32F32> y)
    {
        var r = new I32F32[x.Length];
        for (int i = 0; i < x.Length; i++) if (y[i] != I32F32.Zero) r[i] = x[i] / y[i];
        return r;
    }

    /// <summary>
    /// <c>is_topk</c>: true for the k largest; ties broken by the Rust stable ascending sort, so among equal values
    /// the lower uids lose their place first. All true when n &lt; k.
    /// </summary>
    public static bool[] IsTopK(ReadOnlySpan<I32F32> vector, int k)
    {
        int n = vector.Length;
        var result = new bool[n];
        Array.Fill(result, true);
        if (n < k) return result;
        var keys = new long[n];
        var idx = new int[n];
        for (int i = 0; i < n; i++) { keys[i] = vector[i].Bits; idx[i] = i; }
        // Sorting (value, index) pairs reproduces a stable sort by value.
        Array.Sort(idx, (a, b) => keys[a] != keys[b] ? keys[a].CompareTo(keys[b]) : a.CompareTo(b));
        for (int t = 0; t < n - k; t++) result[idx[t]] = false;
        return result;
    }

    /// <summary><c>vec_max_upscale_to_u16</c> (used for pruning scores).</summary>
    public static ushort[] VecMaxUpscaleToU16(ReadOnlySpan<I32F32> vec)
    {
        var r = new ushort[vec.Length];
        if (vec.Length == 0) return r;
        var max = vec[0];
        for (int i = 1; i < vec.Length; i++) if (vec[i] > max) max = vec[i];
        var threshold = I32F32.FromInt(32768);
        if (max == I32F32.Zero)
        {
            for (int i = 0; i < vec.Length; i++) r[i] = (vec[i] * U16Max).ToU16();
        }
        else if (max > threshold)
        {
            var scale = U16Max / max;
            for (int i = 0; i < vec.Length; i++) r[i] = (vec[i] * scale).Round().ToU16();
        }
        else
        {
            for (int i = 0; i < vec.Length; i++) r[i] = (vec[i] * U16Max / max).Round().ToU16();
        }
        return r;
    }

    /// <summary>
    /// <c>weighted_median</c>: mid-pivot stake-weighted median over the (score, stake) pairs in
    /// <paramref name="scoreA"/>/<paramref name="stakeA"/>[0..count), in partition order. Written iteratively (the Rust
    /// recursion only ever descends one branch) on contiguous pairs; lower and upper partitions keep their input
    /// order as the Rust <c>Vec::push</c> does. The B arrays are scratch of the same length; A is overwritten.
    /// </summary>
    public static I32F32 WeightedMedian(
        long[] scoreA, long[] stakeA, long[] scoreB, long[] stakeB, int count,
        I32F32 minority, I32F32 partitionLo, I32F32 partitionHi)
    {
        long[] curScore = scoreA, curStake = stakeA, nextScore = scoreB, nextStake = stakeB;
        int off = 0, n = count, cap = scoreB.Length;
        long min = minority.Bits, lo = partitionLo.Bits, hi = partitionHi.Bits;
        while (true)
        {
            if (n == 0) return I32F32.Zero;
            if (n == 1) return I32F32.FromBits(curScore[off]);
            long pivot = curScore[off + n / 2];
            long loStake = 0, hiStake = 0;
            int lower = 0, upper = 0;
            for (int t = off, end = off + n; t < end; t++)
            {
                long s = curScore[t];
                if (s == pivot) continue;
                if (s < pivot)
                {
                    loStake = unchecked(loStake + curStake[t]);
                    nextScore[lower] = s; nextStake[lower] = curStake[t]; lower++;
                }
                else
                {
                    hiStake = unchecked(hiStake + curStake[t]);
                    upper++;
                    nextScore[cap - upper] = s; nextStake[cap - upper] = curStake[t];
                }
            }
            long loEdge = unchecked(lo + loStake);
            long hiEdge = unchecked(hi - hiStake);
            if (loEdge <= min && min < hiEdge) return I32F32.FromBits(pivot);
            if (min < loEdge && lower > 0)
            {
                hi = loEdge;
                off = 0; n = lower;
            }
            else if (hiEdge <= min && upper > 0)
            {
                lo = hiEdge;
                off = cap - upper; n = upper;
                Array.Reverse(nextScore, off, n);
                Array.Reverse(nextStake, off, n);
            }
            else
            {
                return I32F32.FromBits(pivot);
            }
            (curScore, nextScore) = (nextScore, curScore);
            (curStake, nextStake) = (nextStake, curStake);
        }
    }
}
