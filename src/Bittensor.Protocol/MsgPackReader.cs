using System.Buffers.Binary;

namespace Bittensor.Protocol;

internal enum IntStatus
{
    Ok,
    NotAnInt,
    OutOfRange,
}

/// <summary>
/// The few msgpack reads the tensor layout needs. Every read checks the remaining length first and
/// returns false instead of throwing; nothing is allocated.
/// </summary>
internal ref struct MsgPackReader(ReadOnlySpan<byte> buffer)
{
    private readonly ReadOnlySpan<byte> _buffer = buffer;
    private int _pos;

    public readonly bool AtEnd => _pos == _buffer.Length;

    public bool TryReadMapHeader(out uint count)
    {
        count = 0;
        if (_pos >= _buffer.Length) return false;
        var b = _buffer[_pos];
        if ((b & 0xf0) == 0x80) { count = (uint)(b & 0x0f); _pos++; return true; }
        if (b == 0xde) return TryReadLength(2, out count);
        if (b == 0xdf) return TryReadLength(4, out count);
        return false;
    }

    public bool TryReadArrayHeader(out uint count)
    {
        count = 0;
        if (_pos >= _buffer.Length) return false;
        var b = _buffer[_pos];
        if ((b & 0xf0) == 0x90) { count = (uint)(b & 0x0f); _pos++; return true; }
        if (b == 0xdc) return TryReadLength(2, out count);
        if (b == 0xdd) return TryReadLength(4, out count);
        return false;
    }

    public bool TryReadBool(out bool value)
    {
        value = false;
        if (_pos >= _buffer.Length) return false;
        switch (_buffer[_pos])
        {
            case 0xc2: _pos++; return true;
            case 0xc3: value = true; _pos++; return true;
            default: return false;
        }
    }

    /// <summary>bin8/16/32 only.</summary>
    public bool TryReadBin(out int start, out int length)
    {
        start = 0;
        length = 0;
        if (_pos >= _buffer.Length) return false;
        var header = _buffer[_pos] switch { 0xc4 => 1, 0xc5 => 2, 0xc6 => 4, _ => 0 };
        return header != 0 && TryReadPayload(header, out start, out length);
    }

    /// <summary>bin8/16/32, fixstr or str8/16/32.</summary>
    public bool TryReadBytesOrString(out int start, out int length)
    {
        start = 0;
        length = 0;
        if (_pos >= _buffer.Length) return false;
        var b = _buffer[_pos];
        if ((b & 0xe0) == 0xa0)
        {
            length = b & 0x1f;
            if (_buffer.Length - _pos - 1 < length) return false;
            start = _pos + 1;
            _pos = start + length;
            return true;
        }
        var header = b switch { 0xc4 or 0xd9 => 1, 0xc5 or 0xda => 2, 0xc6 or 0xdb => 4, _ => 0 };
        return header != 0 && TryReadPayload(header, out start, out length);
    }

    public IntStatus TryReadInt64(out long value)
    {
        value = 0;
        if (_pos >= _buffer.Length) return IntStatus.NotAnInt;
        var b = _buffer[_pos];
        if (b <= 0x7f) { value = b; _pos++; return IntStatus.Ok; }
        if (b >= 0xe0) { value = (sbyte)b; _pos++; return IntStatus.Ok; }
        var size = b switch { 0xcc or 0xd0 => 1, 0xcd or 0xd1 => 2, 0xce or 0xd2 => 4, 0xcf or 0xd3 => 8, _ => 0 };
        if (size == 0) return IntStatus.NotAnInt;
        if (_buffer.Length - _pos - 1 < size) return IntStatus.NotAnInt;
        var s = _buffer.Slice(_pos + 1, size);
        _pos += 1 + size;
        switch (b)
        {
            case 0xcc: value = s[0]; break;
            case 0xcd: value = BinaryPrimitives.ReadUInt16BigEndian(s); break;
            case 0xce: value = BinaryPrimitives.ReadUInt32BigEndian(s); break;
            case 0xcf:
                var u = BinaryPrimitives.ReadUInt64BigEndian(s);
                if (u > long.MaxValue) return IntStatus.OutOfRange;
                value = (long)u;
                break;
            case 0xd0: value = (sbyte)s[0]; break;
            case 0xd1: value = BinaryPrimitives.ReadInt16BigEndian(s); break;
            case 0xd2: value = BinaryPrimitives.ReadInt32BigEndian(s); break;
            default: value = BinaryPrimitives.ReadInt64BigEndian(s); break;
        }
        return IntStatus.Ok;
    }

    private bool TryReadLength(int size, out uint value)
    {
        value = 0;
        if (_buffer.Length - _pos - 1 < size) return false;
        var s = _buffer.Slice(_pos + 1, size);
        value = size switch
        {
            1 => s[0],
            2 => BinaryPrimitives.ReadUInt16BigEndian(s),
            _ => BinaryPrimitives.ReadUInt32BigEndian(s),
        };
        _pos += 1 + size;
        return true;
    }

    private bool TryReadPayload(int headerSize, out int start, out int length)
    {
        start = 0;
        length = 0;
        var at = _pos;
        if (!TryReadLength(headerSize, out var declared)) return false;
        if (declared > (uint)(_buffer.Length - _pos)) { _pos = at; return false; }
        start = _pos;
        length = (int)declared;
        _pos += length;
        return true;
    }
}
