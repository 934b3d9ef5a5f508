using Bittensor.Chain.Yuma;

namespace Bittensor.Chain.Tests.Yuma;

/// <summary>Rounding rules of substrate_fixed 0.5.9 as the epoch relies on them.</summary>
public sealed class FixedPointTests
{
    private static I32F32 F(double x) => I32F32.FromBits((long)Math.Round(x * 4294967296.0));

    [Fact]
    public void Multiplication_rounds_toward_negative_infinity()
    {
        // 2^-32 · 0.5 = 2^-33 → floor → 0; −2^-32 · 0.5 → floor → −2^-32.
        Assert.Equal(0, (I32F32.FromBits(1) * F(0.5)).Bits);
        Assert.Equal(-1, (I32F32.FromBits(-1) * F(0.5)).Bits);
        Assert.Equal(F(0.375).Bits, (F(0.75) * F(0.5)).Bits);
    }

    [Fact]
    public void Division_truncates_toward_zero_and_rejects_zero()
    {
        // 1/3 = 0x0.55555555… → 1431655765 bits; −1/3 → −1431655765 (toward zero, not floor).
        Assert.Equal(1431655765, (I32F32.One / I32F32.FromInt(3)).Bits);
        Assert.Equal(-1431655765, (I32F32.FromBits(-(1L << 32)) / I32F32.FromInt(3)).Bits);
        Assert.Throws<DivideByZeroException>(() => I32F32.One / I32F32.Zero);
    }

    [Fact]
    public void Proportions_convert_to_u16_by_flooring_and_back_by_division()
    {
        Assert.Equal(65535, YumaMath.FixedProportionToU16(I32F32.One));
        Assert.Equal(32767, YumaMath.FixedProportionToU16(F(0.5)));
        Assert.Equal(49151, YumaMath.FixedProportionToU16(F(0.75)));
        Assert.Equal(I32F32.One, YumaMath.U16ProportionToFixed(65535));
        // kappa 32767/65535 = 0.49999237…, truncated to 32 fraction bits.
        Assert.Equal((32767L << 32) / 65535, YumaMath.U16ProportionToFixed(32767).Bits);
    }

    [Fact]
    public void Round_sends_ties_away_from_zero()
    {
        Assert.Equal(F(3).Bits, F(2.5).Round().Bits);
        Assert.Equal(F(-3).Bits, F(-2.5).Round().Bits);
        Assert.Equal(F(2).Bits, F(2.4999).Round().Bits);
    }

    [Fact]
    public void Bonds_alpha_for_the_default_moving_average_is_one_minus_truncated_point_nine()
    {
        // 0.9 · 2^32 = 3865470566.4 → 3865470566; α = 2^32 − that = 429496730.
        Assert.Equal(429496730, YumaEpoch.BondsAlpha(900_000).Bits);
        Assert.Equal(I32F32.One, YumaEpoch.BondsAlpha(0));
    }

    [Fact]
    public void Max_upscale_to_u16_matches_the_runtime_unit_test_vectors()
    {
        // From math.rs test_vec_max_upscale_to_u16 at da21fb6a.
        Assert.Equal(new ushort[] { 0, 65535 }, YumaMath.VecMaxUpscaleToU16([I32F32.Zero, I32F32.One]));
        Assert.Equal(new ushort[] { 0, 0 }, YumaMath.VecMaxUpscaleToU16([I32F32.Zero, I32F32.Zero]));
        Assert.Equal(new ushort[] { 0, 1, 65535 }, YumaMath.VecMaxUpscaleToU16([I32F32.Zero, F32(0.000016f), I32F32.One]));
        // This vector distinguishes rounding from truncation (0.000006 → 1, 0.001 → 164).
        float[] v = [0.000001f, 0.000006f, 0.000007f, 0.0001f, 0.001f, 0.01f, 0.1f, 0.2f, 0.3f, 0.4f];
        Assert.Equal(new ushort[] { 0, 1, 1, 16, 164, 1638, 16384, 32768, 49151, 65535 },
            YumaMath.VecMaxUpscaleToU16([.. v.Select(F32)]));
        Assert.Equal(new ushort[] { 0, 1, 2, 3, 4, 65535 },
            YumaMath.VecMaxUpscaleToU16([.. new[] { 0f, 0.5f, 1f, 1.5f, 2f, 32768f }.Select(F32)]));
        Assert.Equal(new ushort[] { 65535 }, YumaMath.VecMaxUpscaleToU16([I32F32.FromInt(32769)]));
    }

    /// <summary><c>I32F32::from_num(f32)</c>: nearest representable value, ties to even.</summary>
    private static I32F32 F32(float x) => I32F32.FromBits((long)Math.Round((double)x * 4294967296.0, MidpointRounding.ToEven));

    [Fact]
    public void Top_k_breaks_ties_in_favour_of_higher_uids_like_a_stable_ascending_sort()
    {
        var v = new[] { F(0.5), F(0.5), F(0.25), F(0.5) };
        Assert.Equal(new[] { false, true, false, true }, YumaMath.IsTopK(v, 2));
        Assert.Equal(new[] { true, true, true, true }, YumaMath.IsTopK(v, 5));
    }

    [Fact]
    public void Weighted_median_picks_the_value_where_the_minority_quantile_falls()
    {
        // stakes .25 each, scores [.1, .4, .2, .3]; minority .5 → the lower half holds .1, .2 (stake .5 ≤ .5), so
        // the median is .3 (.5 ≤ .5 < 1 − .25).
        long[] stake = [F(0.25).Bits, F(0.25).Bits, F(0.25).Bits, F(0.25).Bits];
        long[] score = [F(0.1).Bits, F(0.4).Bits, F(0.2).Bits, F(0.3).Bits];
        var m = YumaMath.WeightedMedian(score, stake, new long[4], new long[4], 4, F(0.5), I32F32.Zero, I32F32.One);
        Assert.Equal(F(0.3).Bits, m.Bits);
        // minority .8 → .4 is the only score whose lower stake (.75) ≤ .8 < 1.
        m = YumaMath.WeightedMedian([F(0.1).Bits, F(0.4).Bits, F(0.2).Bits, F(0.3).Bits], [.. stake], new long[4], new long[4], 4,
            F(0.8), I32F32.Zero, I32F32.One);
        Assert.Equal(F(0.4).Bits, m.Bits);
    }
}
