using System.Buffers;
using Bittensor.Protocol.Wire;

namespace Bittensor.Protocol;

/// <summary>
/// A proto <see cref="Wire.Tensor"/> whose buffer is a rented array. <see cref="Dispose"/> returns the array
/// to the pool (once); call it only after the message has been serialized.
/// </summary>
public sealed class PooledTensor : IDisposable
{
    private const int Owned = 0, Adopted = 1, Returned = 2;
    private readonly ArrayPool<byte> _pool;
    private byte[]? _rented;
    private int _state; // Owned: Dispose returns the array; Adopted: a transport sends from it and returns it; Returned

    internal PooledTensor(Tensor tensor, byte[] rented, ArrayPool<byte> pool, Memory<byte> elements = default, int bufferOffset = 0)
    {
        Tensor = tensor;
        _rented = rented;
        _pool = pool;
        Elements = elements;
        BufferOffset = bufferOffset;
    }

    /// <summary>
    /// The element bytes inside the buffer (C order, little-endian), for a tensor rented empty with
    /// <see cref="TensorCodec.RentFloat32"/>: the caller writes its values here before the message is serialized.
    /// Empty for tensors encoded from values.
    /// </summary>
    public Memory<byte> Elements { get; }

    /// <summary>The tensor; its buffer is valid until <see cref="Dispose"/>.</summary>
    public Tensor Tensor { get; }

    /// <summary>The rented array (null once returned): the tensor's buffer is its bytes from <see cref="BufferOffset"/> on.</summary>
    internal byte[]? Rented => Volatile.Read(ref _rented);

    /// <summary>
    /// Where the tensor's buffer starts in <see cref="Rented"/>: <see cref="TensorCodec.RentFloat32"/> leaves
    /// <see cref="TensorCodec.AnswerHeadroom"/> bytes before it (and <see cref="TensorCodec.AnswerTailroom"/> after), so a
    /// transport can write the rest of the answer's wire bytes around the buffer in the same array and send from it.
    /// </summary>
    internal int BufferOffset { get; }

    /// <summary>
    /// A transport takes the array over (the answer is serialized around the buffer in place and sent from it):
    /// <see cref="Dispose"/> no longer returns it, <see cref="ReleaseAdopted"/> does once the bytes are sent. False when
    /// it was already returned or adopted.
    /// </summary>
    internal bool Adopt() => Interlocked.CompareExchange(ref _state, Adopted, Owned) == Owned;

    /// <summary>The adopting transport's send is done: the array goes back to its pool.</summary>
    internal void ReleaseAdopted()
    {
        if (Interlocked.CompareExchange(ref _state, Returned, Adopted) == Adopted) Return();
    }

    /// <summary>
    /// Returns the buffer to the pool it was rented from (<see cref="ArrayPool{T}.Shared"/> unless one was given); a
    /// transport that adopted it (<see cref="Adopt"/>) returns it after its send instead.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.CompareExchange(ref _state, Returned, Owned) == Owned) Return();
    }

    private void Return()
    {
        var rented = Interlocked.Exchange(ref _rented, null);
        if (rented is not null) _pool.Return(rented);
    }
}
