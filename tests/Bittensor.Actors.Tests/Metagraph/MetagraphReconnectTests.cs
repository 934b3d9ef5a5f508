using Akka.Actor;
using Akka.TestKit;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Metagraph;
using Bittensor.Actors.Tests.Chain;
using Bittensor.Chain;

namespace Bittensor.Actors.Tests.Metagraph;

public sealed class MetagraphReconnectTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bt-mgr-" + Guid.NewGuid().ToString("N"));

    public MetagraphReconnectTests()
        : base("akka.scheduler.implementation = \"Akka.TestKit.TestScheduler, Akka.TestKit\"\n" + TestKitWaits.Hocon)
    {
    }

    void IDisposable.Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        base.Dispose();
    }

    [Fact]
    public void After_the_chain_reconnects_the_metagraph_syncs_without_waiting_for_the_cadence()
    {
        var first = new FakeChainBackend("first") { NeuronsSource = _ => Task.FromResult(TestNeurons.Many(2)) };
        var second = new FakeChainBackend("second") { Head = 50, NeuronsSource = _ => Task.FromResult(TestNeurons.Many(3)) };
        var opened = 0;
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainConnected));
        Sys.EventStream.Subscribe(events.Ref, typeof(ChainDisconnected));
        Sys.EventStream.Subscribe(events.Ref, typeof(MetagraphUpdated));
        var chain = Sys.ActorOf(ChainActor.Props(
            _ => Task.FromResult<IChainBackend>(Interlocked.Increment(ref opened) == 1 ? first : second), SubtensorSettings.Default, () => 0.5));
        events.ExpectMsg<ChainConnected>();
        Sys.ActorOf(MetagraphActor.Props(chain, 1, "local",
            MetagraphSettings.Default with { Path = _dir, Save = false, SyncEveryBlocks = 1000 }));
        Assert.Equal(2, events.ExpectMsg<MetagraphUpdated>().Snapshot.N);

        first.BreakStream(new ChainUnavailableException("reset by peer"));
        var down = events.ExpectMsg<ChainDisconnected>();
        ((TestScheduler)Sys.Scheduler).Advance(down.RetryIn);
        events.ExpectMsg<ChainConnected>();
        var after = events.ExpectMsg<MetagraphUpdated>().Snapshot;
        Assert.Equal((50ul, 3), (after.Block, after.N));
    }

    [Fact]
    public async Task A_sync_asked_for_before_the_chain_first_connects_is_answered_by_the_sync_after_the_connection()
    {
        // A role asks for one sync right after starting its metagraph; on a busy machine the chain actor may still be
        // connecting then (the samples' client failed with "the chain is reconnecting").
        var backend = new FakeChainBackend("late") { Head = 7, NeuronsSource = _ => Task.FromResult(TestNeurons.Many(2)) };
        var open = new TaskCompletionSource<IChainBackend>(TaskCreationOptions.RunContinuationsAsynchronously);
        var chain = Sys.ActorOf(ChainActor.Props(_ => open.Task, SubtensorSettings.Default, () => 0.5));
        IActorRef metagraph = ActorRefs.Nobody;
        EventFilter.Info(contains: "waits for the chain to connect").ExpectOne(() =>
            metagraph = Sys.ActorOf(MetagraphActor.Props(chain, 1, "local", MetagraphSettings.Default with { Path = _dir, Save = false, SyncEveryBlocks = 1000 })));
        Task<MetagraphUpdated> asked = Task.FromException<MetagraphUpdated>(new InvalidOperationException("not asked"));
        // The sync this ask starts finds the chain still connecting too.
        EventFilter.Info(contains: "waits for the chain to connect").ExpectOne(() =>
        {
            asked = metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromMinutes(5));
        });
        open.SetResult(backend);
        var updated = await asked;
        Assert.Equal((7ul, 2), (updated.Snapshot.Block, updated.Snapshot.N));
    }

    [Fact]
    public void Before_the_chain_first_connects_the_metagraph_waits_without_a_sync_failed_warning()
    {
        var backend = new FakeChainBackend("late") { Head = 7, NeuronsSource = _ => Task.FromResult(TestNeurons.Many(2)) };
        var open = new TaskCompletionSource<IChainBackend>(TaskCreationOptions.RunContinuationsAsynchronously);
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(MetagraphUpdated));
        var chain = Sys.ActorOf(ChainActor.Props(_ => open.Task, SubtensorSettings.Default, () => 0.5));
        EventFilter.Warning(contains: "sync failed").Expect(0, () =>
        {
            EventFilter.Info(contains: "waits for the chain to connect").ExpectOne(() =>
                Sys.ActorOf(MetagraphActor.Props(chain, 1, "local", MetagraphSettings.Default with { Path = _dir, Save = false, SyncEveryBlocks = 1000 })));
            open.SetResult(backend);
            Assert.Equal((7ul, 2), (events.ExpectMsg<MetagraphUpdated>().Snapshot.Block, events.LastMessage is MetagraphUpdated u ? u.Snapshot.N : -1));
        });
    }
}
