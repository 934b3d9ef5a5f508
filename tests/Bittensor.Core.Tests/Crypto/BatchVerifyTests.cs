using System.Numerics;
using System.Security.Cryptography;
using Bittensor.Core.Crypto;
using FsCheck.Xunit;

namespace Bittensor.Core.Tests.Crypto;

/// <summary>
/// <see cref="Sr25519.VerifyEach"/> (batch verification with per-signature answers): on any mix of good, tampered and
/// malformed signatures every answer equals the single verification's, and <see cref="Sr25519.VerifyBatch"/> equals
/// the AND of them; the polkadot-js vectors and their tampered copies keep their answers inside batches.
/// </summary>
[Collection(VerifyPath.Name)]
public class BatchVerifyTests
{
    // The work-counting tests measure the batch arithmetic over prepared keys: a cache of their own that prepares every
    // key at its first sighting (the shared one verifies a key's first sighting without tables, and other tests may fill it).
    private static readonly Bittensor.Core.Crypto.Curve25519.PreparedKeyCache Prepared =
        new(4096, TimeSpan.FromHours(1), () => 0, prepareFirstSighting: true);

    private static readonly BigInteger L = BigInteger.Pow(2, 252) + BigInteger.Parse("27742317777372353535851937790883648493", System.Globalization.CultureInfo.InvariantCulture);

    private static byte[] Hash32(byte[]? material, byte tag) => SHA256.HashData([tag, .. material ?? []]);

    // Edge encodings as R or as the public key: identity, small order, non-canonical (≥ p, bit 255, negative).
    private static readonly string[] BadPoints =
    [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];

    /// <summary>A signature made bad in one of several ways (or left good), chosen by <paramref name="how"/>.</summary>
    private static (byte[] Pub, byte[] Msg, byte[] Sig) Mutate(Sr25519KeyPair pair, byte[] msg, int how, Random rng)
    {
        var pub = pair.PublicKey.ToArray();
        var sig = pair.Sign(msg);
        switch (how)
        {
            case 0: break;                                                    // good
            case 1: sig[rng.Next(64)] ^= (byte)(1 << rng.Next(8)); break;     // one flipped bit (R, s or the marker)
            case 2: msg = [.. msg, 1]; break;                                 // another message
            case 3: pub[rng.Next(32)] ^= (byte)(1 << rng.Next(8)); break;     // another (often invalid) key
            case 4:                                                           // s + ℓ: same value mod ℓ, non-canonical
                {
                    var s = sig[32..];
                    s[31] &= 0x7f;
                    var aliased = new BigInteger(s, isUnsigned: true) + L;
                    var b = new byte[32];
                    aliased.TryWriteBytes(b, out _, isUnsigned: true);
                    b[31] |= 0x80;
                    b.CopyTo(sig, 32);
                    break;
                }
            case 5: Convert.FromHexString(BadPoints[rng.Next(BadPoints.Length)]).CopyTo(sig, 0); break; // malformed R
            case 6: Convert.FromHexString(BadPoints[rng.Next(BadPoints.Length)]).CopyTo(pub, 0); break; // malformed key
            case 7: sig[63] &= 0x7f; break;                                   // no schnorrkel marker
            default: sig = sig[..63]; break;                                   // wrong length
        }
        return (pub, msg, sig);
    }

    [Property(MaxTest = 40)]
    public bool Each_batch_answer_equals_the_single_verification_and_the_batch_equals_their_AND(int seed, byte size, byte badShare)
    {
        var rng = new Random(seed);
        var n = 1 + size % 40;
        // A few keys shared across the batch and a few of their own: distinct keys and repeated keys mixed.
        var pairs = Enumerable.Range(0, 1 + (n / 3)).Select(i => Sr25519KeyPair.FromMiniSecret(Hash32([(byte)i, (byte)seed], 30))).ToArray();
        try
        {
            var items = new Sr25519BatchItem[n];
            var expected = new bool[n];
            for (var i = 0; i < n; i++)
            {
                var msg = Hash32([(byte)i, (byte)(seed >> 8)], 31)[..(1 + rng.Next(31))];
                var how = rng.Next(256) < badShare ? 1 + rng.Next(8) : 0;
                var (pub, m, sig) = Mutate(pairs[rng.Next(pairs.Length)], msg, how, rng);
                items[i] = new Sr25519BatchItem(pub, m, sig);
                expected[i] = Sr25519.Verify(pub, m, sig);
                if (expected[i] != Sr25519.VerifyWithLibsodium(pub, m, sig)) return false;
            }
            var valid = new bool[n];
            var oneCheck = Sr25519.VerifyEach(items, valid);
            var all = Sr25519.VerifyBatch(items.Select(x => x.PublicKey).ToArray(), items.Select(x => x.Message).ToArray(), items.Select(x => x.Signature).ToArray());
            // A batch whose well-formed signatures are all good needs no single verification.
            var wellFormedBad = Enumerable.Range(0, n).Any(i => !expected[i] && PassesCheapChecks(items[i]));
            return valid.SequenceEqual(expected) && all == expected.All(v => v) && oneCheck == !wellFormedBad;
        }
        finally
        {
            foreach (var p in pairs) p.Dispose();
        }
    }

    // Whether a signature gets into the batch equation: encoding, marker, s < ℓ and non-zero, points that decode.
    private static bool PassesCheapChecks(Sr25519BatchItem item)
    {
        var sig = item.Signature.Span;
        var pub = item.PublicKey.Span;
        if (pub.Length != 32 || sig.Length != 64 || (sig[63] & 0x80) == 0) return false;
        var s = sig[32..].ToArray();
        s[31] &= 0x7f;
        var sv = new BigInteger(s, isUnsigned: true);
        if (sv >= L || sv.IsZero) return false;
        if (pub.IndexOfAnyExcept((byte)0) < 0 || sig[..32].IndexOfAnyExcept((byte)0) < 0) return false;
        return Ristretto.IsValidPoint(pub) && Ristretto.IsValidPoint(sig[..32]);
    }

    [Fact]
    public void The_polkadot_js_vectors_and_their_tampered_copies_keep_their_answers_inside_one_batch()
    {
        var rows = KeyVectors.Section("sr25519_signatures");
        var items = new List<Sr25519BatchItem>();
        var expected = new List<bool>();
        for (var i = 0; i < rows.GetArrayLength(); i++)
        {
            var v = rows[i];
            items.Add(new Sr25519BatchItem(v.Bytes("public"), v.Bytes("message"), v.Bytes("signature")));
            expected.Add(true);
            items.Add(new Sr25519BatchItem(v.Bytes("public"), v.Bytes("message"), v.Bytes("tampered_signature")));
            expected.Add(false);
        }
        var valid = new bool[items.Count];
        Assert.False(Sr25519.VerifyEach(items.ToArray(), valid)); // the tampered ones force single verification
        Assert.Equal(expected, valid);

        // Only the good ones: one batch equation settles all of them.
        var good = items.Where((_, i) => expected[i]).ToArray();
        var goodValid = new bool[good.Length];
        Assert.True(Sr25519.VerifyEach(good, goodValid));
        Assert.All(goodValid, Assert.True);
        Assert.True(Sr25519.VerifyBatch(good.Select(x => x.PublicKey).ToArray(), good.Select(x => x.Message).ToArray(), good.Select(x => x.Signature).ToArray()));
    }

    [Fact]
    public void Malformed_points_and_scalars_are_refused_in_a_batch_exactly_as_alone_and_never_fail_the_good_ones()
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(Hash32([5], 32));
        var rng = new Random(32);
        var items = new List<Sr25519BatchItem>();
        for (var how = 0; how <= 8; how++)
        {
            for (var rep = 0; rep < 4; rep++)
            {
                var (pub, msg, sig) = Mutate(pair, Hash32([(byte)how, (byte)rep], 33), how, rng);
                items.Add(new Sr25519BatchItem(pub, msg, sig));
                var (gp, gm, gs) = Mutate(pair, Hash32([(byte)how, (byte)rep], 34), 0, rng);
                items.Add(new Sr25519BatchItem(gp, gm, gs));
            }
        }
        var valid = new bool[items.Count];
        Sr25519.VerifyEach(items.ToArray(), valid);
        for (var i = 0; i < items.Count; i++)
        {
            var x = items[i];
            Assert.Equal(Sr25519.Verify(x.PublicKey.Span, x.Message.Span, x.Signature.Span), valid[i]);
            Assert.Equal(Sr25519.VerifyWithLibsodium(x.PublicKey.Span, x.Message.Span, x.Signature.Span), valid[i]);
            if (i % 2 == 1) Assert.True(valid[i]); // every good signature beside a bad one
            if (i % 2 == 0 && i >= 8) Assert.False(valid[i]); // every mutation (how ≥ 1) is refused
        }
    }

    [Theory]
    [InlineData(1, 1, false)]   // one signature: single verification
    [InlineData(4, 4, false)]   // distinct keys: a prepared key's single verification already shares its doublings
    [InlineData(16, 16, false)]
    [InlineData(64, 64, false)] // break-even at the batcher's limit
    [InlineData(128, 128, true)]
    [InlineData(5, 1, false)]   // one key signing five times: not yet
    [InlineData(6, 1, true)]    // six times: its ≈ 42 additions are shared
    [InlineData(16, 4, true)]   // four validators, four calls each
    public void The_batch_equation_is_used_only_where_it_is_expected_to_pay(int signatures, int keys, bool pays) =>
        Assert.Equal(pays, Sr25519.BatchPays(signatures, keys));

    /// <summary>
    /// Bisection: a batch with a few well-formed bad signatures among many good ones (distinct keys and one key signing
    /// often) answers exactly as single verification, and the bad ones are found by halving, not by verifying the
    /// whole batch singly: each bad signature costs at most the two halves of the smallest range an equation pays for
    /// (≤ 16 signatures by four keys). Keys: one validator, or four signing in turn — the batches where the equation
    /// pays (with a prepared key per signer, distinct keys only break even at the batcher's 64).
    /// </summary>
    [Property(MaxTest = 25)]
    public bool A_failed_batch_is_bisected_and_every_answer_equals_the_single_verification(int seed, byte size, byte bad, bool oneKey)
    {
        var rng = new Random(seed);
        var n = 12 + size % 53;                  // 12..64 signatures (the axon's largest batch is 64)
        var badCount = 1 + bad % 3;              // 1..3 well-formed bad signatures
        var keys = oneKey ? 1 : 4;
        var pairs = Enumerable.Range(0, keys).Select(i => Sr25519KeyPair.FromMiniSecret(Hash32([(byte)i, (byte)(seed >> 3)], 35))).ToArray();
        try
        {
            var badAt = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Take(badCount).ToHashSet();
            var items = new Sr25519BatchItem[n];
            var expected = new bool[n];
            for (var i = 0; i < n; i++)
            {
                var pair = pairs[i % keys];
                var msg = Hash32([(byte)i, (byte)seed], 36);
                var sig = pair.Sign(msg);
                // Well-formed but wrong: a valid signature of another message (passes every cheap check).
                if (badAt.Contains(i)) sig = pair.Sign([.. msg, 7]);
                items[i] = new Sr25519BatchItem(pair.PublicKey.ToArray(), msg, sig);
                expected[i] = Sr25519.Verify(pair.PublicKey.Span, msg, sig);
            }
            var valid = new bool[n];
            var result = Sr25519.VerifyEachCounted(items, valid, out var work, Prepared);
            return !result
                && valid.SequenceEqual(expected)
                && expected.Count(v => !v) == badCount
                && work.Singles <= Math.Min(n, 16 * badCount)
                && work.FailedEquations >= 1;
        }
        finally
        {
            foreach (var p in pairs) p.Dispose();
        }
    }

    [Fact]
    public void One_bad_signature_among_64_by_four_validators_costs_a_few_equations_and_16_single_verifications_not_64()
    {
        var pairs = Enumerable.Range(0, 4).Select(i => Sr25519KeyPair.FromMiniSecret(Hash32([(byte)i], 37))).ToArray();
        try
        {
            var items = new Sr25519BatchItem[64];
            for (var i = 0; i < 64; i++)
            {
                var msg = Hash32([(byte)i], 38);
                items[i] = new Sr25519BatchItem(pairs[i % 4].PublicKey.ToArray(), msg, pairs[i % 4].Sign(i == 41 ? [.. msg, 1] : msg));
            }
            var valid = new bool[64];
            Assert.False(Sr25519.VerifyEachCounted(items, valid, out var work, Prepared));
            for (var i = 0; i < 64; i++) Assert.Equal(i != 41, valid[i]);
            // 64 fails; 32 [0, 32) holds, so [32, 64) is known bad and split without its own equation; 16 [32, 48) fails;
            // [32, 40) holds (8 signatures by four keys still pay), so [40, 48) is known bad; its 4s are too small for an
            // equation: 8 singles at most, and never more than 16.
            Assert.InRange(work.Singles, 1, 16);
            Assert.InRange(work.Equations, 2, 6);

            // All good: one equation, no single verification.
            items[41] = new Sr25519BatchItem(pairs[1].PublicKey.ToArray(), Hash32([41], 38), pairs[1].Sign(Hash32([41], 38)));
            Assert.True(Sr25519.VerifyEachCounted(items, valid, out work, Prepared));
            Assert.All(valid, Assert.True);
            Assert.Equal(new Sr25519.BatchWork(1, 0, 0), work);
        }
        finally
        {
            foreach (var p in pairs) p.Dispose();
        }
    }

    [Fact]
    public void An_empty_batch_is_valid_and_too_few_result_slots_are_refused()
    {
        Assert.True(Sr25519.VerifyEach([], []));
        Assert.Throws<ArgumentException>(() => Sr25519.VerifyEach([new Sr25519BatchItem(new byte[32], new byte[1], new byte[64])], []));
    }
}
