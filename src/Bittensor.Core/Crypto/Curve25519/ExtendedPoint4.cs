using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Bittensor.Core.Crypto.Curve25519;

/// <summary>
/// An edwards25519 point in extended coordinates with X, Y, Z, T in lanes 0..3 of one <see cref="FieldElement4"/>, so each
/// step of an addition or doubling is one 4-way product (Hisil–Wong–Carter–Dawson 2008 formulas for a = −1, arranged in
/// parallel as in curve25519-dalek's vector backend; derivation below, code this project's own). An addition of a table
/// point is two 4-way products, a doubling a 4-way square and a 4-way product — against seven or eight scalar products.
/// AVX2 only (<see cref="VectorArithmetic.IsSupported"/>); variable time, public data only.
/// </summary>
internal readonly struct ExtendedPoint4
{
    internal readonly FieldElement4 V;

    internal ExtendedPoint4(in FieldElement4 v) => V = v;

    internal static ExtendedPoint4 Identity => new(FieldElement4.Pack(FieldElement.Zero, FieldElement.One, FieldElement.One, FieldElement.Zero));

    [MethodImpl(JitOptions.Hot)]
    internal static ExtendedPoint4 From(in ExtendedPoint p) => new(FieldElement4.Pack(p.X, p.Y, p.Z, p.T));

    [MethodImpl(JitOptions.Hot)]
    internal ExtendedPoint ToExtended() => new(V.Lane(0), V.Lane(1), V.Lane(2), V.Lane(3));

    [MethodImpl(JitOptions.Hot)]
    internal ProjectivePoint ToProjective() => new(V.Lane(0), V.Lane(1), V.Lane(2));

    // vpblendd masks for 64-bit lanes 0..3, vpermq controls.
    private const byte Lane0 = 0x03, Lane1 = 0x0C, Lane2 = 0x30, Lane3 = 0xC0;
    private const byte PermEGFE = 0x2C; // lanes (0, 3, 2, 0)
    private const byte PermFHGH = 0x76; // lanes (2, 1, 3, 1)

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Blend(Vector256<ulong> a, Vector256<ulong> b, [ConstantExpected] byte lanes) =>
        Avx2.Blend(a.AsUInt32(), b.AsUInt32(), lanes).AsUInt64();

    // (l0, l1, l2, l3) → (l1, l0, l3, l2)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Swap(Vector256<ulong> a) => Avx2.Shuffle(a.AsUInt32(), 0x4E).AsUInt64();

    // Addition of a cached point Q = (Y2 − X2, Y2 + X2, 2·Z2, 2d·T2) (HWCD add-2008-hwcd-3):
    //   (Y1 − X1, Y1 + X1, Z1, T1) × Q = (A, B, D, C);  E = B − A, F = D − C, G = D + C, H = B + A;
    //   (E, G, F, E) × (F, H, G, H) = (X3, Y3, Z3, T3).
    // Subtraction (−Q = (Y2 + X2, Y2 − X2, 2·Z2, −2d·T2)) swaps P's first two lanes instead of Q's and flips C's sign:
    //   (Y1 + X1, Y1 − X1, Z1, T1) × Q = (B', A', D, −C');  E = B' − A' = u0 − u1, H = u0 + u1, F = u2 + u3, G = u2 − u3.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> PrepAdd(Vector256<ulong> p, ulong twoP)
    {
        var s = Swap(p);                                 // (Y, X, T, Z)
        var sum = p + s;                                 // lane 1: Y + X
        var diff = s + Vector256.Create(twoP) - p;       // lane 0: Y − X
        return Blend(Blend(p, diff, Lane0), sum, Lane1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> PrepSub(Vector256<ulong> p, ulong twoP)
    {
        var s = Swap(p);
        var sum = p + s;                                 // lane 0: X + Y
        var diff = p + Vector256.Create(twoP) - s;       // lane 1: Y − X
        return Blend(Blend(p, sum, Lane0), diff, Lane1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> MixAdd(Vector256<ulong> u, ulong twoP)
    {
        var s = Swap(u);                                 // (u1, u0, u3, u2)
        var sum = u + s;
        var k = Vector256.Create(twoP);
        var d1 = s + k - u;                              // lane 0: u1 − u0 = E
        var d2 = u + k - s;                              // lane 2: u2 − u3 = F
        return Blend(Blend(sum, d1, Lane0), d2, Lane2);  // (E, H, F, G)
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> MixSub(Vector256<ulong> u, ulong twoP)
    {
        var s = Swap(u);                                 // (u1, u0, u3, u2)
        var sum = u + s;
        var k = Vector256.Create(twoP);
        var d1 = u + k - s;                              // lane 0: u0 − u1 = E
        var d2 = s + k - u;                              // lane 3: u2 − u3 = G
        return Blend(Blend(sum, d1, Lane0), d2, Lane3);  // (E, H, F, G)
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FieldElement4 Final(in FieldElement4 v)
    {
        // (E, H, F, G) → (E, G, F, E) × (F, H, G, H)
        var t0 = new FieldElement4(
            Avx2.Permute4x64(v.A0, PermEGFE), Avx2.Permute4x64(v.A1, PermEGFE), Avx2.Permute4x64(v.A2, PermEGFE), Avx2.Permute4x64(v.A3, PermEGFE),
            Avx2.Permute4x64(v.A4, PermEGFE), Avx2.Permute4x64(v.A5, PermEGFE), Avx2.Permute4x64(v.A6, PermEGFE), Avx2.Permute4x64(v.A7, PermEGFE),
            Avx2.Permute4x64(v.A8, PermEGFE), Avx2.Permute4x64(v.A9, PermEGFE));
        var t1 = new FieldElement4(
            Avx2.Permute4x64(v.A0, PermFHGH), Avx2.Permute4x64(v.A1, PermFHGH), Avx2.Permute4x64(v.A2, PermFHGH), Avx2.Permute4x64(v.A3, PermFHGH),
            Avx2.Permute4x64(v.A4, PermFHGH), Avx2.Permute4x64(v.A5, PermFHGH), Avx2.Permute4x64(v.A6, PermFHGH), Avx2.Permute4x64(v.A7, PermFHGH),
            Avx2.Permute4x64(v.A8, PermFHGH), Avx2.Permute4x64(v.A9, PermFHGH));
        return FieldElement4.Mul(t0, t1);
    }

    /// <summary>P + Q for Q = (Y2 − X2, Y2 + X2, 2·Z2, 2d·T2) (<see cref="CachedTable4"/> point), or P − Q when <paramref name="negate"/>.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal ExtendedPoint4 AddCached(in FieldElement4 q, bool negate)
    {
        const ulong p0 = FieldElement4.TwoP0, pe = FieldElement4.TwoPEven, po = FieldElement4.TwoPOdd;
        ref readonly var a = ref V;
        FieldElement4 u;
        if (!negate)
        {
            var prepared = new FieldElement4(PrepAdd(a.A0, p0), PrepAdd(a.A1, po), PrepAdd(a.A2, pe), PrepAdd(a.A3, po), PrepAdd(a.A4, pe),
                PrepAdd(a.A5, po), PrepAdd(a.A6, pe), PrepAdd(a.A7, po), PrepAdd(a.A8, pe), PrepAdd(a.A9, po));
            u = FieldElement4.Mul(prepared, q);
            u = new FieldElement4(MixAdd(u.A0, p0), MixAdd(u.A1, po), MixAdd(u.A2, pe), MixAdd(u.A3, po), MixAdd(u.A4, pe),
                MixAdd(u.A5, po), MixAdd(u.A6, pe), MixAdd(u.A7, po), MixAdd(u.A8, pe), MixAdd(u.A9, po));
        }
        else
        {
            var prepared = new FieldElement4(PrepSub(a.A0, p0), PrepSub(a.A1, po), PrepSub(a.A2, pe), PrepSub(a.A3, po), PrepSub(a.A4, pe),
                PrepSub(a.A5, po), PrepSub(a.A6, pe), PrepSub(a.A7, po), PrepSub(a.A8, pe), PrepSub(a.A9, po));
            u = FieldElement4.Mul(prepared, q);
            u = new FieldElement4(MixSub(u.A0, p0), MixSub(u.A1, po), MixSub(u.A2, pe), MixSub(u.A3, po), MixSub(u.A4, pe),
                MixSub(u.A5, po), MixSub(u.A6, pe), MixSub(u.A7, po), MixSub(u.A8, pe), MixSub(u.A9, po));
        }
        return new ExtendedPoint4(Final(u));
    }

    // Doubling (HWCD dbl-2008-hwcd, a = −1): (X, Y, Z, X + Y)² = (A, B, Z², S) with A = X², B = Y²;
    //   E = S − A − B, G = B − A, F = G − 2Z², H = −A − B;  (E, G, F, E) × (F, H, G, H) = (X3, Y3, Z3, T3).

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> PrepDouble(Vector256<ulong> p)
    {
        var xy = p + Swap(p);                                           // lane 0: X + Y
        return Blend(p, Avx2.Permute4x64(xy, 0x24), Lane3);             // (X, Y, Z, X + Y)
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> MixDouble(Vector256<ulong> sq, ulong fourP)
    {
        var a = Avx2.Permute4x64(sq, 0x00);                             // (A, A, A, A)
        var pos = Blend(Avx2.Permute4x64(sq, 0x57), Vector256<ulong>.Zero, Lane1); // (S, 0, B, B)
        var m = Avx2.Permute4x64(sq, 0xA5);                             // (B, B, Z², Z²)
        m += Blend(Vector256<ulong>.Zero, m, Lane2);                    // (B, B, 2Z², Z²)
        var neg = a + Blend(m, Vector256<ulong>.Zero, Lane3);           // (A + B, A + B, A + 2Z², A)
        return pos + Vector256.Create(fourP) - neg;                     // (E, H, F, G) + 4p, limbs < 5·2^w
    }

    /// <summary>2·P.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal ExtendedPoint4 Double()
    {
        ref readonly var a = ref V;
        var prepared = new FieldElement4(PrepDouble(a.A0), PrepDouble(a.A1), PrepDouble(a.A2), PrepDouble(a.A3), PrepDouble(a.A4),
            PrepDouble(a.A5), PrepDouble(a.A6), PrepDouble(a.A7), PrepDouble(a.A8), PrepDouble(a.A9));
        var sq = FieldElement4.Square(prepared);
        const ulong p0 = 2 * FieldElement4.TwoP0, pe = 2 * FieldElement4.TwoPEven, po = 2 * FieldElement4.TwoPOdd;
        var mixed = new FieldElement4(MixDouble(sq.A0, p0), MixDouble(sq.A1, po), MixDouble(sq.A2, pe), MixDouble(sq.A3, po), MixDouble(sq.A4, pe),
            MixDouble(sq.A5, po), MixDouble(sq.A6, pe), MixDouble(sq.A7, po), MixDouble(sq.A8, pe), MixDouble(sq.A9, po));
        return new ExtendedPoint4(Final(FieldElement4.ReduceParallel(mixed)));
    }
}

/// <summary>
/// Points prepared as 4-way addends (Y − X, Y + X, 2·Z, 2d·T), packed as 32-bit limbs: 40 <see cref="uint"/>s (160 bytes) per
/// point, limb i of the four lanes at [40·point + 4·i ..]; each limb widens to a <see cref="Vector256{T}"/> of 64-bit lanes
/// with one <c>vpmovzxdq</c>.
/// </summary>
internal sealed class CachedTable4
{
    internal const int UintsPerPoint = 40;

    private readonly uint[] _data;

    internal CachedTable4(int points) => _data = new uint[points * UintsPerPoint];

    /// <summary>
    /// A table on the pinned object heap (a prepared key's, <see cref="VerifyingKey"/>): it lives as long as its key, so in
    /// the ordinary heap each one (20 KB) was copied by the gen-0 collection after it was built and again by a gen-1
    /// (session 23: ~770 new callers' keys at a 1,024-caller level's start). On the pinned heap it is never copied, does
    /// not count toward the gen-0 budget, and is freed by a gen-2 collection once its key was dropped.
    /// </summary>
    internal CachedTable4(int points, bool pinned) =>
        _data = pinned ? GC.AllocateArray<uint>(points * UintsPerPoint, pinned: true) : new uint[points * UintsPerPoint];

    /// <summary>The backing array (tests: which heap it is on).</summary>
    internal uint[] Data => _data;

    internal int Count => _data.Length / UintsPerPoint;

    /// <summary>Bytes held (docs, tests).</summary>
    internal int Bytes => _data.Length * sizeof(uint);

    /// <summary>Stores an affine cached point (y + x, y − x, 2d·x·y) as (y − x, y + x, 2, 2d·x·y).</summary>
    [MethodImpl(JitOptions.Hot)]
    internal void Set(int index, in AffineCachedPoint q)
    {
        Span<uint> l0 = stackalloc uint[10];
        Span<uint> l1 = stackalloc uint[10];
        Span<uint> l3 = stackalloc uint[10];
        FieldElement4.ToLimbs(q.YMinusX, l0);
        FieldElement4.ToLimbs(q.YPlusX, l1);
        FieldElement4.ToLimbs(q.XY2d, l3);
        var d = _data.AsSpan(index * UintsPerPoint, UintsPerPoint);
        for (var i = 0; i < 10; i++)
        {
            d[4 * i] = l0[i];
            d[(4 * i) + 1] = l1[i];
            d[(4 * i) + 2] = i == 0 ? 2u : 0u;
            d[(4 * i) + 3] = l3[i];
        }
    }

    /// <summary>Stores a cached point (Y + X, Y − X, Z, 2d·T) as (Y − X, Y + X, 2·Z, 2d·T).</summary>
    [MethodImpl(JitOptions.Hot)]
    internal void Set(int index, in CachedPoint q)
    {
        Span<uint> l0 = stackalloc uint[10];
        Span<uint> l1 = stackalloc uint[10];
        Span<uint> l2 = stackalloc uint[10];
        Span<uint> l3 = stackalloc uint[10];
        FieldElement4.ToLimbs(q.YMinusX, l0);
        FieldElement4.ToLimbs(q.YPlusX, l1);
        FieldElement4.ToLimbs(FieldElement.Add(q.Z, q.Z), l2);
        FieldElement4.ToLimbs(q.T2d, l3);
        var d = _data.AsSpan(index * UintsPerPoint, UintsPerPoint);
        for (var i = 0; i < 10; i++)
        {
            d[4 * i] = l0[i];
            d[(4 * i) + 1] = l1[i];
            d[(4 * i) + 2] = l2[i];
            d[(4 * i) + 3] = l3[i];
        }
    }

    /// <summary>Point <paramref name="index"/> as a <see cref="FieldElement4"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal FieldElement4 Get(int index)
    {
        ref var b = ref Unsafe.As<uint, byte>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_data), index * UintsPerPoint));
        return new FieldElement4(L(ref b, 0), L(ref b, 16), L(ref b, 32), L(ref b, 48), L(ref b, 64),
            L(ref b, 80), L(ref b, 96), L(ref b, 112), L(ref b, 128), L(ref b, 144));
    }

    /// <summary>
    /// Asks the CPU to bring point <paramref name="index"/> (160 bytes: three or four cache lines) into L1 ahead of its
    /// <see cref="Get"/>. A hint only: it never faults and changes no result.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal unsafe void Prefetch(int index)
    {
        // Not pinned: should the array move meanwhile, the hint fetches a stale address, which is harmless.
        var p = (byte*)Unsafe.AsPointer(ref Unsafe.As<uint, byte>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_data), index * UintsPerPoint)));
        Sse.Prefetch0(p);
        Sse.Prefetch0(p + 64);
        Sse.Prefetch0(p + 128);
        Sse.Prefetch0(p + (UintsPerPoint * sizeof(uint)) - 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> L(ref byte b, int offset) =>
        Avx2.ConvertToVector256Int64(Vector128.LoadUnsafe(ref Unsafe.Add(ref b, offset)).AsUInt32()).AsUInt64();
}
