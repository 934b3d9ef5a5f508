using BenchmarkDotNet.Attributes;
using Bittensor.Core.Crypto;

namespace Bittensor.Benchmarks.Crypto;

/// <summary>
/// The pieces of an sr25519 verify, to see where its time goes: libsodium's two scalar multiplications
/// and point decoding, and the managed Keccak/Merlin transcript.
/// </summary>
public class CryptoPrimitiveBenchmarks
{
    private readonly byte[] scalar = new byte[32];
    private readonly byte[] point = new byte[32];
    private readonly byte[] output = new byte[32];
    private readonly byte[] state = new byte[200];
    private readonly byte[] message = new byte[128];

    /// <summary>A fixed scalar and the point it gives.</summary>
    [GlobalSetup]
    public void Setup()
    {
        for (var i = 0; i < 31; i++) scalar[i] = (byte)(i * 13 + 1);
        Ristretto.ScalarMultBase(scalar, point);
    }

    /// <summary>libsodium ristretto255 basepoint multiplication.</summary>
    [Benchmark]
    public bool RistrettoBaseMult() => Ristretto.ScalarMultBase(scalar, output);

    /// <summary>libsodium ristretto255 variable-base multiplication (constant time).</summary>
    [Benchmark]
    public bool RistrettoVarMult() => Ristretto.ScalarMult(scalar, point, output);

    /// <summary>libsodium ristretto255 point decoding check.</summary>
    [Benchmark]
    public bool RistrettoIsValidPoint() => Ristretto.IsValidPoint(point);

    /// <summary>One Keccak-f[1600] permutation.</summary>
    [Benchmark]
    public byte KeccakPermute()
    {
        Keccak.Permute(state);
        return state[0];
    }

    /// <summary>The whole verify transcript (context, message, pk, R, challenge) without curve work.</summary>
    [Benchmark]
    public byte VerifyTranscript()
    {
        var t = Sr25519.SigningTranscript(message);
        t.AppendMessage("proto-name"u8, "Schnorr-sig"u8);
        t.AppendMessage("sign:pk"u8, point);
        t.AppendMessage("sign:R"u8, point);
        Span<byte> wide = stackalloc byte[64];
        t.ChallengeBytes("sign:c"u8, wide);
        return wide[0];
    }
}
