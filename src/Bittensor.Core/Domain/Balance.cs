using System.Globalization;

namespace Bittensor.Core.Domain;

/// <summary>
/// An amount of TAO held as u64 rao (1 TAO = 10^9 rao), as subtensor stores balances and stake.
/// Formats as <c>τ1.000000000</c>. Arithmetic is checked: overflow or a negative result throws.
/// </summary>
public readonly record struct Balance(ulong Rao) : IComparable<Balance>
{
    /// <summary>Rao per TAO.</summary>
    public const ulong RaoPerTao = 1_000_000_000UL;

    /// <summary>Zero.</summary>
    public static readonly Balance Zero = new(0);

    /// <summary>A balance of <paramref name="rao"/> rao.</summary>
    public static Balance FromRao(ulong rao) => new(rao);

    /// <summary>
    /// Whole and fractional TAO to rao; more than 9 decimals, negative values or more than u64 rao are rejected
    /// with <see cref="ArgumentOutOfRangeException"/>.
    /// </summary>
    public static Balance FromTao(decimal tao)
    {
        if (tao < 0) throw new ArgumentOutOfRangeException(nameof(tao), "a balance cannot be negative");
        var rao = tao * RaoPerTao;
        if (rao != decimal.Truncate(rao)) throw new ArgumentOutOfRangeException(nameof(tao), "TAO has at most 9 decimals");
        if (rao > ulong.MaxValue) throw new ArgumentOutOfRangeException(nameof(tao), "amount exceeds u64 rao");
        return new Balance((ulong)rao);
    }

    /// <summary>
    /// Parses "1.5", "τ1.5" or "1.5 TAO" (invariant culture) into a balance; throws <see cref="FormatException"/>.
    /// </summary>
    public static Balance Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        if (t.StartsWith('τ')) t = t[1..];
        if (t.EndsWith("TAO", StringComparison.OrdinalIgnoreCase)) t = t[..^3].TrimEnd();
        if (!decimal.TryParse(t, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var tao))
            throw new FormatException($"'{text}' is not an amount of TAO");
        try { return FromTao(tao); }
        catch (ArgumentOutOfRangeException e) { throw new FormatException($"'{text}': {e.Message.Split(" (Parameter")[0]}"); }
    }

    /// <summary>The amount in TAO (exact: decimal holds every u64 rao value).</summary>
    public decimal Tao => (decimal)Rao / RaoPerTao;

    /// <summary><c>τ</c>, whole TAO, a point and nine decimals, e.g. <c>τ1.000000000</c>.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"τ{Rao / RaoPerTao}.{Rao % RaoPerTao:D9}");

    /// <inheritdoc />
    public int CompareTo(Balance other) => Rao.CompareTo(other.Rao);

    /// <summary>Checked addition.</summary>
    public static Balance operator +(Balance a, Balance b) => new(checked(a.Rao + b.Rao));

    /// <summary>Checked subtraction (a negative result throws <see cref="OverflowException"/>).</summary>
    public static Balance operator -(Balance a, Balance b) => new(checked(a.Rao - b.Rao));

    /// <summary>Ordering.</summary>
    public static bool operator <(Balance a, Balance b) => a.Rao < b.Rao;

    /// <summary>Ordering.</summary>
    public static bool operator >(Balance a, Balance b) => a.Rao > b.Rao;

    /// <summary>Ordering.</summary>
    public static bool operator <=(Balance a, Balance b) => a.Rao <= b.Rao;

    /// <summary>Ordering.</summary>
    public static bool operator >=(Balance a, Balance b) => a.Rao >= b.Rao;
}
