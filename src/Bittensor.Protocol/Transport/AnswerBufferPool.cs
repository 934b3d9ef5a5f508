namespace Bittensor.Protocol;

/// <summary>
/// Float arrays of one length, for answers' tensor data, that a caller gives back when it is done with an answer
/// (through the answer's <see cref="AnswerLease"/>): the next answers land in them instead of in fresh arrays. A fan-out
/// to N axons otherwise allocates N arrays per round (64 KiB each for a <c>[1, 16, 1024]</c> answer, on the large-object
/// heap from 85,000 bytes), and every gen-0 collection copies the round's live ones into gen 1. Bounded: at most
/// <see cref="Capacity"/> arrays are kept, an array given back to a full pool is left to the GC, and <see cref="Rent"/>
/// allocates when the pool is empty. Thread-safe.
/// </summary>
public sealed class AnswerBufferPool
{
    /// <summary>Bytes a pool keeps at most by default (its <see cref="Capacity"/> is this over one array's bytes, at least 4).</summary>
    public const long DefaultMaxBytes = 32L << 20;

    private readonly float[]?[] _items;
    private readonly Lock _gate = new();
    private int _count;
    private long _allocated;
    private long _reused;
    private long _returned;

    /// <param name="elementCount">Floats per array (positive).</param>
    /// <param name="maxBytes">Bytes kept at most; the capacity is at least 4 arrays.</param>
    /// <exception cref="ArgumentOutOfRangeException">A non-positive length or byte budget.</exception>
    public AnswerBufferPool(int elementCount, long maxBytes = DefaultMaxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(elementCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        ElementCount = elementCount;
        Capacity = (int)Math.Clamp(maxBytes / (elementCount * 4L), 4, 1 << 16);
        _items = new float[Capacity][];
    }

    /// <summary>Floats per array.</summary>
    public int ElementCount { get; }

    /// <summary>Arrays kept at most.</summary>
    public int Capacity { get; }

    /// <summary>Arrays in the pool now.</summary>
    public int Available
    {
        get
        {
            lock (_gate) return _count;
        }
    }

    /// <summary>Arrays <see cref="Rent"/> allocated (the pool was empty).</summary>
    public long Allocated => Interlocked.Read(ref _allocated);

    /// <summary>Arrays <see cref="Rent"/> took from the pool.</summary>
    public long Reused => Interlocked.Read(ref _reused);

    /// <summary>Arrays given back (kept or, when full, left to the GC).</summary>
    public long Returned => Interlocked.Read(ref _returned);

    /// <summary>An array of <see cref="ElementCount"/> floats, its contents whatever they were (the caller overwrites them all).</summary>
    public float[] Rent()
    {
        lock (_gate)
        {
            if (_count > 0)
            {
                var array = _items[--_count]!;
                _items[_count] = null;
                _reused++;
                return array;
            }
        }
        Interlocked.Increment(ref _allocated);
        return GC.AllocateUninitializedArray<float>(ElementCount);
    }

    /// <summary>
    /// A lease on <paramref name="array"/> (one of this pool's length): its holder gives it back once with
    /// <see cref="AnswerLease.Release"/>. Only the array's one owner may take a lease (the transport's landing does).
    /// </summary>
    internal AnswerLease Lease(float[] array)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (array.Length != ElementCount) throw new ArgumentException($"an array of {array.Length} floats, the pool's are {ElementCount}", nameof(array));
        return new AnswerLease(this, array);
    }

    // Called once per lease (AnswerLease.Release guarantees it).
    internal void Return(float[] array)
    {
        Interlocked.Increment(ref _returned);
        lock (_gate)
        {
            if (_count == _items.Length) return; // full: the GC takes it
            _items[_count++] = array;
        }
    }
}

/// <summary>
/// The right to give one answer's array back to its <see cref="AnswerBufferPool"/>. <see cref="Release"/> gives it back
/// the first time and does nothing after, so an array is never in the pool twice (two holders would otherwise be handed
/// the same array). After <see cref="Release"/> the array belongs to the pool: whatever read it through the lease's
/// owner (an <c>EndpointResult</c>'s tensor) must not use it any more, and the owner refuses to hand it out.
/// </summary>
public sealed class AnswerLease
{
    private readonly AnswerBufferPool _pool;
    private float[]? _array;

    internal AnswerLease(AnswerBufferPool pool, float[] array)
    {
        _pool = pool;
        _array = array;
    }

    /// <summary>True once <see cref="Release"/> gave the array back.</summary>
    public bool IsReleased => Volatile.Read(ref _array) is null;

    /// <summary>Gives the array back to its pool; true the first time, false after (nothing is given back twice).</summary>
    public bool Release()
    {
        var array = Interlocked.Exchange(ref _array, null);
        if (array is null) return false;
        _pool.Return(array);
        return true;
    }
}
