using System.Buffers.Binary;
using System.Collections.Concurrent;

namespace Bittensor.Core.Crypto.Curve25519;

/// <summary>
/// A decoded sr25519 public key prepared for variable-time verification: odd multiples 1·, 3·, …, 15· of 2^(16c)·(−A)
/// for c = 0..15 (width-5 NAF tables) in affine cached form (one shared inversion), so a 253-bit k·(−A) runs in a
/// chain of ≤ 16 doublings instead of 253. Built once per key (≈ 240 doublings, 128 additions and an inversion, about
/// five verifications' cost; 15 KB) and kept in a small bounded cache, since an axon sees the same callers' hotkeys
/// again and again. Public data only.
/// </summary>
internal sealed class VerifyingKey
{
    private const int CacheLimit = 1024;
    private static readonly ConcurrentDictionary<Key32, VerifyingKey> Cache = new();

    /// <summary>For each chunk c: odd multiples 1·, 3·, …, 15· of 2^(16c)·(−A).</summary>
    internal readonly AffineCachedPoint[][] Tables;

    private VerifyingKey(in ExtendedPoint negA)
    {
        const int size = 1 << (RistrettoVartime.KeyWidth - 2);
        Span<ExtendedPoint> points = stackalloc ExtendedPoint[RistrettoVartime.Chunks * size];
        var p = negA;
        for (var c = 0; c < RistrettoVartime.Chunks; c++)
        {
            if (c > 0) p = RistrettoVartime.MulPow2(p, RistrettoVartime.ChunkBits);
            var step = p.Double().ToCached();
            var current = p;
            points[c * size] = current;
            for (var i = 1; i < size; i++)
            {
                current = current.Add(step).ToExtended();
                points[(c * size) + i] = current;
            }
        }
        Span<AffineCachedPoint> affine = stackalloc AffineCachedPoint[points.Length];
        ExtendedPoint.ToAffineCached(points, affine);
        Tables = new AffineCachedPoint[RistrettoVartime.Chunks][];
        for (var c = 0; c < RistrettoVartime.Chunks; c++) Tables[c] = affine.Slice(c * size, size).ToArray();
    }

    /// <summary>The prepared key, from the cache or freshly decoded; null when the bytes are not a valid ristretto255 point.</summary>
    internal static VerifyingKey? Get(ReadOnlySpan<byte> publicKey)
    {
        var id = new Key32(publicKey);
        if (Cache.TryGetValue(id, out var cached)) return cached;
        if (!RistrettoVartime.TryDecode(publicKey, out var a)) return null;
        var key = new VerifyingKey(a.Negate());
        if (Cache.Count >= CacheLimit) Cache.Clear(); // bounded: a flood of fresh keys costs a rebuild, never memory
        Cache.TryAdd(id, key);
        return key;
    }

    /// <summary>Drops every prepared key (tests).</summary>
    internal static void ClearCache() => Cache.Clear();

    internal static int CachedCount => Cache.Count;

    private readonly record struct Key32(ulong A, ulong B, ulong C, ulong D)
    {
        internal Key32(ReadOnlySpan<byte> b)
            : this(BinaryPrimitives.ReadUInt64LittleEndian(b), BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(b[16..]), BinaryPrimitives.ReadUInt64LittleEndian(b[24..]))
        {
        }
    }
}
