namespace Bittensor.Actors.Axon;

/// <summary>Maps stakes to queue priorities (lower runs first) in O(1) without allocation.</summary>
internal static class StakePriority
{
    /// <summary>Unknown callers (and callers with no stake) go last.</summary>
    public const int Lowest = int.MaxValue;

    // Priorities are ints; stakes are TAO as double. Milli-TAO resolution up to ~2.1 million TAO, then equal.
    public static int From(double stake)
    {
        if (!(stake > 0)) return Lowest;
        var milli = stake * 1000.0;
        var scaled = milli >= int.MaxValue - 2 ? int.MaxValue - 2 : (int)milli;
        return int.MaxValue - 1 - scaled;
    }
}
