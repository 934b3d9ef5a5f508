using BenchmarkDotNet.Attributes;
using Bittensor.Core.Crypto;

namespace Bittensor.Benchmarks.Crypto;

/// <summary>
/// sr25519 batch verification (<see cref="Sr25519.VerifyEach"/>, what the axon's batcher calls) per signature at batch
/// sizes 1, 4, 16 and 64: every invocation verifies 64 signatures by 64 different keys (128-byte messages) in batches of
/// <see cref="BatchSize"/>, so the figure is the cost per signature. Beside it, run
/// <c>CryptoBenchmarks.Sr25519Verify</c> (libsodium) and <c>Sr25519Verify_fast</c> (single managed verify).
/// </summary>
[MemoryDiagnoser]
public class BatchVerifyBenchmarks
{
    private const int Signatures = 64;
    private Sr25519BatchItem[] items = [];
    private readonly bool[] valid = new bool[Signatures];

    /// <summary>Signatures per batch.</summary>
    [Params(1, 4, 16, 64)]
    public int BatchSize { get; set; }

    /// <summary>64 keys, one signature each; the keys are prepared (cached) by a first verification, as in an axon's steady state.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var mini = Convert.FromHexString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        items = new Sr25519BatchItem[Signatures];
        for (var i = 0; i < Signatures; i++)
        {
            var m = (byte[])mini.Clone();
            m[0] ^= (byte)(i + 1);
            using var p = Sr25519KeyPair.FromMiniSecret(m);
            var message = new byte[128];
            for (var j = 0; j < message.Length; j++) message[j] = (byte)(i + j);
            items[i] = new Sr25519BatchItem(p.PublicKey.ToArray(), message, p.Sign(message));
        }
        VerifyEach_perSignature();
        if (!valid.All(v => v)) throw new InvalidOperationException("a benchmark signature does not verify");
    }

    /// <summary>64 signatures in batches of <see cref="BatchSize"/>, per signature.</summary>
    [Benchmark(OperationsPerInvoke = Signatures)]
    public bool VerifyEach_perSignature()
    {
        var all = true;
        for (var start = 0; start < Signatures; start += BatchSize)
            all &= Sr25519.VerifyEach(items.AsSpan(start, BatchSize), valid.AsSpan(start, BatchSize));
        return all;
    }
}
