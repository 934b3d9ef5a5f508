using System.Buffers.Binary;
using Bittensor.Core.Crypto;
using Bittensor.Core.Scale;

namespace Bittensor.Core.Domain;

/// <summary>
/// A 32-byte Substrate AccountId32 (an sr25519 public key for bittensor hotkeys and coldkeys). Immutable value
/// type with cheap equality; <see cref="ToString"/> gives the SS58 address (prefix 42).
/// </summary>
public readonly struct AccountId : IEquatable<AccountId>, IComparable<AccountId>
{
    /// <summary>Size of an AccountId32 in bytes.</summary>
    public const int Size = 32;

    private readonly ulong _a, _b, _c, _d;

    /// <summary>Wraps a 32-byte public key; throws <see cref="ArgumentException"/> for any other length.</summary>
    public AccountId(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size) throw new ArgumentException($"an AccountId32 is {Size} bytes, got {bytes.Length}", nameof(bytes));
        _a = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        _b = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        _c = BinaryPrimitives.ReadUInt64BigEndian(bytes[16..]);
        _d = BinaryPrimitives.ReadUInt64BigEndian(bytes[24..]);
    }

    /// <summary>Parses an SS58 address or a 0x-prefixed 64-digit hex public key; throws <see cref="FormatException"/>.</summary>
    public static AccountId Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            var bytes = Hex.Decode(text);
            if (bytes.Length != Size) throw new FormatException($"a hex account id has {Size} bytes, got {bytes.Length}");
            return new AccountId(bytes);
        }
        return new AccountId(Ss58.Decode(text));
    }

    /// <summary>Copies the 32 bytes into <paramref name="destination"/>.</summary>
    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _a);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], _c);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], _d);
    }

    /// <summary>A new array holding the 32 bytes.</summary>
    public byte[] ToArray()
    {
        var a = new byte[Size];
        CopyTo(a);
        return a;
    }

    /// <summary>0x-prefixed lowercase hex of the public key.</summary>
    public string ToHex() => Hex.Encode(ToArray());

    /// <summary>SS58 address with the given network prefix (42 = bittensor).</summary>
    public string ToSs58(ushort prefix = Ss58.BittensorPrefix) => Ss58.Encode(ToArray(), prefix);

    /// <summary>The SS58 address (prefix 42).</summary>
    public override string ToString() => ToSs58();

    /// <summary>Writes the raw 32 bytes (SCALE AccountId32 has no length prefix).</summary>
    public void Encode(ScaleWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        Span<byte> tmp = stackalloc byte[Size];
        CopyTo(tmp);
        writer.Raw(tmp);
    }

    /// <summary>Reads 32 raw bytes.</summary>
    public static AccountId Decode(ref ScaleReader reader) => new(reader.Raw(Size));

    /// <inheritdoc />
    public bool Equals(AccountId other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is AccountId other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_a, _b, _c, _d);

    /// <summary>Orders by the bytes, big-endian (byte 0 most significant).</summary>
    public int CompareTo(AccountId other)
    {
        var c = _a.CompareTo(other._a);
        if (c != 0) return c;
        c = _b.CompareTo(other._b);
        if (c != 0) return c;
        c = _c.CompareTo(other._c);
        return c != 0 ? c : _d.CompareTo(other._d);
    }

    /// <summary>Equality by bytes.</summary>
    public static bool operator ==(AccountId left, AccountId right) => left.Equals(right);

    /// <summary>Inequality by bytes.</summary>
    public static bool operator !=(AccountId left, AccountId right) => !left.Equals(right);

    /// <summary>Byte order comparison.</summary>
    public static bool operator <(AccountId left, AccountId right) => left.CompareTo(right) < 0;

    /// <summary>Byte order comparison.</summary>
    public static bool operator >(AccountId left, AccountId right) => left.CompareTo(right) > 0;

    /// <summary>Byte order comparison.</summary>
    public static bool operator <=(AccountId left, AccountId right) => left.CompareTo(right) <= 0;

    /// <summary>Byte order comparison.</summary>
    public static bool operator >=(AccountId left, AccountId right) => left.CompareTo(right) >= 0;
}
