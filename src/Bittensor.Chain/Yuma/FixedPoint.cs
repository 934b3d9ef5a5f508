using System.Numerics;
using System.Runtime.CompilerServices;

namespace Bittensor.Chain.Yuma;

// Emulation of the substrate_fixed 0.5.9 types the May 2024 epoch uses. Semantics copied from its arith.rs:
// add/sub wrap (release build of the runtime), mul = full-width product >> frac (rounds toward -inf),
// div = (a << frac) / b truncated toward zero (panics on zero, wraps on overflow), from_num of another fixed
// type drops extra fraction bits (arithmetic shift), to_num::<uN>() drops the fraction and wraps.

/// <summary>Signed 64-bit fixed point with 32 fraction bits (substrate_fixed <c>I32F32</c>).</summary>
internal readonly struct I32F32 : IEquatable<I32F32>, IComparable<I32F32>
{
    public const int FracBits = 32;
    public readonly long Bits;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private I32F32(long bits) => Bits = bits;

    public static readonly I32F32 Zero = default;
    public static readonly I32F32 One = new(1L << FracBits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static I32F32 FromBits(long bits) => new(bits);

    /// <summary><c>I32F32::from_num(u64)</c>: wraps when the integer does not fit (release semantics).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static I32F32 FromInt(ulong value) => new(unchecked((long)(value << FracBits)));

    /// <summary><c>I32F32::from_num(I64F64)</c>: drops the extra 32 fraction bits (toward -inf), wraps the integer part.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static I32F32 FromI64F64(I64F64 x) => new(unchecked((long)(x.Bits >> 32)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static I32F32 operator +(I32F32 a, I32F32 b) => new(unchecked(a.Bits + b.Bits));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static I32F32 operator -(I32F32 a, I32F32 b) => new(unchecked(a.Bits - b.Bits));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static I32F32 operator *(I32F32 a, I32F32 b) => new(MulBits(a.Bits, b.Bits));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static I32F32 operator /(I32F32 a, I32F32 b) => new(DivBits(a.Bits, b.Bits));

    /// <summary>(a·b) &gt;&gt; 32 on the 128-bit product, keeping the low 64 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long MulBits(long a, long b)
    {
        long high = Math.BigMul(a, b, out long low);
        return unchecked((high << 32) | (long)((ulong)low >> 32));
    }

    /// <summary>(a &lt;&lt; 32) / b on 128 bits, truncated toward zero, keeping the low 64 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long DivBits(long a, long b)
    {
        if (b == 0) throw new DivideByZeroException("I32F32 division by zero");
        if (a >= 0 && b > 0)
        {
            if (a < (1L << 32)) return unchecked((long)(((ulong)a << 32) / (ulong)b));
            // UInt128 division is several times faster than Int128's; equal for non-negative operands.
            return unchecked((long)(((UInt128)(ulong)a << 32) / (ulong)b));
        }
        return unchecked((long)(((Int128)a << 32) / b));
    }

    /// <summary><c>to_num::&lt;u16&gt;()</c>: fraction dropped, integer part wrapped to 16 bits.</summary>
    public ushort ToU16() => unchecked((ushort)(Bits >> FracBits));

    /// <summary><c>to_num::&lt;u64&gt;()</c>: fraction dropped, integer part wrapped to 64 bits.</summary>
    public ulong ToU64() => unchecked((ulong)(Bits >> FracBits));

    /// <summary><c>round()</c>: nearest integer, ties away from zero.</summary>
    public I32F32 Round()
    {
        const long half = 1L << (FracBits - 1);
        const long intMask = ~((1L << FracBits) - 1);
        return Bits >= 0
            ? new(unchecked((Bits + half) & intMask))
            : new(unchecked(-((-Bits + half) & intMask)));
    }

    public double ToDouble() => Bits / 4294967296.0;

    public static bool operator <(I32F32 a, I32F32 b) => a.Bits < b.Bits;
    public static bool operator >(I32F32 a, I32F32 b) => a.Bits > b.Bits;
    public static bool operator <=(I32F32 a, I32F32 b) => a.Bits <= b.Bits;
    public static bool operator >=(I32F32 a, I32F32 b) => a.Bits >= b.Bits;
    public static bool operator ==(I32F32 a, I32F32 b) => a.Bits == b.Bits;
    public static bool operator !=(I32F32 a, I32F32 b) => a.Bits != b.Bits;

    public bool Equals(I32F32 other) => Bits == other.Bits;
    public override bool Equals(object? obj) => obj is I32F32 o && o.Bits == Bits;
    public override int GetHashCode() => Bits.GetHashCode();
    public int CompareTo(I32F32 other) => Bits.CompareTo(other.Bits);
    public override string ToString() => ToDouble().ToString("R", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Signed 128-bit fixed point with 64 fraction bits (substrate_fixed <c>I64F64</c>); used for stake.</summary>
internal readonly struct I64F64 : IEquatable<I64F64>
{
    public readonly Int128 Bits;

    private I64F64(Int128 bits) => Bits = bits;

    public static readonly I64F64 Zero = default;

    public static I64F64 FromBits(Int128 bits) => new(bits);

    /// <summary><c>I64F64::from_num(u64)</c>; values above i64::MAX wrap, as the release runtime would.</summary>
    public static I64F64 FromInt(ulong value) => new(unchecked((Int128)(UInt128)value << 64));

    public static I64F64 operator +(I64F64 a, I64F64 b) => new(unchecked(a.Bits + b.Bits));

    /// <summary>(a &lt;&lt; 64) / b on 256 bits, truncated toward zero, low 128 bits kept.</summary>
    public static I64F64 operator /(I64F64 a, I64F64 b)
    {
        if (b.Bits == 0) throw new DivideByZeroException("I64F64 division by zero");
        var q = ((BigInteger)a.Bits << 64) / (BigInteger)b.Bits;
        return new(WrapToInt128(q));
    }

    internal static Int128 WrapToInt128(BigInteger q)
    {
        var mask = (BigInteger.One << 128) - 1;
        var low = q & mask; // two's complement low 128 bits (BigInteger & works on the infinite two's complement form)
        var u = (UInt128)low;
        return unchecked((Int128)u);
    }

    public static bool operator ==(I64F64 a, I64F64 b) => a.Bits == b.Bits;
    public static bool operator !=(I64F64 a, I64F64 b) => a.Bits != b.Bits;
    public bool Equals(I64F64 other) => Bits == other.Bits;
    public override bool Equals(object? obj) => obj is I64F64 o && o.Bits == Bits;
    public override int GetHashCode() => Bits.GetHashCode();
}

/// <summary>Signed 128-bit fixed point with 32 fraction bits (substrate_fixed <c>I96F32</c>); used for rao emission.</summary>
internal readonly struct I96F32
{
    public readonly Int128 Bits;

    private I96F32(Int128 bits) => Bits = bits;

    /// <summary><c>I96F32::from_num(I32F32)</c>: same fraction width, so the bits are sign-extended.</summary>
    public static I96F32 FromI32F32(I32F32 x) => new(x.Bits);

    /// <summary><c>I96F32::from_num(u64)</c>.</summary>
    public static I96F32 FromInt(ulong value) => new((Int128)(UInt128)value << 32);

    /// <summary>(a·b) &gt;&gt; 32 on the 256-bit product, low 128 bits kept.</summary>
    public static I96F32 operator *(I96F32 a, I96F32 b)
    {
        // Fast exact path for the epoch's case: share (0 <= a < 2^64) times an integer rao amount (low 32 bits zero).
        if (a.Bits >= 0 && a.Bits <= ulong.MaxValue && b.Bits >= 0 && (b.Bits & uint.MaxValue) == 0 && (b.Bits >> 32) <= ulong.MaxValue)
        {
            UInt128 p = (UInt128)(ulong)a.Bits * (ulong)(b.Bits >> 32);
            if (p <= (UInt128)Int128.MaxValue) return new((Int128)p);
        }
        if (FitsInLong(a.Bits) && FitsInLong(b.Bits))
        {
            long high = Math.BigMul((long)a.Bits, (long)b.Bits, out long low);
            Int128 product = new((ulong)high, (ulong)low);
            return new(product >> 32);
        }
        var q = ((BigInteger)a.Bits * (BigInteger)b.Bits) >> 32;
        return new(I64F64.WrapToInt128(q));
    }

    private static bool FitsInLong(Int128 v) => v >= long.MinValue && v <= long.MaxValue;

    /// <summary><c>to_num::&lt;u64&gt;()</c>: fraction dropped (toward -inf), wrapped to 64 bits.</summary>
    public ulong ToU64() => unchecked((ulong)(Bits >> 32));
}
