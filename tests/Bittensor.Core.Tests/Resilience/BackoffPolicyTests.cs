using Bittensor.Core.Resilience;
using FsCheck;
using FsCheck.Fluent;

namespace Bittensor.Core.Tests.Resilience;

/// <summary>The one backoff type: chain reconnects (proportional jitter), dendrite endpoints (full jitter), model restarts.</summary>
public sealed class BackoffPolicyTests
{
    private static readonly TimeSpan Min = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(10);
    private static readonly BackoffPolicy Proportional = new(Min, Max, 0.2);
    private static readonly BackoffPolicy Full = new(Min, Max, Jitter: BackoffJitter.Full);

    [Fact]
    public void The_ceiling_doubles_with_each_attempt_and_stops_at_the_cap()
    {
        var delays = Enumerable.Range(0, 10).Select(a => Proportional.Delay(a, 0.5).TotalMilliseconds).ToArray();
        Assert.Equal([100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000], delays);
        Assert.Equal(TimeSpan.FromMilliseconds(6400), Full.Ceiling(6));
        Assert.Equal(Max, Full.Ceiling(7));
        Assert.Equal(Max, Full.Ceiling(int.MaxValue));
    }

    [Fact]
    public void Proportional_jitter_stays_within_the_random_factor_and_never_exceeds_the_cap()
    {
        Assert.Equal(80, Proportional.Delay(0, 0).TotalMilliseconds, 6);
        Assert.Equal(120, Proportional.Delay(0, 1).TotalMilliseconds, 6);
        Assert.Equal(10_000, Proportional.Delay(20, 1).TotalMilliseconds, 6);
        Assert.Equal(10_000, Proportional.Delay(int.MaxValue, 0.5).TotalMilliseconds, 6);
    }

    [Fact]
    public void Full_jitter_draws_the_delay_as_a_fraction_of_the_ceiling()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(25), Full.Delay(0, 0.25));
        Assert.Equal(TimeSpan.FromMilliseconds(50), Full.Delay(1, 0.25));
        Assert.Equal(TimeSpan.FromMilliseconds(100), Full.Delay(2, 0.25));
    }

    [Fact]
    public void Invalid_bounds_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => new BackoffPolicy(TimeSpan.Zero, TimeSpan.FromSeconds(1)).Validate());
        Assert.Throws<ArgumentException>(() => new BackoffPolicy(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1)).Validate());
        Assert.Throws<ArgumentException>(() => new BackoffPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), 1.5).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => Full.Delay(-1, 0.5));
    }

    [Fact]
    public void Delays_always_lie_between_zero_and_the_capped_ceiling() =>
        Prop.ForAll(Gen.Choose(0, 200).ToArbitrary(), Gen.Choose(0, 1000).ToArbitrary(), (attempt, permille) =>
        {
            var ceiling = TimeSpan.FromTicks(Math.Min(Max.Ticks, Min.Ticks * (long)Math.Pow(2, Math.Min(attempt, 40))));
            var full = Full.Delay(attempt, permille / 1000.0);
            var proportional = Proportional.Delay(attempt, permille / 1000.0);
            return full >= TimeSpan.Zero && full <= ceiling && Full.Ceiling(attempt) == ceiling
                && proportional >= ceiling * 0.8 - TimeSpan.FromTicks(1) && proportional <= Max;
        }).QuickCheckThrowOnFailure();
}
