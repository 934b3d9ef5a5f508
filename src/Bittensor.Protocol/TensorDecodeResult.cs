using System.Runtime.InteropServices;
using Bittensor.Protocol.Wire;

namespace Bittensor.Protocol;

/// <summary>Why a tensor buffer could not be decoded (<see cref="None"/> on success).</summary>
public enum TensorDecodeError
{
    /// <summary>Decoded.</summary>
    None = 0,

    /// <summary>No tensor or an empty buffer.</summary>
    Empty,

    /// <summary>Not the msgpack-numpy map layout: truncated, wrong msgpack types, unknown or duplicate keys, trailing bytes.</summary>
    Malformed,

    /// <summary>A serializer, numpy dtype or proto dtype this peer does not handle (only &lt;f4 &lt;f8 &lt;i4 &lt;i8).</summary>
    UnsupportedDataType,

    /// <summary>A negative dimension, more than <see cref="TensorCodec.MaxRank"/> dimensions, or an element count that overflows.</summary>
    InvalidShape,

    /// <summary>The data bin is not exactly product(shape) × itemsize bytes.</summary>
    DataLengthMismatch,

    /// <summary>The proto <c>dtype</c> disagrees with the buffer's numpy type.</summary>
    DataTypeMismatch,

    /// <summary>The proto <c>shape</c> disagrees with the buffer's shape.</summary>
    ShapeMismatch,
}

/// <summary>
/// A decoded tensor: its element type, shape and a view of the little-endian element bytes inside the
/// original buffer (no copy). Copy the values out with <c>CopyTo</c> or the <c>To…Array</c> methods.
/// </summary>
public readonly struct DecodedTensor
{
    private readonly long[]? _shape;

    internal DecodedTensor(DataType dataType, long[] shape, int elementCount, ReadOnlyMemory<byte> data)
    {
        DataType = dataType;
        _shape = shape;
        ElementCount = elementCount;
        Data = data;
    }

    /// <summary>FLOAT32, FLOAT64, INT32 or INT64.</summary>
    public DataType DataType { get; }

    /// <summary>The dimensions, outermost first (C order).</summary>
    public ReadOnlySpan<long> Shape => _shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape?.Length ?? 0;

    /// <summary>product(shape).</summary>
    public int ElementCount { get; }

    /// <summary>Bytes per element (4 or 8).</summary>
    public int ItemSize => TensorCodec.ItemSize(DataType);

    /// <summary>The raw little-endian element bytes: a slice of the decoded buffer, valid as long as the buffer is.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>A copy of the shape (for proto fields or logging).</summary>
    public long[] ShapeToArray() => _shape is null ? [] : (long[])_shape.Clone();

    /// <summary>True when the shape equals <paramref name="expected"/> exactly.</summary>
    public bool HasShape(ReadOnlySpan<long> expected) => Shape.SequenceEqual(expected);

    /// <summary>Copies float32 values; throws <see cref="InvalidOperationException"/> for another dtype and <see cref="ArgumentException"/> if the destination is too small.</summary>
    public void CopyTo(Span<float> destination) => CopyCore(DataType.Float32, destination);

    /// <summary>Copies float64 values (see <see cref="CopyTo(Span{float})"/>).</summary>
    public void CopyTo(Span<double> destination) => CopyCore(DataType.Float64, destination);

    /// <summary>Copies int32 values (see <see cref="CopyTo(Span{float})"/>).</summary>
    public void CopyTo(Span<int> destination) => CopyCore(DataType.Int32, destination);

    /// <summary>Copies int64 values (see <see cref="CopyTo(Span{float})"/>).</summary>
    public void CopyTo(Span<long> destination) => CopyCore(DataType.Int64, destination);

    /// <summary>A new float32 array with the values (one copy).</summary>
    public float[] ToFloat32Array() => ToArrayCore<float>(DataType.Float32);

    /// <summary>A new float64 array with the values (one copy).</summary>
    public double[] ToFloat64Array() => ToArrayCore<double>(DataType.Float64);

    /// <summary>A new int32 array with the values (one copy).</summary>
    public int[] ToInt32Array() => ToArrayCore<int>(DataType.Int32);

    /// <summary>A new int64 array with the values (one copy).</summary>
    public long[] ToInt64Array() => ToArrayCore<long>(DataType.Int64);

    private T[] ToArrayCore<T>(DataType expected) where T : unmanaged
    {
        var result = GC.AllocateUninitializedArray<T>(ElementCount);
        CopyCore<T>(expected, result);
        return result;
    }

    private void CopyCore<T>(DataType expected, Span<T> destination) where T : unmanaged
    {
        if (DataType != expected)
            throw new InvalidOperationException($"the tensor holds {DataType}, not {expected}");
        if (destination.Length < ElementCount)
            throw new ArgumentException($"destination holds {destination.Length} elements, the tensor {ElementCount}", nameof(destination));
        var target = destination[..ElementCount];
        // The wire is little-endian; byte copy into the destination avoids any alignment assumption.
        Data.Span.CopyTo(MemoryMarshal.AsBytes(target));
        if (!BitConverter.IsLittleEndian) TensorCodec.ReverseInPlace(target);
    }
}

/// <summary>
/// The outcome of decoding a tensor: success with a <see cref="DecodedTensor"/>, or an error kind with a
/// readable message and the matching 2021 return codes. Decoding never throws on bad input.
/// </summary>
public readonly struct TensorDecodeResult
{
    private TensorDecodeResult(TensorDecodeError error, string message, DecodedTensor tensor)
    {
        Error = error;
        Message = message;
        Tensor = tensor;
    }

    /// <summary>True when <see cref="Error"/> is <see cref="TensorDecodeError.None"/>.</summary>
    public bool IsSuccess => Error == TensorDecodeError.None;

    /// <summary>The error kind.</summary>
    public TensorDecodeError Error { get; }

    /// <summary>A one-line reason, empty on success. Safe to send to the peer (contains no buffer bytes).</summary>
    public string Message { get; }

    /// <summary>The tensor; default when decoding failed.</summary>
    public DecodedTensor Tensor { get; }

    /// <summary>The code an axon answers with: Success, RequestShapeException (shape problems) or RequestDeserializationException.</summary>
    public ReturnCode RequestCode => Error switch
    {
        TensorDecodeError.None => ReturnCode.Success,
        TensorDecodeError.Empty => ReturnCode.EmptyRequest,
        TensorDecodeError.InvalidShape or TensorDecodeError.ShapeMismatch => ReturnCode.RequestShapeException,
        _ => ReturnCode.RequestDeserializationException,
    };

    /// <summary>The code a dendrite reports for a bad response: Success, EmptyResponse, ResponseShapeException or ResponseDeserializationException.</summary>
    public ReturnCode ResponseCode => Error switch
    {
        TensorDecodeError.None => ReturnCode.Success,
        TensorDecodeError.Empty => ReturnCode.EmptyResponse,
        TensorDecodeError.InvalidShape or TensorDecodeError.ShapeMismatch => ReturnCode.ResponseShapeException,
        _ => ReturnCode.ResponseDeserializationException,
    };

    internal static TensorDecodeResult Ok(DecodedTensor tensor) => new(TensorDecodeError.None, string.Empty, tensor);

    internal static TensorDecodeResult Fail(TensorDecodeError error, string message) => new(error, message, default);
}
