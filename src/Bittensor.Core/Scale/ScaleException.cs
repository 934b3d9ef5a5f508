namespace Bittensor.Core.Scale;

/// <summary>
/// Malformed or truncated SCALE input. <see cref="Position"/> is the byte offset at which decoding failed, so a
/// caller can report where a hostile or corrupt payload went wrong. Decoders throw nothing else.
/// </summary>
public sealed class ScaleException : Exception
{
    /// <summary>Creates the exception for a failure at byte <paramref name="position"/>.</summary>
    public ScaleException(string message, int position)
        : base($"{message} (at byte {position})") => Position = position;

    /// <summary>Byte offset in the input at which decoding failed.</summary>
    public int Position { get; }
}
