using System.Security.Cryptography;
using Bittensor.Core.Crypto;
using Bittensor.Core.Crypto.Curve25519;
using FsCheck.Xunit;

namespace Bittensor.Core.Tests.Crypto;

/// <summary>
/// The bounded cache of prepared verifying keys (session 11): tables only from a key's second sighting, never more than
/// the capacity, idle entries swept for newcomers, callers beyond the capacity verified without tables (no churn);
/// and verification on either path gives libsodium's answer. Own cache instances with a hand-moved clock, except where
/// the shared one is the subject.
/// </summary>
[Collection(VerifyPath.Name)]
public class PreparedKeyCacheTests
{
    private static byte[] Key(int i)
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(SHA256.HashData(BitConverter.GetBytes(i + 7_000)));
        return pair.PublicKey.ToArray();
    }

    [Fact]
    public void A_key_is_prepared_on_its_second_sighting_and_served_from_the_cache_after()
    {
        long now = 0;
        var cache = new PreparedKeyCache(4, TimeSpan.FromSeconds(10), () => now);
        var key = Key(1);

        Assert.True(cache.Lookup(key, out var first, out var negA));
        Assert.Null(first); // seen once: no tables, −A handed back instead
        Assert.Equal(0, cache.Count);
        Assert.Equal(1, cache.SeenOnceCount);

        Assert.True(cache.Lookup(key, out var second, out _));
        Assert.NotNull(second);
        Assert.Equal(1, cache.Count);
        Assert.Equal(0, cache.SeenOnceCount);

        Assert.True(cache.Lookup(key, out var third, out _));
        Assert.Same(second, third);
        Assert.Equal(1, cache.Built);

        // −A from the first sighting and the tables of the second give the same k·(−A) + s·B.
        var k = SHA256.HashData([1]);
        var s = SHA256.HashData([2]);
        k[31] &= 0x0f;
        s[31] &= 0x0f;
        var plain = RistrettoVartime.DoubleScalarMulBase(k, negA, s).ToExtended();
        var tabled = RistrettoVartime.VerifyCombination(k, second!, s).ToExtended();
        Assert.True(plain.RistrettoEquals(tabled));
    }

    /// <summary>
    /// Session 13: a key holds the tables of the path it was built on only (an AVX2 key no scalar tables: 20 KB, not 35);
    /// verifying on that path builds nothing more; after the switch flips the same key verifies a good signature and
    /// refuses a tampered one (s's middle byte: canonical, so it reaches the equation) on the other path, whose tables it
    /// builds then. Both orders where AVX2 is present; the scalar order alone elsewhere.
    /// </summary>
    [Fact]
    public void A_key_holds_only_its_paths_tables_and_verifies_on_the_other_path_after_the_switch_flips()
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(SHA256.HashData("session 13: one path's tables"u8));
        var pub = pair.PublicKey.ToArray();
        var message = SHA256.HashData([13]);
        var good = pair.Sign(message);
        var bad = (byte[])good.Clone();
        bad[40] ^= 0x10;
        var items = new[] { new Sr25519BatchItem(pub, message, good), new Sr25519BatchItem(pub, message, bad) };

        void VerifiesAsLibsodium(PreparedKeyCache cache)
        {
            Assert.True(Sr25519.VerifyWithLibsodium(pub, message, good));
            Assert.False(Sr25519.VerifyWithLibsodium(pub, message, bad));
            var valid = new bool[2];
            Assert.False(Sr25519.VerifyEachCounted(items, valid, out _, cache));
            Assert.Equal([true, false], valid);
            Assert.True(Sr25519.VerifyEachCounted(items.AsSpan(0, 1), valid, out _, cache));
            Assert.True(valid[0]);
        }

        var before = VectorArithmetic.Enabled;
        try
        {
            foreach (var vector in VectorArithmetic.IsSupported ? new[] { true, false } : [false])
            {
                VectorArithmetic.Enabled = vector;
                var cache = new PreparedKeyCache(4, TimeSpan.FromSeconds(10), () => 0, prepareFirstSighting: true);
                Assert.True(cache.Lookup(pub, out var key, out _));
                Assert.NotNull(key);
                Assert.Equal(vector, key.HasVectorTables);
                Assert.Equal(!vector, key.HasScalarTables);

                VerifiesAsLibsodium(cache);
                Assert.Equal(1, cache.Built);
                Assert.Equal(vector, key.HasVectorTables); // its own path built nothing more
                Assert.Equal(!vector, key.HasScalarTables);
                if (!VectorArithmetic.IsSupported) continue;

                VectorArithmetic.Enabled = !vector;
                VerifiesAsLibsodium(cache);
                Assert.True(cache.Lookup(pub, out var same, out _));
                Assert.Same(key, same);
                Assert.True(key.HasVectorTables);
                Assert.True(key.HasScalarTables);
            }
        }
        finally
        {
            VectorArithmetic.Enabled = before;
        }
    }

    /// <summary>
    /// Session 23: keys prepared ahead of their first call (the axon's stake snapshot) are found prepared on their first
    /// sighting (nothing more built), verify a good signature and refuse a tampered one (s's middle byte: canonical, so
    /// it reaches the equation) as libsodium does, as does a key that was not prepared ahead (verified without tables).
    /// </summary>
    [Fact]
    public void Keys_prepared_ahead_are_ready_at_their_first_sighting_and_verify_as_libsodium()
    {
        var cache = new PreparedKeyCache(8, TimeSpan.FromSeconds(10), () => 0);
        var pairs = Enumerable.Range(0, 3).Select(i => Sr25519KeyPair.FromMiniSecret(SHA256.HashData(BitConverter.GetBytes(i + 23_000)))).ToArray();
        try
        {
            var keys = pairs.Select(p => p.PublicKey.ToArray()).ToArray();
            Assert.Equal(2, cache.PrepareAhead(keys.Select(k => (ReadOnlyMemory<byte>)k), limit: 2));
            Assert.Equal(2, cache.Count);
            Assert.Equal(2, cache.Built);

            Assert.True(cache.Lookup(keys[0], out var first, out _));
            Assert.NotNull(first); // prepared ahead: tables at the first sighting
            Assert.True(cache.Lookup(keys[2], out var third, out _));
            Assert.Null(third); // beyond the limit: a first sighting as ever
            Assert.Equal(2, cache.Built);

            var message = SHA256.HashData([23]);
            var items = new List<Sr25519BatchItem>();
            for (var i = 0; i < 3; i++)
            {
                var good = pairs[i].Sign(message);
                var bad = (byte[])good.Clone();
                bad[40] ^= 0x10;
                Assert.True(Sr25519.VerifyWithLibsodium(keys[i], message, good));
                Assert.False(Sr25519.VerifyWithLibsodium(keys[i], message, bad));
                items.Add(new Sr25519BatchItem(keys[i], message, good));
                items.Add(new Sr25519BatchItem(keys[i], message, bad));
            }
            var valid = new bool[items.Count];
            Assert.False(Sr25519.VerifyEachCounted(items.ToArray(), valid, out _, cache));
            Assert.Equal([true, false, true, false, true, false], valid);
        }
        finally
        {
            foreach (var p in pairs) p.Dispose();
        }
    }

    /// <summary>
    /// Session 23: preparing ahead takes free places only — it stops at the capacity without sweeping (an entry idle for
    /// longer than the idle time stays), never rebuilds a prepared key, skips invalid points, and counts what it built.
    /// </summary>
    [Fact]
    public void Preparing_ahead_takes_free_places_only_and_skips_prepared_and_invalid_keys()
    {
        long now = 0;
        var cache = new PreparedKeyCache(4, TimeSpan.FromSeconds(10), () => now);
        var active = Key(1);
        Assert.True(cache.Lookup(active, out _, out _));
        Assert.True(cache.Lookup(active, out var activeKey, out _));
        Assert.NotNull(activeKey);
        now = 60_000; // the active key is idle now: a sweep would drop it

        var invalid = Convert.FromHexString("0100000000000000000000000000000000000000000000000000000000000000");
        var offered = new[] { active, invalid, Key(2), Key(3), Key(4), Key(5), Key(6) };
        Assert.Equal(3, cache.PrepareAhead(offered.Select(k => (ReadOnlyMemory<byte>)k), limit: 100));
        Assert.Equal(4, cache.Count); // full: Key(5) and Key(6) not built, the idle key not swept for them
        Assert.Equal(4, cache.Built);
        Assert.True(cache.Lookup(active, out var still, out _));
        Assert.Same(activeKey, still);
        Assert.Equal(0, cache.PrepareAhead(offered.Select(k => (ReadOnlyMemory<byte>)k), limit: 100));
        Assert.Equal(4, cache.Built);
    }

    /// <summary>
    /// Session 24: a key forgotten (the axon's warm-up key, after its calls) frees its place at once: with the cache at
    /// exactly its capacity of callers plus that key, the last newcomer is prepared on its second sighting without a
    /// sweep (none could free a place: every other entry is in use), and the forgotten key is not remembered as seen
    /// once either (its next sighting is a first one).
    /// </summary>
    [Fact]
    public void A_forgotten_key_frees_its_place_at_once_so_capacity_callers_never_need_a_sweep()
    {
        long now = 0;
        var cache = new PreparedKeyCache(4, TimeSpan.FromSeconds(10), () => now);
        void Prepare(byte[] key)
        {
            Assert.True(cache.Lookup(key, out _, out _));
            Assert.True(cache.Lookup(key, out var prepared, out _));
            Assert.NotNull(prepared);
        }
        var warmUp = Key(40);
        Prepare(warmUp);
        Prepare(Key(41));
        Prepare(Key(42));
        Prepare(Key(43));
        Assert.Equal(4, cache.Count);
        Assert.True(cache.Holds(warmUp));

        Assert.True(cache.Forget(warmUp));
        Assert.False(cache.Holds(warmUp));
        Assert.Equal(3, cache.Count);
        Assert.False(cache.Forget(warmUp)); // not prepared any more

        now = 1_000; // every entry in use (well within the idle time): a sweep would free nothing
        var last = Key(44);
        Assert.True(cache.Lookup(last, out var seenOnce, out _));
        Assert.Null(seenOnce);
        Assert.True(cache.Lookup(last, out var lastKey, out _));
        Assert.NotNull(lastKey); // prepared in the forgotten key's place
        Assert.Equal(4, cache.Count);

        // The forgotten key's next sighting is a first one (no tables): the doorkeeper forgot it too.
        var before = cache.SeenOnceCount;
        Assert.True(cache.Lookup(warmUp, out var again, out _));
        Assert.Null(again);
        Assert.Equal(before + 1, cache.SeenOnceCount);
    }

    /// <summary>
    /// Session 23: a prepared key's tables are on the pinned object heap (a gen-2 heap that no collection copies), not in
    /// gen 0 where the next collections would copy them into gen 1 and gen 2 (20 KB per key: ~770 new callers' keys at a
    /// 1,024-caller level's start). On the path the key was built on.
    /// </summary>
    [Fact]
    public void A_prepared_keys_tables_are_never_in_gen_0()
    {
        var cache = new PreparedKeyCache(4, TimeSpan.FromSeconds(10), () => 0, prepareFirstSighting: true);
        Assert.True(cache.Lookup(Key(9), out var key, out _));
        Assert.NotNull(key);
        if (VectorArithmetic.Enabled) Assert.Equal(GC.MaxGeneration, GC.GetGeneration(key.VectorTables.Data));
        else Assert.All(key.Tables, t => Assert.Equal(GC.MaxGeneration, GC.GetGeneration(t)));
    }

    [Fact]
    public void An_invalid_point_is_refused_and_remembered_nowhere()
    {
        var cache = new PreparedKeyCache(4, TimeSpan.FromSeconds(10), () => 0);
        var bad = Convert.FromHexString("0100000000000000000000000000000000000000000000000000000000000000"); // odd s: not canonical
        Assert.False(cache.Lookup(bad, out var prepared, out _));
        Assert.Null(prepared);
        Assert.Null(cache.GetPrepared(bad));
        Assert.Equal(0, cache.Count);
        Assert.Equal(0, cache.SeenOnceCount);
    }

    [Fact]
    public void More_callers_in_use_than_the_capacity_leave_the_cache_as_it_is_and_the_rest_go_without_tables()
    {
        long now = 0;
        var cache = new PreparedKeyCache(4, TimeSpan.FromSeconds(10), () => now);
        var keys = Enumerable.Range(0, 10).Select(Key).ToArray();
        // Ten callers in rotation, each calling every 100 ms (simulated), for 30 simulated seconds.
        for (var round = 0; round < 300; round++)
        {
            foreach (var k in keys)
            {
                Assert.True(cache.Lookup(k, out _, out _));
                Assert.InRange(cache.Count, 0, 4);
            }
            now += 100;
        }
        // The first four prepared stay (all in use); the other six were never prepared: no churn.
        Assert.Equal(4, cache.Count);
        Assert.Equal(4, cache.Built);
        for (var i = 0; i < 4; i++)
        {
            Assert.True(cache.Lookup(keys[i], out var p, out _));
            Assert.NotNull(p);
        }
        for (var i = 4; i < 10; i++)
        {
            Assert.True(cache.Lookup(keys[i], out var p, out _));
            Assert.Null(p);
        }
    }

    [Fact]
    public void Entries_idle_for_the_idle_time_make_room_for_newcomers()
    {
        long now = 0;
        var cache = new PreparedKeyCache(2, TimeSpan.FromSeconds(10), () => now);
        var a = Key(10);
        var b = Key(11);
        var c = Key(12);
        foreach (var k in new[] { a, a, b, b }) cache.Lookup(k, out _, out _);
        Assert.Equal(2, cache.Count);

        // c while a and b are fresh: no room.
        cache.Lookup(c, out _, out _);
        Assert.True(cache.Lookup(c, out var early, out _));
        Assert.Null(early);

        // b stays in use; a goes idle. Once a has been idle for 10 s, c's next sightings take its place.
        now += 9_000;
        cache.Lookup(b, out _, out _);
        now += 2_000;
        cache.Lookup(c, out _, out _); // seen once again (the doorkeeper forgot it when it was refused)
        Assert.True(cache.Lookup(c, out var later, out _));
        Assert.NotNull(later);
        Assert.Equal(2, cache.Count);
        Assert.True(cache.Lookup(b, out var stillB, out _));
        Assert.NotNull(stillB);
        Assert.True(cache.Lookup(a, out var goneA, out _));
        Assert.Null(goneA); // a was swept: a sighting again, no tables
    }

    [Fact]
    public void The_doorkeeper_and_the_cache_stay_within_their_bounds_under_a_flood_of_fresh_keys()
    {
        var cache = new PreparedKeyCache(8, TimeSpan.FromSeconds(10), () => 0);
        for (var i = 0; i < 200; i++)
        {
            Assert.True(cache.Lookup(Key(100 + i), out var p, out _));
            Assert.Null(p); // each seen once: never prepared
            Assert.InRange(cache.SeenOnceCount, 1, cache.DoorkeeperCapacity);
        }
        Assert.Equal(32, cache.DoorkeeperCapacity);
        Assert.Equal(0, cache.Count);
        Assert.Equal(0, cache.Built);
    }

    /// <summary>A key's first verification (no tables) and its second (tables built) agree with libsodium, valid or tampered.</summary>
    [Property(MaxTest = 60)]
    public bool Both_sightings_of_a_key_verify_as_libsodium_does(byte[] material, byte[] message, int bit)
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(SHA256.HashData([0x5c, .. material ?? []]));
        message ??= [];
        var pub = pair.PublicKey.ToArray();
        var sig = pair.Sign(message);
        var flipped = (byte[])sig.Clone();
        var index = (int)((uint)bit % 512);
        flipped[index / 8] ^= (byte)(1 << (index % 8));
        var expectBad = Sr25519.VerifyWithLibsodium(pub, message, flipped);
        // The shared cache: whatever other tests left in it, this key is new (first sighting: no tables), then prepared
        // when there is room; either way the answers must be libsodium's.
        return Sr25519.Verify(pub, message, sig)
            && Sr25519.Verify(pub, message, flipped) == expectBad
            && Sr25519.Verify(pub, message, sig)
            && Sr25519.Verify(pub, message, flipped) == expectBad;
    }

    [Fact]
    public void A_batch_mixing_prepared_and_never_seen_keys_gives_each_signature_its_own_answer()
    {
        var pairs = Enumerable.Range(0, 24).Select(i => Sr25519KeyPair.FromMiniSecret(SHA256.HashData(BitConverter.GetBytes(i + 91_000)))).ToArray();
        try
        {
            // Half the keys seen twice before (prepared when the shared cache has room), half never seen.
            for (var i = 0; i < 12; i++)
            {
                VerifyingKey.Get(pairs[i].PublicKey.Span);
            }
            var items = new Sr25519BatchItem[pairs.Length];
            var expected = new bool[pairs.Length];
            for (var i = 0; i < pairs.Length; i++)
            {
                var msg = SHA256.HashData(BitConverter.GetBytes(i));
                var sig = pairs[i].Sign(msg);
                // Tampered among both kinds, in s's middle byte: still a canonical scalar, so each one passes the cheap
                // checks and must fail its equation. (A flip in R could leave an encoding that does not decode; such
                // a signature is refused before any equation and VerifyEach's answer would then not count it.)
                if (i % 5 == 3) sig[40] ^= 0x10;
                items[i] = new Sr25519BatchItem(pairs[i].PublicKey.ToArray(), msg, sig);
                expected[i] = i % 5 != 3;
            }
            var valid = new bool[items.Length];
            Assert.False(Sr25519.VerifyEach(items, valid));
            Assert.Equal(expected, valid);

            // Untampered: every one valid, and the call says so.
            for (var i = 0; i < items.Length; i++)
                items[i] = items[i] with { Signature = pairs[i].Sign(items[i].Message.Span) };
            Assert.True(Sr25519.VerifyEach(items, valid));
            Assert.All(valid, Assert.True);
        }
        finally
        {
            foreach (var p in pairs) p.Dispose();
        }
    }
}
