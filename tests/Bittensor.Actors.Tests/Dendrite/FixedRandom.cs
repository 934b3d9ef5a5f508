namespace Bittensor.Actors.Tests.Dendrite;

/// <summary>A random source that always draws the same fraction (deterministic backoff jitter).</summary>
internal sealed class FixedRandom(double fraction) : Random
{
    public override double NextDouble() => fraction;
}
