using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Bittensor.Core.Crypto.Curve25519;

/// <summary>
/// A decoded sr25519 public key prepared for variable-time verification: odd multiples 1·, 3·, …, 15· of 2^(16c)·(−A)
/// for c = 0..15 (width-5 NAF tables) in affine cached form (one shared inversion), so a 253-bit k·(−A) runs in a
/// chain of ≤ 16 doublings instead of 253. Built once per key (≈ 240 doublings, 128 additions and an inversion, about
/// five verifications' cost) and kept in <see cref="PreparedKeyCache.Shared"/>, since an axon sees the same callers'
/// hotkeys again and again. Public data only.
/// <para>
/// One path's tables only (session 13): built while <see cref="VectorArithmetic.Enabled"/> (AVX2), the key holds the
/// 128 points as 4-way addends (20 KB) and no scalar tables; otherwise the scalar tables (15 KB) and no 4-way ones.
/// Until session 13 a key built on the AVX2 path held both (35 KB: 1,024 prepared callers ≈ 36 MB of an axon's RSS,
/// 15 of them never read). Should the switch flip afterwards (tests; <c>BITTENSOR_CRYPTO_SCALAR</c> is read once), the
/// other path's tables are built on first use from −A, which the key keeps (160 bytes).
/// </para>
/// </summary>
internal sealed class VerifyingKey
{
    private const int Size = 1 << (RistrettoVartime.KeyWidth - 2);
    private const int Points = RistrettoVartime.Chunks * Size;

    private readonly ExtendedPoint _negA;
    private AffineCachedPoint[][]? _tables;
    private CachedTable4? _vectorTables;

    internal VerifyingKey(in ExtendedPoint negA)
    {
        _negA = negA;
        Span<AffineCachedPoint> affine = stackalloc AffineCachedPoint[Points];
        Multiples(negA, affine);
        if (VectorArithmetic.Enabled) _vectorTables = ToVectorTables(affine);
        else _tables = ToScalarTables(affine);
    }

    /// <summary>Whether the scalar tables are held (tests: a key built on the AVX2 path has none until the switch flips).</summary>
    internal bool HasScalarTables => Volatile.Read(ref _tables) is not null;

    /// <summary>Whether the 4-way tables are held.</summary>
    internal bool HasVectorTables => Volatile.Read(ref _vectorTables) is not null;

    /// <summary>
    /// For each chunk c: odd multiples 1·, 3·, …, 15· of 2^(16c)·(−A), for the scalar path: built with the key while
    /// <see cref="VectorArithmetic.Enabled"/> is off, else on first use.
    /// </summary>
    internal AffineCachedPoint[][] Tables
    {
        get
        {
            var t = Volatile.Read(ref _tables);
            if (t is not null) return t;
            Span<AffineCachedPoint> affine = stackalloc AffineCachedPoint[Points];
            Multiples(_negA, affine);
            Interlocked.CompareExchange(ref _tables, ToScalarTables(affine), null);
            return _tables!;
        }
    }

    /// <summary>
    /// The same points as <see cref="Tables"/> (chunk c, multiple 2m + 1 at 8c + m) as 4-way addends (20 KB), for
    /// <see cref="RistrettoVartime.VerifyCombination"/> on the AVX2 path: built with the key while
    /// <see cref="VectorArithmetic.Enabled"/>, else on first use. AVX2 only.
    /// </summary>
    internal CachedTable4 VectorTables
    {
        get
        {
            var t = Volatile.Read(ref _vectorTables);
            if (t is not null) return t;
            Span<AffineCachedPoint> affine = stackalloc AffineCachedPoint[Points];
            Multiples(_negA, affine);
            Interlocked.CompareExchange(ref _vectorTables, ToVectorTables(affine), null);
            return _vectorTables!;
        }
    }

    // Chunk c, multiple 2m + 1 of 2^(16c)·(−A) at c·Size + m, in affine cached form (one inversion for all).
    [MethodImpl(JitOptions.Hot)]
    private static void Multiples(in ExtendedPoint negA, Span<AffineCachedPoint> affine)
    {
        Span<ExtendedPoint> points = stackalloc ExtendedPoint[Points];
        var p = negA;
        for (var c = 0; c < RistrettoVartime.Chunks; c++)
        {
            if (c > 0) p = RistrettoVartime.MulPow2(p, RistrettoVartime.ChunkBits);
            var step = p.Double().ToCached();
            var current = p;
            points[c * Size] = current;
            for (var i = 1; i < Size; i++)
            {
                current = current.Add(step).ToExtended();
                points[(c * Size) + i] = current;
            }
        }
        ExtendedPoint.ToAffineCached(points, affine);
    }

    [MethodImpl(JitOptions.Hot)]
    private static AffineCachedPoint[][] ToScalarTables(ReadOnlySpan<AffineCachedPoint> affine)
    {
        var tables = new AffineCachedPoint[RistrettoVartime.Chunks][];
        for (var c = 0; c < RistrettoVartime.Chunks; c++)
        {
            // On the pinned object heap, as the 4-way tables (CachedTable4's pinned constructor: never copied by a collection).
            var chunk = GC.AllocateUninitializedArray<AffineCachedPoint>(Size, pinned: true);
            affine.Slice(c * Size, Size).CopyTo(chunk);
            tables[c] = chunk;
        }
        return tables;
    }

    [MethodImpl(JitOptions.Hot)]
    private static CachedTable4 ToVectorTables(ReadOnlySpan<AffineCachedPoint> affine)
    {
        var table = new CachedTable4(affine.Length, pinned: true);
        for (var n = 0; n < affine.Length; n++) table.Set(n, affine[n]);
        return table;
    }

    /// <summary>
    /// The prepared key, from the shared cache or freshly built (and cached when there is room); null when the bytes are
    /// not a valid ristretto255 point. Always prepares: verification goes through <see cref="PreparedKeyCache.Lookup"/>,
    /// which prepares a key only once it pays.
    /// </summary>
    internal static VerifyingKey? Get(ReadOnlySpan<byte> publicKey) => PreparedKeyCache.Shared.GetPrepared(publicKey);

    /// <summary>Drops every prepared key and every key seen once (tests, benchmarks).</summary>
    internal static void ClearCache() => PreparedKeyCache.Shared.Clear();

    internal static int CachedCount => PreparedKeyCache.Shared.Count;
}

/// <summary>A public key's 32 bytes as four words (a dictionary key without an allocation).</summary>
internal readonly record struct Key32(ulong A, ulong B, ulong C, ulong D)
{
    internal Key32(ReadOnlySpan<byte> b)
        : this(BinaryPrimitives.ReadUInt64LittleEndian(b), BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(b[16..]), BinaryPrimitives.ReadUInt64LittleEndian(b[24..]))
    {
    }
}

/// <summary>
/// Bounded cache of <see cref="VerifyingKey"/>s: at most <see cref="Capacity"/> prepared keys (1,024 by default, ≈ 15 KB
/// each on the scalar path, ≈ 20 KB on the AVX2 path: ≈ 16 / 21 MB at most; 35 KB each, 36 MB, in session 12 when an AVX2
/// key held both paths' tables). A key's tables cost about three verifications to build (≈ 91 µs with 8 chunks, session 11) and
/// make each later verification ≈ 2.6× cheaper than one without them (≈ 33 vs ≈ 86 µs), so they are built only when
/// they pay:
/// <list type="bullet">
/// <item>on a key's <b>second</b> sighting — the first is verified without tables (a never-seen key then costs ≈ 86 µs,
/// not ≈ 125 µs with its tables built: a flood of fresh keys, or a caller seen once, never builds tables). Keys seen once are
/// remembered in a doorkeeper set of at most <see cref="DoorkeeperCapacity"/> (4 × capacity, 32 bytes each; emptied
/// when full);</item>
/// <item>only while there is room. A full cache is swept — entries unused for the idle time (10 s for the shared cache) are
/// dropped — at most once per second when a key needs room; when every entry is in use, the newcomer is verified
/// without tables. So more active callers than the capacity (4,096 or 10,000 distinct hotkeys) cost the callers beyond
/// it a verification without tables each, with no churn: until session 11 a full cache was emptied at once, and more
/// than 1,024 callers in rotation rebuilt tables on every verification (2,048 in rotation: 132 µs per verify, now 62).</item>
/// </list>
/// Thread-safe: hits are lock-free; misses take a lock for the bookkeeping, never while building tables.
/// </summary>
internal sealed class PreparedKeyCache
{
    /// <summary>Default <see cref="Capacity"/>.</summary>
    internal const int DefaultCapacity = 1024;

    /// <summary>The cache every verification uses.</summary>
    internal static readonly PreparedKeyCache Shared = new(DefaultCapacity, TimeSpan.FromSeconds(10), static () => Environment.TickCount64);

    private readonly ConcurrentDictionary<Key32, Entry> _entries = new();
    private readonly HashSet<Key32> _seenOnce = [];
    private readonly Lock _gate = new();
    private readonly Func<long> _nowMs;
    private readonly long _idleMs;
    private long _lastSweepMs = long.MinValue / 4; // "long ago" without overflowing now − it
    private int _count; // entries, kept under _gate (ConcurrentDictionary.Count takes every lock)

    private readonly bool _prepareFirstSighting;

    /// <summary>A cache of at most <paramref name="capacity"/> keys whose entries count as idle after <paramref name="idleAfter"/>;
    /// <paramref name="nowMs"/> reads a millisecond clock; <paramref name="prepareFirstSighting"/> (tests of the batch
    /// arithmetic) prepares every key with room for it, as before session 11.</summary>
    internal PreparedKeyCache(int capacity, TimeSpan idleAfter, Func<long> nowMs, bool prepareFirstSighting = false)
    {
        _prepareFirstSighting = prepareFirstSighting;
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        DoorkeeperCapacity = 4 * capacity;
        _idleMs = (long)idleAfter.TotalMilliseconds;
        _nowMs = nowMs;
    }

    /// <summary>Most prepared keys held.</summary>
    internal int Capacity { get; }

    /// <summary>Most keys remembered as seen once.</summary>
    internal int DoorkeeperCapacity { get; }

    /// <summary>Prepared keys held now.</summary>
    internal int Count => Volatile.Read(ref _count);

    /// <summary>Keys remembered as seen once now.</summary>
    internal int SeenOnceCount
    {
        get { lock (_gate) return _seenOnce.Count; }
    }

    /// <summary>Tables built since creation (tests).</summary>
    internal long Built => Interlocked.Read(ref _built);

    private long _built;

    /// <summary>Lookups answered without tables (the key is then verified by the plain double-scalar multiplication): a key's
    /// first sighting, or no room.</summary>
    internal long WithoutTables => Interlocked.Read(ref _withoutTables);

    private long _withoutTables;

    /// <summary>
    /// Looks a public key up for a verification: false when it is not a valid ristretto255 point. Otherwise either
    /// <paramref name="prepared"/> is its prepared key (cached, or built now because it pays), or it is null and
    /// <paramref name="negA"/> holds −A for a verification without tables.
    /// </summary>
    internal bool Lookup(ReadOnlySpan<byte> publicKey, out VerifyingKey? prepared, out ExtendedPoint negA)
    {
        var id = new Key32(publicKey);
        negA = default;
        if (_entries.TryGetValue(id, out var hit))
        {
            hit.LastUsedMs = _nowMs();
            prepared = hit.Key;
            return true;
        }
        prepared = null;
        if (!RistrettoVartime.TryDecode(publicKey, out var a)) return false;
        negA = a.Negate();
        bool prepare;
        lock (_gate)
        {
            if (_prepareFirstSighting || _seenOnce.Remove(id))
            {
                prepare = HasRoom();
            }
            else
            {
                if (_seenOnce.Count >= DoorkeeperCapacity) _seenOnce.Clear();
                _seenOnce.Add(id);
                prepare = false;
            }
        }
        if (!prepare)
        {
            Interlocked.Increment(ref _withoutTables);
            return true;
        }
        prepared = new VerifyingKey(negA);
        Add(id, prepared);
        return true;
    }

    /// <summary>The prepared key (built and cached when there is room, as <see cref="Lookup"/> would on a second sighting); null for an invalid point.</summary>
    internal VerifyingKey? GetPrepared(ReadOnlySpan<byte> publicKey)
    {
        var id = new Key32(publicKey);
        if (_entries.TryGetValue(id, out var hit))
        {
            hit.LastUsedMs = _nowMs();
            return hit.Key;
        }
        if (!RistrettoVartime.TryDecode(publicKey, out var a)) return null;
        var key = new VerifyingKey(a.Negate());
        bool room;
        lock (_gate)
        {
            _seenOnce.Remove(id);
            room = HasRoom();
        }
        if (room) Add(id, key);
        return key;
    }

    /// <summary>
    /// Builds the tables of keys expected to call — the metagraph's hotkeys, highest stake first (the axon, after each
    /// stake snapshot) — ahead of their first call, so their first calls find them prepared instead of being verified
    /// without tables and then building them in a call's turn. Takes at most <paramref name="limit"/> keys not yet
    /// prepared, and only free places: it never sweeps and never displaces a prepared key (a flood of callers is not
    /// made to lose its tables to keys that may never call; once the cache is full, ahead-of-time keys unused for the idle
    /// time are the first swept). Keys that are not valid points are skipped. Returns how many were built.
    /// </summary>
    internal int PrepareAhead(IEnumerable<ReadOnlyMemory<byte>> publicKeys, int limit)
    {
        var built = 0;
        foreach (var pk in publicKeys)
        {
            if (built >= limit || Volatile.Read(ref _count) >= Capacity) break;
            var span = pk.Span;
            if (span.Length != 32) continue;
            var id = new Key32(span);
            if (_entries.ContainsKey(id)) continue;
            if (!RistrettoVartime.TryDecode(span, out var a)) continue;
            Add(id, new VerifyingKey(a.Negate()));
            lock (_gate) _seenOnce.Remove(id);
            built++;
        }
        return built;
    }

    /// <summary>
    /// Drops one key — its prepared tables and the doorkeeper's memory of it — and frees its place at once (not after the
    /// idle time). For a key that will not call again: the axon's warm-up key (docs/axon.md "Warm-up"), which otherwise
    /// held a place for the idle time, so that exactly <see cref="Capacity"/> callers found the cache full and the last
    /// newcomer swept it once a second until the warm-up key was idle. True when the key was prepared here.
    /// </summary>
    internal bool Forget(ReadOnlySpan<byte> publicKey)
    {
        if (publicKey.Length != 32) return false;
        var id = new Key32(publicKey);
        lock (_gate)
        {
            _seenOnce.Remove(id);
            if (!_entries.TryRemove(id, out _)) return false;
            _count--;
            return true;
        }
    }

    /// <summary>True when <paramref name="publicKey"/> is prepared here now (tests).</summary>
    internal bool Holds(ReadOnlySpan<byte> publicKey) => publicKey.Length == 32 && _entries.ContainsKey(new Key32(publicKey));

    /// <summary>Drops every prepared key and the doorkeeper's memory.</summary>
    internal void Clear()
    {
        lock (_gate)
        {
            _entries.Clear();
            _seenOnce.Clear();
            _count = 0;
        }
    }

    // Under _gate: true when a key may be added (after sweeping idle entries out of a full cache, at most once a second).
    private bool HasRoom()
    {
        if (_count < Capacity) return true;
        var now = _nowMs();
        if (now - _lastSweepMs < 1000) return false;
        _lastSweepMs = now;
        foreach (var (id, entry) in _entries)
        {
            if (now - entry.LastUsedMs < _idleMs) continue;
            if (_entries.TryRemove(id, out _)) _count--;
        }
        return _count < Capacity;
    }

    private void Add(Key32 id, VerifyingKey key)
    {
        Interlocked.Increment(ref _built);
        lock (_gate)
        {
            // Another thread may have filled the last place (or added this key) while the tables were built.
            if (_count >= Capacity) return;
            if (_entries.TryAdd(id, new Entry(key, _nowMs()))) _count++;
        }
    }

    private sealed class Entry(VerifyingKey key, long lastUsedMs)
    {
        public readonly VerifyingKey Key = key;

        // Written on every hit without a lock: a torn or stale read only delays an eviction.
        public long LastUsedMs = lastUsedMs;
    }
}
