using System.Security.Cryptography;
using System.Text;
using Bittensor.Core.Crypto;

namespace Bittensor.Core.Tests.Crypto;

public sealed class MerlinTests
{
    private static string Hex(ReadOnlySpan<byte> b) => Convert.ToHexStringLower(b);

    [Fact]
    public void Keccak_permutation_in_a_sha3_256_sponge_matches_dotnet_sha3_256()
    {
        Assert.True(SHA3_256.IsSupported, "this test needs an OpenSSL with SHA3 (Debian 12 has it)");
        foreach (var len in new[] { 0, 3, 135, 136, 137, 500 })
        {
            var msg = Enumerable.Range(0, len).Select(i => (byte)(i * 7 + 1)).ToArray();
            var state = new byte[200];
            const int rate = 136;
            var padded = new byte[(len / rate + 1) * rate];
            msg.CopyTo(padded, 0);
            padded[len] ^= 0x06;
            padded[^1] ^= 0x80;
            for (var off = 0; off < padded.Length; off += rate)
            {
                for (var i = 0; i < rate; i++) state[i] ^= padded[off + i];
                Keccak.Permute(state);
            }
            Assert.Equal(Hex(SHA3_256.HashData(msg)), Hex(state.AsSpan(0, 32)));
        }
    }

    [Fact]
    public void Strobe_conformance_scenario_from_merlin_gives_the_published_outputs()
    {
        var s = new Strobe128("Conformance Test Protocol"u8);
        s.MetaAd("ms"u8, false);
        s.MetaAd("g"u8, true);
        s.Ad(Enumerable.Repeat((byte)0x63, 1024).ToArray(), false);
        s.MetaAd("prf"u8, false);
        var prf = new byte[32];
        s.Prf(prf, false);
        Assert.Equal("b48e645ca17c667fd5206ba57a6a228d72d8e1903814d3f17f622996d7cfefb0", Hex(prf));
        s.MetaAd("key"u8, false);
        s.Key(prf, false);
        s.MetaAd("prf"u8, false);
        s.Prf(prf, false);
        Assert.Equal("07e45cce8078cee259e3e375bb85d75610e2d1e1201c5f645045a194edd49ff8", Hex(prf));
    }

    [Fact]
    public void Merlin_simple_transcript_gives_the_equivalence_test_challenge()
    {
        var t = new MerlinTranscript("test protocol"u8);
        t.AppendMessage("some label"u8, "some data"u8);
        var c = new byte[32];
        t.ChallengeBytes("challenge"u8, c);
        Assert.Equal("d5a21972d0d5fe320c0d263fac7fffb8145aa640af6e9bca177c03c7efcf0615", Hex(c));
    }

    [Fact]
    public void Witness_rng_works_on_a_clone_and_leaves_the_transcript_unchanged()
    {
        var a = new MerlinTranscript("p"u8);
        var b = new MerlinTranscript("p"u8);
        a.AppendMessage("m"u8, "x"u8);
        b.AppendMessage("m"u8, "x"u8);
        var r1 = new byte[64];
        var r2 = new byte[64];
        using (var rng = a.BuildRng("w"u8, "secret"u8, new byte[32])) rng.FillBytes(r1);
        using (var rng = a.BuildRng("w"u8, "secret"u8, new byte[32])) rng.FillBytes(r2);
        Assert.Equal(Hex(r1), Hex(r2));
        var other = new byte[32];
        other[0] = 1;
        using (var rng = a.BuildRng("w"u8, "secret"u8, other)) rng.FillBytes(r2);
        Assert.NotEqual(Hex(r1), Hex(r2));
        var ca = new byte[32];
        var cb = new byte[32];
        a.ChallengeBytes("c"u8, ca);
        b.ChallengeBytes("c"u8, cb);
        Assert.Equal(Hex(cb), Hex(ca));
    }

    [Fact]
    public void Continuing_an_operation_with_different_flags_is_refused()
    {
        var s = new Strobe128("x"u8);
        s.MetaAd("a"u8, false);
        Assert.Throws<InvalidOperationException>(() => s.Ad(Encoding.ASCII.GetBytes("b"), true));
    }
}
