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

    internal PooledTensor(Tensor tensor, byte[] rented, ArrayPool<byte> pool)
    {
        Tensor = tensor;
        _rented = rented;
        _pool = pool;
    }

    /// <summary>The tensor; its buffer is valid until <see cref="Dispose"/>.</summary>
    public Tensor Tensor { get; }

    /// <summary>Returns the buffer to the pool it was rented from (<see cref="ArrayPool{T}.Shared"/> unless one was given).</summary>
    public void Dispose()
    {
        var rented = Interlocked.Exchange(ref _rented, null);
        if (rented is not null) _pool.Return(rented);
    }
}
