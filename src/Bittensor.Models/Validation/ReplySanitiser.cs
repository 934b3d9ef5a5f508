namespace Bittensor.Models.Validation;

/// <summary>
/// The check every peer reply passes before it touches the validator's model. A refused reply scores 0, gets no
/// gradient step and no gradient back, and the reason is recorded per peer (the validation pipeline's metrics).
/// </summary>
public static class ReplySanitiser
{
    /// <summary>Reason for a reply whose length is not <c>batch · seq · dim</c>.</summary>
    public const string WrongShape = "wrong_shape";

    /// <summary>Reason for a reply holding NaN or ±Inf.</summary>
    public const string NonFinite = "non_finite";

    /// <summary>Reason for a reply holding a value beyond the magnitude bound.</summary>
    public const string TooLarge = "too_large";

    /// <summary>
    /// Null when <paramref name="representation"/> may be used: exactly <paramref name="expected"/> values, all finite,
    /// none larger in magnitude than <paramref name="maxMagnitude"/>; otherwise the reason it may not.
    /// </summary>
    public static string? Check(float[]? representation, int expected, double maxMagnitude)
    {
        if (representation is null || representation.Length != expected) return WrongShape;
        var bound = (float)maxMagnitude;
        foreach (var x in representation)
        {
            if (!float.IsFinite(x)) return NonFinite;
            if (Math.Abs(x) > bound) return TooLarge;
        }
        return null;
    }
}
