namespace Bittensor.Protocol.Tests;

/// <summary>
/// The per-address token bucket's refill step (issue 13): the rate stays exact, and the refill is as frequent as the
/// period allows, so an address over its rate is let through evenly rather than in one burst per second.
/// </summary>
public class ServerLimitsTests
{
    private static ServerLimits Limits(double perSecond, TimeSpan period) =>
        new(0, 0, 0, perSecond, 1000, period, ExemptLoopback: false);

    [Theory]
    [InlineData(500, 10, 5, 10.0)]        // the default: 5 calls every 10 ms, not 500 at once every second
    [InlineData(500, 1000, 500, 1000.0)]  // a 1 s period still means what it says
    [InlineData(150, 10, 1, 6.6666667)]   // 1.5 calls per period: 1 every 6.67 ms, not rounded up to 2 per 10 ms
    [InlineData(0.5, 10, 1, 2000.0)]      // below one call per period: 1 every 2 s, not 1 every 10 ms (100/s)
    [InlineData(250, 10, 2, 8.0)]
    public void The_refill_keeps_the_rate_exact_with_at_most_one_period_between_refills(double perSecond, int periodMs, int tokens, double stepMs)
    {
        var (t, step) = Limits(perSecond, TimeSpan.FromMilliseconds(periodMs)).RefillStep();

        Assert.Equal(tokens, t);
        Assert.Equal(stepMs, step.TotalMilliseconds, 3);
        Assert.Equal(perSecond, t / step.TotalSeconds, tolerance: perSecond * 1e-4); // a step is whole 100 ns ticks
    }

    [Fact]
    public void A_tiny_rate_over_a_long_period_gives_one_call_per_step_and_no_overflow()
    {
        var (t, step) = Limits(1.0 / 3600, TimeSpan.FromHours(1)).RefillStep();
        Assert.Equal(1, t);
        Assert.Equal(3600, step.TotalSeconds, 3);

        var (t2, step2) = Limits(1e-12, TimeSpan.FromMilliseconds(10)).RefillStep();
        Assert.Equal(1, t2);
        Assert.True(step2 > TimeSpan.FromDays(365), $"step {step2}");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void No_refill_step_without_a_positive_rate(double perSecond) =>
        Assert.Throws<InvalidOperationException>(() => Limits(perSecond, TimeSpan.FromMilliseconds(10)).RefillStep());
}
