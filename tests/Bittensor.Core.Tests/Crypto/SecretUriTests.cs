using Bittensor.Core.Crypto;

namespace Bittensor.Core.Tests.Crypto;

public sealed class SecretUriTests
{
    private static string Hx(ReadOnlySpan<byte> b) => Convert.ToHexStringLower(b);

    [Fact]
    public void Junction_text_is_scale_encoded_as_u64_or_string_and_long_ones_are_hashed()
    {
        Assert.Equal("14416c696365" + new string('0', 52), Hx(Junction.FromText("Alice", true).ChainCode));
        Assert.Equal("01" + new string('0', 62), Hx(Junction.FromText("1", true).ChainCode));
        Assert.Equal("01" + new string('0', 62), Hx(Junction.FromText("+1", false).ChainCode));
        Assert.Equal("ffffffffffffffff" + new string('0', 48), Hx(Junction.FromText("18446744073709551615", true).ChainCode));
        // One past u64::MAX is a string (compact length 20 → 0x50).
        Assert.StartsWith("50", Hx(Junction.FromText("18446744073709551616", true).ChainCode), StringComparison.Ordinal);
        Assert.StartsWith("082d31", Hx(Junction.FromText("-1", true).ChainCode), StringComparison.Ordinal);
        var longText = new string('x', 40);
        var encoded = new byte[] { 40 << 2 }.Concat(System.Text.Encoding.UTF8.GetBytes(longText)).ToArray();
        Assert.Equal(Hx(Blake2b.Hash256(encoded)), Hx(Junction.FromText(longText, true).ChainCode));
        // 31 characters + 1 length byte = 32 bytes: padded, not hashed.
        Assert.StartsWith("7c", Hx(Junction.FromText(new string('y', 31), true).ChainCode), StringComparison.Ordinal);
    }

    [Fact]
    public void Parser_splits_phrase_hard_and_soft_junctions_and_password()
    {
        var p = SecretUri.Parse(SecretUri.DevPhrase + "//hard/soft///pass/with//slashes");
        Assert.Equal(SecretUri.DevPhrase, p.Phrase);
        Assert.Equal([true, false], p.Path.Select(j => j.IsHard));
        Assert.Equal("pass/with//slashes", p.Password);

        var dev = SecretUri.Parse("//Alice");
        Assert.Equal(SecretUri.DevPhrase, dev.Phrase);
        Assert.Single(dev.Path);
        Assert.Null(dev.Password);
    }

    [Fact]
    public void Password_changes_the_key_and_applies_to_the_dev_phrase_too()
    {
        using var a = SecretUri.ToSr25519("//Alice///password");
        using var b = SecretUri.ToSr25519(SecretUri.DevPhrase + "//Alice///password");
        using var plain = SecretUri.ToSr25519("//Alice");
        Assert.Equal(Hx(a.PublicKey.Span), Hx(b.PublicKey.Span));
        Assert.NotEqual(Hx(a.PublicKey.Span), Hx(plain.PublicKey.Span));
        using var root = Sr25519KeyPair.FromMiniSecret(Bip39.ToMiniSecret(SecretUri.DevPhrase, "password"));
        using var manual = root.DeriveHard(Junction.FromText("Alice", true).ChainCode);
        Assert.Equal(Hx(manual.PublicKey.Span), Hx(a.PublicKey.Span));
    }

    [Fact]
    public void Hex_mini_secret_uri_is_used_directly_and_can_be_derived()
    {
        const string seed = "0x9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        using var pair = SecretUri.ToSr25519(seed);
        Assert.Equal("44a996beb1eef7bdcab976ab6d2ca26104834164ecf28fb375600576fcc6eb0f", Hx(pair.PublicKey.Span));
        using var derived = SecretUri.ToSr25519(seed + "//0");
        using var manual = pair.DeriveHard(Junction.FromText("0", true).ChainCode);
        Assert.Equal(Hx(manual.PublicKey.Span), Hx(derived.PublicKey.Span));
        // Alice's mini secret as a hex SURI names Alice.
        using var alice = SecretUri.ToSr25519("0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a");
        Assert.Equal("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", alice.ToSs58());
    }

    [Theory]
    [InlineData("0x1234")]
    [InlineData("0xzz61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")]
    [InlineData("bottom drive obey lake curtain smoke basket hold race lonely fit fit")]
    [InlineData("not a mnemonic")]
    [InlineData("//Alice//")]
    [InlineData("bottom-drive")]
    public void Malformed_uris_are_rejected_with_a_format_exception(string suri) =>
        Assert.Throws<FormatException>(() => SecretUri.ToSr25519(suri));

    [Fact]
    public void Ed25519_refuses_soft_junctions()
    {
        var ex = Assert.Throws<FormatException>(() => SecretUri.ToEd25519("//Alice/soft"));
        Assert.Contains("soft", ex.Message, StringComparison.Ordinal);
    }
}
