using System.Numerics;
using System.Security.Cryptography;
using Bittensor.Core.Crypto;
using Bittensor.Core.Crypto.Curve25519;
using FsCheck.Xunit;

namespace Bittensor.Core.Tests.Crypto;

/// <summary>
/// The managed variable-time verifier against BigInteger arithmetic and against libsodium (the constant-time
/// path kept as <see cref="Sr25519.VerifyWithLibsodium"/>): field, decode/encode, scalar multiplication, and
/// verify on valid, tampered and malformed inputs.
/// </summary>
[Collection(VerifyPath.Name)]
public class FastVerifyTests
{
    private static readonly BigInteger P = Constants.P;

    private static readonly BigInteger L = BigInteger.Pow(2, 252) + BigInteger.Parse("27742317777372353535851937790883648493", System.Globalization.CultureInfo.InvariantCulture);

    // Small-order edwards25519 encodings and other edge encodings, tried as ristretto points, public keys and R.
    private static readonly string[] EdgeEncodings =
    [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "0200000000000000000000000000000000000000000000000000000000000000",
        "0400000000000000000000000000000000000000000000000000000000000000",
    ];

    private static BigInteger ToInt(byte[] b) => new(b, isUnsigned: true, isBigEndian: false);

    private static byte[] Hash32(byte[]? material, byte tag) => SHA256.HashData([tag, .. material ?? []]);

    /// <summary>A canonical scalar (&lt; ℓ) from arbitrary bytes.</summary>
    private static byte[] ScalarFrom(byte[]? material, byte tag)
    {
        var wide = SHA512.HashData([tag, .. material ?? []]);
        var s = new byte[32];
        Ristretto.Reduce64(wide, s);
        return s;
    }

    private static byte[] PointFrom(byte[]? material, byte tag)
    {
        var p = new byte[32];
        Assert.True(Ristretto.ScalarMultBase(ScalarFrom(material, tag), p));
        return p;
    }

    private static byte[] Encode(in ExtendedPoint p)
    {
        var b = new byte[32];
        RistrettoVartime.Encode(p, b);
        return b;
    }

    [Fact]
    public void Constants_satisfy_their_defining_equations()
    {
        var minusOne = FieldElement.Neg(FieldElement.One);
        Assert.True(FieldElement.Square(Constants.SqrtM1).Equals(minusOne));
        Assert.False(Constants.SqrtM1.IsNegative);
        // INVSQRT_A_MINUS_D² · (a − d) = 1 with a = −1.
        var aMinusD = FieldElement.Sub(minusOne, Constants.D);
        Assert.True(FieldElement.Mul(FieldElement.Square(Constants.InvSqrtAMinusD), aMinusD).Equals(FieldElement.One));
        Assert.Equal(Constants.Mod(2 * Constants.DValue), Constants.ToInteger(Constants.D2));
        // The basepoint round-trips through our decode/encode.
        Assert.Equal(RistrettoVartime.BasepointBytes.ToArray(), Encode(RistrettoVartime.Basepoint));
    }

    [Property(MaxTest = 300)]
    public bool Field_arithmetic_matches_BigInteger(byte[] xa, byte[] xb)
    {
        var a = Hash32(xa, 1);
        var b = Hash32(xb, 2);
        a[31] &= 0x7f;
        b[31] &= 0x7f;
        var fa = FieldElement.FromBytes(a);
        var fb = FieldElement.FromBytes(b);
        BigInteger ia = ToInt(a) % P, ib = ToInt(b) % P;
        return Constants.ToInteger(FieldElement.Mul(fa, fb)) == ia * ib % P
            && Constants.ToInteger(FieldElement.Square(fa)) == ia * ia % P
            && Constants.ToInteger(FieldElement.Square2(fa)) == 2 * ia * ia % P
            && Constants.ToInteger(FieldElement.Add(fa, fb)) == (ia + ib) % P
            && Constants.ToInteger(FieldElement.Sub(fa, fb)) == Constants.Mod(ia - ib)
            && Constants.ToInteger(FieldElement.Neg(fa)) == Constants.Mod(-ia)
            && Constants.ToInteger(FieldElement.Invert(fa)) == BigInteger.ModPow(ia, P - 2, P)
            && Constants.ToInteger(FieldElement.Pow22523(fa)) == BigInteger.ModPow(ia, (P - 5) / 8, P);
    }

    [Fact]
    public void Field_encoding_is_canonical_at_the_edges()
    {
        foreach (var v in new[] { BigInteger.Zero, BigInteger.One, P - 1, P - 19, (BigInteger.One << 255) - 20 })
        {
            var bytes = new byte[32];
            v.TryWriteBytes(bytes, out _, isUnsigned: true);
            Assert.Equal(v % P, Constants.ToInteger(FieldElement.FromBytes(bytes)));
        }
        // Values in [p, 2^255) reduce to v − p.
        for (var extra = 0; extra < 19; extra++)
        {
            var v = P + extra;
            var bytes = new byte[32];
            v.TryWriteBytes(bytes, out _, isUnsigned: true);
            Assert.Equal(new BigInteger(extra), Constants.ToInteger(FieldElement.FromBytes(bytes)));
            Assert.False(RistrettoVartime.IsCanonicalFieldEncoding(bytes));
        }
    }

    [Property(MaxTest = 200)]
    public bool Decode_then_encode_is_the_identity_on_libsodium_points(byte[] material)
    {
        var p = PointFrom(material, 3);
        return RistrettoVartime.TryDecode(p, out var point) && Encode(point).AsSpan().SequenceEqual(p);
    }

    [Property(MaxTest = 300)]
    public bool Decode_accepts_exactly_what_libsodium_accepts_on_random_and_mutated_bytes(byte[] material, int bit)
    {
        var random = Hash32(material, 4);
        var mutated = PointFrom(material, 5);
        mutated[(int)((uint)bit % 256) / 8] ^= (byte)(1 << ((int)((uint)bit % 256) % 8));
        return RistrettoVartime.TryDecode(random, out _) == Ristretto.IsValidPoint(random)
            && RistrettoVartime.TryDecode(mutated, out _) == Ristretto.IsValidPoint(mutated);
    }

    [Fact]
    public void Decode_agrees_with_libsodium_on_edge_encodings_and_non_canonical_aliases()
    {
        var candidates = EdgeEncodings.Select(Convert.FromHexString).ToList();
        // Non-canonical aliases v + p (< 2^255) of small field values, and the high bit set on valid points.
        for (var v = 0; v < 19; v++)
        {
            var b = new byte[32];
            (P + v).TryWriteBytes(b, out _, isUnsigned: true);
            candidates.Add(b);
        }
        for (byte tag = 0; tag < 16; tag++)
        {
            var p = PointFrom([tag], 6);
            p[31] |= 0x80;
            candidates.Add(p);
        }
        foreach (var c in candidates)
            Assert.True(RistrettoVartime.TryDecode(c, out _) == Ristretto.IsValidPoint(c), Convert.ToHexString(c));
        Assert.True(RistrettoVartime.TryDecode(new byte[32], out var identity));
        Assert.True(identity.IsRistrettoIdentityForTest());
    }

    [Fact]
    public void Small_multiples_of_the_basepoint_encode_as_libsodium_computes_them()
    {
        var acc = ExtendedPoint.Identity;
        for (var k = 1; k < 20; k++)
        {
            acc += RistrettoVartime.Basepoint;
            var scalar = new byte[32];
            scalar[0] = (byte)k;
            var expected = new byte[32];
            Assert.True(Ristretto.ScalarMultBase(scalar, expected));
            Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(Encode(acc)));
        }
    }

    [Property(MaxTest = 100)]
    public bool Double_scalar_multiplication_matches_libsodium(byte[] material)
    {
        var a = ScalarFrom(material, 7);
        var b = ScalarFrom(material, 8);
        var pBytes = PointFrom(material, 9);
        Assert.True(RistrettoVartime.TryDecode(pBytes, out var p));

        Span<byte> aP = stackalloc byte[32];
        Span<byte> bB = stackalloc byte[32];
        Span<byte> expected = stackalloc byte[32];
        Assert.True(Ristretto.ScalarMult(a, pBytes, aP));
        Assert.True(Ristretto.ScalarMultBase(b, bB));
        Assert.True(Ristretto.Add(aP, bB, expected));

        var computed = RistrettoVartime.DoubleScalarMulBase(a, p, b);
        var multi = RistrettoVartime.MultiScalarMulBase(a, [p], b);
        return Encode(computed.ToExtended()).AsSpan().SequenceEqual(expected)
            && Encode(multi.ToExtended()).AsSpan().SequenceEqual(expected);
    }

    [Property(MaxTest = 60)]
    public bool Chunked_verification_combination_matches_libsodium(byte[] material)
    {
        // k·(−A) + s·B over a prepared key (four 64-bit chunks) == s·B − k·A from libsodium.
        var k = ScalarFrom(material, 19);
        var s = ScalarFrom(material, 20);
        var aBytes = PointFrom(material, 21);
        var key = VerifyingKey.Get(aBytes);
        Assert.NotNull(key);

        Span<byte> kA = stackalloc byte[32];
        Span<byte> sB = stackalloc byte[32];
        Span<byte> expected = stackalloc byte[32];
        Assert.True(Ristretto.ScalarMult(k, aBytes, kA));
        Assert.True(Ristretto.ScalarMultBase(s, sB));
        Assert.True(Ristretto.Sub(sB, kA, expected));

        var single = RistrettoVartime.VerifyCombination(k, key, s);
        // The batch form with one key, no extra points: the same sum.
        var batch = RistrettoVartime.BatchCombination(k, [key], [], [], s);
        return Encode(single.ToExtended()).AsSpan().SequenceEqual(expected)
            && Encode(batch.ToExtended()).AsSpan().SequenceEqual(expected);
    }

    [Fact]
    public void A_prepared_key_cache_that_was_cleared_or_overflowed_still_verifies()
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(Hash32([7], 22));
        var sig = pair.Sign("cache"u8);
        VerifyingKey.ClearCache();
        Assert.True(Sr25519.Verify(pair.PublicKey.Span, "cache"u8, sig)); // first sight: prepares the key
        Assert.True(Sr25519.Verify(pair.PublicKey.Span, "cache"u8, sig)); // cached
        Assert.False(Sr25519.Verify(pair.PublicKey.Span, "cachf"u8, sig));
        // Fill the cache past its bound with other valid keys: it stays bounded and verification is unaffected.
        for (var i = 0; i < 1100; i++) VerifyingKey.Get(PointFrom([(byte)i, (byte)(i >> 8)], 23));
        Assert.InRange(VerifyingKey.CachedCount, 1, 1024);
        Assert.True(Sr25519.Verify(pair.PublicKey.Span, "cache"u8, sig));
    }

    [Property(MaxTest = 200)]
    public bool Non_adjacent_form_sums_back_to_the_scalar(byte[] material, bool wide)
    {
        var s = ScalarFrom(material, 10);
        var w = wide ? RistrettoVartime.BaseWidth : RistrettoVartime.VariableWidth;
        Span<sbyte> naf = stackalloc sbyte[256];
        var top = RistrettoVartime.NonAdjacentForm(s, w, naf);
        BigInteger sum = 0;
        var lastNonZero = -w;
        for (var i = 255; i >= 0; i--)
        {
            if (naf[i] == 0) continue;
            if ((naf[i] & 1) == 0 || Math.Abs((int)naf[i]) >= 1 << (w - 1)) return false;
            sum += (BigInteger)naf[i] << i;
        }
        for (var i = 0; i < 256; i++)
        {
            if (naf[i] == 0) continue;
            if (i - lastNonZero < w) return false;
            lastNonZero = i;
        }
        return sum == ToInt(s) && (top < 0 || naf[top] != 0);
    }

    // ---- verify: the managed path against libsodium ----

    private static bool BothAgree(ReadOnlySpan<byte> pub, ReadOnlySpan<byte> msg, ReadOnlySpan<byte> sig, out bool result)
    {
        result = Sr25519.Verify(pub, msg, sig);
        return result == Sr25519.VerifyWithLibsodium(pub, msg, sig);
    }

    [Property(MaxTest = 150)]
    public bool Valid_signatures_verify_on_both_paths(byte[] material, byte[] message)
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(Hash32(material, 11));
        message ??= [];
        var sig = pair.Sign(message);
        return BothAgree(pair.PublicKey.Span, message, sig, out var ok) && ok;
    }

    [Property(MaxTest = 150)]
    public bool Tampered_signatures_messages_and_keys_are_rejected_by_both_paths(byte[] material, byte[] message, int bit, byte delta)
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(Hash32(material, 12));
        message ??= [];
        var pub = pair.PublicKey.ToArray();
        var sig = pair.Sign(message);
        var index = (int)((uint)bit % 512);

        var flipped = (byte[])sig.Clone();
        flipped[index / 8] ^= (byte)(1 << (index % 8));
        byte[] otherMessage = message.Length == 0 ? [delta] : [.. message[..^1], (byte)(message[^1] ^ (delta | 1))];
        var otherPub = (byte[])pub.Clone();
        otherPub[index % 256 / 8] ^= (byte)(1 << (index % 8));

        return BothAgree(pub, message, flipped, out var a) && !a
            && BothAgree(pub, otherMessage, sig, out var b) && !b
            && BothAgree(otherPub, message, sig, out var c) && !c;
    }

    [Property(MaxTest = 150)]
    public bool Scalars_at_or_above_the_group_order_and_missing_markers_are_rejected(byte[] material, byte[] message, ushort offset)
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(Hash32(material, 13));
        message ??= [];
        var pub = pair.PublicKey.Span;
        var sig = pair.Sign(message);
        var sBytes = sig[32..];
        sBytes[31] &= 0x7f;
        var s = ToInt(sBytes);

        // s + ℓ·m for m = 1 (always < 2^255 since s < ℓ < 2^253) and s + ℓ + offset: non-canonical, same value mod ℓ.
        var aliased = (byte[])sig.Clone();
        WriteScalar(aliased, s + L);
        var above = (byte[])sig.Clone();
        WriteScalar(above, L + offset);
        var noMarker = (byte[])sig.Clone();
        noMarker[63] &= 0x7f;
        var zero = (byte[])sig.Clone();
        WriteScalar(zero, 0);

        return BothAgree(pub, message, aliased, out var a) && !a
            && BothAgree(pub, message, above, out var b) && !b
            && BothAgree(pub, message, noMarker, out var c) && !c
            && BothAgree(pub, message, zero, out var d) && !d;
    }

    private static void WriteScalar(byte[] sig, BigInteger s)
    {
        var b = new byte[32];
        s.TryWriteBytes(b, out _, isUnsigned: true);
        b[31] |= 0x80;
        b.CopyTo(sig, 32);
    }

    [Fact]
    public void Identity_small_order_and_non_canonical_points_as_key_or_R_agree_with_libsodium()
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(Hash32([1, 2, 3], 14));
        var msg = "edge"u8.ToArray();
        var pub = pair.PublicKey.ToArray();
        var sig = pair.Sign(msg);
        var candidates = EdgeEncodings.Select(Convert.FromHexString).ToList();
        var highBitPub = (byte[])pub.Clone();
        highBitPub[31] |= 0x80;
        candidates.Add(highBitPub);
        var highBitR = sig[..32];
        highBitR[31] |= 0x80;
        candidates.Add(highBitR);
        foreach (var c in candidates)
        {
            Assert.True(BothAgree(c, msg, sig, out var asKey), "key " + Convert.ToHexString(c));
            Assert.False(asKey);
            var withR = (byte[])sig.Clone();
            c.CopyTo(withR, 0);
            Assert.True(BothAgree(pub, msg, withR, out var asR), "R " + Convert.ToHexString(c));
            Assert.False(asR);
        }

        // A forgery with the identity key: R = s·B satisfies s·B − k·A = R for A = identity. Both paths refuse it.
        var s = ScalarFrom([9], 15);
        var forged = new byte[64];
        Assert.True(Ristretto.ScalarMultBase(s, forged.AsSpan(0, 32)));
        s.CopyTo(forged, 32);
        forged[63] |= 0x80;
        Assert.True(BothAgree(new byte[32], msg, forged, out var identityKey));
        Assert.False(identityKey);
    }

    [Property(MaxTest = 40)]
    public bool Batch_verification_accepts_exactly_when_every_signature_verifies(byte[] material, byte count, int victim, int bit)
    {
        var n = 2 + count % 15;
        // Every third signer repeats an earlier key, so batches mix distinct and shared keys.
        var pairs = Enumerable.Range(0, n).Select(i => Sr25519KeyPair.FromMiniSecret(Hash32([.. material ?? [], (byte)(i % 3 == 2 ? i - 1 : i)], 18))).ToArray();
        try
        {
            var pubs = pairs.Select(p => p.PublicKey).ToArray();
            var msgs = Enumerable.Range(0, n).Select(i => (ReadOnlyMemory<byte>)Hash32(material, (byte)(100 + i))).ToArray();
            var sigs = pairs.Select((p, i) => (ReadOnlyMemory<byte>)p.Sign(msgs[i].Span)).ToArray();
            if (!Sr25519.VerifyBatch(pubs, msgs, sigs)) return false;

            // One bad signature (any bit of R or s), or one swapped message, rejects the whole batch.
            var bad = (int)((uint)victim % (uint)n);
            var flipped = sigs[bad].ToArray();
            var index = (int)((uint)bit % 512);
            flipped[index / 8] ^= (byte)(1 << (index % 8));
            var tampered = (ReadOnlyMemory<byte>[])sigs.Clone();
            tampered[bad] = flipped;
            var swapped = (ReadOnlyMemory<byte>[])msgs.Clone();
            (swapped[0], swapped[1]) = (swapped[1], swapped[0]);
            return !Sr25519.VerifyBatch(pubs, msgs, tampered) && !Sr25519.VerifyBatch(pubs, swapped, sigs);
        }
        finally
        {
            foreach (var p in pairs) p.Dispose();
        }
    }

    [Fact]
    public void Batch_verification_of_nothing_is_valid_and_mismatched_lists_are_refused()
    {
        Assert.True(Sr25519.VerifyBatch([], [], []));
        Assert.Throws<ArgumentException>(() => Sr25519.VerifyBatch([new byte[32]], [], []));
    }

    /// <summary>Thousands of mutated signatures (seeded): both verifiers give the same answer on every one.</summary>
    [Fact]
    public void Differential_fuzz_over_mutated_signatures_keys_and_messages()
    {
        var rng = new Random(11_2026);
        var keys = Enumerable.Range(0, 8).Select(i => Sr25519KeyPair.FromMiniSecret(Hash32([(byte)i], 16))).ToArray();
        try
        {
            var accepted = 0;
            for (var n = 0; n < 2500; n++)
            {
                var pair = keys[n % keys.Length];
                var msg = new byte[rng.Next(0, 64)];
                rng.NextBytes(msg);
                var pub = pair.PublicKey.ToArray();
                var sig = pair.Sign(msg);
                switch (rng.Next(8))
                {
                    case 0: break; // untouched
                    case 1: sig[rng.Next(64)] ^= (byte)(1 << rng.Next(8)); break;
                    case 2: rng.NextBytes(sig.AsSpan(0, 32)); break;               // random R bytes
                    case 3: PointFrom([(byte)n, (byte)(n >> 8)], 17).CopyTo(sig, 0); break; // valid but wrong R
                    case 4: rng.NextBytes(sig.AsSpan(32, 32)); sig[63] |= 0x80; break; // random s (often ≥ ℓ)
                    case 5: pub[rng.Next(32)] ^= (byte)(1 << rng.Next(8)); break;
                    case 6: if (msg.Length > 0) msg[rng.Next(msg.Length)] ^= 1; else msg = [1]; break;
                    default: Convert.FromHexString(EdgeEncodings[rng.Next(EdgeEncodings.Length)]).CopyTo(sig, 0); break;
                }
                var fast = Sr25519.Verify(pub, msg, sig);
                var slow = Sr25519.VerifyWithLibsodium(pub, msg, sig);
                Assert.True(fast == slow, $"case {n}: fast {fast}, libsodium {slow}, pub {Convert.ToHexString(pub)}, sig {Convert.ToHexString(sig)}, msg {Convert.ToHexString(msg)}");
                if (fast) accepted++;
            }
            // About one case in eight is untouched, so both accept those (and reject nearly all others).
            Assert.InRange(accepted, 200, 450);
        }
        finally
        {
            foreach (var k in keys) k.Dispose();
        }
    }
}

internal static class ExtendedPointTestExtensions
{
    internal static bool IsRistrettoIdentityForTest(this ExtendedPoint p) => p.ToProjective().IsRistrettoIdentity;
}
