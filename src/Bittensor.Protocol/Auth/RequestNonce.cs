using System.Globalization;

namespace Bittensor.Protocol;

/// <summary>
/// The 2021 nonce: the sender's wall-clock time as <c>MMddyyyyHHmmss</c> followed by 6 digits of
/// microseconds: 14 + 6 = 20 digits, what Python's <c>datetime.now().strftime('%m%d%Y%H%M%S%f')</c> gives
/// (PROTOCOL.md's "22 digits" miscounts). It carries no time zone; see
/// <see cref="RequestVerifierOptions.AcceptAnyUtcOffset"/>.
/// </summary>
public static class RequestNonce
{
    /// <summary>Characters in a nonce.</summary>
    public const int Length = 20;

    /// <summary>Formats a wall-clock time (its <see cref="DateTime.Kind"/> is ignored) to microsecond precision.</summary>
    public static string Format(DateTime wallClock)
    {
        var micros = (int)(wallClock.Ticks % TimeSpan.TicksPerSecond / 10);
        return string.Create(Length, (wallClock, micros), static (span, s) =>
        {
            s.wallClock.TryFormat(span, out _, "MMddyyyyHHmmss", CultureInfo.InvariantCulture);
            s.micros.TryFormat(span[14..], out _, "D6", CultureInfo.InvariantCulture);
        });
    }

    /// <summary>Parses a nonce into a wall-clock time (kind Unspecified); false for anything but 20 digits of a valid date.</summary>
    public static bool TryParse(ReadOnlySpan<char> nonce, out DateTime wallClock)
    {
        wallClock = default;
        if (nonce.Length != Length) return false;
        foreach (var c in nonce)
            if (c is < '0' or > '9') return false;
        if (!DateTime.TryParseExact(nonce[..14], "MMddyyyyHHmmss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var seconds))
            return false;
        var micros = int.Parse(nonce[14..], NumberStyles.None, CultureInfo.InvariantCulture);
        wallClock = seconds.AddTicks(micros * 10L);
        return true;
    }
}
