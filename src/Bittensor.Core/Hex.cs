namespace Bittensor.Core;

/// <summary>0x-prefixed lowercase hex, as Substrate and bittensor write it.</summary>
public static class Hex
{
    /// <summary>"0x" + lowercase hex.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes) => "0x" + Convert.ToHexStringLower(bytes);

    /// <summary>Decodes hex with or without "0x"; throws <see cref="FormatException"/> on bad input.</summary>
    public static byte[] Decode(string hex)
    {
        ArgumentNullException.ThrowIfNull(hex);
        var s = hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? hex.AsSpan(2) : hex.AsSpan();
        if (s.Length % 2 != 0) throw new FormatException("hex string has an odd number of digits");
        try { return Convert.FromHexString(s); }
        catch (FormatException) { throw new FormatException("not a hex string"); }
    }

    /// <summary>Like <see cref="Decode"/> but returns false instead of throwing.</summary>
    public static bool TryDecode(string? hex, out byte[] bytes)
    {
        bytes = [];
        if (hex is null) return false;
        try { bytes = Decode(hex); return true; } catch (FormatException) { return false; }
    }
}
