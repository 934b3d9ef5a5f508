using System.Buffers;
using System.Runtime.InteropServices;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol;

/// <summary>
/// The answer a caller expects: a float32 tensor of one shape, in the 2021 layout (msgpack-numpy, as
/// <see cref="TensorCodec"/> writes it). Built once and shared by many calls' <see cref="AnswerLanding"/>s.
/// </summary>
public sealed class Float32AnswerShape
{
    /// <param name="shape">The expected shape (every dimension positive; at most 256 MiB of floats).</param>
    /// <exception cref="ArgumentException">A shape with no elements, a rank above <see cref="TensorCodec.MaxRank"/>, or too large.</exception>
    public Float32AnswerShape(ReadOnlySpan<long> shape)
    {
        var length = TensorCodec.GetEncodedLength(DataType.Float32, shape);
        long count = 1;
        foreach (var d in shape) count *= d;
        if (count <= 0 || count > (256 << 20) / 4) throw new ArgumentException("the shape must have between 1 and 64 Mi elements", nameof(shape));
        Shape = shape.ToArray();
        ElementCount = (int)count;
        Header = new byte[length - (ElementCount * 4)];
        TensorCodec.WriteFloat32Header(Header, shape);
    }

    /// <summary>The expected shape.</summary>
    public long[] Shape { get; }

    /// <summary>Floats in an answer of <see cref="Shape"/>.</summary>
    public int ElementCount { get; }

    /// <summary>The buffer's bytes before the elements (msgpack map, nd, type, kind, shape, the data bin's header).</summary>
    internal byte[] Header { get; }
}

/// <summary>
/// Where a transport may receive an answer's tensor data straight from the socket: the caller's own
/// <see cref="Values"/> array, instead of a transport buffer the caller then copies out of. Give one per call (through
/// <see cref="IPeerConnection.CallAsync{T}(BittensorMethod, TensorMessage, Metadata, DateTime, CancellationToken, Func{TensorMessage, T}, AnswerLanding)"/>);
/// in the reader, <see cref="TryTake"/> says whether the answer's first tensor is the expected one with its elements
/// already in <see cref="Values"/>. A transport that does not land (gRPC, in-memory, a message the lean client does
/// not recognise) leaves the buffer whole and <see cref="TryTake"/> false: the reader then decodes as it always did.
/// The transport lands the last <c>4 × ElementCount</c> bytes of the first tensor's <c>buffer</c> field (where the
/// 2021 layout keeps the elements); <see cref="TryTake"/> checks the rest (serializer, dtype, shape, the msgpack
/// header byte for byte) and, when anything differs, copies the landed bytes back so the buffer is whole again.
/// </summary>
public sealed class AnswerLanding
{
    private readonly Float32AnswerShape _expected;
    private byte[]? _message;
    private int _gapStart;

    /// <summary>
    /// A landing for one call expecting <paramref name="expected"/>. Its <see cref="Values"/> array is allocated when first
    /// used (by the transport when the answer's head arrives, or by the caller): a call still waiting for its answer holds
    /// no 64 KiB array, so a garbage collection during a fan-out round promotes only the answered calls' arrays.
    /// </summary>
    public AnswerLanding(Float32AnswerShape expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        _expected = expected;
    }

    /// <summary>
    /// A landing whose <see cref="Values"/> array is rented from <paramref name="pool"/> (null: allocated); the caller
    /// that keeps the answer gives it back through <see cref="TakeLease"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The pool's arrays are not <paramref name="expected"/>'s length.</exception>
    public AnswerLanding(Float32AnswerShape expected, AnswerBufferPool? pool)
        : this(expected)
    {
        if (pool is not null && pool.ElementCount != expected.ElementCount)
            throw new ArgumentException($"the pool's arrays hold {pool.ElementCount} floats, the answer {expected.ElementCount}", nameof(pool));
        _pool = pool;
    }

    private readonly AnswerBufferPool? _pool;
    private float[]? _values;
    private FloatBytes? _bytes;
    private int _leased;

    /// <summary>The array the elements land in (the caller's to keep once <see cref="TryTake"/> said true); allocated (or rented from the pool) on first use.</summary>
    public float[] Values
    {
        get
        {
            var values = Volatile.Read(ref _values);
            if (values is not null) return values;
            var fresh = _pool?.Rent() ?? GC.AllocateUninitializedArray<float>(_expected.ElementCount);
            var won = Interlocked.CompareExchange(ref _values, fresh, null);
            if (won is null) return fresh;
            if (_pool is not null) _pool.Lease(fresh).Release(); // never handed out: straight back
            return won;
        }
    }

    /// <summary>
    /// The lease of <see cref="Values"/>, for the one caller that keeps the answer (and gives the array back when done
    /// with it): null without a pool, before the array exists, or when a lease was taken already (one lease per array,
    /// so it goes back at most once). Take it only once the transport is done with the array (inside or after the reader).
    /// </summary>
    public AnswerLease? TakeLease()
    {
        if (_pool is null) return null;
        var values = Volatile.Read(ref _values);
        if (values is null || Interlocked.Exchange(ref _leased, 1) != 0) return null;
        return _pool.Lease(values);
    }

    /// <summary>Whether <see cref="Values"/> has been allocated yet (tests).</summary>
    internal bool IsAllocated => Volatile.Read(ref _values) is not null;

    /// <summary>Bytes a transport lands (the tail of the first tensor's buffer field).</summary>
    internal int DataLength => _expected.ElementCount * 4;

    /// <summary><see cref="Values"/> as bytes (little-endian hosts only: the wire's floats are little-endian).</summary>
    internal Memory<byte> Bytes
    {
        get
        {
            var bytes = Volatile.Read(ref _bytes);
            if (bytes is null)
            {
                var fresh = new FloatBytes(Values);
                bytes = Interlocked.CompareExchange(ref _bytes, fresh, null) ?? fresh;
            }
            return bytes.Memory;
        }
    }

    /// <summary>Whether transports may land on this host.</summary>
    internal static bool Supported => BitConverter.IsLittleEndian;

    /// <summary>
    /// Set by the transport right before the reader runs: the message array whose bytes
    /// [<paramref name="gapStart"/>, <paramref name="gapStart"/> + DataLength) went to <see cref="Values"/> instead.
    /// </summary>
    internal void Landed(byte[] message, int gapStart)
    {
        _message = message;
        _gapStart = gapStart;
    }

    /// <summary>Cleared by the transport once the reader returned (the message array goes back to its pool).</summary>
    internal void Release() => _message = null;

    /// <summary>True when the transport landed this call's answer data in <see cref="Values"/> (valid inside the reader).</summary>
    public bool IsLanded => _message is not null;

    /// <summary>
    /// True when <paramref name="tensor"/> (the answer's first tensor, inside the reader) is the expected float32 answer
    /// and its elements are in <see cref="Values"/>. False otherwise, with the tensor's buffer whole (the landed bytes
    /// copied back if the transport had landed them), so the caller's general decoding sees the answer as sent.
    /// </summary>
    public bool TryTake(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (_message is null) return false;
        if (Covers(tensor.Buffer) && tensor.Serializer == Serializer.Msgpack && tensor.Dtype == DataType.Float32 && SameShape(tensor))
        {
            var header = _expected.Header;
            if (_message.AsSpan(_gapStart - header.Length, header.Length).SequenceEqual(header)) return true;
        }
        Restore();
        return false;
    }

    // The tensor's buffer is the message's bytes that end where the landed bytes end (the field the transport landed).
    private bool Covers(ByteString buffer)
    {
        if (!MemoryMarshal.TryGetArray(buffer.Memory, out var segment) || !ReferenceEquals(segment.Array, _message)) return false;
        return segment.Offset + segment.Count == _gapStart + DataLength && segment.Count == _expected.Header.Length + DataLength;
    }

    private bool SameShape(Tensor tensor)
    {
        var shape = _expected.Shape;
        if (tensor.Shape.Count != shape.Length) return false;
        for (var i = 0; i < shape.Length; i++)
            if (tensor.Shape[i] != shape[i]) return false;
        return true;
    }

    /// <summary>Copies the landed bytes back into the message, which is then whole; no longer landed.</summary>
    private void Restore()
    {
        if (_message is null) return;
        Bytes.Span.CopyTo(_message.AsSpan(_gapStart, DataLength));
        _message = null;
    }

    /// <summary>A float array seen as bytes, so a socket can receive into it.</summary>
    private sealed class FloatBytes(float[] values) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(values.AsSpan());

        public override unsafe MemoryHandle Pin(int elementIndex = 0)
        {
            var handle = GCHandle.Alloc(values, GCHandleType.Pinned);
            return new MemoryHandle((byte*)handle.AddrOfPinnedObject() + elementIndex, handle, this);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
