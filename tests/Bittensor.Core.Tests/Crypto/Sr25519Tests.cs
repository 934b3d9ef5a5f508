using System.Text;
using Bittensor.Core.Crypto;

namespace Bittensor.Core.Tests.Crypto;

/// <summary>SUBSTRATE.md §1.6 and §2.3 vectors plus the verifier's rejection rules.</summary>
[Collection(VerifyPath.Name)]
public class Sr25519Tests
{
    private const string Seed9d61 = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    private static string Hx(ReadOnlySpan<byte> b) => Convert.ToHexStringLower(b);
    private static byte[] B(string hex) => Convert.FromHexString(hex);

    [Theory]
    // polkadot-sdk substrate/primitives/core/src/sr25519.rs sr_test_vector_should_work
    [InlineData(Seed9d61, "44a996beb1eef7bdcab976ab6d2ca26104834164ecf28fb375600576fcc6eb0f")]
    [InlineData("3132333435363738393031323334353637383930313233343536373839303132", "741c08a06f41c596608f6774259bd9043304adfa5d3eea62760bd9be97634d63")]
    public void Mini_secret_expands_to_the_substrate_public_key(string mini, string expected)
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(B(mini));
        Assert.Equal(expected, Hx(pair.PublicKey.Span));
    }

    [Fact]
    public void Ed25519_mode_expansion_matches_the_polkadot_js_testing_spec_row()
    {
        // polkadot-js/common util-crypto sr25519/pair/testing.spec.ts
        using var pair = Sr25519KeyPair.FromMiniSecret(B("44e9d125f037ac1d51f0a7d3649689d422c2af8b1ec8e00d71db4d7bf6d127e3"));
        Assert.Equal("b0b3174fe43c15938bb0d0cc5b6f7ac7295f557ee1e6fdeb24fb73f4e0cb2b6e" + "c40ffb9da4af6d411eae8e292750fd105ff70fe93f337b5b590f5a9d9030c750",
            Hx(pair.ToEd25519Secret()));
    }

    [Fact]
    public void Both_64_byte_secret_encodings_of_the_same_key_are_produced_and_read_back()
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(B(Seed9d61));
        var ed = pair.ToEd25519Secret();
        var canonical = pair.ToCanonicalSecret();
        Assert.Equal("307c83864f2833cb427a2ef1c00a013cfdff2768d980c0a3a520f006904de94f" + "9b4f0afe280b746a778684e75442502057b7473a03f08f96f5a38e9287e01f8f", Hx(ed));
        Assert.Equal("866fd0f00965665948cf251e582180a7ffff042d1b1078b41404de00b229fd09" + "9b4f0afe280b746a778684e75442502057b7473a03f08f96f5a38e9287e01f8f", Hx(canonical));
        using var a = Sr25519KeyPair.FromEd25519Secret(ed);
        using var b = Sr25519KeyPair.FromCanonicalSecret(canonical);
        Assert.Equal(Hx(pair.PublicKey.Span), Hx(a.PublicKey.Span));
        Assert.Equal(Hx(pair.PublicKey.Span), Hx(b.PublicKey.Span));
        Assert.Null(a.MiniSecret);
    }

    [Fact]
    public void Canonical_secret_loader_rejects_the_polkadot_js_form_with_a_non_canonical_scalar()
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(B(Seed9d61));
        // This key·8 is ≥ ℓ, so reading it as canonical must fail instead of producing another key.
        var ex = Assert.Throws<ArgumentException>(() => Sr25519KeyPair.FromCanonicalSecret(pair.ToEd25519Secret()));
        Assert.DoesNotContain("307c8386", ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Throws<ArgumentException>(() => Sr25519KeyPair.FromCanonicalSecret(new byte[64]));
        Assert.Throws<ArgumentException>(() => Sr25519KeyPair.FromCanonicalSecret(new byte[63]));
        Assert.Throws<ArgumentException>(() => Sr25519KeyPair.FromMiniSecret(new byte[31]));
    }

    [Theory]
    // rng = 32 zero bytes; equal to @scure/sr25519 sign(sk, msg, () => zeros)
    [InlineData("", "98a600e8d68449ab9c578377d10df7251d618b67f724af4def961b4e8c08e740db9b78cf7f9e40fde60c88cfc95674bac50679056699275ddcec692c526c738b")]
    [InlineData("this is a message", "88be2fd7a904b5303e2ea3cf721a7404baf89abc7d002ca4e980749f40ad046419eed74ab73b418683b9ba287c47b2de74cd358d6b84c0cf7cd65c6819b5b887")]
    public void Deterministic_signature_with_zero_witness_randomness_matches_scure_sr25519(string message, string expected)
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(B(Seed9d61));
        var sig = pair.Sign(Encoding.UTF8.GetBytes(message), new byte[32]);
        Assert.Equal(expected, Hx(sig));
        Assert.True(Sr25519.Verify(pair.PublicKey.Span, Encoding.UTF8.GetBytes(message), sig));
    }

    [Fact]
    public void Signature_in_the_pre_marker_format_is_rejected()
    {
        // polkadot-sdk sr25519.rs verify_known_old_message_should_work: only verify_deprecated accepts it.
        var pub = B("b4bfa1f7a5166695eb75299fd1c4c03ea212871c342f2c5dfea0902b2c246918");
        var sig = B("5a9755f069939f45d96aaf125cf5ce7ba1db998686f87f2fb3cbdea922078741a73891ba265f70c31436e18a9acd14d189d73c12317ab6c313285cd938453202");
        var msg = "Verifying that I am the owner of 5G9hQLdsKQswNPgB499DeA5PkFBbgkLPJWkkS6FAM6xGQ8xD. Hash: 221455a3\n"u8.ToArray();
        Assert.False(Sr25519.Verify(pub, msg, sig));
    }

    [Fact]
    public void Verify_rejects_a_missing_marker_a_large_s_bad_points_the_identity_and_wrong_lengths()
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(B(Seed9d61));
        var msg = "payload"u8.ToArray();
        var sig = pair.Sign(msg);
        var pub = pair.PublicKey.ToArray();
        Assert.True(Sr25519.Verify(pub, msg, sig));

        var noMarker = (byte[])sig.Clone();
        noMarker[63] &= 0x7f;
        Assert.False(Sr25519.Verify(pub, msg, noMarker));

        // s + ℓ encodes the same residue; it must be refused as non-canonical.
        var bigS = (byte[])sig.Clone();
        var s = sig.AsSpan(32, 32).ToArray();
        s[31] &= 0x7f;
        var l = B("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        var carry = 0;
        for (var i = 0; i < 32; i++)
        {
            var t = s[i] + l[i] + carry;
            bigS[32 + i] = (byte)t;
            carry = t >> 8;
        }
        Assert.True((bigS[63] & 0x80) == 0, "s + ℓ stays below 2^255 for this key");
        bigS[63] |= 0x80;
        Assert.False(Sr25519.Verify(pub, msg, bigS));

        var badR = (byte[])sig.Clone();
        Array.Fill(badR, (byte)0xff, 0, 32);
        Assert.False(Sr25519.Verify(pub, msg, badR));

        var identityR = (byte[])sig.Clone();
        Array.Clear(identityR, 0, 32);
        Assert.False(Sr25519.Verify(pub, msg, identityR));

        Assert.False(Sr25519.Verify(new byte[32], msg, sig));              // identity public key
        Assert.False(Sr25519.Verify(Enumerable.Repeat((byte)0xff, 32).ToArray(), msg, sig)); // not a point
        Assert.False(Sr25519.Verify(pub.AsSpan(0, 31), msg, sig));
        Assert.False(Sr25519.Verify(pub, msg, sig.AsSpan(0, 63)));
        Assert.False(Sr25519.Verify(pub, msg, [1, .. sig]));
    }

    [Fact]
    public void Verifies_one_after_another_on_one_thread_each_start_from_the_signing_context_not_the_last_verify()
    {
        // The verify's transcript is one per thread, reset for every signature: whatever a verify before absorbed
        // (messages of other lengths, a failed check part-way) must not reach the next challenge.
        using var pair = Sr25519KeyPair.FromMiniSecret(B(Seed9d61));
        var pub = pair.PublicKey.ToArray();
        byte[][] messages = [[], "a"u8.ToArray(), Encoding.UTF8.GetBytes(new string('m', 300)), "payload"u8.ToArray(), new byte[166], new byte[167]];
        var signatures = messages.Select(m => pair.Sign(m)).ToArray();
        for (var round = 0; round < 3; round++)
        {
            for (var i = 0; i < messages.Length; i++)
            {
                Assert.True(Sr25519.Verify(pub, messages[i], signatures[i]), $"message {i}, round {round}");
                Assert.False(Sr25519.Verify(pub, messages[(i + 1) % messages.Length], signatures[i]), $"message {i} under the next one's signature");
                Assert.True(Sr25519.Verify(pub, messages[i], signatures[i]), $"message {i} after a failed check");
            }
        }
        Span<bool> valid = stackalloc bool[messages.Length];
        var items = messages.Select((m, i) => new Sr25519BatchItem(pub, m, signatures[i])).ToArray();
        Sr25519.VerifyEach(items, valid);
        Assert.DoesNotContain(false, valid.ToArray());
    }

    [Fact]
    public void Signature_over_the_bytes_wrapped_message_does_not_verify_for_the_bare_message()
    {
        using var pair = Sr25519KeyPair.FromMiniSecret(B(Seed9d61));
        var msg = "hello"u8.ToArray();
        var wrapped = "<Bytes>"u8.ToArray().Concat(msg).Concat("</Bytes>"u8.ToArray()).ToArray();
        var sig = pair.Sign(wrapped);
        Assert.True(Sr25519.Verify(pair.PublicKey.Span, wrapped, sig));
        Assert.False(Sr25519.Verify(pair.PublicKey.Span, msg, sig));
        Assert.True(Sr25519.VerifyRawOrBytesWrapped(pair.PublicKey.Span, msg, sig));
        Assert.True(Sr25519.VerifyRawOrBytesWrapped(pair.PublicKey.Span, msg, pair.Sign(msg)));
        Assert.False(Sr25519.VerifyRawOrBytesWrapped(pair.PublicKey.Span, "other"u8, sig));
    }

    [Fact]
    public void Dev_phrase_hdkd_gives_the_substrate_vectors()
    {
        Assert.Equal("1a486a5fbe53639984cb64b070755f7b", Hx(Bip39.ToEntropy(SecretUri.DevPhrase)));
        Assert.Equal("fac7959dbfe72f052e5a0c3c8d6530f202b02fd8f9f5ca3580ec8deb7797479e", Hx(Bip39.ToMiniSecret(SecretUri.DevPhrase)));
        using var root = SecretUri.ToSr25519(SecretUri.DevPhrase);
        Assert.Equal("46ebddef8cd9bb167dc30878d7113b7e168e6f0646beffd77d69d39bad76b47a", Hx(root.PublicKey.Span));
        Assert.Equal("5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV", root.ToSs58());

        using var alice = SecretUri.ToSr25519("//Alice");
        Assert.Equal("e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a", Hx(alice.MiniSecret!.Value.Span));
        Assert.Equal("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d", Hx(alice.PublicKey.Span));
        Assert.Equal("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", alice.ToSs58());
        Assert.Equal("33a6f3093f158a7109f679410bef1a0c54168145e0cecb4df006c1c2fffb1f09925a225d97aa00682d6a59b95b18780c10d7032336e88f3442b42361f4a66011",
            Hx(alice.ToCanonicalSecret()));

        using var softAlice = SecretUri.ToSr25519("/Alice");
        Assert.Equal("d6c71059dbbe9ad2b0ed3f289738b800836eb425544ce694825285b958ca755e", Hx(softAlice.PublicKey.Span));
        Assert.Null(softAlice.MiniSecret);
        using var stash = SecretUri.ToSr25519("//Alice//stash");
        Assert.Equal("be5ddb1579b72e84524fc29e78609e3caf42e85aa118ebfe0b0ad404b5bdd25f", Hx(stash.PublicKey.Span));
        using var bob = SecretUri.ToSr25519(SecretUri.DevPhrase + "//Bob");
        Assert.Equal("8eaf04151687736326c9fea17e25fc5287613693c912909cb226aa4794f26a48", Hx(bob.PublicKey.Span));

        using var edAlice = SecretUri.ToEd25519("//Alice");
        Assert.Equal("88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee", Hx(edAlice.PublicKey.Span));
    }

    [Fact]
    public void Soft_derivation_has_a_reproducible_public_key_but_a_fresh_nonce_and_still_signs()
    {
        using var root = SecretUri.ToSr25519(SecretUri.DevPhrase);
        var cc = new byte[32];
        cc[0] = 0x14;
        "Alice"u8.CopyTo(cc.AsSpan(1));
        using var a = root.DeriveSoft(cc);
        using var b = root.DeriveSoft(cc);
        Assert.Equal("d6c71059dbbe9ad2b0ed3f289738b800836eb425544ce694825285b958ca755e", Hx(a.PublicKey.Span));
        Assert.Equal(Hx(a.PublicKey.Span), Hx(b.PublicKey.Span));
        Assert.Equal(Hx(a.ToCanonicalSecret().AsSpan(0, 32)), Hx(b.ToCanonicalSecret().AsSpan(0, 32)));
        Assert.NotEqual(Hx(a.ToCanonicalSecret().AsSpan(32)), Hx(b.ToCanonicalSecret().AsSpan(32)));
        Assert.Equal(Hx(a.PublicKey.Span), Hx(Sr25519.DerivePublicSoft(root.PublicKey.Span, cc)));
        var sig = a.Sign("x"u8);
        Assert.True(Sr25519.Verify(a.PublicKey.Span, "x"u8, sig));
    }

    [Fact]
    public void Disposed_pair_refuses_to_sign_and_hides_secrets_from_ToString()
    {
        var pair = Sr25519KeyPair.FromMiniSecret(B(Seed9d61));
        var text = pair.ToString();
        Assert.Contains(pair.ToSs58(), text, StringComparison.Ordinal);
        Assert.DoesNotContain("9d61", text, StringComparison.OrdinalIgnoreCase);
        pair.Dispose();
        Assert.Throws<ObjectDisposedException>(() => pair.Sign("x"u8));
        Assert.Throws<ObjectDisposedException>(() => pair.ToCanonicalSecret());
        Assert.Equal("44a996beb1eef7bdcab976ab6d2ca26104834164ecf28fb375600576fcc6eb0f", Hx(pair.PublicKey.Span));
    }
}
