using System.Security.Cryptography;
using System.Text;
using Bittensor.Core.Crypto;

namespace Bittensor.Core.Tests.Crypto;

public sealed class Bip39Tests
{
    private static string Hx(ReadOnlySpan<byte> b) => Convert.ToHexStringLower(b);

    [Fact]
    public void Embedded_word_list_is_the_published_bip39_english_list()
    {
        var text = string.Join("\n", Bip39.EnglishWords) + "\n";
        Assert.Equal(2048, Bip39.EnglishWords.Count);
        Assert.Equal("2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda", Hx(SHA256.HashData(Encoding.ASCII.GetBytes(text))));
    }

    [Theory]
    [InlineData(12)]
    [InlineData(15)]
    [InlineData(18)]
    [InlineData(21)]
    [InlineData(24)]
    public void Generated_mnemonic_has_the_requested_words_and_a_valid_checksum(int words)
    {
        var m = Bip39.Generate(words);
        Assert.Equal(words, m.Split(' ').Length);
        Assert.True(Bip39.IsValid(m));
        Assert.Equal(words * 4 / 3, Bip39.ToEntropy(m).Length);
        Assert.NotEqual(m, Bip39.Generate(words));
    }

    [Theory]
    [InlineData(11)]
    [InlineData(13)]
    [InlineData(0)]
    [InlineData(25)]
    public void Generating_an_unsupported_word_count_is_refused(int words) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Bip39.Generate(words));

    [Fact]
    public void Substrate_bip39_vector_for_zero_entropy_with_password_Substrate_holds()
    {
        // paritytech/substrate-bip39 VECTORS: 16 zero bytes, password "Substrate" → seed 44e9d1…d453 (first 32 bytes).
        var m = Bip39.FromEntropy(new byte[16]);
        Assert.Equal("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", m);
        Assert.Equal("44e9d125f037ac1d51f0a7d3649689d422c2af8b1ec8e00d71db4d7bf6d127e3", Hx(Bip39.ToMiniSecret(m, "Substrate")));
        // HMAC zero-pads short keys, so 24 and 32 zero bytes give the same seed.
        Assert.Equal("44e9d125f037ac1d51f0a7d3649689d422c2af8b1ec8e00d71db4d7bf6d127e3", Hx(Bip39.EntropyToMiniSecret(new byte[32], "Substrate")));
    }

    [Fact]
    public void Bad_checksum_unknown_word_and_wrong_count_are_rejected_without_echoing_words()
    {
        var good = SecretUri.DevPhrase;
        Assert.True(Bip39.IsValid(good));
        var swapped = good.Replace("walk", "fit", StringComparison.Ordinal);
        Assert.False(Bip39.IsValid(swapped));
        var ex = Assert.Throws<FormatException>(() => Bip39.ToEntropy(swapped));
        Assert.Contains("checksum", ex.Message, StringComparison.Ordinal);

        var unknown = good.Replace("lake", "lakes", StringComparison.Ordinal);
        ex = Assert.Throws<FormatException>(() => Bip39.ToEntropy(unknown));
        Assert.Contains("#4", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("lake", ex.Message, StringComparison.Ordinal);

        ex = Assert.Throws<FormatException>(() => Bip39.ToEntropy("bottom drive obey"));
        Assert.Contains("3", ex.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => Bip39.ToMiniSecret(swapped));
        ex = Assert.Throws<FormatException>(() => Bip39.ToEntropy(string.Join(' ', Enumerable.Repeat("abandon", 200_000))));
        Assert.Contains("too long", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Extra_whitespace_capitals_and_full_width_letters_are_normalised()
    {
        var expected = Hx(Bip39.ToEntropy(SecretUri.DevPhrase));
        Assert.Equal(expected, Hx(Bip39.ToEntropy("  Bottom  drive\tobey lake curtain smoke basket hold race lonely fit WALK ")));
        var fullWidth = new string(SecretUri.DevPhrase.Select(c => c == ' ' ? '\u3000' : (char)(c + 0xFEE0)).ToArray());
        Assert.Equal(expected, Hx(Bip39.ToEntropy(fullWidth)));
    }

    [Fact]
    public void Entropy_of_every_allowed_length_round_trips_through_words()
    {
        foreach (var len in new[] { 16, 20, 24, 28, 32 })
        {
            var entropy = Enumerable.Range(0, len).Select(i => (byte)(i * 37 + len)).ToArray();
            var m = Bip39.FromEntropy(entropy);
            Assert.Equal(len * 3 / 4, m.Split(' ').Length);
            Assert.Equal(Hx(entropy), Hx(Bip39.ToEntropy(m)));
        }
        Assert.Throws<ArgumentException>(() => Bip39.FromEntropy(new byte[17]));
        Assert.Throws<ArgumentException>(() => Bip39.EntropyToMiniSecret(new byte[12]));
    }
}
