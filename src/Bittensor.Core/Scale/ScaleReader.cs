using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Bittensor.Core.Scale;

/// <summary>Reads one element of a SCALE vector or option.</summary>
public delegate T ScaleRead<out T>(ref ScaleReader reader);

/// <summary>
/// Bounds-checked SCALE reader over a span. Every length prefix is checked against the bytes that remain
/// before anything is allocated, so a hostile length cannot make it allocate more than the input size.
/// All failures are <see cref="ScaleException"/> carrying the byte position; nothing else is thrown.
/// </summary>
public ref struct ScaleReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _pos;

    /// <summary>Reads from <paramref name="data"/>, starting at byte 0.</summary>
    public ScaleReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _pos = 0;
    }

    /// <summary>Current byte offset.</summary>
    public readonly int Position => _pos;

    /// <summary>Bytes not yet read.</summary>
    public readonly int Remaining => _data.Length - _pos;

    /// <summary>Throws unless every byte has been consumed (trailing bytes mean a malformed payload).</summary>
    public readonly void EnsureEnd()
    {
        if (_pos != _data.Length) throw new ScaleException($"{Remaining} unexpected trailing byte(s)", _pos);
    }

    private ReadOnlySpan<byte> Take(int count, string what)
    {
        if (count < 0 || count > Remaining)
            throw new ScaleException($"truncated input: {what} needs {count} byte(s), {Remaining} left", _pos);
        var s = _data.Slice(_pos, count);
        _pos += count;
        return s;
    }

    /// <summary>Reads one byte.</summary>
    public byte U8() => Take(1, "u8")[0];

    /// <summary>Reads a bool; any byte other than 0 or 1 is an error.</summary>
    public bool Bool()
    {
        var at = _pos;
        return U8() switch
        {
            0 => false,
            1 => true,
            var b => throw new ScaleException($"invalid bool byte 0x{b:x2}", at),
        };
    }

    /// <summary>Reads a little-endian u16.</summary>
    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, "u16"));

    /// <summary>Reads a little-endian u32.</summary>
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, "u32"));

    /// <summary>Reads a little-endian u64.</summary>
    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, "u64"));

    /// <summary>Reads a little-endian u128.</summary>
    public UInt128 U128()
    {
        var s = Take(16, "u128");
        return new UInt128(BinaryPrimitives.ReadUInt64LittleEndian(s[8..]), BinaryPrimitives.ReadUInt64LittleEndian(s));
    }

    /// <summary>Reads <paramref name="count"/> raw bytes (a fixed array); the span aliases the input.</summary>
    public ReadOnlySpan<byte> Raw(int count) => Take(count, "fixed array");

    /// <summary>Reads a compact integer that must fit in 64 bits; non-canonical encodings are rejected.</summary>
    public ulong CompactU64()
    {
        var at = _pos;
        var v = CompactU128();
        if (v > ulong.MaxValue) throw new ScaleException("compact value does not fit in u64", at);
        return (ulong)v;
    }

    /// <summary>Reads a compact integer that must fit in 32 bits.</summary>
    public uint CompactU32()
    {
        var at = _pos;
        var v = CompactU64();
        if (v > uint.MaxValue) throw new ScaleException("compact value does not fit in u32", at);
        return (uint)v;
    }

    /// <summary>Reads a compact integer that must fit in 16 bits.</summary>
    public ushort CompactU16()
    {
        var at = _pos;
        var v = CompactU64();
        if (v > ushort.MaxValue) throw new ScaleException("compact value does not fit in u16", at);
        return (ushort)v;
    }

    /// <summary>Reads a compact integer that must fit in 128 bits; non-canonical encodings are rejected.</summary>
    public UInt128 CompactU128()
    {
        var at = _pos;
        var first = U8();
        switch (first & 3)
        {
            case 0:
                return (UInt128)(first >> 2);
            case 1:
            {
                _pos = at;
                var v = (ushort)(U16() >> 2);
                if (v < 1 << 6) throw new ScaleException("non-canonical compact (two-byte mode for a small value)", at);
                return v;
            }
            case 2:
            {
                _pos = at;
                var v = U32() >> 2;
                if (v < 1 << 14) throw new ScaleException("non-canonical compact (four-byte mode for a small value)", at);
                return v;
            }
            default:
            {
                var len = (first >> 2) + 4;
                if (len > 16) throw new ScaleException($"compact integer of {len} bytes does not fit in u128", at);
                var bytes = Take(len, "compact integer");
                if (bytes[len - 1] == 0) throw new ScaleException("non-canonical compact (leading zero byte)", at);
                UInt128 v = 0;
                for (var i = len - 1; i >= 0; i--) v = (v << 8) | bytes[i];
                if (v < 1UL << 30) throw new ScaleException("non-canonical compact (big-integer mode for a small value)", at);
                return v;
            }
        }
    }

    /// <summary>Reads a compact integer of any size the format allows (up to 67 bytes).</summary>
    public BigInteger CompactBig()
    {
        var at = _pos;
        var first = U8();
        if ((first & 3) != 3)
        {
            _pos = at;
            return CompactU128();
        }
        var len = (first >> 2) + 4;
        var bytes = Take(len, "compact integer");
        if (bytes[len - 1] == 0) throw new ScaleException("non-canonical compact (leading zero byte)", at);
        var v = new BigInteger(bytes, isUnsigned: true, isBigEndian: false);
        if (v < 1UL << 30) throw new ScaleException("non-canonical compact (big-integer mode for a small value)", at);
        return v;
    }

    /// <summary>
    /// Reads a compact element count and checks that <paramref name="minElementSize"/> bytes per element remain,
    /// so no caller allocates for elements that cannot be there.
    /// </summary>
    public int Length(int minElementSize = 1)
    {
        var at = _pos;
        var count = CompactU64();
        var min = Math.Max(0, minElementSize);
        if (count > int.MaxValue || (min > 0 && count > (ulong)(Remaining / min)))
            throw new ScaleException($"length {count} exceeds the {Remaining} byte(s) left", at);
        return (int)count;
    }

    /// <summary>Reads a length-prefixed byte vector of at most <paramref name="maxLength"/> bytes.</summary>
    public byte[] Bytes(int maxLength = int.MaxValue)
    {
        var at = _pos;
        var n = Length(1);
        if (n > maxLength) throw new ScaleException($"byte vector of {n} exceeds the limit {maxLength}", at);
        return Take(n, "bytes").ToArray();
    }

    /// <summary>Reads a length-prefixed UTF-8 string of at most <paramref name="maxBytes"/> bytes; invalid UTF-8 is an error.</summary>
    public string String(int maxBytes = int.MaxValue)
    {
        var at = _pos;
        var n = Length(1);
        if (n > maxBytes) throw new ScaleException($"string of {n} bytes exceeds the limit {maxBytes}", at);
        var bytes = Take(n, "string");
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (ArgumentException)
        {
            throw new ScaleException("string is not valid UTF-8", at);
        }
    }

    /// <summary>Reads a Vec&lt;u16&gt; of at most <paramref name="maxCount"/> elements.</summary>
    public ushort[] VecU16(int maxCount = int.MaxValue)
    {
        var at = _pos;
        var n = Length(2);
        if (n > maxCount) throw new ScaleException($"vector of {n} exceeds the limit {maxCount}", at);
        var result = new ushort[n];
        for (var i = 0; i < n; i++) result[i] = U16();
        return result;
    }

    /// <summary>
    /// Reads a vector whose elements take at least <paramref name="minElementSize"/> bytes each, at most
    /// <paramref name="maxCount"/> of them.
    /// </summary>
    public T[] Vec<T>(ScaleRead<T> read, int minElementSize, int maxCount = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(read);
        var at = _pos;
        var n = Length(Math.Max(1, minElementSize));
        if (n > maxCount) throw new ScaleException($"vector of {n} exceeds the limit {maxCount}", at);
        var result = new T[n];
        for (var i = 0; i < n; i++) result[i] = read(ref this);
        return result;
    }

    /// <summary>Reads an Option: 0x00 → false; 0x01 → true and the caller reads the value; anything else is an error.</summary>
    public bool OptionTag()
    {
        var at = _pos;
        return U8() switch
        {
            0 => false,
            1 => true,
            var b => throw new ScaleException($"invalid option tag 0x{b:x2}", at),
        };
    }
}
