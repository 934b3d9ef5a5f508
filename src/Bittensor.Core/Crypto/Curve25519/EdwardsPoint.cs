using System.Runtime.CompilerServices;

namespace Bittensor.Core.Crypto.Curve25519;

// Point representations on the twisted Edwards curve −x² + y² = 1 + d·x²·y² (edwards25519), after
// Hisil–Wong–Carter–Dawson "Twisted Edwards curves revisited" (2008), in the layout ref10 made common:
//   extended   (X:Y:Z:T)  x = X/Z, y = Y/Z, x·y = T/Z
//   projective (X:Y:Z)    the same without T (enough for doubling)
//   completed  ((X:Z),(Y:T)) x = X/Z, y = Y/T (the output of an addition or doubling)
//   cached     (Y+X, Y−X, Z, 2d·T)  an addend in extended form
//   affine cached (y+x, y−x, 2d·x·y)  an addend with Z = 1 (precomputed tables)
// Variable time throughout: only for public points and scalars.

/// <summary>A point in extended coordinates.</summary>
internal readonly struct ExtendedPoint
{
    internal readonly FieldElement X, Y, Z, T;

    internal ExtendedPoint(in FieldElement x, in FieldElement y, in FieldElement z, in FieldElement t)
    {
        X = x;
        Y = y;
        Z = z;
        T = t;
    }

    internal static ExtendedPoint Identity => new(FieldElement.Zero, FieldElement.One, FieldElement.One, FieldElement.Zero);

    internal ProjectivePoint ToProjective() => new(X, Y, Z);

    internal ExtendedPoint Negate() => new(FieldElement.Neg(X), Y, Z, FieldElement.Neg(T));

    [MethodImpl(JitOptions.Hot)]
    internal CachedPoint ToCached() =>
        new(FieldElement.Add(Y, X), FieldElement.Sub(Y, X), Z, FieldElement.Mul(T, Constants.D2));

    [MethodImpl(JitOptions.Hot)]
    internal AffineCachedPoint ToAffineCached()
    {
        var zInv = FieldElement.Invert(Z);
        var x = FieldElement.Mul(X, zInv);
        var y = FieldElement.Mul(Y, zInv);
        return new AffineCachedPoint(FieldElement.Add(y, x), FieldElement.Sub(y, x), FieldElement.Mul(FieldElement.Mul(x, y), Constants.D2));
    }

    /// <summary>
    /// Affine cached forms of many points with one field inversion (Montgomery's trick: prefix products of the Z
    /// coordinates, one inversion, then back). No point may have Z = 0 (none on the curve does).
    /// </summary>
    [MethodImpl(JitOptions.Hot)]
    internal static void ToAffineCached(ReadOnlySpan<ExtendedPoint> points, Span<AffineCachedPoint> output)
    {
        var n = points.Length;
        if (n == 0) return;
        Span<FieldElement> prefix = n <= 128 ? stackalloc FieldElement[n] : new FieldElement[n];
        var acc = FieldElement.One;
        for (var i = 0; i < n; i++)
        {
            prefix[i] = acc;                           // Z0·…·Z(i−1)
            acc = FieldElement.Mul(acc, points[i].Z);
        }
        var inv = FieldElement.Invert(acc);            // 1 / (Z0·…·Z(n−1))
        for (var i = n - 1; i >= 0; i--)
        {
            var zInv = FieldElement.Mul(inv, prefix[i]); // 1 / Zi
            inv = FieldElement.Mul(inv, points[i].Z);
            var x = FieldElement.Mul(points[i].X, zInv);
            var y = FieldElement.Mul(points[i].Y, zInv);
            output[i] = new AffineCachedPoint(FieldElement.Add(y, x), FieldElement.Sub(y, x), FieldElement.Mul(FieldElement.Mul(x, y), Constants.D2));
        }
    }

    [MethodImpl(JitOptions.Hot)]
    internal ExtendedPoint Double() => ToProjective().Double().ToExtended();

    [MethodImpl(JitOptions.Hot)]
    public static ExtendedPoint operator +(in ExtendedPoint a, in ExtendedPoint b) => a.Add(b.ToCached()).ToExtended();

    [MethodImpl(JitOptions.Hot)]
    public static ExtendedPoint operator -(in ExtendedPoint a, in ExtendedPoint b) => a.Sub(b.ToCached()).ToExtended();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal CompletedPoint Add(in CachedPoint q)
    {
        var pp = FieldElement.Mul(FieldElement.Add(Y, X), q.YPlusX);
        var mm = FieldElement.Mul(FieldElement.Sub(Y, X), q.YMinusX);
        var tt2d = FieldElement.Mul(T, q.T2d);
        var zz = FieldElement.Mul(Z, q.Z);
        var zz2 = FieldElement.Add(zz, zz);
        return new CompletedPoint(FieldElement.Sub(pp, mm), FieldElement.Add(pp, mm), FieldElement.Add(zz2, tt2d), FieldElement.Sub(zz2, tt2d));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal CompletedPoint Sub(in CachedPoint q)
    {
        var pm = FieldElement.Mul(FieldElement.Add(Y, X), q.YMinusX);
        var mp = FieldElement.Mul(FieldElement.Sub(Y, X), q.YPlusX);
        var tt2d = FieldElement.Mul(T, q.T2d);
        var zz = FieldElement.Mul(Z, q.Z);
        var zz2 = FieldElement.Add(zz, zz);
        return new CompletedPoint(FieldElement.Sub(pm, mp), FieldElement.Add(pm, mp), FieldElement.Sub(zz2, tt2d), FieldElement.Add(zz2, tt2d));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal CompletedPoint Add(in AffineCachedPoint q)
    {
        var pp = FieldElement.Mul(FieldElement.Add(Y, X), q.YPlusX);
        var mm = FieldElement.Mul(FieldElement.Sub(Y, X), q.YMinusX);
        var txy2d = FieldElement.Mul(T, q.XY2d);
        var z2 = FieldElement.Add(Z, Z);
        return new CompletedPoint(FieldElement.Sub(pp, mm), FieldElement.Add(pp, mm), FieldElement.Add(z2, txy2d), FieldElement.Sub(z2, txy2d));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal CompletedPoint Sub(in AffineCachedPoint q)
    {
        var pm = FieldElement.Mul(FieldElement.Add(Y, X), q.YMinusX);
        var mp = FieldElement.Mul(FieldElement.Sub(Y, X), q.YPlusX);
        var txy2d = FieldElement.Mul(T, q.XY2d);
        var z2 = FieldElement.Add(Z, Z);
        return new CompletedPoint(FieldElement.Sub(pm, mp), FieldElement.Add(pm, mp), FieldElement.Sub(z2, txy2d), FieldElement.Add(z2, txy2d));
    }

    /// <summary>Ristretto equality (RFC 9496 §4.3.3): X1·Y2 == Y1·X2 or Y1·Y2 == X1·X2.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal bool RistrettoEquals(in ExtendedPoint other) =>
        FieldElement.Mul(X, other.Y).Equals(FieldElement.Mul(Y, other.X)) ||
        FieldElement.Mul(Y, other.Y).Equals(FieldElement.Mul(X, other.X));

    /// <summary>Equal to the ristretto identity: X = 0 or Y = 0.</summary>
    internal bool IsRistrettoIdentity => X.IsZero || Y.IsZero;
}

/// <summary>A point in projective coordinates (X:Y:Z).</summary>
internal readonly struct ProjectivePoint
{
    internal readonly FieldElement X, Y, Z;

    internal ProjectivePoint(in FieldElement x, in FieldElement y, in FieldElement z)
    {
        X = x;
        Y = y;
        Z = z;
    }

    internal static ProjectivePoint Identity => new(FieldElement.Zero, FieldElement.One, FieldElement.One);

    /// <summary>Ristretto equality with an extended point (RFC 9496 §4.3.3): X1·Y2 == Y1·X2 or Y1·Y2 == X1·X2.</summary>
    [MethodImpl(JitOptions.Hot)]
    internal bool RistrettoEquals(in ExtendedPoint other) =>
        FieldElement.Mul(X, other.Y).Equals(FieldElement.Mul(Y, other.X)) ||
        FieldElement.Mul(Y, other.Y).Equals(FieldElement.Mul(X, other.X));

    /// <summary>Equal to the ristretto identity (0, 1): X = 0 or Y = 0.</summary>
    internal bool IsRistrettoIdentity => X.IsZero || Y.IsZero;

    /// <summary>The extended form (one inversion-free step: (XZ : YZ : Z² : XY)).</summary>
    [MethodImpl(JitOptions.Hot)]
    internal ExtendedPoint ToExtended() =>
        new(FieldElement.Mul(X, Z), FieldElement.Mul(Y, Z), FieldElement.Square(Z), FieldElement.Mul(X, Y));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal CompletedPoint Double()
    {
        var xx = FieldElement.Square(X);
        var yy = FieldElement.Square(Y);
        var zz2 = FieldElement.Square2(Z);
        var xPlusYSq = FieldElement.Square(FieldElement.Add(X, Y));
        var yyPlusXx = FieldElement.Add(yy, xx);
        var yyMinusXx = FieldElement.Sub(yy, xx);
        return new CompletedPoint(FieldElement.Sub(xPlusYSq, yyPlusXx), yyPlusXx, yyMinusXx, FieldElement.Sub(zz2, yyMinusXx));
    }
}

/// <summary>A completed point ((X:Z),(Y:T)).</summary>
internal readonly struct CompletedPoint
{
    internal readonly FieldElement X, Y, Z, T;

    internal CompletedPoint(in FieldElement x, in FieldElement y, in FieldElement z, in FieldElement t)
    {
        X = x;
        Y = y;
        Z = z;
        T = t;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ProjectivePoint ToProjective() =>
        new(FieldElement.Mul(X, T), FieldElement.Mul(Y, Z), FieldElement.Mul(Z, T));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ExtendedPoint ToExtended() =>
        new(FieldElement.Mul(X, T), FieldElement.Mul(Y, Z), FieldElement.Mul(Z, T), FieldElement.Mul(X, Y));
}

/// <summary>An extended point prepared as an addend: (Y+X, Y−X, Z, 2d·T).</summary>
internal readonly struct CachedPoint
{
    internal readonly FieldElement YPlusX, YMinusX, Z, T2d;

    internal CachedPoint(in FieldElement yPlusX, in FieldElement yMinusX, in FieldElement z, in FieldElement t2d)
    {
        YPlusX = yPlusX;
        YMinusX = yMinusX;
        Z = z;
        T2d = t2d;
    }
}

/// <summary>An affine point prepared as an addend: (y+x, y−x, 2d·x·y).</summary>
internal readonly struct AffineCachedPoint
{
    internal readonly FieldElement YPlusX, YMinusX, XY2d;

    internal AffineCachedPoint(in FieldElement yPlusX, in FieldElement yMinusX, in FieldElement xy2d)
    {
        YPlusX = yPlusX;
        YMinusX = yMinusX;
        XY2d = xy2d;
    }
}
