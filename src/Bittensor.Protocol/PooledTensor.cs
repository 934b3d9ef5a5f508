using System.Buffers;
using Bittensor.Protocol.Wire;

namespace Bittensor.Protocol;

/// <summary>
/// A proto <see cref="Wire.Tensor"/> whose buffer is a rented array. <see cref="Dispose"/> returns the array
/// to the pool (once); call it only after the message has been serialized.
/// </summary>
public sealed class PooledTensor : IDisposable
{
    private readonly ArrayPool<byte> _pool;
    private byte[]? _rented;

    internal PooledTensor(Tensor tensor, byte[] rented, ArrayPool<byte> pool, Memory<byte> elements = default)
    {
        Tensor = tensor;
        _rented = rented;
        _pool = pool;
        Elements = elements;
    }

    /// <summary>
    /// The element bytes inside the buffer (C order, little-endian), for a tensor rented empty with
    /// <see cref="TensorCodec.RentFloat32"/>: the caller writes its values here before the message is serialized.
    /// Empty for tensors encoded from values.
    /// </summary>
    public Memory<byte> Elements { get; }

    /// <summary>The tensor; its buffer is valid until <see cref="Dispose"/>.</summary>
    public Tensor Tensor { get; }

    /// <summary>Returns the buffer to the pool it was rented from (<see cref="ArrayPool{T}.Shared"/> unless one was given).</summary>
    public void Dispose()
    {
        var rented = Interlocked.Exchange(ref _rented, null);
        if (rented is not null) _pool.Return(rented);
    }
}
