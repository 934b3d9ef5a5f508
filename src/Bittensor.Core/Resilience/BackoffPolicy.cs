namespace Bittensor.Core.Resilience;

/// <summary>How a delay is spread around its ceiling.</summary>
public enum BackoffJitter
{
    /// <summary>Uniform in [ceiling·(1 − f), ceiling·(1 + f)] with f the random factor, never above the cap (chain reconnects, model restarts).</summary>
    Proportional,

    /// <summary>Uniform in [0, ceiling] ("full jitter"; dendrite endpoints, so many callers do not retry in step).</summary>
    Full,
}

/// <summary>
/// The one capped exponential backoff of the runtime, used by the chain actor's reconnects, the dendrite's endpoint
/// actors and the model host's restarts: the ceiling of attempt n (0-based) is <c>min(max, min·2^n)</c>, and the
/// delay is drawn around it by <see cref="Jitter"/>. Pure arithmetic: the caller passes the uniform random number,
/// so tests are deterministic and no shared <see cref="Random"/> is needed.
/// </summary>
/// <param name="Min">Delay unit: the ceiling of the first attempt.</param>
/// <param name="Max">Cap of every delay (jitter included).</param>
/// <param name="RandomFactor">For <see cref="BackoffJitter.Proportional"/>: relative spread in [0, 1] (0.2 = ±20 %).</param>
/// <param name="Jitter">How the delay is drawn below/around the ceiling.</param>
public sealed record BackoffPolicy(TimeSpan Min, TimeSpan Max, double RandomFactor = 0, BackoffJitter Jitter = BackoffJitter.Proportional)
{
    /// <summary>The ceiling of attempt <paramref name="attempt"/> (0-based): <c>min(max, min·2^attempt)</c>, saturating.</summary>
    public TimeSpan Ceiling(int attempt)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(attempt);
        var ticks = Min.Ticks;
        for (var i = 0; i < Math.Min(attempt, 62); i++)
        {
            if (ticks >= Max.Ticks / 2) return Max;
            ticks *= 2;
        }
        return TimeSpan.FromTicks(Math.Min(ticks, Max.Ticks));
    }

    /// <summary>The delay before retry <paramref name="attempt"/> (0-based); <paramref name="unitRandom"/> in [0, 1) draws the jitter.</summary>
    public TimeSpan Delay(int attempt, double unitRandom)
    {
        var ceiling = Ceiling(attempt).Ticks;
        var u = Math.Clamp(unitRandom, 0, 1);
        var ticks = Jitter == BackoffJitter.Full
            ? u * ceiling
            : ceiling * (1 + (RandomFactor * ((2 * u) - 1)));
        return TimeSpan.FromTicks((long)Math.Min(ticks, Max.Ticks));
    }

    /// <summary>Throws <see cref="ArgumentException"/> when the bounds are not positive and ordered or the factor is outside [0, 1].</summary>
    public BackoffPolicy Validate()
    {
        if (Min <= TimeSpan.Zero) throw new ArgumentException($"backoff min {Min} must be positive");
        if (Max < Min) throw new ArgumentException($"backoff max {Max} must be >= min {Min}");
        if (RandomFactor is < 0 or > 1 || double.IsNaN(RandomFactor)) throw new ArgumentException($"backoff random_factor {RandomFactor} must be in [0, 1]");
        return this;
    }
}
