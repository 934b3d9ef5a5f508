using Bittensor.Actors.Dendrite;
using FsCheck;
using FsCheck.Fluent;

namespace Bittensor.Actors.Tests.Dendrite;

public sealed class BackoffPolicySpec
{
    private static readonly TimeSpan Min = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(10);

    /// <summary>A random source that always draws the same fraction.</summary>
    internal sealed class FixedRandom(double fraction) : Random
    {
        public override double NextDouble() => fraction;
    }

    [Fact]
    public void The_ceiling_doubles_with_each_consecutive_failure()
    {
        var policy = new BackoffPolicy(Min, Max, new FixedRandom(0.5));

        Assert.Equal(TimeSpan.Zero, policy.Ceiling(0));
        Assert.Equal(TimeSpan.FromMilliseconds(100), policy.Ceiling(1));
        Assert.Equal(TimeSpan.FromMilliseconds(200), policy.Ceiling(2));
        Assert.Equal(TimeSpan.FromMilliseconds(400), policy.Ceiling(3));
        Assert.Equal(TimeSpan.FromMilliseconds(800), policy.Ceiling(4));
        Assert.Equal(TimeSpan.FromMilliseconds(6400), policy.Ceiling(7));
    }

    [Fact]
    public void The_ceiling_is_capped_even_after_very_many_failures()
    {
        var policy = new BackoffPolicy(Min, Max, new FixedRandom(0.5));

        Assert.Equal(Max, policy.Ceiling(8));
        Assert.Equal(Max, policy.Ceiling(64));
        Assert.Equal(Max, policy.Ceiling(int.MaxValue));
    }

    [Fact]
    public void Full_jitter_draws_the_delay_as_a_fraction_of_the_ceiling()
    {
        var policy = new BackoffPolicy(Min, Max, new FixedRandom(0.25));

        Assert.Equal(TimeSpan.FromMilliseconds(25), policy.RecordFailure());
        Assert.Equal(TimeSpan.FromMilliseconds(50), policy.RecordFailure());
        Assert.Equal(TimeSpan.FromMilliseconds(100), policy.RecordFailure());
        Assert.Equal(3, policy.Failures);
    }

    [Fact]
    public void A_success_resets_the_delay_to_the_first_step()
    {
        var policy = new BackoffPolicy(Min, Max, new FixedRandom(0.5));
        for (var i = 0; i < 5; i++) policy.RecordFailure();

        policy.Reset();

        Assert.Equal(0, policy.Failures);
        Assert.Equal(TimeSpan.FromMilliseconds(50), policy.RecordFailure());
    }

    [Fact]
    public void Delays_always_lie_between_zero_and_the_capped_ceiling() =>
        Prop.ForAll(Gen.Choose(1, 200).ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (failures, seed) =>
        {
            var policy = new BackoffPolicy(Min, Max, new Random(seed));
            var ok = true;
            for (var i = 1; i <= failures; i++)
            {
                var delay = policy.RecordFailure();
                var ceiling = TimeSpan.FromTicks(Math.Min(Max.Ticks, Min.Ticks * (long)Math.Pow(2, Math.Min(i - 1, 40))));
                ok &= delay >= TimeSpan.Zero && delay <= ceiling && policy.Ceiling(i) == ceiling;
            }
            return ok;
        }).QuickCheckThrowOnFailure();
}
