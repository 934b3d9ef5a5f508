using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Bittensor.Core.Crypto.Curve25519;

/// <summary>
/// Four elements of GF(2^255 − 19) side by side (lanes 0..3), for the 4-way point arithmetic of
/// <see cref="ExtendedPoint4"/>: radix 2^25.5 (ten limbs of alternately 26 and 25 bits, as ref10), limb i of the four
/// elements in the four 64-bit lanes of one <see cref="Vector256{T}"/>, multiplied with AVX2 <c>vpmuludq</c>
/// (32 × 32 → 64 bits per lane), so one <see cref="Mul"/> makes four products. The idea is curve25519-dalek's AVX2
/// backend (Henry de Valence's parallel HWCD formulas); the layout and code here are this project's own.
/// <para>Bounds. "Reduced": limbs below 2^w + 2^18 (w = 26 for even limbs, 25 for odd), what <see cref="Mul"/> and
/// <see cref="ReduceParallel"/> return. <see cref="Mul"/> accepts limbs below 3·2^w + 2^19: then 19·limb stays below
/// 2^32 (the multiplier reads 32 bits) and every column sum below 2^62.2 (checked by the script in docs; ref10's
/// schedule). So a sum of two reduced elements, or a + 2p − b of two reduced ones, may go straight into a product.</para>
/// <para><b>Variable time</b> only in the sense the callers use it: public data (signature verification).</para>
/// </summary>
internal readonly struct FieldElement4
{
    internal readonly Vector256<ulong> A0, A1, A2, A3, A4, A5, A6, A7, A8, A9;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal FieldElement4(Vector256<ulong> a0, Vector256<ulong> a1, Vector256<ulong> a2, Vector256<ulong> a3, Vector256<ulong> a4,
        Vector256<ulong> a5, Vector256<ulong> a6, Vector256<ulong> a7, Vector256<ulong> a8, Vector256<ulong> a9)
    {
        A0 = a0; A1 = a1; A2 = a2; A3 = a3; A4 = a4; A5 = a5; A6 = a6; A7 = a7; A8 = a8; A9 = a9;
    }

    internal const ulong Mask26 = (1UL << 26) - 1;
    internal const ulong Mask25 = (1UL << 25) - 1;

    /// <summary>2p limbs: 2·(2^26 − 19), 2·(2^26 − 1), 2·(2^25 − 1).</summary>
    internal const ulong TwoP0 = 2 * ((1UL << 26) - 19), TwoPEven = 2 * Mask26, TwoPOdd = 2 * Mask25;

    /// <summary>Splits a field element into ten canonical limbs (each below 2^26 / 2^25).</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static void ToLimbs(in FieldElement x, Span<uint> limbs)
    {
        Span<byte> b = stackalloc byte[32];
        x.ToBytes(b);
        var c = FieldElement.FromBytes(b); // canonical, every 51-bit limb below 2^51
        ReadOnlySpan<ulong> l = [c.L0, c.L1, c.L2, c.L3, c.L4];
        for (var i = 0; i < 5; i++)
        {
            limbs[2 * i] = (uint)(l[i] & Mask26);
            limbs[(2 * i) + 1] = (uint)(l[i] >> 26);
        }
    }

    /// <summary>(a, b, c, d) in lanes 0..3.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement4 Pack(in FieldElement a, in FieldElement b, in FieldElement c, in FieldElement d)
    {
        Span<uint> la = stackalloc uint[10];
        Span<uint> lb = stackalloc uint[10];
        Span<uint> lc = stackalloc uint[10];
        Span<uint> ld = stackalloc uint[10];
        ToLimbs(a, la);
        ToLimbs(b, lb);
        ToLimbs(c, lc);
        ToLimbs(d, ld);
        Span<Vector256<ulong>> v = stackalloc Vector256<ulong>[10];
        for (var i = 0; i < 10; i++) v[i] = Vector256.Create((ulong)la[i], lb[i], lc[i], ld[i]);
        return new FieldElement4(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
    }

    /// <summary>The element in lane <paramref name="lane"/> (limbs as they are: a reduced element gives 51-bit limbs below 2^52).</summary>
    [MethodImpl(JitOptions.Hot)]
    internal FieldElement Lane(int lane) => new(
        A0.GetElement(lane) + (A1.GetElement(lane) << 26),
        A2.GetElement(lane) + (A3.GetElement(lane) << 26),
        A4.GetElement(lane) + (A5.GetElement(lane) << 26),
        A6.GetElement(lane) + (A7.GetElement(lane) << 26),
        A8.GetElement(lane) + (A9.GetElement(lane) << 26));

    /// <summary>Limb i (tests).</summary>
    internal Vector256<ulong> Limb(int i) => i switch
    {
        0 => A0, 1 => A1, 2 => A2, 3 => A3, 4 => A4, 5 => A5, 6 => A6, 7 => A7, 8 => A8, 9 => A9,
        _ => throw new ArgumentOutOfRangeException(nameof(i)),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> M(Vector256<ulong> a, Vector256<ulong> b) => Avx2.Multiply(a.AsUInt32(), b.AsUInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Times19(Vector256<ulong> c) => c + (c << 1) + (c << 4);

    /// <summary>Four products at once (ref10's schedule per lane). Inputs: limbs below 3·2^w + 2^19. Output: reduced.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement4 Mul(in FieldElement4 f, in FieldElement4 g)
    {
        var n19 = Vector256.Create(19UL);
        Vector256<ulong> f0 = f.A0, f1 = f.A1, f2 = f.A2, f3 = f.A3, f4 = f.A4, f5 = f.A5, f6 = f.A6, f7 = f.A7, f8 = f.A8, f9 = f.A9;
        Vector256<ulong> g0 = g.A0, g1 = g.A1, g2 = g.A2, g3 = g.A3, g4 = g.A4, g5 = g.A5, g6 = g.A6, g7 = g.A7, g8 = g.A8, g9 = g.A9;
        var f1_2 = f1 + f1;
        var f3_2 = f3 + f3;
        var f5_2 = f5 + f5;
        var f7_2 = f7 + f7;
        var f9_2 = f9 + f9;
        var g1_19 = M(g1, n19);
        var g2_19 = M(g2, n19);
        var g3_19 = M(g3, n19);
        var g4_19 = M(g4, n19);
        var g5_19 = M(g5, n19);
        var g6_19 = M(g6, n19);
        var g7_19 = M(g7, n19);
        var g8_19 = M(g8, n19);
        var g9_19 = M(g9, n19);
        var h0 = M(f0, g0) + M(f1_2, g9_19) + M(f2, g8_19) + M(f3_2, g7_19) + M(f4, g6_19) + M(f5_2, g5_19) + M(f6, g4_19) + M(f7_2, g3_19) + M(f8, g2_19) + M(f9_2, g1_19);
        var h1 = M(f0, g1) + M(f1, g0) + M(f2, g9_19) + M(f3, g8_19) + M(f4, g7_19) + M(f5, g6_19) + M(f6, g5_19) + M(f7, g4_19) + M(f8, g3_19) + M(f9, g2_19);
        var h2 = M(f0, g2) + M(f1_2, g1) + M(f2, g0) + M(f3_2, g9_19) + M(f4, g8_19) + M(f5_2, g7_19) + M(f6, g6_19) + M(f7_2, g5_19) + M(f8, g4_19) + M(f9_2, g3_19);
        var h3 = M(f0, g3) + M(f1, g2) + M(f2, g1) + M(f3, g0) + M(f4, g9_19) + M(f5, g8_19) + M(f6, g7_19) + M(f7, g6_19) + M(f8, g5_19) + M(f9, g4_19);
        var h4 = M(f0, g4) + M(f1_2, g3) + M(f2, g2) + M(f3_2, g1) + M(f4, g0) + M(f5_2, g9_19) + M(f6, g8_19) + M(f7_2, g7_19) + M(f8, g6_19) + M(f9_2, g5_19);
        var h5 = M(f0, g5) + M(f1, g4) + M(f2, g3) + M(f3, g2) + M(f4, g1) + M(f5, g0) + M(f6, g9_19) + M(f7, g8_19) + M(f8, g7_19) + M(f9, g6_19);
        var h6 = M(f0, g6) + M(f1_2, g5) + M(f2, g4) + M(f3_2, g3) + M(f4, g2) + M(f5_2, g1) + M(f6, g0) + M(f7_2, g9_19) + M(f8, g8_19) + M(f9_2, g7_19);
        var h7 = M(f0, g7) + M(f1, g6) + M(f2, g5) + M(f3, g4) + M(f4, g3) + M(f5, g2) + M(f6, g1) + M(f7, g0) + M(f8, g9_19) + M(f9, g8_19);
        var h8 = M(f0, g8) + M(f1_2, g7) + M(f2, g6) + M(f3_2, g5) + M(f4, g4) + M(f5_2, g3) + M(f6, g2) + M(f7_2, g1) + M(f8, g0) + M(f9_2, g9_19);
        var h9 = M(f0, g9) + M(f1, g8) + M(f2, g7) + M(f3, g6) + M(f4, g5) + M(f5, g4) + M(f6, g3) + M(f7, g2) + M(f8, g1) + M(f9, g0);
        return CarryChain(h0, h1, h2, h3, h4, h5, h6, h7, h8, h9);
    }

    /// <summary>Four squares at once (the same schedule with the symmetric products merged: 55 multiplications instead of 100). Same bounds as <see cref="Mul"/>.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement4 Square(in FieldElement4 f)
    {
        var n19 = Vector256.Create(19UL);
        Vector256<ulong> f0 = f.A0, f1 = f.A1, f2 = f.A2, f3 = f.A3, f4 = f.A4, f5 = f.A5, f6 = f.A6, f7 = f.A7, f8 = f.A8, f9 = f.A9;
        var f0_2 = f0 + f0;
        var f1_2 = f1 + f1;
        var f2_2 = f2 + f2;
        var f3_2 = f3 + f3;
        var f4_2 = f4 + f4;
        var f5_2 = f5 + f5;
        var f6_2 = f6 + f6;
        var f7_2 = f7 + f7;
        var f5_38 = M(f5, Vector256.Create(38UL));
        var f6_19 = M(f6, n19);
        var f7_38 = M(f7, Vector256.Create(38UL));
        var f8_19 = M(f8, n19);
        var f9_38 = M(f9, Vector256.Create(38UL));
        var h0 = M(f0, f0) + M(f1_2, f9_38) + M(f2_2, f8_19) + M(f3_2, f7_38) + M(f4_2, f6_19) + M(f5, f5_38);
        var h1 = M(f0_2, f1) + M(f2, f9_38) + M(f3_2, f8_19) + M(f4, f7_38) + M(f5_2, f6_19);
        var h2 = M(f0_2, f2) + M(f1_2, f1) + M(f3_2, f9_38) + M(f4_2, f8_19) + M(f5_2, f7_38) + M(f6, f6_19);
        var h3 = M(f0_2, f3) + M(f1_2, f2) + M(f4, f9_38) + M(f5_2, f8_19) + M(f6, f7_38);
        var h4 = M(f0_2, f4) + M(f1_2, f3_2) + M(f2, f2) + M(f5_2, f9_38) + M(f6_2, f8_19) + M(f7, f7_38);
        var h5 = M(f0_2, f5) + M(f1_2, f4) + M(f2_2, f3) + M(f6, f9_38) + M(f7_2, f8_19);
        var h6 = M(f0_2, f6) + M(f1_2, f5_2) + M(f2_2, f4) + M(f3_2, f3) + M(f7_2, f9_38) + M(f8, f8_19);
        var h7 = M(f0_2, f7) + M(f1_2, f6) + M(f2_2, f5) + M(f3_2, f4) + M(f8, f9_38);
        var h8 = M(f0_2, f8) + M(f1_2, f7_2) + M(f2_2, f6) + M(f3_2, f5_2) + M(f4, f4) + M(f9, f9_38);
        var h9 = M(f0_2, f9) + M(f1_2, f8) + M(f2_2, f7) + M(f3_2, f6) + M(f4_2, f5);
        return CarryChain(h0, h1, h2, h3, h4, h5, h6, h7, h8, h9);
    }

    // ref10's carry order; unsigned lanes. Inputs below 2^63: the last carry out of h9 is below 2^39, so its ×19 is done with shifts.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FieldElement4 CarryChain(Vector256<ulong> h0, Vector256<ulong> h1, Vector256<ulong> h2, Vector256<ulong> h3, Vector256<ulong> h4,
        Vector256<ulong> h5, Vector256<ulong> h6, Vector256<ulong> h7, Vector256<ulong> h8, Vector256<ulong> h9)
    {
        var m26 = Vector256.Create(Mask26);
        var m25 = Vector256.Create(Mask25);
        h1 += h0 >>> 26; h0 &= m26;
        h5 += h4 >>> 26; h4 &= m26;
        h2 += h1 >>> 25; h1 &= m25;
        h6 += h5 >>> 25; h5 &= m25;
        h3 += h2 >>> 26; h2 &= m26;
        h7 += h6 >>> 26; h6 &= m26;
        h4 += h3 >>> 25; h3 &= m25;
        h8 += h7 >>> 25; h7 &= m25;
        h5 += h4 >>> 26; h4 &= m26;
        h9 += h8 >>> 26; h8 &= m26;
        h0 += Times19(h9 >>> 25); h9 &= m25;
        h1 += h0 >>> 26; h0 &= m26;
        return new FieldElement4(h0, h1, h2, h3, h4, h5, h6, h7, h8, h9);
    }

    /// <summary>One carry step on every limb at once: limbs below 2^32 come out reduced.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement4 ReduceParallel(in FieldElement4 h)
    {
        var m26 = Vector256.Create(Mask26);
        var m25 = Vector256.Create(Mask25);
        return new FieldElement4(
            (h.A0 & m26) + Times19(h.A9 >>> 25),
            (h.A1 & m25) + (h.A0 >>> 26),
            (h.A2 & m26) + (h.A1 >>> 25),
            (h.A3 & m25) + (h.A2 >>> 26),
            (h.A4 & m26) + (h.A3 >>> 25),
            (h.A5 & m25) + (h.A4 >>> 26),
            (h.A6 & m26) + (h.A5 >>> 25),
            (h.A7 & m25) + (h.A6 >>> 26),
            (h.A8 & m26) + (h.A7 >>> 25),
            (h.A9 & m25) + (h.A8 >>> 26));
    }
}

/// <summary>Whether the 4-way AVX2 point arithmetic is used (<see cref="FieldElement4"/>).</summary>
internal static class VectorArithmetic
{
    /// <summary>True where the CPU has AVX2.</summary>
    internal static bool IsSupported => Avx2.IsSupported;

    /// <summary>
    /// On by default where supported; <c>BITTENSOR_CRYPTO_SCALAR=1</c> turns it off for the process (benchmarks, a machine where
    /// it misbehaves). Tests flip it to run every verification test on both paths; the answers do not depend on it, only the
    /// time. A prepared key carries the tables of the path it was built on; the other path's are built on its first use there.
    /// </summary>
    internal static bool Enabled
    {
        get => s_enabled;
        set => s_enabled = value && Avx2.IsSupported;
    }

    /// <summary>What <see cref="Enabled"/> starts as (tests restore it).</summary>
    internal static readonly bool Default = Avx2.IsSupported && Environment.GetEnvironmentVariable("BITTENSOR_CRYPTO_SCALAR") != "1";

    private static bool s_enabled = Default;
}
