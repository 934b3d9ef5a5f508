using Bittensor.Core.Crypto;

namespace Bittensor.Protocol.Tests;

/// <summary>The decoded-hotkey cache answers as <see cref="Ss58.TryDecode(string, out byte[], out ushort)"/>, keeps no invalid address and stays bounded.</summary>
public sealed class HotkeyCacheTests
{
    [Fact]
    public void A_cached_key_equals_the_decoded_one_and_bad_addresses_are_refused_every_time()
    {
        using var pair = SecretUri.ToSr25519("//hotkey-cache/1");
        var ss58 = pair.ToSs58();
        for (var round = 0; round < 2; round++)
        {
            Assert.True(HotkeyCache.TryGet(ss58, out var key));
            Assert.Equal(pair.PublicKey.ToArray(), key);
        }
        // One character changed breaks the checksum; garbage, empty and null are refused, and none of them is kept.
        var bad = ss58[..^1] + (ss58[^1] == 'a' ? 'b' : 'a');
        foreach (var address in new[] { bad, "not base58 0OIl", "", null })
        {
            for (var round = 0; round < 2; round++) Assert.False(HotkeyCache.TryGet(address, out _));
        }
        Assert.False(Ss58.TryDecode(bad, out _, out _));
    }

    [Fact]
    public void More_distinct_addresses_than_the_limit_never_grow_it_past_the_limit()
    {
        var key = new byte[32];
        for (var i = 0; i < HotkeyCache.Limit + 50; i++)
        {
            BitConverter.TryWriteBytes(key, i);
            var ss58 = Ss58.Encode(key);
            Assert.True(HotkeyCache.TryGet(ss58, out var decoded));
            Assert.Equal(key, decoded);
            // Other tests share the cache (they may empty it, or add a key while it is being emptied: a few over at most).
            Assert.InRange(HotkeyCache.Count, 0, HotkeyCache.Limit + 16);
        }
    }
}
