namespace Bittensor.Actors.Dendrite;

/// <summary>
/// Capped exponential backoff with full jitter: after the n-th consecutive failure the delay is drawn
/// uniformly from [0, min(max, min · 2^(n-1))]. Pure arithmetic; the random source is injected so tests
/// are deterministic. Not thread-safe (owned by one endpoint actor).
/// </summary>
public sealed class BackoffPolicy
{
    private readonly Random _random;

    /// <summary>Creates a policy with the given floor and cap.</summary>
    public BackoffPolicy(TimeSpan min, TimeSpan max, Random random)
    {
        if (min <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(min), "min must be positive");
        if (max < min) throw new ArgumentOutOfRangeException(nameof(max), "max must be at least min");
        Min = min;
        Max = max;
        _random = random ?? throw new ArgumentNullException(nameof(random));
    }

    /// <summary>Delay unit of the first failure.</summary>
    public TimeSpan Min { get; }

    /// <summary>Largest delay ever returned.</summary>
    public TimeSpan Max { get; }

    /// <summary>Consecutive failures since the last success.</summary>
    public int Failures { get; private set; }

    /// <summary>The upper bound of the delay after <paramref name="failures"/> consecutive failures (0 for none).</summary>
    public TimeSpan Ceiling(int failures)
    {
        if (failures <= 0) return TimeSpan.Zero;
        // 2^62 ticks overflows long: cap the exponent before shifting.
        var exponent = Math.Min(failures - 1, 62);
        var ticks = Min.Ticks;
        for (var i = 0; i < exponent; i++)
        {
            if (ticks >= Max.Ticks / 2) return Max;
            ticks *= 2;
        }
        return TimeSpan.FromTicks(Math.Min(ticks, Max.Ticks));
    }

    /// <summary>Records one failure and returns the (jittered) delay before the next attempt.</summary>
    public TimeSpan RecordFailure()
    {
        if (Failures < int.MaxValue) Failures++;
        var ceiling = Ceiling(Failures).Ticks;
        return TimeSpan.FromTicks((long)(_random.NextDouble() * ceiling));
    }

    /// <summary>Forgets all failures (after a success).</summary>
    public void Reset() => Failures = 0;
}
