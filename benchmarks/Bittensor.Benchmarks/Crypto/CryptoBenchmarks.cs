using BenchmarkDotNet.Attributes;
using Bittensor.Core.Crypto;

namespace Bittensor.Benchmarks.Crypto;

/// <summary>
/// sr25519, BLAKE2b, twox and SS58 on the hot paths (signing extrinsics, verifying Synapse signatures,
/// storage keys, addresses). The polkadot-js anchor for the same operations is benchmarks/js/crypto-bench.mjs.
/// </summary>
[MemoryDiagnoser]
public class CryptoBenchmarks
{
    private static readonly byte[] Mini = Convert.FromHexString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    private readonly byte[] message = new byte[128];
    private readonly byte[] data32 = new byte[32];
    private readonly byte[] data1K = new byte[1024];
    private readonly byte[] hash32 = new byte[32];
    private readonly byte[] twox16 = new byte[16];
    private Sr25519KeyPair pair = null!;
    private byte[] publicKey = [];
    private byte[] signature = [];
    private string address = "";
    private const int BatchSize = 16;
    private ReadOnlyMemory<byte>[] batchKeys = [];
    private ReadOnlyMemory<byte>[] batchMessages = [];
    private ReadOnlyMemory<byte>[] batchSignatures = [];

    /// <summary>Fixed inputs so runs are comparable with the JS anchor.</summary>
    [GlobalSetup]
    public void Setup()
    {
        for (var i = 0; i < message.Length; i++) message[i] = (byte)i;
        for (var i = 0; i < data1K.Length; i++) data1K[i] = (byte)(i * 7);
        data1K.AsSpan(0, 32).CopyTo(data32);
        pair = Sr25519KeyPair.FromMiniSecret(Mini);
        publicKey = pair.PublicKey.ToArray();
        signature = pair.Sign(message);
        address = pair.ToSs58();
        batchKeys = new ReadOnlyMemory<byte>[BatchSize];
        batchMessages = new ReadOnlyMemory<byte>[BatchSize];
        batchSignatures = new ReadOnlyMemory<byte>[BatchSize];
        for (var i = 0; i < BatchSize; i++)
        {
            var mini = (byte[])Mini.Clone();
            mini[0] ^= (byte)(i + 1);
            using var p = Sr25519KeyPair.FromMiniSecret(mini);
            var m = (byte[])message.Clone();
            m[0] = (byte)i;
            batchKeys[i] = p.PublicKey.ToArray();
            batchMessages[i] = m;
            batchSignatures[i] = p.Sign(m);
        }
    }

    /// <summary>Zeroes the benchmark key.</summary>
    [GlobalCleanup]
    public void Cleanup() => pair.Dispose();

    /// <summary>sr25519 sign of a 128-byte message.</summary>
    [Benchmark]
    public byte[] Sr25519Sign() => pair.Sign(message);

    /// <summary>sr25519 verify of a 128-byte message on libsodium's constant-time ristretto255 (the path before issue 11).</summary>
    [Benchmark]
    public bool Sr25519Verify() => Sr25519.VerifyWithLibsodium(publicKey, message, signature);

    /// <summary>sr25519 verify of a 128-byte message, the shipped path: managed variable-time Straus/wNAF.</summary>
    [Benchmark]
    public bool Sr25519Verify_fast() => Sr25519.Verify(publicKey, message, signature);

    /// <summary>The same verification with the 4-way AVX2 arithmetic switched off (the scalar radix-2^51 path; session 12's "before").</summary>
    [Benchmark]
    public bool Sr25519Verify_fast_scalarPath()
    {
        var before = Bittensor.Core.Crypto.Curve25519.VectorArithmetic.Enabled;
        Bittensor.Core.Crypto.Curve25519.VectorArithmetic.Enabled = false;
        var ok = Sr25519.Verify(publicKey, message, signature);
        Bittensor.Core.Crypto.Curve25519.VectorArithmetic.Enabled = before;
        return ok;
    }

    /// <summary>
    /// sr25519 batch verify of 16 signatures by 16 different keys (128-byte messages), reported per signature
    /// (schnorrkel verify_batch: one multiscalar multiplication).
    /// </summary>
    [Benchmark(OperationsPerInvoke = BatchSize)]
    public bool Sr25519VerifyBatch16_perSignature() => Sr25519.VerifyBatch(batchKeys, batchMessages, batchSignatures);

    /// <summary>Mini secret → key pair (SHA-512 expansion + one basepoint multiplication).</summary>
    [Benchmark]
    public int Sr25519KeypairFromSeed()
    {
        using var p = Sr25519KeyPair.FromMiniSecret(Mini);
        return p.PublicKey.Length;
    }

    /// <summary>BLAKE2b-256 of 32 bytes.</summary>
    [Benchmark]
    public byte Blake2b256_32B()
    {
        Blake2b.Hash(data32, hash32);
        return hash32[0];
    }

    /// <summary>BLAKE2b-256 of 1 KiB.</summary>
    [Benchmark]
    public byte Blake2b256_1KiB()
    {
        Blake2b.Hash(data1K, hash32);
        return hash32[0];
    }

    /// <summary>twox128 of 32 bytes.</summary>
    [Benchmark]
    public byte Twox128_32B()
    {
        Twox.Hash128(data32, twox16);
        return twox16[0];
    }

    /// <summary>twox128 of 1 KiB.</summary>
    [Benchmark]
    public byte Twox128_1KiB()
    {
        Twox.Hash128(data1K, twox16);
        return twox16[0];
    }

    /// <summary>SS58 encode (prefix 42).</summary>
    [Benchmark]
    public string Ss58Encode() => Ss58.Encode(publicKey);

    /// <summary>SS58 decode with checksum check.</summary>
    [Benchmark]
    public byte[] Ss58Decode() => Ss58.Decode(address);
}
