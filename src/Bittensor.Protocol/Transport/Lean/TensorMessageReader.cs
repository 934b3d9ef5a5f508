using System.Text;
using Bittensor.Protocol.Wire;
using Google.Protobuf;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// Parses a <see cref="TensorMessage"/> from an array the caller gives up, without copying the tensors' buffers: each
/// <c>Tensor.buffer</c> is a <see cref="ByteString"/> over the array (<see cref="UnsafeByteOperations.UnsafeWrap"/>), so a
/// 64 KB answer costs its one array instead of that array plus a copy. Same result as <c>TensorMessage.Parser</c> for
/// every message the 2021 schema describes (last value wins for scalars, packed and unpacked <c>shape</c>, unknown
/// fields skipped — not kept); malformed input throws <see cref="InvalidDataException"/> where the generated parser
/// throws InvalidProtocolBufferException. The array must not change afterwards.
/// </summary>
internal static class TensorMessageReader
{
    public static TensorMessage Parse(byte[] array, int length) => Parse(array, 0, length);

    /// <summary>Parses the <paramref name="length"/> bytes at <paramref name="offset"/> of <paramref name="array"/>.</summary>
    public static TensorMessage Parse(byte[] array, int offset, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, array.Length - offset);
        var m = new TensorMessage();
        var pos = offset;
        length += offset; // the end
        while (pos < length)
        {
            var tag = Varint(array, ref pos, length);
            switch (tag)
            {
                case 8: m.Version = (int)Varint(array, ref pos, length); break;
                case 18: m.Hotkey = Utf8(array, ref pos, length); break;
                case 42:
                    {
                        var (at, len) = Len(array, ref pos, length);
                        m.Tensors.Add(ParseTensor(array, at, at + len));
                        break;
                    }
                case 48: m.ReturnCode = (ReturnCode)(int)Varint(array, ref pos, length); break;
                case 58: m.Message = Utf8(array, ref pos, length); break;
                default: Skip(array, ref pos, length, tag); break;
            }
        }
        return m;
    }

    private static Tensor ParseTensor(byte[] array, int pos, int end)
    {
        var t = new Tensor();
        while (pos < end)
        {
            var tag = Varint(array, ref pos, end);
            switch (tag)
            {
                case 8: t.Version = (int)Varint(array, ref pos, end); break;
                case 18:
                    {
                        var (at, len) = Len(array, ref pos, end);
                        t.Buffer = len == 0 ? ByteString.Empty : UnsafeByteOperations.UnsafeWrap(array.AsMemory(at, len));
                        break;
                    }
                case 24: t.Shape.Add((long)Varint(array, ref pos, end)); break;
                case 26:
                    {
                        var (at, len) = Len(array, ref pos, end);
                        var stop = at + len;
                        while (at < stop) t.Shape.Add((long)Varint(array, ref at, stop));
                        break;
                    }
                case 32: t.Serializer = (Serializer)(int)Varint(array, ref pos, end); break;
                case 40: t.TensorType = (TensorType)(int)Varint(array, ref pos, end); break;
                case 48: t.Dtype = (DataType)(int)Varint(array, ref pos, end); break;
                case 56: t.Modality = (Modality)(int)Varint(array, ref pos, end); break;
                case 64: t.RequiresGrad = Varint(array, ref pos, end) != 0; break;
                default: Skip(array, ref pos, end, tag); break;
            }
        }
        return t;
    }

    private static ulong Varint(byte[] a, ref int pos, int end)
    {
        ulong value = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            if (pos >= end) throw Truncated();
            var b = a[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw new InvalidDataException("a varint is longer than 10 bytes");
    }

    private static (int At, int Length) Len(byte[] a, ref int pos, int end)
    {
        var len = Varint(a, ref pos, end);
        if (len > (ulong)(end - pos)) throw Truncated();
        var at = pos;
        pos += (int)len;
        return (at, (int)len);
    }

    private static string Utf8(byte[] a, ref int pos, int end)
    {
        var (at, len) = Len(a, ref pos, end);
        return len == 0 ? "" : Encoding.UTF8.GetString(a, at, len);
    }

    private static void Skip(byte[] a, ref int pos, int end, ulong tag)
    {
        if (tag >> 3 == 0) throw new InvalidDataException("a field number of 0");
        switch (tag & 7)
        {
            case 0: Varint(a, ref pos, end); break;
            case 1: Fixed(ref pos, end, 8); break;
            case 2: Len(a, ref pos, end); break;
            case 5: Fixed(ref pos, end, 4); break;
            default: throw new InvalidDataException($"wire type {tag & 7} is not supported here");
        }
    }

    private static void Fixed(ref int pos, int end, int size)
    {
        if (end - pos < size) throw Truncated();
        pos += size;
    }

    private static InvalidDataException Truncated() => new("the message ends in the middle of a field");
}
