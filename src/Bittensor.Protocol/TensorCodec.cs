using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Bittensor.Protocol.Wire;
using Google.Protobuf;

namespace Bittensor.Protocol;

/// <summary>
/// The 2021 tensor buffer: msgpack + msgpack-numpy. A map of 5 entries with bin keys in the order
/// <c>nd</c> (true), <c>type</c> (numpy dtype string), <c>kind</c> (empty bin), <c>shape</c> (array of ints,
/// smallest msgpack int form, as Python packs them), <c>data</c> (bin8/16/32 of C-order little-endian elements).
/// Encoding writes the header and copies the elements once; decoding validates without throwing and
/// returns a view of the element bytes.
/// </summary>
public static class TensorCodec
{
    /// <summary>Most dimensions accepted or produced. The 2021 protocol uses rank 2 (text), 3 (tensor) and 5 (image).</summary>
    public const int MaxRank = 8;

    // 85                         map of 5
    // c4 02 "nd" c3              nd → true
    // c4 04 "type" a3 "<??"      type → fixstr 3 (the two dtype chars are patched in)
    // c4 04 "kind" c4 00         kind → empty bin
    // c4 05 "shape"              shape → (array follows)
    private static ReadOnlySpan<byte> Prefix =>
    [
        0x85,
        0xc4, 0x02, (byte)'n', (byte)'d', 0xc3,
        0xc4, 0x04, (byte)'t', (byte)'y', (byte)'p', (byte)'e', 0xa3, (byte)'<', 0, 0,
        0xc4, 0x04, (byte)'k', (byte)'i', (byte)'n', (byte)'d', 0xc4, 0x00,
        0xc4, 0x05, (byte)'s', (byte)'h', (byte)'a', (byte)'p', (byte)'e',
    ];

    private const int DtypeOffset = 14;

    private static ReadOnlySpan<byte> DataKey => [0xc4, 0x04, (byte)'d', (byte)'a', (byte)'t', (byte)'a'];

    /// <summary>Bytes per element of a supported dtype; 0 for any other.</summary>
    public static int ItemSize(DataType dataType) => dataType switch
    {
        DataType.Float32 or DataType.Int32 => 4,
        DataType.Float64 or DataType.Int64 => 8,
        _ => 0,
    };

    /// <summary>The exact encoded buffer length for a tensor of this dtype and shape.</summary>
    /// <exception cref="ArgumentException">Unsupported dtype, rank above <see cref="MaxRank"/>, a negative dimension, or a size above 2 GiB.</exception>
    public static int GetEncodedLength(DataType dataType, ReadOnlySpan<long> shape)
    {
        var itemSize = ItemSize(dataType);
        if (itemSize == 0) throw new ArgumentException($"dtype {dataType} cannot be encoded", nameof(dataType));
        var count = CheckedElementCount(shape);
        var dataBytes = count * itemSize;
        var total = Prefix.Length + 1 + DataKey.Length + BinHeaderLength(dataBytes) + dataBytes;
        foreach (var d in shape) total += UIntLength((ulong)d);
        if (total > Array.MaxLength) throw new ArgumentException("the tensor is too large for one buffer", nameof(shape));
        return (int)total;
    }

    /// <summary>Encodes float32 values into <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<float> values, ReadOnlySpan<long> shape, Span<byte> destination)
        => EncodeCore(values, DataType.Float32, shape, destination);

    /// <summary>Encodes float64 values into <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<double> values, ReadOnlySpan<long> shape, Span<byte> destination)
        => EncodeCore(values, DataType.Float64, shape, destination);

    /// <summary>Encodes int32 values into <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<int> values, ReadOnlySpan<long> shape, Span<byte> destination)
        => EncodeCore(values, DataType.Int32, shape, destination);

    /// <summary>Encodes int64 values into <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<long> values, ReadOnlySpan<long> shape, Span<byte> destination)
        => EncodeCore(values, DataType.Int64, shape, destination);

    /// <summary>Encodes float32 values into a buffer writer (for pooled buffers); returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<float> values, ReadOnlySpan<long> shape, IBufferWriter<byte> writer)
        => EncodeToWriter(values, DataType.Float32, shape, writer);

    /// <summary>Encodes float64 values into a buffer writer (for pooled buffers); returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<double> values, ReadOnlySpan<long> shape, IBufferWriter<byte> writer)
        => EncodeToWriter(values, DataType.Float64, shape, writer);

    /// <summary>Encodes int32 values into a buffer writer (for pooled buffers); returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<int> values, ReadOnlySpan<long> shape, IBufferWriter<byte> writer)
        => EncodeToWriter(values, DataType.Int32, shape, writer);

    /// <summary>Encodes int64 values into a buffer writer (for pooled buffers); returns the bytes written.</summary>
    public static int Encode(ReadOnlySpan<long> values, ReadOnlySpan<long> shape, IBufferWriter<byte> writer)
        => EncodeToWriter(values, DataType.Int64, shape, writer);

    /// <summary>Encodes float32 values into a new, exactly sized array.</summary>
    public static byte[] EncodeToArray(ReadOnlySpan<float> values, ReadOnlySpan<long> shape) => ToArray(values, DataType.Float32, shape);

    /// <summary>Encodes float64 values into a new, exactly sized array.</summary>
    public static byte[] EncodeToArray(ReadOnlySpan<double> values, ReadOnlySpan<long> shape) => ToArray(values, DataType.Float64, shape);

    /// <summary>Encodes int32 values into a new, exactly sized array.</summary>
    public static byte[] EncodeToArray(ReadOnlySpan<int> values, ReadOnlySpan<long> shape) => ToArray(values, DataType.Int32, shape);

    /// <summary>Encodes int64 values into a new, exactly sized array.</summary>
    public static byte[] EncodeToArray(ReadOnlySpan<long> values, ReadOnlySpan<long> shape) => ToArray(values, DataType.Int64, shape);

    /// <summary>A proto tensor (version 150, MSGPACK, TORCH) holding float32 values; the buffer is wrapped, not copied again.</summary>
    public static Tensor ToTensor(ReadOnlySpan<float> values, ReadOnlySpan<long> shape, Modality modality, bool requiresGrad = false)
        => Wrap(ToArray(values, DataType.Float32, shape), DataType.Float32, shape, modality, requiresGrad);

    /// <summary>A proto tensor holding float64 values (see <see cref="ToTensor(ReadOnlySpan{float}, ReadOnlySpan{long}, Modality, bool)"/>).</summary>
    public static Tensor ToTensor(ReadOnlySpan<double> values, ReadOnlySpan<long> shape, Modality modality, bool requiresGrad = false)
        => Wrap(ToArray(values, DataType.Float64, shape), DataType.Float64, shape, modality, requiresGrad);

    /// <summary>A proto tensor holding int32 values (see <see cref="ToTensor(ReadOnlySpan{float}, ReadOnlySpan{long}, Modality, bool)"/>).</summary>
    public static Tensor ToTensor(ReadOnlySpan<int> values, ReadOnlySpan<long> shape, Modality modality, bool requiresGrad = false)
        => Wrap(ToArray(values, DataType.Int32, shape), DataType.Int32, shape, modality, requiresGrad);

    /// <summary>A proto tensor holding int64 values, e.g. TEXT token ids (see <see cref="ToTensor(ReadOnlySpan{float}, ReadOnlySpan{long}, Modality, bool)"/>).</summary>
    public static Tensor ToTensor(ReadOnlySpan<long> values, ReadOnlySpan<long> shape, Modality modality, bool requiresGrad = false)
        => Wrap(ToArray(values, DataType.Int64, shape), DataType.Int64, shape, modality, requiresGrad);

    /// <summary>
    /// A proto tensor holding float32 values whose buffer is rented from <paramref name="pool"/> (default
    /// <see cref="ArrayPool{T}.Shared"/>; no large-object allocation per message). Dispose the result only after gRPC has serialized the
    /// message: on a server via <c>HttpContext.Response.RegisterForDispose</c>, on a client after the call
    /// returned. Disposing earlier lets the pool hand the bytes to someone else while they are being sent.
    /// </summary>
    public static PooledTensor ToPooledTensor(ReadOnlySpan<float> values, ReadOnlySpan<long> shape, Modality modality, bool requiresGrad = false,
        ArrayPool<byte>? pool = null)
        => Pooled(values, DataType.Float32, shape, modality, requiresGrad, pool ?? ArrayPool<byte>.Shared);

    /// <summary>
    /// A pooled proto float32 tensor of <paramref name="shape"/> whose header is written and whose elements are left for
    /// the caller: write the values, little-endian and in C order, into <see cref="PooledTensor.Elements"/> (e.g. as
    /// <c>MemoryMarshal.Cast&lt;byte, float&gt;(Elements.Span)</c> on a little-endian host) before the message is
    /// serialized. A model can so compute its answer straight into the bytes that go on the wire: no float array and no
    /// copy per answer. Dispose as for <see cref="ToPooledTensor(ReadOnlySpan{float}, ReadOnlySpan{long}, Modality, bool, ArrayPool{byte})"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Rank above <see cref="MaxRank"/>, a negative dimension, or a size above 2 GiB.</exception>
    public static PooledTensor RentFloat32(ReadOnlySpan<long> shape, Modality modality, ArrayPool<byte>? pool = null)
    {
        pool ??= ArrayPool<byte>.Shared;
        var length = GetEncodedLength(DataType.Float32, shape);
        // Room before and after the buffer: a transport can lay the rest of the answer's wire bytes (frame headers,
        // the message's other fields) around it in this array and send from it, instead of copying the buffer out.
        var rented = pool.Rent(checked(AnswerHeadroom + length + AnswerTailroom));
        var dataBytes = (int)CheckedElementCount(shape) * 4;
        var header = length - dataBytes;
        var pos = WriteFloat32Header(rented.AsSpan(AnswerHeadroom), shape);
        Debug.Assert(pos == header, "header length");
        var tensor = NewTensor(UnsafeByteOperations.UnsafeWrap(rented.AsMemory(AnswerHeadroom, length)), DataType.Float32, shape, modality, false);
        return new PooledTensor(tensor, rented, pool, rented.AsMemory(AnswerHeadroom + header, dataBytes), AnswerHeadroom);
    }

    /// <summary>
    /// Bytes <see cref="RentFloat32"/> leaves free before the tensor's buffer in the rented array: room for an answer's
    /// HTTP/2 HEADERS and DATA frame headers, the gRPC prefix and the message's fields before the buffer's bytes (the
    /// axon's hotkey among them), so the lean transport serializes the answer around the buffer in place.
    /// </summary>
    internal const int AnswerHeadroom = 256;

    /// <summary>Bytes <see cref="RentFloat32"/> leaves free after the buffer: the tensor's and message's later fields, the trailers.</summary>
    internal const int AnswerTailroom = 128;

    /// <summary>
    /// Writes the buffer's bytes before the elements of a float32 tensor of <paramref name="shape"/> (map, nd, type,
    /// kind, shape, the data bin's header: what <see cref="RentFloat32"/> writes); returns their length.
    /// </summary>
    internal static int WriteFloat32Header(Span<byte> destination, ReadOnlySpan<long> shape)
    {
        var dataBytes = (int)CheckedElementCount(shape) * 4;
        Prefix.CopyTo(destination);
        (destination[DtypeOffset], destination[DtypeOffset + 1]) = DtypeChars(DataType.Float32);
        var pos = Prefix.Length;
        destination[pos++] = (byte)(0x90 | shape.Length);
        foreach (var d in shape) pos += WriteUInt(destination[pos..], (ulong)d);
        DataKey.CopyTo(destination[pos..]);
        pos += DataKey.Length;
        pos += WriteBinHeader(destination[pos..], dataBytes);
        return pos;
    }

    /// <summary>A pooled proto tensor holding int64 values (see <see cref="ToPooledTensor(ReadOnlySpan{float}, ReadOnlySpan{long}, Modality, bool, ArrayPool{byte})"/>).</summary>
    public static PooledTensor ToPooledTensor(ReadOnlySpan<long> values, ReadOnlySpan<long> shape, Modality modality, bool requiresGrad = false,
        ArrayPool<byte>? pool = null)
        => Pooled(values, DataType.Int64, shape, modality, requiresGrad, pool ?? ArrayPool<byte>.Shared);

    /// <summary>
    /// Decodes a proto tensor: the serializer must be MSGPACK, the buffer valid, and the proto
    /// <c>dtype</c>/<c>shape</c> must agree with the buffer's. The result's data is a view into <c>tensor.Buffer</c>.
    /// </summary>
    public static TensorDecodeResult Decode(Tensor? tensor)
    {
        if (tensor is null || tensor.Buffer.IsEmpty)
            return TensorDecodeResult.Fail(TensorDecodeError.Empty, "the tensor has no buffer");
        if (tensor.Serializer != Serializer.Msgpack)
            return TensorDecodeResult.Fail(TensorDecodeError.UnsupportedDataType, $"serializer {(int)tensor.Serializer} is not supported (only MSGPACK)");
        var result = DecodeBuffer(tensor.Buffer.Memory);
        if (!result.IsSuccess) return result;
        var decoded = result.Tensor;
        if (tensor.Dtype != decoded.DataType)
            return TensorDecodeResult.Fail(TensorDecodeError.DataTypeMismatch, $"proto dtype {tensor.Dtype} disagrees with buffer type {decoded.DataType}");
        var protoShape = tensor.Shape;
        var bufferShape = decoded.Shape;
        var same = protoShape.Count == bufferShape.Length;
        for (var i = 0; same && i < bufferShape.Length; i++) same = protoShape[i] == bufferShape[i];
        if (!same)
            return TensorDecodeResult.Fail(TensorDecodeError.ShapeMismatch, $"proto shape {FormatShape(protoShape)} disagrees with buffer shape {FormatShape(decoded.ShapeToArray())}");
        return result;
    }

    /// <summary>
    /// Decodes a msgpack-numpy buffer. Never throws on bad input and allocates only the shape array:
    /// the data is a slice of <paramref name="buffer"/>, checked to be exactly product(shape) × itemsize bytes.
    /// Keys may come in any order and as bin or str (Python's decoder looks them up by name).
    /// </summary>
    public static TensorDecodeResult DecodeBuffer(ReadOnlyMemory<byte> buffer)
    {
        var span = buffer.Span;
        if (span.IsEmpty) return TensorDecodeResult.Fail(TensorDecodeError.Empty, "the buffer is empty");
        var reader = new MsgPackReader(span);

        if (!reader.TryReadMapHeader(out var entries))
            return Malformed("the buffer is not a msgpack map");
        if (entries is < 4 or > 5)
            return Malformed($"the map has {entries} entries, expected 5 (nd, type, kind, shape, data)");

        Span<long> shape = stackalloc long[MaxRank];
        var rank = -1;
        var dataType = DataType.Unknown;
        var dataOffset = -1;
        var dataLength = 0;
        var seen = 0;

        for (var e = 0; e < entries; e++)
        {
            if (!reader.TryReadBytesOrString(out var keyStart, out var keyLength) || keyLength > 8)
                return Malformed("a map key is not a short bin or str");
            var key = span.Slice(keyStart, keyLength);
            int bit;
            if (key.SequenceEqual("nd"u8))
            {
                bit = 1;
                if (!reader.TryReadBool(out var nd)) return Malformed("'nd' is not a bool");
                if (!nd) return TensorDecodeResult.Fail(TensorDecodeError.UnsupportedDataType, "numpy scalars (nd=false) are not tensors");
            }
            else if (key.SequenceEqual("type"u8))
            {
                bit = 2;
                if (!reader.TryReadBytesOrString(out var start, out var length)) return Malformed("'type' is not a str");
                dataType = ParseDtype(span.Slice(start, length));
                if (dataType == DataType.Unknown)
                    return TensorDecodeResult.Fail(TensorDecodeError.UnsupportedDataType, $"numpy type '{Printable(span.Slice(start, length))}' is not supported (only <f4 <f8 <i4 <i8)");
            }
            else if (key.SequenceEqual("kind"u8))
            {
                bit = 4;
                if (!reader.TryReadBytesOrString(out var start, out var length)) return Malformed("'kind' is not a bin");
                if (length != 0)
                    return TensorDecodeResult.Fail(TensorDecodeError.UnsupportedDataType, "structured numpy arrays (non-empty 'kind') are not supported");
            }
            else if (key.SequenceEqual("shape"u8))
            {
                bit = 8;
                if (!reader.TryReadArrayHeader(out var count)) return Malformed("'shape' is not an array");
                if (count > MaxRank)
                    return TensorDecodeResult.Fail(TensorDecodeError.InvalidShape, $"rank {count} exceeds {MaxRank}");
                for (var i = 0; i < count; i++)
                {
                    var status = reader.TryReadInt64(out var dim);
                    if (status == IntStatus.NotAnInt) return Malformed("a 'shape' entry is not an int");
                    if (status == IntStatus.OutOfRange || dim < 0)
                        return TensorDecodeResult.Fail(TensorDecodeError.InvalidShape, "a dimension is negative or too large");
                    shape[i] = dim;
                }
                rank = (int)count;
            }
            else if (key.SequenceEqual("data"u8))
            {
                bit = 16;
                if (!reader.TryReadBin(out dataOffset, out dataLength)) return Malformed("'data' is not a bin or is truncated");
            }
            else
            {
                return Malformed($"unexpected key '{Printable(key)}'");
            }

            if ((seen & bit) != 0) return Malformed($"duplicate key '{Printable(key)}'");
            seen |= bit;
        }

        if ((seen & (1 | 2 | 8 | 16)) != (1 | 2 | 8 | 16))
            return Malformed("the map lacks one of nd, type, shape, data");
        if (!reader.AtEnd)
            return Malformed("trailing bytes after the tensor map");

        // Overflow-safe: the element count must fit the data bin, which fits the buffer, before any use.
        var itemSize = ItemSize(dataType);
        var maxElements = (ulong)(dataLength / itemSize) + 1;
        ulong product = 1;
        var zero = shape[..rank].Contains(0L);
        for (var i = 0; !zero && i < rank; i++)
        {
            var d = (ulong)shape[i];
            if (product > maxElements / d)
                return TensorDecodeResult.Fail(TensorDecodeError.DataLengthMismatch, $"shape {FormatShape(shape[..rank])} does not fit {dataLength} data bytes");
            product *= d;
        }
        if (zero) product = 0;
        if (product * (ulong)itemSize != (ulong)dataLength)
            return TensorDecodeResult.Fail(TensorDecodeError.DataLengthMismatch,
                $"shape {FormatShape(shape[..rank])} × {itemSize} bytes needs {product * (ulong)itemSize} data bytes, the buffer has {dataLength}");

        var decoded = new DecodedTensor(dataType, shape[..rank].ToArray(), (int)product, buffer.Slice(dataOffset, dataLength));
        return TensorDecodeResult.Ok(decoded);
    }

    internal static void ReverseInPlace<T>(Span<T> values) where T : unmanaged
    {
        if (Unsafe.SizeOf<T>() == 4)
        {
            var s = MemoryMarshal.Cast<T, int>(values);
            BinaryPrimitives.ReverseEndianness(s, s);
        }
        else
        {
            var s = MemoryMarshal.Cast<T, long>(values);
            BinaryPrimitives.ReverseEndianness(s, s);
        }
    }

    private static TensorDecodeResult Malformed(string message) => TensorDecodeResult.Fail(TensorDecodeError.Malformed, message);

    private static DataType ParseDtype(ReadOnlySpan<byte> s)
    {
        if (s.Length != 3 || s[0] != (byte)'<') return DataType.Unknown;
        return (s[1], s[2]) switch
        {
            ((byte)'f', (byte)'4') => DataType.Float32,
            ((byte)'f', (byte)'8') => DataType.Float64,
            ((byte)'i', (byte)'4') => DataType.Int32,
            ((byte)'i', (byte)'8') => DataType.Int64,
            _ => DataType.Unknown,
        };
    }

    private static (byte, byte) DtypeChars(DataType t) => t switch
    {
        DataType.Float32 => ((byte)'f', (byte)'4'),
        DataType.Float64 => ((byte)'f', (byte)'8'),
        DataType.Int32 => ((byte)'i', (byte)'4'),
        _ => ((byte)'i', (byte)'8'),
    };

    private static byte[] ToArray<T>(ReadOnlySpan<T> values, DataType dataType, ReadOnlySpan<long> shape) where T : unmanaged
    {
        var length = GetEncodedLength(dataType, shape);
        // Every byte is written below, so the array need not be zeroed first.
        var array = GC.AllocateUninitializedArray<byte>(length);
        EncodeCore(values, dataType, shape, array);
        return array;
    }

    private static int EncodeToWriter<T>(ReadOnlySpan<T> values, DataType dataType, ReadOnlySpan<long> shape, IBufferWriter<byte> writer) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(writer);
        var length = GetEncodedLength(dataType, shape);
        var written = EncodeCore(values, dataType, shape, writer.GetSpan(length));
        writer.Advance(written);
        return written;
    }

    private static int EncodeCore<T>(ReadOnlySpan<T> values, DataType dataType, ReadOnlySpan<long> shape, Span<byte> destination) where T : unmanaged
    {
        var length = GetEncodedLength(dataType, shape);
        var count = CheckedElementCount(shape);
        if (count != values.Length)
            throw new ArgumentException($"shape {FormatShape(shape)} holds {count} elements but {values.Length} values were given", nameof(values));
        if (destination.Length < length)
            throw new ArgumentException($"destination has {destination.Length} bytes, {length} needed", nameof(destination));

        Prefix.CopyTo(destination);
        (destination[DtypeOffset], destination[DtypeOffset + 1]) = DtypeChars(dataType);
        var pos = Prefix.Length;
        destination[pos++] = (byte)(0x90 | shape.Length);
        foreach (var d in shape) pos += WriteUInt(destination[pos..], (ulong)d);
        DataKey.CopyTo(destination[pos..]);
        pos += DataKey.Length;
        var dataBytes = values.Length * Unsafe.SizeOf<T>();
        pos += WriteBinHeader(destination[pos..], dataBytes);
        var target = destination.Slice(pos, dataBytes);
        MemoryMarshal.AsBytes(values).CopyTo(target);
        if (!BitConverter.IsLittleEndian) ReverseInPlace(MemoryMarshal.Cast<byte, T>(target));
        return pos + dataBytes;
    }

    private static PooledTensor Pooled<T>(ReadOnlySpan<T> values, DataType dataType, ReadOnlySpan<long> shape, Modality modality, bool requiresGrad,
        ArrayPool<byte> pool) where T : unmanaged
    {
        var length = GetEncodedLength(dataType, shape);
        var rented = pool.Rent(length);
        try
        {
            EncodeCore(values, dataType, shape, rented);
        }
        catch
        {
            pool.Return(rented);
            throw;
        }
        var tensor = NewTensor(UnsafeByteOperations.UnsafeWrap(rented.AsMemory(0, length)), dataType, shape, modality, requiresGrad);
        return new PooledTensor(tensor, rented, pool);
    }

    // The array is ours alone and never written again, so wrapping it is safe and saves a copy.
    private static Tensor Wrap(byte[] buffer, DataType dataType, ReadOnlySpan<long> shape, Modality modality, bool requiresGrad)
        => NewTensor(UnsafeByteOperations.UnsafeWrap(buffer), dataType, shape, modality, requiresGrad);

    private static Tensor NewTensor(ByteString buffer, DataType dataType, ReadOnlySpan<long> shape, Modality modality, bool requiresGrad)
    {
        var tensor = new Tensor
        {
            Version = ProtocolVersion.Current,
            Buffer = buffer,
            Serializer = Serializer.Msgpack,
            TensorType = TensorType.Torch,
            Dtype = dataType,
            Modality = modality,
            RequiresGrad = requiresGrad,
        };
        foreach (var d in shape) tensor.Shape.Add(d);
        return tensor;
    }

    private static long CheckedElementCount(ReadOnlySpan<long> shape)
    {
        if (shape.Length > MaxRank) throw new ArgumentException($"rank {shape.Length} exceeds {MaxRank}", nameof(shape));
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape {FormatShape(shape)}", nameof(shape));
            count = d == 0 ? 0 : (count > int.MaxValue / d ? int.MaxValue + 1L : count * d);
        }
        if (count > int.MaxValue) throw new ArgumentException($"shape {FormatShape(shape)} has too many elements", nameof(shape));
        return count;
    }

    private static int UIntLength(ulong v) => v switch
    {
        <= 0x7f => 1,
        <= 0xff => 2,
        <= 0xffff => 3,
        <= 0xffff_ffff => 5,
        _ => 9,
    };

    private static int WriteUInt(Span<byte> d, ulong v)
    {
        switch (v)
        {
            case <= 0x7f: d[0] = (byte)v; return 1;
            case <= 0xff: d[0] = 0xcc; d[1] = (byte)v; return 2;
            case <= 0xffff: d[0] = 0xcd; BinaryPrimitives.WriteUInt16BigEndian(d[1..], (ushort)v); return 3;
            case <= 0xffff_ffff: d[0] = 0xce; BinaryPrimitives.WriteUInt32BigEndian(d[1..], (uint)v); return 5;
            default: d[0] = 0xcf; BinaryPrimitives.WriteUInt64BigEndian(d[1..], v); return 9;
        }
    }

    private static int BinHeaderLength(long length) => length <= 0xff ? 2 : length <= 0xffff ? 3 : 5;

    private static int WriteBinHeader(Span<byte> d, int length)
    {
        if (length <= 0xff) { d[0] = 0xc4; d[1] = (byte)length; return 2; }
        if (length <= 0xffff) { d[0] = 0xc5; BinaryPrimitives.WriteUInt16BigEndian(d[1..], (ushort)length); return 3; }
        d[0] = 0xc6;
        BinaryPrimitives.WriteUInt32BigEndian(d[1..], (uint)length);
        return 5;
    }

    private static string FormatShape(ReadOnlySpan<long> shape)
    {
        var sb = new System.Text.StringBuilder("[");
        for (var i = 0; i < shape.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.Append(']').ToString();
    }

    private static string FormatShape(IReadOnlyList<long> shape)
    {
        if (shape.Count > MaxRank) return $"of rank {shape.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        Span<long> s = stackalloc long[shape.Count];
        for (var i = 0; i < s.Length; i++) s[i] = shape[i];
        return FormatShape(s);
    }

    // Peer-supplied bytes go into messages only as printable ASCII, at most 16 characters.
    private static string Printable(ReadOnlySpan<byte> bytes)
    {
        var n = Math.Min(bytes.Length, 16);
        Span<char> chars = stackalloc char[n];
        for (var i = 0; i < n; i++) chars[i] = bytes[i] is >= 0x20 and < 0x7f ? (char)bytes[i] : '?';
        return new string(chars);
    }
}
