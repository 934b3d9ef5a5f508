using System.Numerics;
using System.Runtime.Intrinsics;
using Bittensor.Core.Crypto;
using Bittensor.Core.Crypto.Curve25519;

namespace Bittensor.Core.Tests.Crypto;

/// <summary>The verification tests whose answers must not depend on the arithmetic path run in this collection, one class at a time.</summary>
[CollectionDefinition(Name)]
public sealed class VerifyPath
{
    internal const string Name = "sr25519 verify path";
}

/// <summary>
/// The 4-way AVX2 field and point arithmetic (<see cref="FieldElement4"/>, <see cref="ExtendedPoint4"/>) against the scalar
/// radix-2^51 arithmetic and BigInteger: random (fixed seed) and edge elements (0, 1, p − 1, p − k, encodings ≥ p), limbs
/// at the documented input bound, point additions, subtractions and doublings, and the whole verification combination.
/// On a CPU without AVX2 the vector path must be off (and these comparisons have nothing to compare).
/// </summary>
[Collection(VerifyPath.Name)]
public sealed class VectorArithmeticTests
{
    private static readonly BigInteger P = Constants.P;

    private static readonly int[] Offsets = [0, 26, 51, 77, 102, 128, 153, 179, 204, 230];

    private static BigInteger Value(in FieldElement4 v, int lane)
    {
        var x = BigInteger.Zero;
        for (var i = 0; i < 10; i++) x += new BigInteger(v.Limb(i).GetElement(lane)) << Offsets[i];
        return x;
    }

    private static BigInteger Mod(BigInteger x) => ((x % P) + P) % P;

    private static FieldElement FromInt(BigInteger x) => Constants.FromInteger(x);

    // Edge values: 0, 1, 2, p − 1, p − 2, p − 19, 2^255 − 20 = p − 1 written differently, 2^51 ± 1, 2^26 ± 1, 2^25, and raw encodings ≥ p
    // (p, p + 1, 2^255 − 1 with bit 255 clear, all-ones): FieldElement.FromBytes takes them as they are, non-canonical.
    private static IEnumerable<FieldElement> EdgeElements()
    {
        foreach (var x in new[]
                 {
                     BigInteger.Zero, BigInteger.One, 2, P - 1, P - 2, P - 19, P - 38, (BigInteger.One << 51) - 1, BigInteger.One << 51,
                     (BigInteger.One << 26) - 1, BigInteger.One << 26, BigInteger.One << 25, (BigInteger.One << 254) + 12345,
                 })
            yield return FromInt(x);
        foreach (var hex in new[]
                 {
                     "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p
                     "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p + 1
                     "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // 2^255 − 1
                     "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // bit 255 ignored
                 })
            yield return FieldElement.FromBytes(Convert.FromHexString(hex));
    }

    private static FieldElement RandomElement(Random rng)
    {
        var b = new byte[32];
        rng.NextBytes(b);
        return FieldElement.FromBytes(b);
    }

    private static List<FieldElement> Elements()
    {
        var rng = new Random(20261205);
        var list = EdgeElements().ToList();
        for (var i = 0; i < 200; i++) list.Add(RandomElement(rng));
        return list;
    }

    [Fact]
    public void The_vector_path_is_on_exactly_where_avx2_is_and_can_be_forced_off()
    {
        var before = VectorArithmetic.Enabled;
        try
        {
            Assert.Equal(VectorArithmetic.IsSupported && Environment.GetEnvironmentVariable("BITTENSOR_CRYPTO_SCALAR") != "1", VectorArithmetic.Default);
            VectorArithmetic.Enabled = true;
            Assert.Equal(VectorArithmetic.IsSupported, VectorArithmetic.Enabled);
            VectorArithmetic.Enabled = false;
            Assert.False(VectorArithmetic.Enabled);
        }
        finally
        {
            VectorArithmetic.Enabled = before;
        }
    }

    [Fact]
    public void Four_way_products_and_squares_equal_the_scalar_ones_on_random_and_edge_elements()
    {
        if (!VectorArithmetic.IsSupported)
        {
            Assert.False(VectorArithmetic.Enabled);
            return;
        }
        var xs = Elements();
        var checkedProducts = 0;
        for (var i = 0; i + 3 < xs.Count; i++)
        {
            // Lanes hold four different pairs: (x_i, x_{i+1}), (x_{i+1}, x_{i+2}), … so lanes cannot leak into each other unnoticed.
            var a = FieldElement4.Pack(xs[i], xs[i + 1], xs[i + 2], xs[i + 3]);
            var b = FieldElement4.Pack(xs[i + 1], xs[i + 2], xs[i + 3], xs[i]);
            var product = FieldElement4.Mul(a, b);
            var square = FieldElement4.Square(a);
            for (var lane = 0; lane < 4; lane++)
            {
                var x = xs[i + lane];
                var y = xs[i + ((lane + 1) % 4)];
                Assert.True(product.Lane(lane).Equals(FieldElement.Mul(x, y)), $"product, element {i}, lane {lane}");
                Assert.True(square.Lane(lane).Equals(FieldElement.Square(x)), $"square, element {i}, lane {lane}");
                Assert.Equal(Mod(Constants.ToInteger(x) * Constants.ToInteger(y)), Mod(Value(product, lane)));
                AssertReduced(product, lane);
                AssertReduced(square, lane);
                checkedProducts++;
            }
        }
        Assert.Equal(4 * (xs.Count - 3), checkedProducts);
    }

    [Fact]
    public void Products_of_limbs_at_the_documented_input_bound_do_not_overflow()
    {
        if (!VectorArithmetic.IsSupported)
        {
            Assert.False(VectorArithmetic.Enabled);
            return;
        }
        // Limbs just under 3·2^w + 2^19 (the bound FieldElement4.Mul documents), and mixtures with 0 and canonical maxima.
        const ulong even = (3UL << 26) + (1UL << 19) - 1, odd = (3UL << 25) + (1UL << 19) - 1;
        var max = Limbs(i => i % 2 == 0 ? even : odd);
        var alt = Limbs(i => i % 3 == 0 ? (i % 2 == 0 ? even : odd) : 0);
        var canon = Limbs(i => i % 2 == 0 ? FieldElement4.Mask26 : FieldElement4.Mask25);
        foreach (var (f, g) in new[] { (max, max), (max, alt), (alt, max), (max, canon), (canon, canon) })
        {
            var product = FieldElement4.Mul(f, g);
            var square = FieldElement4.Square(f);
            for (var lane = 0; lane < 4; lane++)
            {
                Assert.Equal(Mod(Value(f, lane) * Value(g, lane)), Mod(Value(product, lane)));
                Assert.Equal(Mod(Value(f, lane) * Value(f, lane)), Mod(Value(square, lane)));
                AssertReduced(product, lane);
                AssertReduced(square, lane);
            }
        }

        // One carry step brings limbs below 2^32 back to reduced form, keeping the value.
        var big = Limbs(i => uint.MaxValue - (ulong)i);
        var reduced = FieldElement4.ReduceParallel(big);
        for (var lane = 0; lane < 4; lane++)
        {
            Assert.Equal(Mod(Value(big, lane)), Mod(Value(reduced, lane)));
            AssertReduced(reduced, lane);
        }
    }

    private static FieldElement4 Limbs(Func<int, ulong> limb)
    {
        var v = new Vector256<ulong>[10];
        for (var i = 0; i < 10; i++) v[i] = Vector256.Create(limb(i), limb(i) >> 1, limb(i) >> 7, limb(i)); // four different lanes
        return new FieldElement4(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
    }

    private static void AssertReduced(in FieldElement4 v, int lane)
    {
        for (var i = 0; i < 10; i++)
        {
            var w = i % 2 == 0 ? 26 : 25;
            Assert.InRange(v.Limb(i).GetElement(lane), 0UL, (1UL << w) + (1UL << 18) - 1);
        }
    }

    private static ExtendedPoint Multiple(int m)
    {
        var p = RistrettoVartime.Basepoint;
        var r = ExtendedPoint.Identity;
        for (var i = 0; i < m; i++) r += p;
        return r;
    }

    private static void AssertSamePoint(in ExtendedPoint expected, in ExtendedPoint actual, string what)
    {
        // Same projective point: X1·Z2 = X2·Z1, Y1·Z2 = Y2·Z1, T1·Z2 = T2·Z1 (not only ristretto-equal).
        Assert.True(FieldElement.Mul(expected.X, actual.Z).Equals(FieldElement.Mul(actual.X, expected.Z)), what + ": X");
        Assert.True(FieldElement.Mul(expected.Y, actual.Z).Equals(FieldElement.Mul(actual.Y, expected.Z)), what + ": Y");
        Assert.True(FieldElement.Mul(expected.T, actual.Z).Equals(FieldElement.Mul(actual.T, expected.Z)), what + ": T");
    }

    [Fact]
    public void Four_way_additions_subtractions_and_doublings_equal_the_scalar_ones()
    {
        if (!VectorArithmetic.IsSupported)
        {
            Assert.False(VectorArithmetic.Enabled);
            return;
        }
        var points = new List<ExtendedPoint> { ExtendedPoint.Identity };
        for (var m = 1; m <= 9; m++) points.Add(Multiple(m));
        points.Add(Multiple(7).Negate());
        // A point not in affine form (Z ≠ 1) as the accumulator, as in the combination's chain.
        points.Add(Multiple(3).Double().Double());
        var table = new CachedTable4(points.Count);
        var affine = new AffineCachedPoint[points.Count];
        ExtendedPoint.ToAffineCached(points.ToArray(), affine);
        for (var j = 0; j < points.Count; j++) table.Set(j, affine[j]);

        foreach (var p in points)
        {
            var p4 = ExtendedPoint4.From(p);
            AssertSamePoint(p.Double(), p4.Double().ToExtended(), "double");
            AssertSamePoint(p.Double().Double(), p4.Double().Double().ToExtended(), "double twice");
            for (var j = 0; j < points.Count; j++)
            {
                AssertSamePoint(p.Add(affine[j]).ToExtended(), p4.AddCached(table.Get(j), negate: false).ToExtended(), $"add {j}");
                AssertSamePoint(p.Sub(affine[j]).ToExtended(), p4.AddCached(table.Get(j), negate: true).ToExtended(), $"sub {j}");
                // Chains: the vector result fed back (its limbs are what Mul returns, not canonical).
                var chained = p4.AddCached(table.Get(j), negate: false).Double().AddCached(table.Get(j), negate: true);
                AssertSamePoint(p.Add(affine[j]).ToExtended().Double().Sub(affine[j]).ToExtended(), chained.ToExtended(), $"chain {j}");
            }
        }
    }

    [Fact]
    public void The_verification_combination_is_the_same_point_on_both_paths()
    {
        if (!VectorArithmetic.IsSupported)
        {
            Assert.False(VectorArithmetic.Enabled);
            return;
        }
        var rng = new Random(511);
        var before = VectorArithmetic.Enabled;
        try
        {
            for (var round = 0; round < 40; round++)
            {
                var keyScalar = new byte[64];
                rng.NextBytes(keyScalar);
                var reduced = new byte[32];
                Ristretto.Reduce64(keyScalar, reduced);
                var pub = new byte[32];
                Assert.True(Ristretto.ScalarMultBase(reduced, pub));
                Assert.True(RistrettoVartime.TryDecode(pub, out var a));
                var key = new VerifyingKey(a.Negate());
                var k = Scalar(rng, round);
                var s = Scalar(rng, round + 1);
                VectorArithmetic.Enabled = false;
                var scalar = RistrettoVartime.VerifyCombination(k, key, s);
                VectorArithmetic.Enabled = true;
                var vector = RistrettoVartime.VerifyCombination(k, key, s);
                Assert.True(FieldElement.Mul(scalar.X, vector.Z).Equals(FieldElement.Mul(vector.X, scalar.Z)), $"round {round}: X");
                Assert.True(FieldElement.Mul(scalar.Y, vector.Z).Equals(FieldElement.Mul(vector.Y, scalar.Z)), $"round {round}: Y");
            }
        }
        finally
        {
            VectorArithmetic.Enabled = before;
        }
    }

    [Fact]
    public void The_batch_combination_is_the_same_point_on_both_paths()
    {
        if (!VectorArithmetic.IsSupported)
        {
            Assert.False(VectorArithmetic.Enabled);
            return;
        }
        var rng = new Random(4096);
        var before = VectorArithmetic.Enabled;
        try
        {
            foreach (var (nk, np) in new[] { (1, 1), (1, 6), (3, 5), (5, 16) })
            {
                var keys = new VerifyingKey[nk];
                var keyScalars = new byte[32 * nk];
                for (var j = 0; j < nk; j++)
                {
                    keys[j] = new VerifyingKey(RandomPoint(rng).Negate());
                    rng.NextBytes(keyScalars.AsSpan(32 * j, 32));
                    keyScalars[(32 * j) + 31] &= 0x0f;
                }
                var points = new ExtendedPoint[np];
                var pointScalars = new byte[32 * np];
                for (var j = 0; j < np; j++)
                {
                    points[j] = RandomPoint(rng);
                    rng.NextBytes(pointScalars.AsSpan(32 * j, 16)); // coefficients below 2^128, as a batch's zᵢ
                }
                var baseScalar = new byte[32];
                rng.NextBytes(baseScalar);
                baseScalar[31] &= 0x0f;
                VectorArithmetic.Enabled = false;
                var scalar = RistrettoVartime.BatchCombination(keyScalars, keys, pointScalars, points, baseScalar);
                VectorArithmetic.Enabled = true;
                var vector = RistrettoVartime.BatchCombination(keyScalars, keys, pointScalars, points, baseScalar);
                Assert.False(scalar.IsRistrettoIdentity, $"{nk} keys, {np} points: a random combination is not the identity");
                Assert.True(FieldElement.Mul(scalar.X, vector.Z).Equals(FieldElement.Mul(vector.X, scalar.Z)), $"{nk} keys, {np} points: X");
                Assert.True(FieldElement.Mul(scalar.Y, vector.Z).Equals(FieldElement.Mul(vector.Y, scalar.Z)), $"{nk} keys, {np} points: Y");
            }
        }
        finally
        {
            VectorArithmetic.Enabled = before;
        }
    }

    private static ExtendedPoint RandomPoint(Random rng)
    {
        var wide = new byte[64];
        rng.NextBytes(wide);
        var scalar = new byte[32];
        Ristretto.Reduce64(wide, scalar);
        var encoded = new byte[32];
        Assert.True(Ristretto.ScalarMultBase(scalar, encoded));
        Assert.True(RistrettoVartime.TryDecode(encoded, out var p));
        return p;
    }

    // Scalars below 2^255: random, and in some rounds 0, 1, all digits negative-heavy (0x7f…), or a single top bit.
    private static byte[] Scalar(Random rng, int round)
    {
        var s = new byte[32];
        switch (round % 5)
        {
            case 0:
                break;
            case 1:
                s[0] = 1;
                break;
            case 2:
                s.AsSpan().Fill(0xff);
                s[31] = 0x7f;
                break;
            case 3:
                s[31] = 0x40;
                break;
            default:
                rng.NextBytes(s);
                s[31] &= 0x7f;
                break;
        }
        if (round >= 5 && round % 5 != 4)
        {
            rng.NextBytes(s);
            s[31] &= 0x1f;
        }
        return s;
    }
}

/// <summary>The verification tests again with the vector arithmetic off (the scalar path every CPU has).</summary>
public static class ScalarPath
{
    internal static void Enter() => VectorArithmetic.Enabled = false;

    internal static void Leave() => VectorArithmetic.Enabled = VectorArithmetic.Default;
}

[Collection(VerifyPath.Name)]
public sealed class FastVerifyScalarPathTests : FastVerifyTests, IDisposable
{
    public FastVerifyScalarPathTests() => ScalarPath.Enter();

    public void Dispose() => ScalarPath.Leave();
}

[Collection(VerifyPath.Name)]
public sealed class BatchVerifyScalarPathTests : BatchVerifyTests, IDisposable
{
    public BatchVerifyScalarPathTests() => ScalarPath.Enter();

    public void Dispose() => ScalarPath.Leave();
}

[Collection(VerifyPath.Name)]
public sealed class PreparedKeyCacheScalarPathTests : PreparedKeyCacheTests, IDisposable
{
    public PreparedKeyCacheScalarPathTests() => ScalarPath.Enter();

    public void Dispose() => ScalarPath.Leave();
}

[Collection(VerifyPath.Name)]
public sealed class PolkadotJsVectorScalarPathTests : PolkadotJsVectorTests, IDisposable
{
    public PolkadotJsVectorScalarPathTests() => ScalarPath.Enter();

    public void Dispose() => ScalarPath.Leave();
}

[Collection(VerifyPath.Name)]
public sealed class CryptoPropertiesScalarPathTests : CryptoProperties, IDisposable
{
    public CryptoPropertiesScalarPathTests() => ScalarPath.Enter();

    public void Dispose() => ScalarPath.Leave();
}

[Collection(VerifyPath.Name)]
public sealed class Sr25519ScalarPathTests : Sr25519Tests, IDisposable
{
    public Sr25519ScalarPathTests() => ScalarPath.Enter();

    public void Dispose() => ScalarPath.Leave();
}
