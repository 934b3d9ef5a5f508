using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Bittensor.Core.Crypto.Curve25519;

/// <summary>
/// An element of GF(2^255 − 19) in five 51-bit limbs (radix 2^51), little-endian. Limbs may exceed 2^51
/// between operations: <see cref="Mul"/> and <see cref="Square"/> accept limbs below 2^54 and return limbs
/// below 2^52; <see cref="Add"/> does not carry; <see cref="Sub"/> and <see cref="Neg"/> carry.
/// <para><b>Variable time.</b> Branches and the equality/sign tests depend on the values. Use only with public
/// data (signature verification); never with secret keys or nonces.</para>
/// </summary>
internal readonly struct FieldElement
{
    private const ulong Mask51 = (1UL << 51) - 1;

    // 16·p in radix 2^51, so a − b never underflows for b limbs < 2^55.
    private const ulong P16Low = 36028797018963664UL;  // 16·(2^51 − 19)
    private const ulong P16High = 36028797018963952UL; // 16·(2^51 − 1)

    internal readonly ulong L0, L1, L2, L3, L4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal FieldElement(ulong l0, ulong l1, ulong l2, ulong l3, ulong l4)
    {
        L0 = l0;
        L1 = l1;
        L2 = l2;
        L3 = l3;
        L4 = l4;
    }

    internal static FieldElement Zero => new(0, 0, 0, 0, 0);

    internal static FieldElement One => new(1, 0, 0, 0, 0);

    /// <summary>Reads 32 little-endian bytes, ignoring bit 255 (as RFC 7748 / dalek do).</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement FromBytes(ReadOnlySpan<byte> b)
    {
        var w0 = BinaryPrimitives.ReadUInt64LittleEndian(b);
        var w1 = BinaryPrimitives.ReadUInt64LittleEndian(b[8..]);
        var w2 = BinaryPrimitives.ReadUInt64LittleEndian(b[16..]);
        var w3 = BinaryPrimitives.ReadUInt64LittleEndian(b[24..]);
        return new FieldElement(
            w0 & Mask51,
            ((w0 >> 51) | (w1 << 13)) & Mask51,
            ((w1 >> 38) | (w2 << 26)) & Mask51,
            ((w2 >> 25) | (w3 << 39)) & Mask51,
            (w3 >> 12) & Mask51);
    }

    /// <summary>The canonical (fully reduced, &lt; p) 32-byte little-endian encoding.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal void ToBytes(Span<byte> output)
    {
        // Weak reduction first: limbs < 2^51 + 2^13·19.
        ulong l0 = L0, l1 = L1, l2 = L2, l3 = L3, l4 = L4;
        l1 += l0 >> 51; l0 &= Mask51;
        l2 += l1 >> 51; l1 &= Mask51;
        l3 += l2 >> 51; l2 &= Mask51;
        l4 += l3 >> 51; l3 &= Mask51;
        l0 += (l4 >> 51) * 19; l4 &= Mask51;
        l1 += l0 >> 51; l0 &= Mask51;
        // Now the value v < 2p; q = 1 iff v ≥ p, i.e. iff v + 19 ≥ 2^255.
        var q = (l0 + 19) >> 51;
        q = (l1 + q) >> 51;
        q = (l2 + q) >> 51;
        q = (l3 + q) >> 51;
        q = (l4 + q) >> 51;
        l0 += 19 * q;
        l1 += l0 >> 51; l0 &= Mask51;
        l2 += l1 >> 51; l1 &= Mask51;
        l3 += l2 >> 51; l2 &= Mask51;
        l4 += l3 >> 51; l3 &= Mask51;
        l4 &= Mask51; // drop 2^255 (the subtraction of p)
        BinaryPrimitives.WriteUInt64LittleEndian(output, l0 | (l1 << 51));
        BinaryPrimitives.WriteUInt64LittleEndian(output[8..], (l1 >> 13) | (l2 << 38));
        BinaryPrimitives.WriteUInt64LittleEndian(output[16..], (l2 >> 26) | (l3 << 25));
        BinaryPrimitives.WriteUInt64LittleEndian(output[24..], (l3 >> 39) | (l4 << 12));
    }

    /// <summary>True when the canonical value is odd (RFC 9496 IS_NEGATIVE).</summary>
    internal bool IsNegative
    {
        [MethodImpl(JitOptions.Hot)]
        get
        {
            Span<byte> b = stackalloc byte[32];
            ToBytes(b);
            return (b[0] & 1) != 0;
        }
    }

    /// <summary>True when the value is 0 mod p.</summary>
    internal bool IsZero
    {
        [MethodImpl(JitOptions.Hot)]
        get
        {
            Span<byte> b = stackalloc byte[32];
            ToBytes(b);
            return b.IndexOfAnyExcept((byte)0) < 0;
        }
    }

    /// <summary>Equality mod p.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal bool Equals(in FieldElement other)
    {
        Span<byte> a = stackalloc byte[32];
        Span<byte> b = stackalloc byte[32];
        ToBytes(a);
        other.ToBytes(b);
        return a.SequenceEqual(b);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static FieldElement Add(in FieldElement a, in FieldElement b) =>
        new(a.L0 + b.L0, a.L1 + b.L1, a.L2 + b.L2, a.L3 + b.L3, a.L4 + b.L4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static FieldElement Sub(in FieldElement a, in FieldElement b) =>
        Carry(a.L0 + P16Low - b.L0, a.L1 + P16High - b.L1, a.L2 + P16High - b.L2, a.L3 + P16High - b.L3, a.L4 + P16High - b.L4);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static FieldElement Neg(in FieldElement a) =>
        Carry(P16Low - a.L0, P16High - a.L1, P16High - a.L2, P16High - a.L3, P16High - a.L4);

    /// <summary>−a when <paramref name="negate"/>, else a.</summary>
    internal static FieldElement NegIf(in FieldElement a, bool negate) => negate ? Neg(a) : a;

    /// <summary>|a|: the non-negative (even) one of ±a (RFC 9496 CT_ABS, here variable time).</summary>
    internal static FieldElement Abs(in FieldElement a) => a.IsNegative ? Neg(a) : a;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FieldElement Carry(ulong l0, ulong l1, ulong l2, ulong l3, ulong l4)
    {
        l1 += l0 >> 51; l0 &= Mask51;
        l2 += l1 >> 51; l1 &= Mask51;
        l3 += l2 >> 51; l2 &= Mask51;
        l4 += l3 >> 51; l3 &= Mask51;
        l0 += (l4 >> 51) * 19; l4 &= Mask51;
        return new FieldElement(l0, l1, l2, l3, l4);
    }

    // Products are accumulated per column as (H, L) with value = H·2^51 + L: each 64×64 → 128-bit product
    // hi·2^64 + lo adds (hi << 13 | lo >> 51) to H and (lo & mask) to L. No 128-bit adds and no carries through
    // flags, so the JIT keeps everything in registers (Math.BigMul's out parameter forced a stack round trip per
    // product). Bounds as curve25519-dalek's u64 backend: inputs < 2^54 keep every column's value >> 51 < 2^64,
    // and L < 5·2^51.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong MulHigh(ulong a, ulong b) =>
        Bmi2.X64.IsSupported ? Bmi2.X64.MultiplyNoFlags(a, b) : Math.BigMul(a, b, out _);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Acc(ulong a, ulong b, ref ulong h, ref ulong l)
    {
        var lo = a * b;
        var hi = MulHigh(a, b);
        h += (hi << 13) | (lo >> 51);
        l += lo & Mask51;
    }

    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement Mul(in FieldElement a, in FieldElement b)
    {
        // Column by column, the ×19 folded operands computed where used, so fewer values stay live.
        ulong h, l, carry, t;
        ulong r0, r1, r2, r3, r4;
        h = 0; l = 0;
        Acc(a.L0, b.L0, ref h, ref l); Acc(a.L4, b.L1 * 19, ref h, ref l); Acc(a.L3, b.L2 * 19, ref h, ref l);
        Acc(a.L2, b.L3 * 19, ref h, ref l); Acc(a.L1, b.L4 * 19, ref h, ref l);
        r0 = l & Mask51;
        carry = h + (l >> 51);

        h = 0; l = carry;
        Acc(a.L1, b.L0, ref h, ref l); Acc(a.L0, b.L1, ref h, ref l); Acc(a.L4, b.L2 * 19, ref h, ref l);
        Acc(a.L3, b.L3 * 19, ref h, ref l); Acc(a.L2, b.L4 * 19, ref h, ref l);
        r1 = l & Mask51;
        carry = h + (l >> 51);

        h = 0; l = carry;
        Acc(a.L2, b.L0, ref h, ref l); Acc(a.L1, b.L1, ref h, ref l); Acc(a.L0, b.L2, ref h, ref l);
        Acc(a.L4, b.L3 * 19, ref h, ref l); Acc(a.L3, b.L4 * 19, ref h, ref l);
        r2 = l & Mask51;
        carry = h + (l >> 51);

        h = 0; l = carry;
        Acc(a.L3, b.L0, ref h, ref l); Acc(a.L2, b.L1, ref h, ref l); Acc(a.L1, b.L2, ref h, ref l);
        Acc(a.L0, b.L3, ref h, ref l); Acc(a.L4, b.L4 * 19, ref h, ref l);
        r3 = l & Mask51;
        carry = h + (l >> 51);

        h = 0; l = carry;
        Acc(a.L4, b.L0, ref h, ref l); Acc(a.L3, b.L1, ref h, ref l); Acc(a.L2, b.L2, ref h, ref l);
        Acc(a.L1, b.L3, ref h, ref l); Acc(a.L0, b.L4, ref h, ref l);
        r4 = l & Mask51;
        carry = h + (l >> 51);

        r0 += carry * 19;
        t = r0 >> 51;
        return new FieldElement(r0 & Mask51, r1 + t, r2, r3, r4);
    }

    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement Square(in FieldElement a)
    {
        ulong a0 = a.L0, a1 = a.L1, a2 = a.L2, a3 = a.L3, a4 = a.L4;
        ulong a3x = a3 * 19, a4x = a4 * 19;
        ulong d0 = a0 * 2, d1 = a1 * 2, d2 = a2 * 2, d3 = a3 * 2;

        ulong h0 = 0, l0 = 0, h1 = 0, l1 = 0, h2 = 0, l2 = 0, h3 = 0, l3 = 0, h4 = 0, l4 = 0;
        Acc(a0, a0, ref h0, ref l0); Acc(d1, a4x, ref h0, ref l0); Acc(d2, a3x, ref h0, ref l0);
        Acc(a3, a3x, ref h1, ref l1); Acc(d0, a1, ref h1, ref l1); Acc(d2, a4x, ref h1, ref l1);
        Acc(a1, a1, ref h2, ref l2); Acc(d0, a2, ref h2, ref l2); Acc(a4x, d3, ref h2, ref l2);
        Acc(a4, a4x, ref h3, ref l3); Acc(d0, a3, ref h3, ref l3); Acc(d1, a2, ref h3, ref l3);
        Acc(a2, a2, ref h4, ref l4); Acc(d0, a4, ref h4, ref l4); Acc(d1, a3, ref h4, ref l4);
        return Reduce(h0, l0, h1, l1, h2, l2, h3, l3, h4, l4);
    }

    /// <summary>2·a².</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement Square2(in FieldElement a)
    {
        var s = Square(a);
        return new FieldElement(s.L0 * 2, s.L1 * 2, s.L2 * 2, s.L3 * 2, s.L4 * 2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static FieldElement Reduce(ulong h0, ulong l0, ulong h1, ulong l1, ulong h2, ulong l2, ulong h3, ulong l3, ulong h4, ulong l4)
    {
        var r0 = l0 & Mask51;
        var carry = h0 + (l0 >> 51);
        var t = l1 + carry;
        var r1 = t & Mask51;
        carry = h1 + (t >> 51);
        t = l2 + carry;
        var r2 = t & Mask51;
        carry = h2 + (t >> 51);
        t = l3 + carry;
        var r3 = t & Mask51;
        carry = h3 + (t >> 51);
        t = l4 + carry;
        var r4 = t & Mask51;
        carry = h4 + (t >> 51);
        r0 += carry * 19;
        r1 += r0 >> 51;
        r0 &= Mask51;
        return new FieldElement(r0, r1, r2, r3, r4);
    }

    /// <summary>a^(2^k), k ≥ 1.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement SquareTimes(in FieldElement a, int k)
    {
        var r = Square(a);
        for (var i = 1; i < k; i++) r = Square(r);
        return r;
    }

    /// <summary>(a^(2^250 − 1), a^11), the shared prefix of the inversion and square-root chains.</summary>
    [MethodImpl(JitOptions.Hot)]
    private static (FieldElement T250, FieldElement A11) Pow22501(in FieldElement a)
    {
        var a2 = Square(a);
        var a9 = Mul(SquareTimes(a2, 2), a);
        var a11 = Mul(a9, a2);
        var t5 = Mul(Square(a11), a9);              // a^(2^5 − 1)
        var t10 = Mul(SquareTimes(t5, 5), t5);      // a^(2^10 − 1)
        var t20 = Mul(SquareTimes(t10, 10), t10);   // a^(2^20 − 1)
        var t40 = Mul(SquareTimes(t20, 20), t20);   // a^(2^40 − 1)
        var t50 = Mul(SquareTimes(t40, 10), t10);   // a^(2^50 − 1)
        var t100 = Mul(SquareTimes(t50, 50), t50);  // a^(2^100 − 1)
        var t200 = Mul(SquareTimes(t100, 100), t100); // a^(2^200 − 1)
        var t250 = Mul(SquareTimes(t200, 50), t50); // a^(2^250 − 1)
        return (t250, a11);
    }

    /// <summary>a^(p − 2) = 1/a (0 for a = 0).</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement Invert(in FieldElement a)
    {
        var (t250, a11) = Pow22501(a);
        return Mul(SquareTimes(t250, 5), a11);
    }

    /// <summary>a^((p − 5)/8) = a^(2^252 − 3).</summary>
    [MethodImpl(JitOptions.Hot)]
    internal static FieldElement Pow22523(in FieldElement a)
    {
        var (t250, _) = Pow22501(a);
        return Mul(SquareTimes(t250, 2), a);
    }

    /// <summary>
    /// RFC 9496 SQRT_RATIO_M1(u, v): (true, +sqrt(u/v)) when u/v is square, (true, 0) when u = 0,
    /// (false, 0) when v = 0 and u ≠ 0, else (false, +sqrt(i·u/v)).
    /// </summary>
    [MethodImpl(JitOptions.Hot)]
    internal static (bool WasSquare, FieldElement Root) SqrtRatioM1(in FieldElement u, in FieldElement v)
    {
        var v3 = Mul(Square(v), v);
        var v7 = Mul(Square(v3), v);
        var r = Mul(Mul(u, v3), Pow22523(Mul(u, v7)));
        var check = Mul(v, Square(r));
        var negU = Neg(u);
        var correctSign = check.Equals(u);
        var flippedSign = check.Equals(negU);
        var flippedSignI = check.Equals(Mul(negU, Constants.SqrtM1));
        if (flippedSign || flippedSignI) r = Mul(r, Constants.SqrtM1);
        return (correctSign || flippedSign, Abs(r));
    }
}
