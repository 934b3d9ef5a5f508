using Bittensor.Core.Weights;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Bittensor.Core.Tests.Weights;

public sealed class WeightUtilsTests
{
    [Fact]
    public void Emit_max_upscales_to_u16_rounds_half_to_even_and_drops_zeros()
    {
        var (uids, values) = WeightUtils.ConvertWeightsAndUidsForEmit([0, 1, 2, 3], [0.5, 0.25, 0.0, 1e-9]);
        Assert.Equal(new ushort[] { 0, 1 }, uids);
        // 0.5 / 0.5 → 65535; 0.25 / 0.5 · 65535 = 32767.5 → 32768 (half to even, like Python's round).
        Assert.Equal(new ushort[] { 65535, 32768 }, values);
    }

    [Fact]
    public void Emit_of_all_zero_weights_is_empty()
    {
        var (uids, values) = WeightUtils.ConvertWeightsAndUidsForEmit([0, 1], [0.0, 0.0]);
        Assert.Empty(uids);
        Assert.Empty(values);
    }

    [Fact]
    public void Emit_rejects_negative_weights_mismatched_lengths_and_out_of_range_uids()
    {
        Assert.Throws<ArgumentException>(() => WeightUtils.ConvertWeightsAndUidsForEmit([0, 1], [0.5, -0.1]));
        Assert.Throws<ArgumentException>(() => WeightUtils.ConvertWeightsAndUidsForEmit([0, 1], [0.5]));
        Assert.Throws<ArgumentException>(() => WeightUtils.ConvertWeightsAndUidsForEmit([70_000], [1.0]));
        Assert.Throws<ArgumentException>(() => WeightUtils.ConvertWeightsAndUidsForEmit([0], [double.NaN]));
    }

    [Fact]
    public void Normalize_max_weight_leaves_weights_under_the_limit_proportional()
    {
        var y = WeightUtils.NormalizeMaxWeight([1, 2, 3, 4], limit: 0.5);
        Assert.Equal([0.1, 0.2, 0.3, 0.4], y, (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void Normalize_max_weight_clips_a_dominant_weight_to_the_limit()
    {
        double[] x = [100, 1, 1, 1, 1, 1, 1, 1, 1, 1];
        var y = WeightUtils.NormalizeMaxWeight(x, limit: 0.2);
        Assert.Equal(1.0, y.Sum(), 9);
        Assert.InRange(y[0], 0.199, 0.2);
        // The small entries share the rest equally.
        Assert.All(y.Skip(1), v => Assert.Equal(y[1], v, 12));
        Assert.Equal((1 - y[0]) / 9, y[1], 9);
    }

    [Fact]
    public void Normalize_max_weight_is_uniform_when_the_limit_cannot_be_met_or_all_are_zero()
    {
        Assert.Equal([0.25, 0.25, 0.25, 0.25], WeightUtils.NormalizeMaxWeight([9, 1, 0, 0], limit: 0.2));
        Assert.Equal([0.5, 0.5], WeightUtils.NormalizeMaxWeight([0, 0], limit: 0.9));
    }

    [Property(MaxTest = 200)]
    public Property Normalized_weights_sum_to_one_and_respect_the_limit(NonEmptyArray<NonNegativeInt> raw, PositiveInt limitPercent)
    {
        var x = raw.Get.Select(v => (double)v.Get).ToArray();
        var limit = Math.Min(limitPercent.Get, 100) / 100.0;
        var y = WeightUtils.NormalizeMaxWeight(x, limit);
        var limitReachable = x.Length * limit > 1 && x.Sum() > 0;
        return (Math.Abs(y.Sum() - 1) < 1e-9
                && (!limitReachable || y.Max() <= limit + 1e-6)
                && y.All(v => v >= 0)).ToProperty();
    }

    [Fact]
    public void Process_gives_uniform_weights_when_nothing_is_scored()
    {
        var (uids, w) = WeightUtils.ProcessWeightsForNetuid([0, 1, 2], [0, 0, 0], n: 3, minAllowedWeights: 1, maxWeightLimit: 65535);
        Assert.Equal([0L, 1, 2], uids);
        Assert.All(w, v => Assert.Equal(1 / 3.0, v, 12));
    }

    [Fact]
    public void Process_pads_every_uid_when_fewer_than_min_allowed_weights_are_non_zero()
    {
        var (uids, w) = WeightUtils.ProcessWeightsForNetuid([2], [1.0], n: 4, minAllowedWeights: 2, maxWeightLimit: 65535);
        Assert.Equal([0L, 1, 2, 3], uids);
        Assert.Equal(1.0, w.Sum(), 9);
        Assert.True(w[2] > 0.99);
        Assert.All(new[] { w[0], w[1], w[3] }, v => Assert.True(v > 0));
    }

    [Fact]
    public void Process_drops_zero_weights_and_applies_the_max_weight_limit()
    {
        // Limit 0.5 (32767/65535 ≈ 0.49999): three weights 8:1:1 become ≈ 0.5, 0.25, 0.25.
        var (uids, w) = WeightUtils.ProcessWeightsForNetuid([0, 1, 2, 3], [8, 0, 1, 1], n: 4, minAllowedWeights: 1, maxWeightLimit: 32767);
        Assert.Equal([0L, 2, 3], uids);
        Assert.Equal(1.0, w.Sum(), 9);
        Assert.True(w[0] <= 32767 / 65535.0 + 1e-9);
        Assert.Equal(w[1], w[2], 12);
        var (emitUids, values) = WeightUtils.ConvertWeightsAndUidsForEmit(uids, w);
        Assert.Equal(new ushort[] { 0, 2, 3 }, emitUids);
        Assert.True(WeightUtils.IsMaxWeightLimited(values, 32767));
    }

    [Fact]
    public void Process_rejects_uids_outside_the_subnet()
    {
        Assert.Throws<ArgumentException>(() => WeightUtils.ProcessWeightsForNetuid([5], [1.0], n: 4, minAllowedWeights: 1, maxWeightLimit: 65535));
    }

    [Fact]
    public void The_chain_max_weight_check_compares_the_largest_share_with_the_limit()
    {
        Assert.True(WeightUtils.IsMaxWeightLimited([65535], 65535));
        Assert.False(WeightUtils.IsMaxWeightLimited([65535, 1], 32767));
        Assert.True(WeightUtils.IsMaxWeightLimited([65535, 65535], 32768));
        Assert.False(WeightUtils.IsMaxWeightLimited([65535, 65535], 32767));
    }

    [Fact]
    public void Quantile_interpolates_linearly_like_numpy()
    {
        Assert.Equal(2.5, WeightUtils.Quantile([1, 2, 3, 4], 0.5), 12);
        Assert.Equal(1.0, WeightUtils.Quantile([4, 3, 2, 1], 0), 12);
    }
}
