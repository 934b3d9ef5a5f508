using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Bittensor.Core.Crypto.Curve25519;

/// <summary>
/// ristretto255 decode/encode (RFC 9496 §4.3) and variable-time scalar multiplications over edwards25519,
/// for signature verification only. <b>Variable time</b>: never pass secret scalars (signing stays on
/// libsodium's constant-time code in <see cref="Ristretto"/>).
/// </summary>
internal static class RistrettoVartime
{
    /// <summary>Width of the signed-digit windows for a point that is used once (8 odd multiples in its table).</summary>
    internal const int VariableWidth = 5;

    /// <summary>Width for a prepared key (<see cref="VerifyingKey"/>): its tables are built once and reused.</summary>
    internal const int KeyWidth = 5;

    /// <summary>Width for the basepoint (64 precomputed odd multiples, built once).</summary>
    internal const int BaseWidth = 8;

    /// <summary>The ristretto255 basepoint encoding (RFC 9496 §4.4), the Ed25519 basepoint.</summary>
    internal static ReadOnlySpan<byte> BasepointBytes =>
    [
        0xe2, 0xf2, 0xae, 0x0a, 0x6a, 0xbc, 0x4e, 0x71, 0xa8, 0x84, 0xa9, 0x61, 0xc5, 0x00, 0x51, 0x5f,
        0x58, 0xe3, 0x0b, 0x6a, 0xa5, 0x82, 0xdd, 0x8d, 0xb6, 0xa6, 0x59, 0x45, 0xe0, 0x8d, 0x2d, 0x76,
    ];

    internal static readonly ExtendedPoint Basepoint = DecodeOrThrow(BasepointBytes);

    /// <summary>B, 3B, 5B, …, 127B in affine cached form.</summary>
    private static readonly AffineCachedPoint[] BaseTable = OddMultiplesAffine(Basepoint, 1 << (BaseWidth - 2));

    private static ExtendedPoint DecodeOrThrow(ReadOnlySpan<byte> bytes) =>
        TryDecode(bytes, out var p) ? p : throw new InvalidOperationException("ristretto255 basepoint failed to decode");

    /// <summary>P, 3P, 5P, …, (2·count − 1)P in affine cached form (the basepoint's tables, built once).</summary>
    private static AffineCachedPoint[] OddMultiplesAffine(in ExtendedPoint p, int count)
    {
        var table = new AffineCachedPoint[count];
        var step = p.Double();
        var current = p;
        for (var i = 0; i < table.Length; i++)
        {
            table[i] = current.ToAffineCached();
            current += step;
        }
        return table;
    }

    /// <summary>
    /// RFC 9496 §4.3.1 decode. False for a non-canonical field element (≥ p, or bit 255 set), a negative s,
    /// or an encoding that is not a valid ristretto255 point, exactly as libsodium and curve25519-dalek reject.
    /// </summary>
    [MethodImpl(JitOptions.Hot)]
    internal static bool TryDecode(ReadOnlySpan<byte> bytes, out ExtendedPoint point)
    {
        point = default;
        if (bytes.Length != 32) return false;
        if (!IsCanonicalFieldEncoding(bytes) || (bytes[0] & 1) != 0) return false;

        var s = FieldElement.FromBytes(bytes);
        var ss = FieldElement.Square(s);
        var u1 = FieldElement.Sub(FieldElement.One, ss);
        var u2 = FieldElement.Add(FieldElement.One, ss);
        var u2Sq = FieldElement.Square(u2);
        // v = −(d·u1²) − u2²
        var v = FieldElement.Sub(FieldElement.Neg(FieldElement.Mul(Constants.D, FieldElement.Square(u1))), u2Sq);
        var (wasSquare, invSqrt) = FieldElement.SqrtRatioM1(FieldElement.One, FieldElement.Mul(v, u2Sq));
        var denX = FieldElement.Mul(invSqrt, u2);
        var denY = FieldElement.Mul(FieldElement.Mul(invSqrt, denX), v);
        var twoS = FieldElement.Add(s, s);
        var x = FieldElement.Abs(FieldElement.Mul(twoS, denX));
        var y = FieldElement.Mul(u1, denY);
        var t = FieldElement.Mul(x, y);
        if (!wasSquare || t.IsNegative || y.IsZero) return false;
        point = new ExtendedPoint(x, y, FieldElement.One, t);
        return true;
    }

    /// <summary>True when the 32 bytes are a little-endian integer &lt; p = 2^255 − 19 (bit 255 clear).</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static bool IsCanonicalFieldEncoding(ReadOnlySpan<byte> b)
    {
        if ((b[31] & 0x80) != 0) return false;
        if (b[31] != 0x7f) return true;
        for (var i = 30; i > 0; i--)
            if (b[i] != 0xff) return true;
        return b[0] < 0xed;
    }

    /// <summary>RFC 9496 §4.3.2 encode.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static void Encode(in ExtendedPoint p, Span<byte> output)
    {
        var u1 = FieldElement.Mul(FieldElement.Add(p.Z, p.Y), FieldElement.Sub(p.Z, p.Y));
        var u2 = FieldElement.Mul(p.X, p.Y);
        var (_, invSqrt) = FieldElement.SqrtRatioM1(FieldElement.One, FieldElement.Mul(u1, FieldElement.Square(u2)));
        var den1 = FieldElement.Mul(invSqrt, u1);
        var den2 = FieldElement.Mul(invSqrt, u2);
        var zInv = FieldElement.Mul(FieldElement.Mul(den1, den2), p.T);
        var rotate = FieldElement.Mul(p.T, zInv).IsNegative;
        FieldElement x, y, denInv;
        if (rotate)
        {
            x = FieldElement.Mul(p.Y, Constants.SqrtM1);
            y = FieldElement.Mul(p.X, Constants.SqrtM1);
            denInv = FieldElement.Mul(den1, Constants.InvSqrtAMinusD);
        }
        else
        {
            x = p.X;
            y = p.Y;
            denInv = den2;
        }
        if (FieldElement.Mul(x, zInv).IsNegative) y = FieldElement.Neg(y);
        var s = FieldElement.Abs(FieldElement.Mul(denInv, FieldElement.Sub(p.Z, y)));
        s.ToBytes(output);
    }

    /// <summary>
    /// Width-w non-adjacent form of a 256-bit little-endian scalar &lt; 2^255: digits are odd, |d| &lt; 2^(w−1), and
    /// any w consecutive positions hold at most one nonzero digit. Returns the index of the highest nonzero digit (−1 for 0).
    /// </summary>
    [MethodImpl(JitOptions.Hot)]
    internal static int NonAdjacentForm(ReadOnlySpan<byte> scalar32, int w, Span<sbyte> naf)
    {
        Span<ulong> x = stackalloc ulong[5];
        x[0] = BinaryPrimitives.ReadUInt64LittleEndian(scalar32);
        x[1] = BinaryPrimitives.ReadUInt64LittleEndian(scalar32[8..]);
        x[2] = BinaryPrimitives.ReadUInt64LittleEndian(scalar32[16..]);
        x[3] = BinaryPrimitives.ReadUInt64LittleEndian(scalar32[24..]);
        x[4] = 0;
        naf[..256].Clear();
        var width = 1UL << w;
        var windowMask = width - 1;
        var pos = 0;
        ulong carry = 0;
        var top = -1;
        while (pos < 256)
        {
            var idx = pos >> 6;
            var bit = pos & 63;
            var buf = bit < 64 - w ? x[idx] >> bit : (x[idx] >> bit) | (x[idx + 1] << (64 - bit));
            var window = carry + (buf & windowMask);
            if ((window & 1) == 0)
            {
                pos++;
                continue;
            }
            if (window < width / 2)
            {
                carry = 0;
                naf[pos] = (sbyte)window;
            }
            else
            {
                carry = 1;
                naf[pos] = (sbyte)((long)window - (long)width);
            }
            top = pos;
            pos += w;
        }
        return top;
    }

    /// <summary>Odd multiples P, 3P, …, (2^(w−1) − 1)·P as cached addends.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static void OddMultiples(in ExtendedPoint p, Span<CachedPoint> table)
    {
        var p2 = p.Double().ToCached();
        var current = p;
        table[0] = p.ToCached();
        for (var i = 1; i < table.Length; i++)
        {
            current = current.Add(p2).ToExtended();
            table[i] = current.ToCached();
        }
    }

    /// <summary>a·A + b·B (B the basepoint), Straus/Shamir with width-5 NAF for A and width-8 for B. Scalars &lt; 2^255.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static ProjectivePoint DoubleScalarMulBase(ReadOnlySpan<byte> a, in ExtendedPoint pointA, ReadOnlySpan<byte> b)
    {
        Span<sbyte> aNaf = stackalloc sbyte[256];
        Span<sbyte> bNaf = stackalloc sbyte[256];
        var topA = NonAdjacentForm(a, VariableWidth, aNaf);
        var topB = NonAdjacentForm(b, BaseWidth, bNaf);
        Span<CachedPoint> tableA = stackalloc CachedPoint[1 << (VariableWidth - 2)];
        OddMultiples(pointA, tableA);
        var baseTable = BaseTable;

        var r = ProjectivePoint.Identity;
        for (var i = Math.Max(topA, topB); i >= 0; i--)
        {
            var t = r.Double();
            int da = aNaf[i], db = bNaf[i];
            if (da > 0) t = t.ToExtended().Add(tableA[da >> 1]);
            else if (da < 0) t = t.ToExtended().Sub(tableA[-da >> 1]);
            if (db > 0) t = t.ToExtended().Add(baseTable[db >> 1]);
            else if (db < 0) t = t.ToExtended().Sub(baseTable[-db >> 1]);
            r = t.ToProjective();
        }
        return r;
    }

    /// <summary>
    /// Prepared tables exist for 2^(16c)·P, c = 0..15, so a 256-bit scalar's NAF digit at position p can be applied at
    /// row p mod L of a doubling chain of length L (L = 16 for a single verification, 128 in a batch whose 128-bit
    /// coefficients need 128 rows anyway) through the table of chunk (p div L)·(L / 16). Sixteen chunks rather than
    /// eight (session 11): the single chain halves to ≤ 16 doublings (−3 µs of ≈ 33 on this box's 30 ns field
    /// multiply), for 15 KB per prepared key instead of 7.5 and ≈ 50 µs more to prepare a key the first time.
    /// </summary>
    internal const int Chunks = 16;

    /// <summary>Bits per chunk.</summary>
    internal const int ChunkBits = 256 / Chunks;

    /// <summary>Rows of the doubling chain in a batch (the coefficients zᵢ are 128-bit).</summary>
    internal const int BatchRows = 128;

    /// <summary>For each chunk c: odd multiples of 2^(16c)·B (1·, 3·, …, 127·) in affine cached form.</summary>
    private static readonly AffineCachedPoint[][] BaseChunkTables = BuildBaseChunkTables();

    private static AffineCachedPoint[][] BuildBaseChunkTables()
    {
        var tables = new AffineCachedPoint[Chunks][];
        var p = Basepoint;
        for (var c = 0; c < Chunks; c++)
        {
            if (c > 0) p = MulPow2(p, ChunkBits);
            tables[c] = OddMultiplesAffine(p, 1 << (BaseWidth - 2));
        }
        return tables;
    }

    /// <summary>2^n·P, n ≥ 1.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static ExtendedPoint MulPow2(in ExtendedPoint p, int n)
    {
        var q = p.ToProjective();
        for (var i = 1; i < n; i++) q = q.Double().ToProjective();
        return q.Double().ToExtended();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddDigit(ref CompletedPoint t, int d, CachedPoint[] table)
    {
        if (d > 0) t = t.ToExtended().Add(table[d >> 1]);
        else if (d < 0) t = t.ToExtended().Sub(table[-d >> 1]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddDigit(ref CompletedPoint t, int d, ReadOnlySpan<CachedPoint> table)
    {
        if (d > 0) t = t.ToExtended().Add(table[d >> 1]);
        else if (d < 0) t = t.ToExtended().Sub(table[-d >> 1]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddDigit(ref CompletedPoint t, int d, AffineCachedPoint[] table)
    {
        if (d > 0) t = t.ToExtended().Add(table[d >> 1]);
        else if (d < 0) t = t.ToExtended().Sub(table[-d >> 1]);
    }

    /// <summary>
    /// k·(−A) + s·B over the prepared tables of 2^(16c)·(−A) (<paramref name="key"/>) and 2^(16c)·B: one width-5 NAF of
    /// k and one width-8 NAF of s, each digit applied at row (position mod 16), so the two scalars share one chain of
    /// ≤ 16 doublings instead of 253.
    /// </summary>
    [MethodImpl(JitOptions.Hot)]
    internal static ProjectivePoint VerifyCombination(ReadOnlySpan<byte> k, VerifyingKey key, ReadOnlySpan<byte> s)
    {
        Span<sbyte> kNaf = stackalloc sbyte[256];
        Span<sbyte> sNaf = stackalloc sbyte[256];
        var topK = NonAdjacentForm(k, KeyWidth, kNaf);
        var topS = NonAdjacentForm(s, BaseWidth, sNaf);
        var top = Math.Min(ChunkBits - 1, Math.Max(topK, topS));
        if (VectorArithmetic.Enabled) return VerifyCombination4(kNaf, sNaf, top, key.VectorTables);
        var keyTables = key.Tables;
        var baseTables = BaseChunkTables;
        var r = ProjectivePoint.Identity;
        for (var i = top; i >= 0; i--)
        {
            var t = r.Double();
            for (var c = 0; c < Chunks; c++)
            {
                var p = (ChunkBits * c) + i;
                AddDigit(ref t, kNaf[p], keyTables[c]);
                AddDigit(ref t, sNaf[p], baseTables[c]);
            }
            r = t.ToProjective();
        }
        return r;
    }

    /// <summary>For each chunk c: the same odd multiples of 2^(16c)·B as 4-way addends (64 per chunk); null without AVX2.</summary>
    private static readonly CachedTable4? BaseTable4 = VectorArithmetic.IsSupported ? BuildBaseTable4() : null;

    private static CachedTable4 BuildBaseTable4()
    {
        const int size = 1 << (BaseWidth - 2);
        var table = new CachedTable4(Chunks * size);
        for (var c = 0; c < Chunks; c++)
            for (var i = 0; i < size; i++) table.Set((c * size) + i, BaseChunkTables[c][i]);
        return table;
    }

    /// <summary><see cref="VerifyCombination"/> on the 4-way AVX2 arithmetic (<see cref="ExtendedPoint4"/>): the same digits, rows and tables.</summary>
    [MethodImpl(JitOptions.Hot)]
    private static ProjectivePoint VerifyCombination4(ReadOnlySpan<sbyte> kNaf, ReadOnlySpan<sbyte> sNaf, int top, CachedTable4 keyTable)
    {
        const int keySize = 1 << (KeyWidth - 2);
        const int baseSize = 1 << (BaseWidth - 2);
        var baseTable = BaseTable4!;
        // Every table point the chain will add, asked for up front (session 20): with an axon's callers' keys in rotation
        // (256 in the race) their tables (20 KB each) and the base table (160 KB) are out of L2, and the chain's additions,
        // each depending on the last, left those loads one after another (the in-axon verify cost ≈ 18.5 µs against
        // ≈ 12.8 for one hot key). Prefetches change no result.
        for (var c = 0; c < Chunks; c++)
        {
            for (var i = 0; i <= top; i++)
            {
                var p = (ChunkBits * c) + i;
                int dk = kNaf[p], ds = sNaf[p];
                if (dk != 0) keyTable.Prefetch((c * keySize) + (Math.Abs(dk) >> 1));
                if (ds != 0) baseTable.Prefetch((c * baseSize) + (Math.Abs(ds) >> 1));
            }
        }
        var r = ExtendedPoint4.Identity;
        for (var i = top; i >= 0; i--)
        {
            if (i != top) r = r.Double();
            for (var c = 0; c < Chunks; c++)
            {
                var p = (ChunkBits * c) + i;
                int dk = kNaf[p], ds = sNaf[p];
                if (dk > 0) r = r.AddCached(keyTable.Get((c * keySize) + (dk >> 1)), negate: false);
                else if (dk < 0) r = r.AddCached(keyTable.Get((c * keySize) + (-dk >> 1)), negate: true);
                if (ds > 0) r = r.AddCached(baseTable.Get((c * baseSize) + (ds >> 1)), negate: false);
                else if (ds < 0) r = r.AddCached(baseTable.Get((c * baseSize) + (-ds >> 1)), negate: true);
            }
        }
        return r.ToProjective();
    }

    /// <summary>
    /// Σ over prepared keys of scalar·(−key) + Σ over points of scalar·point + baseScalar·B. Key and base scalars
    /// (256-bit) run as two 128-row halves over the prepared tables of chunks 0 and 8; point scalars must be
    /// &lt; 2^128 (batch coefficients), so one chain of ≤ 129 doublings serves the whole batch. 32 bytes per scalar.
    /// </summary>
    [MethodImpl(JitOptions.Hot)]
    internal static ProjectivePoint BatchCombination(ReadOnlySpan<byte> keyScalars, ReadOnlySpan<VerifyingKey> keys,
        ReadOnlySpan<byte> pointScalars, ReadOnlySpan<ExtendedPoint> points, ReadOnlySpan<byte> baseScalar)
    {
        const int tableSize = 1 << (VariableWidth - 2);
        const int upper = BatchRows / ChunkBits; // the chunk whose table is 2^128·P
        if (VectorArithmetic.Enabled) return BatchCombination4(keyScalars, keys, pointScalars, points, baseScalar);
        var nk = keys.Length;
        var np = points.Length;
        var scratch = BatchScratch.Get(nk, np);
        var keyNafs = scratch.KeyNafs.AsSpan(0, nk * 256);
        var pointNafs = scratch.PointNafs.AsSpan(0, np * 256);
        var pointTables = scratch.PointTables.AsSpan(0, np * tableSize);
        Span<sbyte> sNaf = stackalloc sbyte[256];
        var top = BatchDigits(keyScalars, pointScalars, points, baseScalar, keyNafs, pointNafs, pointTables, sNaf);
        var baseTables = BaseChunkTables;

        var r = ProjectivePoint.Identity;
        for (var i = top; i >= 0; i--)
        {
            var t = r.Double();
            if (i < BatchRows)
            {
                for (var j = 0; j < nk; j++)
                {
                    var tables = keys[j].Tables;
                    var naf = keyNafs.Slice(j * 256, 256);
                    AddDigit(ref t, naf[i], tables[0]);
                    AddDigit(ref t, naf[BatchRows + i], tables[upper]);
                }
                AddDigit(ref t, sNaf[i], baseTables[0]);
                AddDigit(ref t, sNaf[BatchRows + i], baseTables[upper]);
            }
            for (var j = 0; j < np; j++) AddDigit(ref t, pointNafs[j * 256 + i], pointTables.Slice(j * tableSize, tableSize));
            r = t.ToProjective();
        }
        return r;
    }

    /// <summary><see cref="BatchCombination"/> on the 4-way AVX2 arithmetic: the same digits, rows and tables (point tables converted per batch).</summary>
    [MethodImpl(JitOptions.Hot)]
    private static ProjectivePoint BatchCombination4(ReadOnlySpan<byte> keyScalars, ReadOnlySpan<VerifyingKey> keys,
        ReadOnlySpan<byte> pointScalars, ReadOnlySpan<ExtendedPoint> points, ReadOnlySpan<byte> baseScalar)
    {
        const int tableSize = 1 << (VariableWidth - 2);
        const int keySize = 1 << (KeyWidth - 2);
        const int baseSize = 1 << (BaseWidth - 2);
        const int upper = BatchRows / ChunkBits; // the chunk whose table is 2^128·P
        var nk = keys.Length;
        var np = points.Length;
        var scratch = BatchScratch.Get(nk, np);
        var keyNafs = scratch.KeyNafs.AsSpan(0, nk * 256);
        var pointNafs = scratch.PointNafs.AsSpan(0, np * 256);
        var pointTables = scratch.PointTables.AsSpan(0, np * tableSize);
        var pointTables4 = scratch.PointTables4Of(np * tableSize);
        var keyTables = scratch.KeyTables4Of(nk);
        Span<sbyte> sNaf = stackalloc sbyte[256];
        var top = BatchDigits(keyScalars, pointScalars, points, baseScalar, keyNafs, pointNafs, pointTables, sNaf);
        for (var j = 0; j < nk; j++) keyTables[j] = keys[j].VectorTables;
        for (var m = 0; m < pointTables.Length; m++) pointTables4.Set(m, pointTables[m]);
        var baseTable = BaseTable4!;

        var r = ExtendedPoint4.Identity;
        for (var i = top; i >= 0; i--)
        {
            if (i != top) r = r.Double();
            if (i < BatchRows)
            {
                for (var j = 0; j < nk; j++)
                {
                    var naf = keyNafs.Slice(j * 256, 256);
                    AddDigit4(ref r, naf[i], keyTables[j]!, 0);
                    AddDigit4(ref r, naf[BatchRows + i], keyTables[j]!, upper * keySize);
                }
                AddDigit4(ref r, sNaf[i], baseTable, 0);
                AddDigit4(ref r, sNaf[BatchRows + i], baseTable, upper * baseSize);
            }
            for (var j = 0; j < np; j++) AddDigit4(ref r, pointNafs[(j * 256) + i], pointTables4, j * tableSize);
        }
        keyTables[..nk].Clear();
        return r.ToProjective();
    }

    /// <summary>
    /// The digits and point tables of a batch, the same for both arithmetics: each key scalar's width-5 NAF into
    /// <paramref name="keyNafs"/>, each point scalar's into <paramref name="pointNafs"/> with the point's odd multiples
    /// into <paramref name="pointTables"/>, the base scalar's width-8 NAF into <paramref name="sNaf"/> (256 digits each).
    /// Returns the top row of the batch's doubling chain: a key or base digit at position ≥ 128 lands on row
    /// position − 128 ≤ 125; a point digit (scalar &lt; 2^128) on row ≤ 128. −1 when every digit is zero.
    /// </summary>
    [MethodImpl(JitOptions.Hot)]
    private static int BatchDigits(ReadOnlySpan<byte> keyScalars, ReadOnlySpan<byte> pointScalars, ReadOnlySpan<ExtendedPoint> points,
        ReadOnlySpan<byte> baseScalar, Span<sbyte> keyNafs, Span<sbyte> pointNafs, Span<CachedPoint> pointTables, Span<sbyte> sNaf)
    {
        const int tableSize = 1 << (VariableWidth - 2);
        var nk = keyNafs.Length / 256;
        var top = -1;
        for (var j = 0; j < nk; j++) NonAdjacentForm(keyScalars.Slice(32 * j, 32), KeyWidth, keyNafs.Slice(j * 256, 256));
        for (var j = 0; j < points.Length; j++)
        {
            top = Math.Max(top, NonAdjacentForm(pointScalars.Slice(32 * j, 32), VariableWidth, pointNafs.Slice(j * 256, 256)));
            OddMultiples(points[j], pointTables.Slice(j * tableSize, tableSize));
        }
        NonAdjacentForm(baseScalar, BaseWidth, sNaf);
        top = Math.Max(top, HighestBelow(keyNafs, nk, BatchRows));
        return Math.Max(top, HighestBelow(sNaf, 1, BatchRows));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddDigit4(ref ExtendedPoint4 r, int d, CachedTable4 table, int offset)
    {
        if (d > 0) r = r.AddCached(table.Get(offset + (d >> 1)), negate: false);
        else if (d < 0) r = r.AddCached(table.Get(offset + (-d >> 1)), negate: true);
    }

    // The highest row < rows holding a nonzero digit of any of the count NAFs (256 digits each), at p or rows + p.
    [MethodImpl(JitOptions.Hot)]
    private static int HighestBelow(ReadOnlySpan<sbyte> nafs, int count, int rows)
    {
        var best = -1;
        for (var j = 0; j < count; j++)
        {
            var naf = nafs.Slice(j * 256, 256);
            for (var i = rows - 1; i > best; i--)
            {
                if (naf[i] != 0 || naf[rows + i] != 0)
                {
                    best = i;
                    break;
                }
            }
        }
        return best;
    }

    /// <summary>Per-thread scratch for <see cref="BatchCombination"/> (grown to the largest batch seen; no allocation per batch).</summary>
    private sealed class BatchScratch
    {
        [ThreadStatic] private static BatchScratch? current;

        internal sbyte[] KeyNafs = [];
        internal sbyte[] PointNafs = [];
        internal CachedPoint[] PointTables = [];
        private CachedTable4? _pointTables4;
        private CachedTable4?[] _keyTables4 = [];

        internal CachedTable4 PointTables4Of(int points)
        {
            if (_pointTables4 is null || _pointTables4.Count < points) _pointTables4 = new CachedTable4(Math.Max(points, 64));
            return _pointTables4;
        }

        internal Span<CachedTable4?> KeyTables4Of(int keys)
        {
            if (_keyTables4.Length < keys) _keyTables4 = new CachedTable4?[keys];
            return _keyTables4;
        }

        internal static BatchScratch Get(int keys, int points)
        {
            var s = current ??= new BatchScratch();
            if (s.KeyNafs.Length < keys * 256) s.KeyNafs = new sbyte[keys * 256];
            if (s.PointNafs.Length < points * 256) s.PointNafs = new sbyte[points * 256];
            if (s.PointTables.Length < points * (1 << (VariableWidth - 2))) s.PointTables = new CachedPoint[points * (1 << (VariableWidth - 2))];
            return s;
        }
    }

    /// <summary>
    /// Σ scalars[i]·points[i] + baseScalar·B by Straus's method with width-5 NAFs (one shared doubling chain).
    /// Scalars are 32-byte little-endian, each &lt; 2^255.
    /// </summary>
    [MethodImpl(JitOptions.Hot)]
    internal static ProjectivePoint MultiScalarMulBase(ReadOnlySpan<byte> scalars, ReadOnlySpan<ExtendedPoint> points, ReadOnlySpan<byte> baseScalar)
    {
        var n = points.Length;
        const int tableSize = 1 << (VariableWidth - 2);
        var nafs = new sbyte[n * 256];
        var tables = new CachedPoint[n * tableSize];
        var top = -1;
        for (var j = 0; j < n; j++)
        {
            top = Math.Max(top, NonAdjacentForm(scalars.Slice(32 * j, 32), VariableWidth, nafs.AsSpan(256 * j, 256)));
            OddMultiples(points[j], tables.AsSpan(tableSize * j, tableSize));
        }
        Span<sbyte> bNaf = stackalloc sbyte[256];
        top = Math.Max(top, NonAdjacentForm(baseScalar, BaseWidth, bNaf));
        var baseTable = BaseTable;

        var r = ProjectivePoint.Identity;
        for (var i = top; i >= 0; i--)
        {
            var t = r.Double();
            for (var j = 0; j < n; j++)
            {
                int d = nafs[256 * j + i];
                if (d > 0) t = t.ToExtended().Add(tables[tableSize * j + (d >> 1)]);
                else if (d < 0) t = t.ToExtended().Sub(tables[tableSize * j + (-d >> 1)]);
            }
            int db = bNaf[i];
            if (db > 0) t = t.ToExtended().Add(baseTable[db >> 1]);
            else if (db < 0) t = t.ToExtended().Sub(baseTable[-db >> 1]);
            r = t.ToProjective();
        }
        return r;
    }
}
