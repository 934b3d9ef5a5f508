using BenchmarkDotNet.Attributes;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;

namespace Bittensor.Benchmarks.Protocol;

/// <summary>
/// Cost per request of the 2021 request authentication: signing the nonce (dendrite side) and checking the
/// headers (axon side), with real sr25519 and with the signature check stubbed to show the verifier's own
/// overhead (parse, skew window, locked nonce store).
/// </summary>
[MemoryDiagnoser]
public class AuthBenchmarks
{
    private const int Batch = 1000;
    private static readonly DateTimeOffset Now = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);

    private Sr25519KeyPair _key = null!;
    private RequestAuth _auth = null!;
    private (string Auth, string Signature, string Version)[] _headers = [];

    [GlobalSetup]
    public void Setup()
    {
        _key = Sr25519KeyPair.FromMiniSecret(new byte[32]);
        _auth = new RequestAuth(new KeyPairRequestSigner(_key), new FixedClock(Now));
        _headers = new (string, string, string)[Batch];
        for (var i = 0; i < Batch; i++)
            _headers[i] = ("Bittensor", _auth.CreateSignatureHeaderAsync().AsTask().GetAwaiter().GetResult(), "150");
    }

    [GlobalCleanup]
    public void Cleanup() => _key.Dispose();

    /// <summary>Dendrite side: nonce + sr25519 signature + header string.</summary>
    [Benchmark]
    public string Sign() => _auth.CreateSignatureHeaderAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>Axon side with real sr25519 verification, per request (fresh nonces).</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public int VerifySr25519() => VerifyAll(Sr25519SignatureVerifier.Instance);

    /// <summary>Axon side with the signature check stubbed: the verifier's own overhead per request.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public int VerifyOverheadOnly() => VerifyAll(AcceptAll.Instance);

    private int VerifyAll(ISignatureVerifier signatures)
    {
        // The nonces run 1 ms apart from Now; the clock sits in their middle so all are inside the window.
        using var verifier = new RequestVerifier(null, signatures, new FixedClock(Now.AddMilliseconds(Batch / 2)));
        var accepted = 0;
        foreach (var (a, s, v) in _headers)
            if (verifier.Verify(a, s, v).IsAccepted) accepted++;
        if (accepted != Batch) throw new InvalidOperationException($"only {accepted} of {Batch} accepted");
        return accepted;
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }

    private sealed class AcceptAll : ISignatureVerifier
    {
        public static readonly AcceptAll Instance = new();

        public bool Verify(string ss58Address, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature) => true;
    }
}
