using Bittensor.Core.Crypto;

namespace Bittensor.Core.Tests.Crypto;

public sealed class Ss58Tests
{
    private static readonly byte[] Alice = Convert.FromHexString("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d");

    [Theory]
    // polkadot-js util-crypto 14.0.3 encodeAddress(alice, prefix)
    [InlineData(64, "cEaNSpz4PxFcZ7nT1VEKrKewH67rfx6MfcM6yKojyyPz7qaqp")]
    [InlineData(255, "yGHXkYLYqxijLKKfd9Q2CB9shRVu8rPNBS53wvwGTutYg4zTg")]
    [InlineData(1000, "vji5kpxBaPKwct6PAdHiJUPCU1hqBEAPaLMF59sXAjn4NeEaJ")]
    [InlineData(16383, "yNa8JpqfFB3q8A29rCwSgxvdU94ufJw2yKKxDgznS5m1PoFvn")]
    public void Two_byte_prefixes_encode_like_polkadot_js_and_decode_back(int prefix, string address)
    {
        Assert.Equal(address, Ss58.Encode(Alice, (ushort)prefix));
        Assert.True(Ss58.TryDecode(address, out var key, out var decodedPrefix));
        Assert.Equal(Alice, key);
        Assert.Equal(prefix, decodedPrefix);
    }

    [Fact]
    public void Bittensor_prefix_is_the_default_and_gives_a_48_character_address_starting_with_5()
    {
        var address = Ss58.Encode(Alice);
        Assert.Equal("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", address);
        Assert.Equal(Alice, Ss58.Decode(address));
        Assert.True(Ss58.IsValid(address));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQ0", "Base58")]
    [InlineData("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ", "checksum")]
    [InlineData("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQ", "32-byte")]
    [InlineData("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQYY", "32-byte")]
    [InlineData("1111111111111111111111111111111111111111111111111111", "too long")]
    [InlineData("SYXsAycDPUu4z2ZksJD5fh5nTDcH3vCFHnpcVye5XuDq3iLW", "prefix")]
    public void Malformed_addresses_are_rejected_with_a_readable_reason(string address, string reason)
    {
        Assert.False(Ss58.TryDecode(address, out _, out _));
        var ex = Assert.Throws<FormatException>(() => Ss58.Decode(address));
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_single_character_change_of_every_vector_address_is_rejected()
    {
        const string alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        var rows = KeyVectors.Section("ss58");
        var checkedCount = 0;
        foreach (var row in rows.EnumerateArray())
        {
            foreach (var field in new[] { "prefix42", "prefix0", "prefix2" })
            {
                var address = row.Str(field);
                var chars = address.ToCharArray();
                for (var i = 0; i < chars.Length; i++)
                {
                    var original = chars[i];
                    foreach (var c in alphabet)
                    {
                        if (c == original) continue;
                        chars[i] = c;
                        Assert.False(Ss58.TryDecode(new string(chars), out _, out _), $"{address} changed at {i} to {c} was accepted");
                        checkedCount++;
                    }
                    chars[i] = original;
                }
            }
        }
        Assert.True(checkedCount > 90_000, $"only {checkedCount} variants checked");
    }

    [Fact]
    public void Encoding_refuses_wrong_key_lengths_and_prefixes_beyond_14_bits()
    {
        Assert.Throws<ArgumentException>(() => Ss58.Encode(new byte[31]));
        Assert.Throws<ArgumentException>(() => Ss58.Encode(Alice, 16384));
    }
}

public sealed class Base58Tests
{
    [Theory]
    // Bitcoin base58 reference cases (bitcoin/bitcoin src/test/data/base58_encode_decode.json)
    [InlineData("", "")]
    [InlineData("61", "2g")]
    [InlineData("626262", "a3gV")]
    [InlineData("636363", "aPEr")]
    [InlineData("73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2")]
    [InlineData("00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L")]
    [InlineData("516b6fcd0f", "ABnLTmg")]
    [InlineData("bf4f89001e670274dd", "3SEo3LWLoPntC")]
    [InlineData("572e4794", "3EFU7m")]
    [InlineData("ecac89cad93923c02321", "EJDM8drfXA6uyA")]
    [InlineData("10c8511e", "Rt5zm")]
    [InlineData("00000000000000000000", "1111111111")]
    [InlineData("0000000001", "11112")]
    public void Base58_matches_the_bitcoin_reference_cases(string hex, string text)
    {
        var bytes = Convert.FromHexString(hex);
        Assert.Equal(text, Base58.Encode(bytes));
        var buffer = new byte[128];
        Assert.True(Base58.TryDecode(text, buffer, out var n));
        Assert.Equal(hex, Convert.ToHexStringLower(buffer.AsSpan(0, n)));
    }

    [Fact]
    public void Base58_round_trips_every_length_up_to_80_bytes_and_rejects_foreign_characters()
    {
        var rng = new Random(7);
        for (var len = 0; len <= 80; len++)
        {
            for (var lead = 0; lead <= Math.Min(len, 3); lead++)
            {
                var data = new byte[len];
                rng.NextBytes(data);
                Array.Clear(data, 0, lead);
                var buffer = new byte[100];
                Assert.True(Base58.TryDecode(Base58.Encode(data), buffer, out var n));
                Assert.Equal(Convert.ToHexStringLower(data), Convert.ToHexStringLower(buffer.AsSpan(0, n)));
            }
        }
        foreach (var bad in new[] { "0", "O", "I", "l", "+", "é", "abc def" })
            Assert.False(Base58.TryDecode(bad, new byte[16], out _));
        Assert.False(Base58.TryDecode("zzzzzzzzzz", new byte[2], out _));
    }
}
