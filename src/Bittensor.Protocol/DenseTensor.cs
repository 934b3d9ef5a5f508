using Bittensor.Protocol.Wire;

namespace Bittensor.Protocol;

/// <summary>
/// A dense, C-order tensor as host code sees it: a shape and one typed array (float32 or int64, the two
/// element types the 2021 protocol uses for representations and token ids). Immutable by convention: the
/// arrays are shared, not copied, so do not write to them after handing the tensor over.
/// </summary>
public sealed class DenseTensor
{
    private DenseTensor(long[] shape, DataType dtype, float[]? floats, long[]? longs)
    {
        Shape = shape;
        DataType = dtype;
        Floats = floats;
        Longs = longs;
    }

    /// <summary>Dimensions, outermost first.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary><see cref="DataType.Float32"/> or <see cref="DataType.Int64"/>.</summary>
    public DataType DataType { get; }

    /// <summary>Elements when <see cref="DataType"/> is float32, else null.</summary>
    public float[]? Floats { get; }

    /// <summary>Elements when <see cref="DataType"/> is int64, else null.</summary>
    public long[]? Longs { get; }

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Count;

    /// <summary>Number of elements (product of the shape).</summary>
    public long ElementCount => Floats?.LongLength ?? Longs!.LongLength;

    /// <summary>A float32 tensor over <paramref name="data"/> (not copied); the shape must match its length.</summary>
    public static DenseTensor Float32(long[] shape, float[] data)
    {
        CheckShape(shape, data.LongLength);
        return new DenseTensor((long[])shape.Clone(), DataType.Float32, data, null);
    }

    /// <summary>An int64 tensor over <paramref name="data"/> (not copied); the shape must match its length.</summary>
    public static DenseTensor Int64(long[] shape, long[] data)
    {
        CheckShape(shape, data.LongLength);
        return new DenseTensor((long[])shape.Clone(), DataType.Int64, null, data);
    }

    /// <summary>Float32 zeros of the given shape.</summary>
    public static DenseTensor Zeros(params long[] shape) => Float32(shape, new float[checked((int)Product(shape))]);

    /// <summary>Token ids <c>[batch, seq]</c> from a rectangular array.</summary>
    public static DenseTensor FromTokens(long[,] tokens)
    {
        var b = tokens.GetLength(0);
        var s = tokens.GetLength(1);
        var data = new long[b * s];
        for (var i = 0; i < b; i++)
            for (var j = 0; j < s; j++)
                data[(i * s) + j] = tokens[i, j];
        return Int64([b, s], data);
    }

    /// <summary>True when the shapes are equal element by element.</summary>
    public bool HasShape(params long[] shape) => Shape.SequenceEqual(shape);

    /// <summary>Product of a shape's dimensions; throws on negative or overflowing shapes.</summary>
    public static long Product(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException("negative dimension in shape");
            n = checked(n * d);
        }
        return n;
    }

    /// <inheritdoc />
    public override string ToString() => $"{DataType}[{string.Join(", ", Shape)}]";

    private static void CheckShape(long[] shape, long length)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (Product(shape) != length)
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] does not match {length} elements");
    }
}
