using System.Buffers;
using Bittensor.Protocol.Wire;

namespace Bittensor.Protocol;

/// <summary>
/// A proto <see cref="Wire.Tensor"/> whose buffer is a rented array. <see cref="Dispose"/> returns the array
/// to the pool (once); call it only after the message has been serialized.
/// </summary>
public sealed class PooledTensor : IDisposable
{
    private byte[]? _rented;

    internal PooledTensor(Tensor tensor, byte[] rented)
    {
        Tensor = tensor;
        _rented = rented;
    }

    /// <summary>The tensor; its buffer is valid until <see cref="Dispose"/>.</summary>
    public Tensor Tensor { get; }

    /// <summary>Returns the buffer to <see cref="ArrayPool{T}.Shared"/>.</summary>
    public void Dispose()
    {
        var rented = Interlocked.Exchange(ref _rented, null);
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
    }
}
