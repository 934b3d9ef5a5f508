using System.Text;
using Bittensor.Core.Crypto;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol.Tests;

/// <summary>
/// The batching signature verifier: alone it answers on the caller's thread; signatures that queue while a check
/// runs are checked as one batch; good and bad signatures in one batch each get their own answer.
/// </summary>
public sealed class Sr25519BatchVerifierTests
{
    private static Sr25519KeyPair Key(int i) => SecretUri.ToSr25519($"//batch/{i}");

    private static (string Ss58, byte[] Message, byte[] Signature) Signed(Sr25519KeyPair key, int i, bool tampered)
    {
        var message = Encoding.UTF8.GetBytes($"message {i}");
        var signature = key.Sign(message);
        if (tampered) signature[i % 64] ^= (byte)(1 << (i % 8));
        return (key.ToSs58(), message, signature);
    }

    [Fact]
    public async Task Alone_a_signature_is_checked_on_the_callers_thread_before_VerifyAsync_returns()
    {
        var batcher = new Sr25519BatchVerifier();
        using var key = Key(0);
        var (ss58, message, signature) = Signed(key, 1, tampered: false);
        var pending = batcher.VerifyAsync(ss58, message, signature);
        Assert.True(pending.IsCompleted);
        Assert.True(await pending);
        var (_, m2, bad) = Signed(key, 2, tampered: true);
        var refused = batcher.VerifyAsync(ss58, m2, bad);
        Assert.True(refused.IsCompleted);
        Assert.False(await refused);
        Assert.Equal(0, batcher.Stats.Batches);
        Assert.Equal(2, batcher.Stats.Signatures);
    }

    [Fact]
    public async Task Signatures_queued_while_a_check_runs_are_checked_as_one_batch_and_each_bad_one_alone_is_refused()
    {
        const int queued = 40;
        var batcher = new Sr25519BatchVerifier();
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var first = 0;
        batcher.BeforeCheck = _ =>
        {
            if (Interlocked.Exchange(ref first, 1) != 0) return;
            entered.Set();
            release.Wait(TimeSpan.FromMinutes(2));
        };
        var keys = Enumerable.Range(0, 12).Select(Key).ToArray();
        try
        {
            var head = Signed(keys[0], 0, tampered: false);
            var headTask = Task.Run(() => batcher.VerifyAsync(head.Ss58, head.Message, head.Signature).AsTask());
            Assert.True(entered.Wait(TimeSpan.FromMinutes(2)), "the first check never started");

            // Every fifth one tampered; keys repeat, so the batch mixes shared and distinct keys.
            var expected = Enumerable.Range(1, queued).Select(i => i % 5 != 0).ToArray();
            var calls = Enumerable.Range(1, queued).Select(i =>
            {
                var (ss58, message, signature) = Signed(keys[i % keys.Length], i, tampered: i % 5 == 0);
                return batcher.VerifyAsync(ss58, message, signature).AsTask();
            }).ToArray();
            Assert.All(calls, c => Assert.False(c.IsCompleted)); // the verifier is busy: they wait for the next batch
            Assert.Equal(queued, batcher.Queued);
            release.Set();

            Assert.True(await headTask);
            var answers = await Task.WhenAll(calls);
            Assert.Equal(expected, answers);
            var stats = batcher.Stats;
            Assert.Equal(1 + queued, stats.Signatures);
            Assert.Equal(1, stats.Batches);
            Assert.Equal(queued, stats.LargestBatch);
            Assert.Equal(1, stats.FallbackBatches);
            Assert.Equal(0, batcher.Queued);
        }
        finally
        {
            release.Set();
            foreach (var k in keys) k.Dispose();
        }
    }

    [Fact]
    public async Task A_batch_larger_than_the_limit_is_split_and_a_full_queue_verifies_at_once()
    {
        var batcher = new Sr25519BatchVerifier(maxBatch: 4, maxQueued: 6);
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var first = 0;
        batcher.BeforeCheck = _ =>
        {
            if (Interlocked.Exchange(ref first, 1) != 0) return;
            entered.Set();
            release.Wait(TimeSpan.FromMinutes(2));
        };
        using var key = Key(3);
        try
        {
            var head = Signed(key, 0, tampered: false);
            var headTask = Task.Run(() => batcher.VerifyAsync(head.Ss58, head.Message, head.Signature).AsTask());
            Assert.True(entered.Wait(TimeSpan.FromMinutes(2)), "the first check never started");
            var calls = Enumerable.Range(1, 8).Select(i =>
            {
                var (ss58, message, signature) = Signed(key, i, tampered: i == 7);
                return batcher.VerifyAsync(ss58, message, signature).AsTask();
            }).ToArray();
            // Six wait; the seventh and eighth found the queue full and were verified by their callers.
            Assert.Equal(6, batcher.Queued);
            Assert.True(calls[6].IsCompleted && calls[7].IsCompleted);
            Assert.Equal(2, batcher.Stats.Overflowed);
            release.Set();
            Assert.True(await headTask);
            var answers = await Task.WhenAll(calls);
            Assert.Equal(new[] { true, true, true, true, true, true, false, true }, answers);
            Assert.Equal(4, batcher.Stats.LargestBatch); // 6 queued, checked as 4 + 2
            Assert.Equal(2, batcher.Stats.Batches);
        }
        finally
        {
            release.Set();
        }
    }

    [Fact]
    public async Task Concurrent_requests_through_the_request_verifier_good_accepted_bad_refused_unauthenticated()
    {
        var batcher = new Sr25519BatchVerifier();
        using var verifier = new RequestVerifier(new RequestVerifierOptions { ReorderWindow = TimeSpan.FromSeconds(1) }, batcher);
        Assert.Same(batcher, verifier.SignatureVerifier);
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var first = 0;
        batcher.BeforeCheck = _ =>
        {
            if (Interlocked.Exchange(ref first, 1) != 0) return;
            entered.Set();
            release.Wait(TimeSpan.FromMinutes(2));
        };
        var keys = Enumerable.Range(0, 24).Select(i => Key(100 + i)).ToArray();
        try
        {
            var headers = new List<Metadata>();
            foreach (var k in keys) headers.Add(await new RequestAuth(new KeyPairRequestSigner(k)).CreateHeadersAsync());
            var head = Task.Run(() => verifier.VerifyAsync(headers[0]).AsTask());
            Assert.True(entered.Wait(TimeSpan.FromMinutes(2)), "the first check never started");
            var tampered = new bool[keys.Length];
            var calls = new List<Task<AuthResult>>();
            for (var i = 1; i < keys.Length; i++)
            {
                var h = headers[i];
                if (i % 3 == 0)
                {
                    tampered[i] = true;
                    var sig = h.GetValue(AuthHeaders.SignatureName)!;
                    var flipped = sig[..^5] + (sig[^5] == 'a' ? 'b' : 'a') + sig[^4..];
                    h = new Metadata { { AuthHeaders.AuthName, AuthHeaders.AuthValue }, { AuthHeaders.SignatureName, flipped }, { AuthHeaders.VersionName, h.GetValue(AuthHeaders.VersionName)! } };
                }
                calls.Add(verifier.VerifyAsync(h).AsTask());
            }
            release.Set();
            Assert.True((await head).IsAccepted);
            var results = await Task.WhenAll(calls);
            for (var i = 1; i < keys.Length; i++)
            {
                var r = results[i - 1];
                Assert.Equal(!tampered[i], r.IsAccepted);
                if (tampered[i]) Assert.Equal(ReturnCode.Unauthenticated, r.Code);
                Assert.Equal(keys[i].ToSs58(), r.Hotkey);
            }
            Assert.Equal(1, batcher.Stats.Batches);
            Assert.Equal(keys.Length - 1, batcher.Stats.LargestBatch);
            // An accepted request replayed is still refused (the nonce was recorded after the batch).
            Assert.False((await verifier.VerifyAsync(headers[1])).IsAccepted);
        }
        finally
        {
            release.Set();
            foreach (var k in keys) k.Dispose();
        }
    }
}
