using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Core.Crypto;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Actors.Tests.Axon;

/// <summary>
/// Batch verification in the axon as shipped (the authenticator built from <see cref="AxonSettings"/>, real gRPC over
/// loopback): concurrent callers' signatures are checked together, every good caller is served and every tampered one
/// refused with UNAUTHENTICATED; <c>bittensor.axon.auth.batch_verification = off</c> verifies each call alone.
/// </summary>
public sealed class BatchVerificationSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    private const int Dim = 8;

    [Fact]
    public void The_reference_config_turns_batching_on_and_the_setting_turns_it_off()
    {
        Assert.True(AxonSettings.Default.BatchVerification);
        using var on = (VerifierAuthenticator)AxonSeams.CreateAuthenticator(AxonSettings.Default, TimeProvider.System);
        Assert.IsType<Sr25519BatchVerifier>(on.Verifier.SignatureVerifier);

        var hocon = ConfigurationFactory.ParseString("bittensor.axon.auth.batch_verification = off")
            .WithFallback(BittensorRuntime.ReferenceConfig);
        var off = AxonSettings.Create(BittensorRuntime.Section(hocon, AxonSettings.SectionPath));
        Assert.False(off.BatchVerification);
        using var single = (VerifierAuthenticator)AxonSeams.CreateAuthenticator(off, TimeProvider.System);
        Assert.IsNotType<Sr25519BatchVerifier>(single.Verifier.SignatureVerifier);
    }

    [Theory]
    [InlineData(true, "lean")] // the default transport
    [InlineData(false, "lean")]
    [InlineData(true, "kestrel")]
    [InlineData(false, "kestrel")]
    public async Task Concurrent_good_and_tampered_callers_over_grpc_each_get_their_own_answer(bool batching, string transport)
    {
        const int callers = 30;
        // Admission by waiting off (the lean transport): the 29 calls on one connection can arrive in one read, and an engaged
        // rule admits limits.admit_per_read (12) of a read and sheds the rest NucleusFull from their headers. It engages on
        // the process's CPU time, which in a test host is every parallel test's (AxonServiceSpec's 32 concurrent calls
        // were shed so in a one-core run); it is not what this test is about.
        var settings = Loopback(workers: 8, queue: 128, networkDim: Dim) with { BatchVerification = batching, Transport = transport, TargetWait = TimeSpan.Zero };
        var auth = (VerifierAuthenticator)AxonSeams.CreateAuthenticator(settings, TimeProvider.System);
        var batcher = auth.Verifier.SignatureVerifier as Sr25519BatchVerifier;
        Assert.Equal(batching, batcher is not null);

        // Hold the first check until every other call has queued its signature, so they form one batch whatever the
        // machine's speed (the batch is what queues while a check runs).
        using var entered = new ManualResetEventSlim();
        using var allQueued = new ManualResetEventSlim();
        var first = 0;
        var batchFormed = true;
        if (batcher is not null)
        {
            // Every caller queues while the first check is held: the last one to queue sees them all.
            batcher.AfterQueued = queued =>
            {
                if (queued >= callers - 1) allQueued.Set();
            };
            batcher.BeforeCheck = _ =>
            {
                if (Interlocked.Exchange(ref first, 1) != 0) return;
                entered.Set();
                batchFormed = allQueued.Wait(TimeSpan.FromMinutes(2));
            };
        }
        var (_, port) = await StartAxon(AxonActor.Props(settings, DemoModels.Echo(Dim), null, auth, null));
        var client = RawClient(port);
        // The held first call comes on its own connection: the lean server runs a header check that completes on the
        // calling thread (the verifier idle: a signature is checked at once) on its connection's read loop, so the
        // hold below stops that connection's other streams until it is released (docs/axon.md, "The lean server").
        var holder = RawClient(port);
        var keys = Enumerable.Range(0, callers).Select(i => SecretUri.ToSr25519($"//batched/{i}")).ToArray();
        try
        {
            var headers = new Metadata[callers];
            for (var i = 0; i < callers; i++)
            {
                headers[i] = await Signed(keys[i]);
                if (i % 4 == 3) headers[i] = Tampered(headers[i]);
            }
            var firstCall = holder.ForwardAsync(TextRequest(keys[0], [1, 2], [1, 2]), headers[0], DateTime.UtcNow.AddSeconds(60)).ResponseAsync;
            if (batcher is not null) Assert.True(entered.Wait(TimeSpan.FromMinutes(2)), "the first check never started");
            var calls = Enumerable.Range(1, callers - 1)
                .Select(i => client.ForwardAsync(TextRequest(keys[i], [1, 2], [i, i]), headers[i], DateTime.UtcNow.AddSeconds(60)).ResponseAsync)
                .Prepend(firstCall).ToArray();

            for (var i = 0; i < callers; i++)
            {
                if (i % 4 == 3)
                {
                    var error = await Assert.ThrowsAsync<RpcException>(() => calls[i]);
                    Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
                    Assert.Contains("signature", error.Status.Detail, StringComparison.Ordinal);
                }
                else
                {
                    var answer = await calls[i];
                    Assert.True(answer.ReturnCode == ReturnCode.Success, $"call {i}: {answer.ReturnCode} {answer.Message}");
                }
            }
            if (batcher is not null)
            {
                Assert.True(batchFormed, "the other callers' signatures never all queued behind the held first check");
                var stats = batcher.Stats;
                Assert.Equal(callers, stats.Signatures);
                Assert.Equal(callers - 1, stats.LargestBatch); // everyone but the first, in one check
                Assert.True(stats.FallbackBatches >= 1);       // the tampered ones made the batch equation fail
            }
        }
        finally
        {
            foreach (var k in keys) k.Dispose();
        }
    }

    private static Metadata Tampered(Metadata signed)
    {
        var signature = signed.GetValue(AuthHeaders.SignatureName)!;
        var flipped = signature[..^3] + (signature[^3] == '0' ? '1' : '0') + signature[^2..];
        return new Metadata
        {
            { AuthHeaders.AuthName, AuthHeaders.AuthValue },
            { AuthHeaders.SignatureName, flipped },
            { AuthHeaders.VersionName, signed.GetValue(AuthHeaders.VersionName)! },
        };
    }
}
