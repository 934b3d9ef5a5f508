using System.Runtime.CompilerServices;

namespace Bittensor.Core.Crypto;

/// <summary>
/// ristretto255 group and scalar arithmetic from libsodium, with the length checks and the identity/invalid
/// handling schnorrkel needs. Scalars are 32-byte little-endian; points are canonical 32-byte encodings.
/// </summary>
internal static unsafe class Ristretto
{
    internal const int ScalarBytes = 32;
    internal const int PointBytes = 32;

    /// <summary>The group order ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.</summary>
    private static ReadOnlySpan<byte> L =>
    [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    ];

    static Ristretto() => Sodium.EnsureInitialised();

    /// <summary>True when the 32-byte little-endian value is &lt; ℓ.</summary>
    internal static bool IsCanonicalScalar(ReadOnlySpan<byte> s)
    {
        var l = L;
        for (var i = 31; i >= 0; i--)
        {
            if (s[i] < l[i]) return true;
            if (s[i] > l[i]) return false;
        }
        return false;
    }

    /// <summary>q = n·B. False when the result is the identity (n ≡ 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool ScalarMultBase(ReadOnlySpan<byte> n, Span<byte> q)
    {
        Check(n, q);
        fixed (byte* pn = n)
        fixed (byte* pq = q)
            return SodiumNative.crypto_scalarmult_ristretto255_base(pq, pn) == 0;
    }

    /// <summary>q = n·p. False when p is not a valid encoding or the result is the identity.</summary>
    internal static bool ScalarMult(ReadOnlySpan<byte> n, ReadOnlySpan<byte> p, Span<byte> q)
    {
        Check(n, q);
        if (p.Length != PointBytes) throw new ArgumentException("point must be 32 bytes", nameof(p));
        fixed (byte* pn = n)
        fixed (byte* pp = p)
        fixed (byte* pq = q)
            return SodiumNative.crypto_scalarmult_ristretto255(pq, pn, pp) == 0;
    }

    /// <summary>True when the 32 bytes are a canonical ristretto255 encoding (the identity included).</summary>
    internal static bool IsValidPoint(ReadOnlySpan<byte> p)
    {
        if (p.Length != PointBytes) return false;
        fixed (byte* pp = p)
            return SodiumNative.crypto_core_ristretto255_is_valid_point(pp) == 1;
    }

    /// <summary>True for the all-zero encoding, the only encoding of the identity.</summary>
    internal static bool IsIdentity(ReadOnlySpan<byte> p) => p.Length == PointBytes && p.IndexOfAnyExcept((byte)0) < 0;

    /// <summary>r = p + q. False when an input is invalid.</summary>
    internal static bool Add(ReadOnlySpan<byte> p, ReadOnlySpan<byte> q, Span<byte> r)
    {
        CheckPoints(p, q, r);
        fixed (byte* pp = p)
        fixed (byte* pq = q)
        fixed (byte* pr = r)
            return SodiumNative.crypto_core_ristretto255_add(pr, pp, pq) == 0;
    }

    /// <summary>r = p − q. False when an input is invalid.</summary>
    internal static bool Sub(ReadOnlySpan<byte> p, ReadOnlySpan<byte> q, Span<byte> r)
    {
        CheckPoints(p, q, r);
        fixed (byte* pp = p)
        fixed (byte* pq = q)
        fixed (byte* pr = r)
            return SodiumNative.crypto_core_ristretto255_sub(pr, pp, pq) == 0;
    }

    /// <summary>r = s mod ℓ for a 64-byte little-endian s (dalek <c>from_bytes_mod_order_wide</c>).</summary>
    internal static void Reduce64(ReadOnlySpan<byte> s64, Span<byte> r)
    {
        if (s64.Length != 64) throw new ArgumentException("wide scalar must be 64 bytes", nameof(s64));
        if (r.Length != ScalarBytes) throw new ArgumentException("scalar must be 32 bytes", nameof(r));
        // libsodium's reduce takes a non-const pointer; work on a copy so the input span stays untouched.
        Span<byte> tmp = stackalloc byte[64];
        s64.CopyTo(tmp);
        fixed (byte* pt = tmp)
        fixed (byte* pr = r)
            SodiumNative.crypto_core_ristretto255_scalar_reduce(pr, pt);
        tmp.Clear();
    }

    /// <summary>r = s mod ℓ for a 32-byte little-endian s.</summary>
    internal static void Reduce32(ReadOnlySpan<byte> s32, Span<byte> r)
    {
        Span<byte> wide = stackalloc byte[64];
        wide.Clear();
        s32.CopyTo(wide);
        Reduce64(wide, r);
        wide.Clear();
    }

    /// <summary>z = x + y mod ℓ.</summary>
    internal static void ScalarAdd(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, Span<byte> z)
    {
        CheckPoints(x, y, z);
        fixed (byte* px = x)
        fixed (byte* py = y)
        fixed (byte* pz = z)
            SodiumNative.crypto_core_ristretto255_scalar_add(pz, px, py);
    }

    /// <summary>z = x · y mod ℓ.</summary>
    internal static void ScalarMul(ReadOnlySpan<byte> x, ReadOnlySpan<byte> y, Span<byte> z)
    {
        CheckPoints(x, y, z);
        fixed (byte* px = x)
        fixed (byte* py = y)
        fixed (byte* pz = z)
            SodiumNative.crypto_core_ristretto255_scalar_mul(pz, px, py);
    }

    private static void Check(ReadOnlySpan<byte> n, Span<byte> q)
    {
        if (n.Length != ScalarBytes) throw new ArgumentException("scalar must be 32 bytes", nameof(n));
        if (q.Length != PointBytes) throw new ArgumentException("point must be 32 bytes", nameof(q));
    }

    private static void CheckPoints(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> r)
    {
        if (a.Length != 32 || b.Length != 32 || r.Length != 32) throw new ArgumentException("operands must be 32 bytes");
    }
}
