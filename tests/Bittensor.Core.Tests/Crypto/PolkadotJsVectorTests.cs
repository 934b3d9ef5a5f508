using Bittensor.Core.Crypto;

namespace Bittensor.Core.Tests.Crypto;

/// <summary>Every entry of Fixtures/keys.json (made with polkadot-js util-crypto 14.0.3).</summary>
[Collection(VerifyPath.Name)]
public class PolkadotJsVectorTests
{
    public static TheoryData<int> Mnemonics => KeyVectors.Indices("mnemonics");
    public static TheoryData<int> Derivations => KeyVectors.Indices("derivations");
    public static TheoryData<int> Signatures => KeyVectors.Indices("sr25519_signatures");
    public static TheoryData<int> Ed25519Rows => KeyVectors.Indices("ed25519");
    public static TheoryData<int> Ss58Rows => KeyVectors.Indices("ss58");
    public static TheoryData<int> HashRows => KeyVectors.Indices("hashes");

    [Fact]
    public void The_fixture_file_has_every_section_filled()
    {
        Assert.Equal(12, KeyVectors.Section("mnemonics").GetArrayLength());
        Assert.Equal(75, KeyVectors.Section("derivations").GetArrayLength());
        Assert.Equal(12, KeyVectors.Section("sr25519_signatures").GetArrayLength());
        Assert.Equal(12, KeyVectors.Section("ed25519").GetArrayLength());
        Assert.Equal(12, KeyVectors.Section("ss58").GetArrayLength());
        Assert.Equal(12, KeyVectors.Section("hashes").GetArrayLength());
    }

    [Theory, MemberData(nameof(Mnemonics))]
    public void Mnemonic_gives_the_polkadot_js_entropy_mini_secrets_keys_and_address(int row)
    {
        var v = KeyVectors.Item("mnemonics", row);
        var mnemonic = v.Str("mnemonic");
        Assert.True(Bip39.IsValid(mnemonic));
        var entropy = Bip39.ToEntropy(mnemonic);
        Assert.Equal(v.Str("entropy"), KeyVectors.Hx(entropy));
        Assert.Equal(mnemonic, Bip39.FromEntropy(entropy));
        var mini = Bip39.ToMiniSecret(mnemonic);
        Assert.Equal(v.Str("mini_secret"), KeyVectors.Hx(mini));
        var withPassword = v.GetProperty("mini_secret_with_password");
        Assert.Equal(withPassword.Str("mini_secret"), KeyVectors.Hx(Bip39.ToMiniSecret(mnemonic, withPassword.Str("password"))));

        using var pair = Sr25519KeyPair.FromMiniSecret(mini);
        Assert.Equal(v.Str("sr25519_public"), KeyVectors.Hx(pair.PublicKey.Span));
        Assert.Equal(v.Str("sr25519_secret64"), KeyVectors.Hx(pair.ToEd25519Secret()));
        Assert.Equal(v.Str("ss58_42"), pair.ToSs58());
        Assert.Equal(v.Str("mini_secret"), KeyVectors.Hx(pair.MiniSecret!.Value.Span));

        using var fromJsSecret = Sr25519KeyPair.FromEd25519Secret(v.Bytes("sr25519_secret64"));
        Assert.Equal(v.Str("sr25519_public"), KeyVectors.Hx(fromJsSecret.PublicKey.Span));
        using var fromCanonical = Sr25519KeyPair.FromCanonicalSecret(fromJsSecret.ToCanonicalSecret());
        Assert.Equal(v.Str("sr25519_public"), KeyVectors.Hx(fromCanonical.PublicKey.Span));

        using var ed = Ed25519KeyPair.FromSeed(mini);
        Assert.Equal(v.Str("ed25519_public"), KeyVectors.Hx(ed.PublicKey.Span));

        using var viaUri = SecretUri.ToSr25519(mnemonic);
        Assert.Equal(v.Str("sr25519_public"), KeyVectors.Hx(viaUri.PublicKey.Span));
        using var viaUriWithPassword = SecretUri.ToSr25519(mnemonic + "///" + withPassword.Str("password"));
        using var expectedWithPassword = Sr25519KeyPair.FromMiniSecret(withPassword.Bytes("mini_secret"));
        Assert.Equal(KeyVectors.Hx(expectedWithPassword.PublicKey.Span), KeyVectors.Hx(viaUriWithPassword.PublicKey.Span));
    }

    [Theory, MemberData(nameof(Derivations))]
    public void Derivation_path_gives_the_polkadot_js_public_key_and_address(int row)
    {
        var v = KeyVectors.Item("derivations", row);
        var suri = v.Str("mnemonic") + v.Str("path");
        using var pair = SecretUri.ToSr25519(suri);
        Assert.Equal(v.Str("sr25519_public"), KeyVectors.Hx(pair.PublicKey.Span));
        Assert.Equal(v.Str("ss58_42"), pair.ToSs58());
        if (v.TryGetProperty("ed25519_public", out var edPublic))
        {
            using var ed = SecretUri.ToEd25519(suri);
            Assert.Equal(edPublic.GetString(), KeyVectors.Hx(ed.PublicKey.Span));
        }
        else if (HasSoftJunction(v.Str("path")))
        {
            Assert.Throws<FormatException>(() => SecretUri.ToEd25519(suri));
        }
    }

    private static bool HasSoftJunction(string path)
    {
        for (var i = 0; i < path.Length; i++)
        {
            if (path[i] != '/') continue;
            if (i + 1 < path.Length && path[i + 1] == '/') { i++; continue; }
            return true;
        }
        return false;
    }

    [Theory, MemberData(nameof(Signatures))]
    public void Polkadot_js_signature_verifies_and_its_tampered_copy_does_not(int row)
    {
        var v = KeyVectors.Item("sr25519_signatures", row);
        var pub = v.Bytes("public");
        var msg = v.Bytes("message");
        Assert.True(v.GetProperty("valid").GetBoolean());
        Assert.True(Sr25519.Verify(pub, msg, v.Bytes("signature")));
        Assert.False(v.GetProperty("tampered_valid").GetBoolean());
        Assert.False(Sr25519.Verify(pub, msg, v.Bytes("tampered_signature")));
    }

    [Theory, MemberData(nameof(Signatures))]
    public void Our_signature_with_the_vector_secret_verifies_against_the_vector_public_key(int row)
    {
        var v = KeyVectors.Item("sr25519_signatures", row);
        var pub = v.Bytes("public");
        var msg = v.Bytes("message");
        using var pair = Sr25519KeyPair.FromEd25519Secret(v.Bytes("secret64"));
        Assert.Equal(KeyVectors.Hx(pub), KeyVectors.Hx(pair.PublicKey.Span));
        var sig = pair.Sign(msg);
        Assert.True(Sr25519.Verify(pub, msg, sig));
        Assert.NotEqual(KeyVectors.Hx(v.Bytes("signature")), KeyVectors.Hx(sig)); // fresh witness randomness
        var other = (byte[])msg.Clone();
        other[0] ^= 1;
        Assert.False(Sr25519.Verify(pub, other, sig));
    }

    [Theory, MemberData(nameof(Ed25519Rows))]
    public void Ed25519_seed_gives_the_vector_public_key_and_signature(int row)
    {
        var v = KeyVectors.Item("ed25519", row);
        using var pair = Ed25519KeyPair.FromSeed(v.Bytes("seed"));
        Assert.Equal(v.Str("public"), KeyVectors.Hx(pair.PublicKey.Span));
        var msg = v.Bytes("message");
        Assert.Equal(v.Str("signature"), KeyVectors.Hx(pair.Sign(msg)));
        Assert.True(Ed25519KeyPair.Verify(v.Bytes("public"), msg, v.Bytes("signature")));
        var bad = v.Bytes("signature");
        bad[5] ^= 0x40;
        Assert.False(Ed25519KeyPair.Verify(v.Bytes("public"), msg, bad));
    }

    [Theory, MemberData(nameof(Ss58Rows))]
    public void Ss58_encodes_and_decodes_the_vector_addresses_for_prefixes_42_0_and_2(int row)
    {
        var v = KeyVectors.Item("ss58", row);
        var pub = v.Bytes("public");
        foreach (var (field, prefix) in new[] { ("prefix42", (ushort)42), ("prefix0", (ushort)0), ("prefix2", (ushort)2) })
        {
            Assert.Equal(v.Str(field), Ss58.Encode(pub, prefix));
            Assert.True(Ss58.TryDecode(v.Str(field), out var key, out var decodedPrefix));
            Assert.Equal(KeyVectors.Hx(pub), KeyVectors.Hx(key));
            Assert.Equal(prefix, decodedPrefix);
        }
    }

    [Theory, MemberData(nameof(HashRows))]
    public void Hashes_match_the_vector_blake2b_and_twox_outputs(int row)
    {
        var v = KeyVectors.Item("hashes", row);
        var data = v.Bytes("data");
        Assert.Equal(v.Str("blake2b_128"), KeyVectors.Hx(Blake2b.Hash128(data)));
        Assert.Equal(v.Str("blake2b_256"), KeyVectors.Hx(Blake2b.Hash256(data)));
        Assert.Equal(v.Str("blake2b_512"), KeyVectors.Hx(Blake2b.Hash512(data)));
        var t64 = new byte[8];
        var t128 = new byte[16];
        var t256 = new byte[32];
        Twox.Hash64(data, t64);
        Twox.Hash128(data, t128);
        Twox.Hash256(data, t256);
        Assert.Equal(v.Str("twox64"), KeyVectors.Hx(t64));
        Assert.Equal(v.Str("twox128"), KeyVectors.Hx(t128));
        Assert.Equal(v.Str("twox256"), KeyVectors.Hx(t256));
        // The managed BLAKE2b (used below 16 bytes) agrees with libsodium at every length it can check.
        foreach (var len in new[] { 16, 20, 32, 48, 64 })
        {
            var a = new byte[len];
            var b = new byte[len];
            Blake2b.Hash(data, a);
            Blake2bManaged.Hash(data, b);
            Assert.Equal(KeyVectors.Hx(a), KeyVectors.Hx(b));
        }
    }
}
