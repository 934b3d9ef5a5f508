using Akka.Actor;
using Akka.TestKit;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Tests.Chain;

public sealed class ChainActorTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly SubtensorSettings Settings = SubtensorSettings.Default with
    {
        Reconnect = new Bittensor.Core.Resilience.BackoffPolicy(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30), 0.2),
        SubmitTimeout = TimeSpan.FromSeconds(60),
    };

    public ChainActorTests()
        : base("akka.scheduler.implementation = \"Akka.TestKit.TestScheduler, Akka.TestKit\"\n" + TestKitWaits.Hocon)
    {
    }

    private TestScheduler Scheduler => (TestScheduler)Sys.Scheduler;

    private static Transfer SomeCall(byte n) => new(new AccountId(Enumerable.Repeat(n, 32).ToArray()), new Balance(n));

    private IActorRef StartConnected(FakeChainBackend backend, SubtensorSettings? settings = null)
    {
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainConnected));
        var actor = Sys.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(backend), settings ?? Settings, () => 0.5));
        events.ExpectMsg<ChainConnected>();
        return actor;
    }

    [Fact]
    public void Props_with_only_a_backend_factory_starts_with_the_default_settings()
    {
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainConnected));
        var backend = new FakeChainBackend();

        var actor = Sys.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(backend)));

        events.ExpectMsg<ChainConnected>();
        actor.Tell(GetChainStatus.Instance);
        Assert.True(ExpectMsg<ChainStatus>().Connected);
    }

    [Fact]
    public async Task Two_submissions_from_one_key_get_consecutive_nonces_and_never_fly_together()
    {
        var backend = new FakeChainBackend();
        var signer = new FakeSigner(1);
        backend.Nonces[signer.Account] = 7;
        var chain = StartConnected(backend);

        chain.Tell(new Submit(SomeCall(1), signer, Id: "a"), TestActor);
        chain.Tell(new Submit(SomeCall(2), signer, Id: "b"), TestActor);

        var first = await backend.NextSubmissionAsync();
        Assert.Equal(7u, first.Call.Nonce);
        // The second call waits for the first: nothing else reached the backend.
        Assert.False(backend.Submissions.Reader.TryPeek(out _));

        first.Result.SetResult(new CallResult.InBlock(2, 0));
        var a = ExpectMsg<SubmitResult>();
        Assert.Equal("a", a.Id);
        Assert.Equal(7u, a.Nonce);
        Assert.Equal(new CallResult.InBlock(2, 0), a.Result);

        var second = await backend.NextSubmissionAsync();
        Assert.Equal(8u, second.Call.Nonce);
        second.Result.SetResult(new CallResult.InBlock(3, 0));
        var b = ExpectMsg<SubmitResult>();
        Assert.Equal(("b", 8u), (b.Id, b.Nonce));
        Assert.Equal(1, backend.NonceReads);
    }

    [Fact]
    public async Task A_call_refused_before_inclusion_makes_the_next_call_reread_the_nonce()
    {
        var backend = new FakeChainBackend();
        var signer = new FakeSigner(2);
        backend.Nonces[signer.Account] = 3;
        var chain = StartConnected(backend);

        chain.Tell(new Submit(SomeCall(1), signer), TestActor);
        var first = await backend.NextSubmissionAsync();
        Assert.Equal(3u, first.Call.Nonce);
        backend.Nonces[signer.Account] = 10;
        first.Result.SetResult(new CallResult.Failed("Stale", "nonce already used"));
        // A stale nonce is retried once with a re-read nonce; a second refusal is the answer.
        var retry = await backend.NextSubmissionAsync();
        Assert.Equal(10u, retry.Call.Nonce);
        Assert.Equal(2, backend.NonceReads);
        backend.Nonces[signer.Account] = 11;
        retry.Result.SetResult(new CallResult.Failed("Stale", "nonce already used"));
        var failed = ExpectMsg<SubmitResult>();
        Assert.Equal("Stale", Assert.IsType<CallResult.Failed>(failed.Result).Error);
        Assert.Equal(10u, failed.Nonce);

        chain.Tell(new Submit(SomeCall(2), signer), TestActor);
        var second = await backend.NextSubmissionAsync();
        Assert.Equal(11u, second.Call.Nonce);
        Assert.Equal(3, backend.NonceReads);
        second.Result.SetResult(new CallResult.InBlock(4, 0));
        Assert.True(ExpectMsg<SubmitResult>().IsSuccess);
    }

    [Fact]
    public async Task A_call_that_failed_inside_a_block_used_its_nonce_so_the_next_one_counts_on()
    {
        var backend = new FakeChainBackend();
        var signer = new FakeSigner(3);
        backend.Nonces[signer.Account] = 5;
        var chain = StartConnected(backend);

        chain.Tell(new Submit(SomeCall(1), signer), TestActor);
        (await backend.NextSubmissionAsync()).Result.SetResult(new CallResult.Failed("NotRegistered", "hotkey not registered", Block: 9));
        Assert.Equal("NotRegistered", Assert.IsType<CallResult.Failed>(ExpectMsg<SubmitResult>().Result).Error);

        chain.Tell(new Submit(SomeCall(2), signer), TestActor);
        Assert.Equal(6u, (await backend.NextSubmissionAsync()).Call.Nonce);
        Assert.Equal(1, backend.NonceReads);
    }

    [Fact]
    public async Task Different_keys_are_queued_independently()
    {
        var backend = new FakeChainBackend();
        var alice = new FakeSigner(4);
        var bob = new FakeSigner(5);
        var chain = StartConnected(backend);

        chain.Tell(new Submit(SomeCall(1), alice), TestActor);
        chain.Tell(new Submit(SomeCall(2), bob), TestActor);
        var x = await backend.NextSubmissionAsync();
        var y = await backend.NextSubmissionAsync();
        Assert.Equal(new[] { alice.Account, bob.Account }.OrderBy(a => a), new[] { x.Call.Signer, y.Call.Signer }.OrderBy(a => a));
    }

    [Fact]
    public void New_blocks_are_published_on_the_event_stream_in_order()
    {
        var backend = new FakeChainBackend { Head = 4 };
        var blocks = CreateTestProbe();
        Sys.EventStream.Subscribe(blocks.Ref, typeof(NewBlock));
        StartConnected(backend);
        Assert.Equal(4ul, blocks.ExpectMsg<NewBlock>().Number);
        backend.Produce(5);
        backend.Produce(6);
        Assert.Equal(5ul, blocks.ExpectMsg<NewBlock>().Number);
        Assert.Equal(6ul, blocks.ExpectMsg<NewBlock>().Number);
    }

    [Fact]
    public void Reconnect_attempts_back_off_exponentially_until_the_backend_opens()
    {
        var calls = 0;
        var backend = new FakeChainBackend();
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainDisconnected));
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainConnected));
        Sys.ActorOf(ChainActor.Props(_ =>
        {
            var n = Interlocked.Increment(ref calls);
            return n <= 3 ? Task.FromException<IChainBackend>(new ChainUnavailableException($"down {n}")) : Task.FromResult<IChainBackend>(backend);
        }, Settings, () => 0.5));

        var d0 = events.ExpectMsg<ChainDisconnected>();
        Assert.Equal((0, TimeSpan.FromMilliseconds(200)), (d0.Attempt, d0.RetryIn));
        Scheduler.Advance(TimeSpan.FromMilliseconds(199));
        Assert.Equal(1, Volatile.Read(ref calls));
        Scheduler.Advance(TimeSpan.FromMilliseconds(1));

        var d1 = events.ExpectMsg<ChainDisconnected>();
        Assert.Equal((1, TimeSpan.FromMilliseconds(400)), (d1.Attempt, d1.RetryIn));
        Assert.Contains("down 2", d1.Reason, StringComparison.Ordinal);
        Scheduler.Advance(TimeSpan.FromMilliseconds(399));
        Assert.Equal(2, Volatile.Read(ref calls));
        Scheduler.Advance(TimeSpan.FromMilliseconds(1));

        var d2 = events.ExpectMsg<ChainDisconnected>();
        Assert.Equal((2, TimeSpan.FromMilliseconds(800)), (d2.Attempt, d2.RetryIn));
        Scheduler.Advance(TimeSpan.FromMilliseconds(800));
        events.ExpectMsg<ChainConnected>();
        Assert.Equal(4, Volatile.Read(ref calls));
    }

    [Fact]
    public async Task A_broken_block_stream_reconnects_and_calls_queued_meanwhile_go_to_the_new_backend()
    {
        var first = new FakeChainBackend("first");
        var second = new FakeChainBackend("second") { Head = 20 };
        var signer = new FakeSigner(6);
        second.Nonces[signer.Account] = 42;
        var opened = 0;
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainDisconnected));
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainConnected));
        var chain = Sys.ActorOf(ChainActor.Props(
            _ => Task.FromResult<IChainBackend>(Interlocked.Increment(ref opened) == 1 ? first : second), Settings, () => 0.5));
        events.ExpectMsg<ChainConnected>();

        first.BreakStream(new ChainUnavailableException("connection reset"));
        var down = events.ExpectMsg<ChainDisconnected>();
        Assert.Contains("connection reset", down.Reason, StringComparison.Ordinal);
        AwaitCondition(() => first.Disposed);

        chain.Tell(new Submit(SomeCall(1), signer), TestActor);
        chain.Tell(GetChainStatus.Instance, TestActor);
        var status = ExpectMsg<ChainStatus>();
        Assert.False(status.Connected);
        Assert.Equal(1, status.QueuedSubmissions);

        Scheduler.Advance(down.RetryIn);
        Assert.Equal(20ul, events.ExpectMsg<ChainConnected>().Block);
        var sent = await second.NextSubmissionAsync();
        Assert.Equal(42u, sent.Call.Nonce);
        sent.Result.SetResult(new CallResult.InBlock(21, 0));
        Assert.True(ExpectMsg<SubmitResult>().IsSuccess);
    }

    [Fact]
    public async Task A_submission_that_throws_fails_with_ChainUnavailable_and_triggers_a_reconnect()
    {
        var backend = new FakeChainBackend();
        var signer = new FakeSigner(7);
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainDisconnected));
        var chain = StartConnected(backend);

        chain.Tell(new Submit(SomeCall(1), signer), TestActor);
        (await backend.NextSubmissionAsync()).Result.SetException(new ChainUnavailableException("socket closed"));
        var result = ExpectMsg<SubmitResult>();
        Assert.Equal("ChainUnavailable", Assert.IsType<CallResult.Failed>(result.Result).Error);
        events.ExpectMsg<ChainDisconnected>();
    }

    [Fact]
    public void Calls_waiting_while_the_chain_is_down_time_out_and_a_full_queue_fails_fast()
    {
        var settings = Settings with { MaxPendingPerKey = 1, SubmitTimeout = TimeSpan.FromSeconds(5) };
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainDisconnected));
        var chain = Sys.ActorOf(ChainActor.Props(_ => Task.FromException<IChainBackend>(new ChainUnavailableException("down")), settings, () => 0.5));
        events.ExpectMsg<ChainDisconnected>();
        var signer = new FakeSigner(8);

        chain.Tell(new Submit(SomeCall(1), signer, Id: "waits"), TestActor);
        chain.Tell(new Submit(SomeCall(2), signer, Id: "overflows"), TestActor);
        var full = ExpectMsg<SubmitResult>();
        Assert.Equal(("overflows", "QueueFull"), (full.Id, Assert.IsType<CallResult.Failed>(full.Result).Error));

        Scheduler.Advance(TimeSpan.FromSeconds(6));
        var timedOut = ExpectMsg<SubmitResult>();
        Assert.Equal(("waits", "Timeout"), (timedOut.Id, Assert.IsType<CallResult.Failed>(timedOut.Result).Error));
    }

    [Fact]
    public async Task Reads_run_against_the_backend_and_fail_fast_while_reconnecting()
    {
        var backend = new FakeChainBackend { Head = 11 };
        var chain = StartConnected(backend);
        var block = await chain.Ask<BlockInfo>(new ChainRead<BlockInfo>((b, ct) => b.GetCurrentBlockAsync(ct).AsTask()), TimeSpan.FromSeconds(30));
        Assert.Equal(11ul, block.Number);

        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainDisconnected));
        backend.BreakStream(new ChainUnavailableException("gone"));
        events.ExpectMsg<ChainDisconnected>();
        await Assert.ThrowsAsync<ChainUnavailableException>(() =>
            chain.Ask<BlockInfo>(new ChainRead<BlockInfo>((b, ct) => b.GetCurrentBlockAsync(ct).AsTask()), TimeSpan.FromSeconds(30)));
    }
}
