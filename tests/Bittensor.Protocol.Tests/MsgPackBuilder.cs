using System.Buffers.Binary;
using System.Text;

namespace Bittensor.Protocol.Tests;

/// <summary>Hand-built msgpack for hostile-input tests.</summary>
internal sealed class MsgPackBuilder
{
    private readonly List<byte> _bytes = [];

    public byte[] ToArray() => [.. _bytes];

    public MsgPackBuilder Raw(params byte[] b) { _bytes.AddRange(b); return this; }

    public MsgPackBuilder Map(int n) => n < 16 ? Raw((byte)(0x80 | n)) : Raw(0xde, (byte)(n >> 8), (byte)n);

    public MsgPackBuilder Array(int n) => n < 16 ? Raw((byte)(0x90 | n)) : Raw(0xdc, (byte)(n >> 8), (byte)n);

    public MsgPackBuilder Bin(byte[] b)
    {
        if (b.Length < 256) Raw(0xc4, (byte)b.Length);
        else Raw(0xc6, (byte)(b.Length >> 24), (byte)(b.Length >> 16), (byte)(b.Length >> 8), (byte)b.Length);
        return Raw(b);
    }

    public MsgPackBuilder Key(string s) => Bin(Encoding.ASCII.GetBytes(s));

    public MsgPackBuilder Str(string s)
    {
        var b = Encoding.ASCII.GetBytes(s);
        return Raw((byte)(0xa0 | b.Length)).Raw(b);
    }

    public MsgPackBuilder Int(long v)
    {
        if (v is >= 0 and < 128) return Raw((byte)v);
        if (v is < 0 and >= -32) return Raw(unchecked((byte)(sbyte)v));
        var b = new byte[9];
        b[0] = 0xd3;
        BinaryPrimitives.WriteInt64BigEndian(b.AsSpan(1), v);
        return Raw(b);
    }

    public MsgPackBuilder UInt64(ulong v)
    {
        var b = new byte[9];
        b[0] = 0xcf;
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(1), v);
        return Raw(b);
    }

    /// <summary>A well-formed tensor map with the given pieces; pass null to leave an entry's default.</summary>
    public static byte[] Tensor(string type = "<f4", long[]? shape = null, byte[]? data = null, bool strKeys = false)
    {
        shape ??= [2];
        data ??= new byte[8];
        var m = new MsgPackBuilder().Map(5);
        void K(string k) { if (strKeys) m.Str(k); else m.Key(k); }
        K("nd"); m.Raw(0xc3);
        K("type"); m.Str(type);
        K("kind"); m.Bin([]);
        K("shape"); m.Array(shape.Length);
        foreach (var d in shape) m.Int(d);
        K("data"); m.Bin(data);
        return m.ToArray();
    }
}
