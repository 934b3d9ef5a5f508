using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Bittensor.Core.Scale;

/// <summary>
/// Writes SCALE (Substrate's Simple Concatenated Aggregate Little-Endian codec): fixed-width little-endian
/// integers, bool as 0/1, compact integers, length-prefixed vectors and strings, options and raw fixed arrays.
/// </summary>
public sealed class ScaleWriter
{
    private readonly ArrayBufferWriter<byte> _buffer;

    /// <summary>Creates a writer with an initial capacity in bytes.</summary>
    public ScaleWriter(int initialCapacity = 256) => _buffer = new ArrayBufferWriter<byte>(Math.Max(1, initialCapacity));

    /// <summary>Bytes written so far.</summary>
    public int Length => _buffer.WrittenCount;

    /// <summary>The bytes written so far (valid until the next write).</summary>
    public ReadOnlySpan<byte> WrittenSpan => _buffer.WrittenSpan;

    /// <summary>A copy of the bytes written so far.</summary>
    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    /// <summary>Writes one byte.</summary>
    public ScaleWriter U8(byte value)
    {
        _buffer.GetSpan(1)[0] = value;
        _buffer.Advance(1);
        return this;
    }

    /// <summary>Writes a bool as 0x00 / 0x01.</summary>
    public ScaleWriter Bool(bool value) => U8(value ? (byte)1 : (byte)0);

    /// <summary>Writes a little-endian u16.</summary>
    public ScaleWriter U16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.GetSpan(2), value);
        _buffer.Advance(2);
        return this;
    }

    /// <summary>Writes a little-endian u32.</summary>
    public ScaleWriter U32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
        return this;
    }

    /// <summary>Writes a little-endian u64.</summary>
    public ScaleWriter U64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
        return this;
    }

    /// <summary>Writes a little-endian u128.</summary>
    public ScaleWriter U128(UInt128 value)
    {
        var span = _buffer.GetSpan(16);
        BinaryPrimitives.WriteUInt64LittleEndian(span, (ulong)value);
        BinaryPrimitives.WriteUInt64LittleEndian(span[8..], (ulong)(value >> 64));
        _buffer.Advance(16);
        return this;
    }

    /// <summary>Writes raw bytes with no length prefix (fixed arrays such as AccountId32 or H256).</summary>
    public ScaleWriter Raw(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_buffer.GetSpan(bytes.Length));
        _buffer.Advance(bytes.Length);
        return this;
    }

    /// <summary>Writes a compact-encoded unsigned integer (single-byte, two-byte, four-byte or big-integer mode).</summary>
    public ScaleWriter Compact(ulong value)
    {
        if (value < 1UL << 6) return U8((byte)(value << 2));
        if (value < 1UL << 14) return U16((ushort)((value << 2) | 1));
        if (value < 1UL << 30) return U32((uint)((value << 2) | 2));
        return CompactBig(value);
    }

    /// <summary>Writes a compact-encoded u128.</summary>
    public ScaleWriter Compact(UInt128 value) => value <= ulong.MaxValue ? Compact((ulong)value) : CompactBig(value);

    /// <summary>Writes a compact-encoded non-negative big integer (up to 2^536 − 1, the format's limit).</summary>
    public ScaleWriter Compact(BigInteger value)
    {
        if (value.Sign < 0) throw new ArgumentOutOfRangeException(nameof(value), "compact integers are unsigned");
        if (value <= ulong.MaxValue) return Compact((ulong)value);
        var bytes = value.ToByteArray(isUnsigned: true, isBigEndian: false);
        if (bytes.Length > 67) throw new ArgumentOutOfRangeException(nameof(value), "compact integers hold at most 67 bytes");
        U8((byte)(((bytes.Length - 4) << 2) | 3));
        return Raw(bytes);
    }

    private ScaleWriter CompactBig(UInt128 value)
    {
        Span<byte> tmp = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(tmp, (ulong)value);
        BinaryPrimitives.WriteUInt64LittleEndian(tmp[8..], (ulong)(value >> 64));
        var len = 16;
        while (len > 4 && tmp[len - 1] == 0) len--;
        U8((byte)(((len - 4) << 2) | 3));
        return Raw(tmp[..len]);
    }

    /// <summary>Writes a byte vector: compact length then the bytes.</summary>
    public ScaleWriter Bytes(ReadOnlySpan<byte> bytes) => Compact((ulong)bytes.Length).Raw(bytes);

    /// <summary>Writes a UTF-8 string: compact byte length then the bytes.</summary>
    public ScaleWriter String(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var count = Encoding.UTF8.GetByteCount(value);
        Compact((ulong)count);
        Encoding.UTF8.GetBytes(value, _buffer.GetSpan(count));
        _buffer.Advance(count);
        return this;
    }

    /// <summary>Writes a vector: compact element count then each element with <paramref name="write"/>.</summary>
    public ScaleWriter Vec<T>(IReadOnlyCollection<T> items, Action<ScaleWriter, T> write)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(write);
        Compact((ulong)items.Count);
        foreach (var item in items) write(this, item);
        return this;
    }

    /// <summary>Writes a Vec&lt;u16&gt;.</summary>
    public ScaleWriter VecU16(ReadOnlySpan<ushort> items)
    {
        Compact((ulong)items.Length);
        foreach (var item in items) U16(item);
        return this;
    }

    /// <summary>Writes an Option: 0x00 for none, 0x01 then the value.</summary>
    public ScaleWriter Option<T>(T? value, Action<ScaleWriter, T> write) where T : class
    {
        ArgumentNullException.ThrowIfNull(write);
        if (value is null) return U8(0);
        U8(1);
        write(this, value);
        return this;
    }

    /// <summary>Writes an Option of a value type: 0x00 for none, 0x01 then the value.</summary>
    public ScaleWriter OptionValue<T>(T? value, Action<ScaleWriter, T> write) where T : struct
    {
        ArgumentNullException.ThrowIfNull(write);
        if (value is not { } v) return U8(0);
        U8(1);
        write(this, v);
        return this;
    }
}
