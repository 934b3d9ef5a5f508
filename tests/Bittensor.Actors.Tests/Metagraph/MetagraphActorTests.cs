using Akka.Actor;
using Akka.TestKit;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Metagraph;
using Bittensor.Actors.Tests.Chain;
using Bittensor.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Tests.Metagraph;

public sealed class MetagraphActorTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    // A bound on a reply that does come (an Ask, a stop), not a speed limit: 5 s was within reach of a busy 2-core machine.
    private static readonly TimeSpan Reply = TimeSpan.FromSeconds(30);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bt-mga-" + Guid.NewGuid().ToString("N"));
    private readonly FakeChainBackend _backend = new() { Head = 1 };
    private readonly TestProbe _updates;

    public MetagraphActorTests()
        : base(TestKitWaits.Hocon)
    {
        _updates = CreateTestProbe();
        Sys.EventStream.Subscribe(_updates.Ref, typeof(MetagraphUpdated));
    }

    void IDisposable.Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        base.Dispose();
    }

    private MetagraphSettings Settings(int every = 1, bool save = false) =>
        MetagraphSettings.Default with { SyncEveryBlocks = every, Path = _dir, Save = save };

    private IActorRef Chain()
    {
        var connected = CreateTestProbe();
        Sys.EventStream.Subscribe(connected.Ref, typeof(ChainConnected));
        var chain = Sys.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(_backend), SubtensorSettings.Default, () => 0.5));
        connected.ExpectMsg<ChainConnected>();
        return chain;
    }

    [Fact]
    public void With_sync_at_tempo_the_actor_syncs_on_the_subnets_epoch_blocks_only()
    {
        // tempo 4 on netuid 1: subtensor's epoch runs where (block + 2) % 5 == 0, i.e. blocks 3, 8, 13.
        _backend.Hyperparameters = SubnetHyperparameters.Default with { Tempo = 4 };
        _backend.NeuronsSource = _ => Task.FromResult(TestNeurons.Many(2));
        var chain = Chain();
        Sys.ActorOf(MetagraphActor.Props(chain, 1, "local", Settings() with { SyncAtTempo = true }));
        Assert.Equal(1ul, _updates.ExpectMsg<MetagraphUpdated>().Snapshot.Block); // at start (and after every connect)
        for (ulong b = 2; b <= 9; b++) _backend.Produce(b);
        // Blocks are pushed in order: the syncs that follow are the ones at the epochs of blocks 3 and 8.
        var epochs = new[] { _updates.ExpectMsg<MetagraphUpdated>().Snapshot.Block, _updates.ExpectMsg<MetagraphUpdated>().Snapshot.Block };
        Assert.True(epochs[0] >= 3 && epochs[1] >= 8, string.Join(",", epochs));
        _updates.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        Assert.Equal(3, Volatile.Read(ref _backend.NeuronReads));
    }

    [Fact]
    public void The_actor_syncs_every_n_blocks_and_publishes_MetagraphUpdated()
    {
        _backend.NeuronsSource = _ => Task.FromResult(TestNeurons.Many(3));
        var chain = Chain();
        Sys.ActorOf(MetagraphActor.Props(chain, 1, "local", Settings(every: 2)));
        var first = _updates.ExpectMsg<MetagraphUpdated>().Snapshot;
        Assert.Equal((1ul, 3), (first.Block, first.N));

        _backend.Produce(2);
        _backend.Produce(3);
        var second = _updates.ExpectMsg<MetagraphUpdated>().Snapshot;
        Assert.Equal(3ul, second.Block);
        // Block 2 alone did not trigger a read: the initial sync and the one at block 3.
        Assert.Equal(2, Volatile.Read(ref _backend.NeuronReads));
    }

    [Fact]
    public async Task Queries_during_a_sync_get_the_previous_snapshot_at_once()
    {
        var gate = new TaskCompletionSource<IReadOnlyList<NeuronInfo>>(TaskCreationOptions.RunContinuationsAsynchronously);
        _backend.NeuronsSource = _ => gate.Task;
        var metagraph = Sys.ActorOf(MetagraphActor.Props(Chain(), 1, "local", Settings()));
        AwaitCondition(() => Volatile.Read(ref _backend.NeuronReads) == 1);

        var during = await metagraph.Ask<MetagraphSnapshot>(GetMetagraph.Instance, Reply);
        Assert.Equal(0, during.N);

        gate.SetResult(TestNeurons.Many(4));
        Assert.Equal(4, _updates.ExpectMsg<MetagraphUpdated>().Snapshot.N);
        var after = await metagraph.Ask<MetagraphSnapshot>(GetMetagraph.Instance, Reply);
        Assert.Equal(4, after.N);
    }

    /// <summary>One actor syncs (block 9, n = 4) and saves its snapshot, then stops; from then on a sync never ends.</summary>
    private async Task<IActorRef> SavedSnapshotThenStalledSync()
    {
        _backend.Head = 9;
        _backend.NeuronsSource = _ => Task.FromResult(TestNeurons.Many(4));
        var chain = Chain();
        var first = Sys.ActorOf(MetagraphActor.Props(chain, 1, "local", Settings(save: true)));
        _updates.ExpectMsg<MetagraphUpdated>();
        await first.GracefulStop(Reply);
        Assert.True(File.Exists(MetagraphStore.DefaultPath(_dir, "local", 1)));

        _backend.NeuronsSource = _ => new TaskCompletionSource<IReadOnlyList<NeuronInfo>>().Task; // the next sync never ends
        return chain;
    }

    [Fact]
    public async Task A_saved_snapshot_is_served_by_the_next_actor_before_it_syncs()
    {
        var chain = await SavedSnapshotThenStalledSync();
        var second = Sys.ActorOf(MetagraphActor.Props(chain, 1, "local", Settings(save: true)));
        await AwaitAssertAsync(async () =>
        {
            var s = await second.Ask<MetagraphSnapshot>(GetMetagraph.Instance, Reply);
            Assert.Equal((9ul, 4), (s.Block, s.N));
        });
    }

    [Fact]
    public async Task A_snapshot_saved_from_another_chain_with_the_same_network_name_is_not_served()
    {
        await SavedSnapshotThenStalledSync(); // saved from _backend: genesis 32 zero bytes, network "local"
        var other = new FakeChainBackend(genesis: [.. Enumerable.Repeat((byte)0x11, 32)]) { Head = 3 };
        other.NeuronsSource = _ => new TaskCompletionSource<IReadOnlyList<NeuronInfo>>().Task; // its first sync never ends either
        var otherChain = Sys.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(other), SubtensorSettings.Default, () => 0.5));
        IActorRef second = ActorRefs.Nobody;
        await EventFilter.Warning(contains: "was saved from another chain (genesis 0x0000").ExpectOneAsync(async () =>
        {
            second = Sys.ActorOf(MetagraphActor.Props(otherChain, 1, "local", Settings(save: true)));
            await Task.CompletedTask;
        });
        Assert.Equal(0, (await second.Ask<MetagraphSnapshot>(GetMetagraph.Instance, Reply)).N);
    }

    [Fact]
    public async Task A_snapshot_that_does_not_name_its_chain_is_not_served()
    {
        var chain = await SavedSnapshotThenStalledSync();
        // As a file written before snapshots held the genesis (MetagraphStoreTests reads such a version-1 file).
        var path = MetagraphStore.DefaultPath(_dir, "local", 1);
        var s = MetagraphStore.Load(path);
        Assert.Equal(MetagraphSnapshot.GenesisHex(new byte[32]), s.GenesisHash);
        MetagraphStore.Save(new MetagraphSnapshot(s.Network, s.Netuid, s.Block, s.HotkeyIds, s.ColdkeyIds, s.StakeRao, s.RankU16, s.TrustU16, s.ConsensusU16,
            s.IncentiveU16, s.DividendsU16, s.ValidatorTrustU16, s.EmissionRao, s.ValidatorPermit, s.Active, s.LastUpdate, s.Endpoints, s.W, s.B), path);
        IActorRef second = ActorRefs.Nobody;
        await EventFilter.Info(contains: "does not name its chain").ExpectOneAsync(async () =>
        {
            second = Sys.ActorOf(MetagraphActor.Props(chain, 1, "local", Settings(save: true)));
            await Task.CompletedTask;
        });
        Assert.Equal(0, (await second.Ask<MetagraphSnapshot>(GetMetagraph.Instance, Reply)).N);
    }

    [Fact]
    public async Task A_saved_snapshot_waits_for_the_chain_to_connect_and_is_served_once_its_genesis_matches()
    {
        await SavedSnapshotThenStalledSync();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connecting = Sys.ActorOf(ChainActor.Props(async _ =>
        {
            await gate.Task;
            return (IChainBackend)_backend;
        }, SubtensorSettings.Default, () => 0.5));
        IActorRef second = ActorRefs.Nobody;
        // Loaded, and its first sync found the chain still connecting: nothing can vouch for the snapshot yet.
        await EventFilter.Info(contains: "waits for the chain to connect").ExpectOneAsync(async () =>
        {
            second = Sys.ActorOf(MetagraphActor.Props(connecting, 1, "local", Settings(save: true)));
            await Task.CompletedTask;
        });
        Assert.Equal(0, (await second.Ask<MetagraphSnapshot>(GetMetagraph.Instance, Reply)).N);

        gate.SetResult(); // connects (same genesis); its sync never ends, so only the saved snapshot can answer
        await AwaitAssertAsync(async () =>
        {
            var s = await second.Ask<MetagraphSnapshot>(GetMetagraph.Instance, Reply);
            Assert.Equal((9ul, 4), (s.Block, s.N));
        });
    }

    [Fact]
    public async Task With_save_off_a_snapshot_on_disk_is_not_loaded()
    {
        var chain = await SavedSnapshotThenStalledSync();
        IActorRef second = ActorRefs.Nobody;
        await EventFilter.Info(contains: "snapshots off").ExpectOneAsync(async () =>
        {
            second = Sys.ActorOf(MetagraphActor.Props(chain, 1, "local", Settings(save: false)));
            await Task.CompletedTask;
        });
        var s = await second.Ask<MetagraphSnapshot>(GetMetagraph.Instance, Reply);
        Assert.Equal(0, s.N);
    }

    [Fact]
    public async Task A_corrupt_snapshot_file_is_logged_and_replaced_by_a_fresh_sync()
    {
        var path = MetagraphStore.DefaultPath(_dir, "local", 1);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllBytesAsync(path, [0x42, 0x54, 0x4d, 0x47, 1, 0, 9, 9, 9]);
        _backend.NeuronsSource = _ => Task.FromResult(TestNeurons.Many(2));
        var chain = Chain();

        await EventFilter.Warning(contains: "unreadable").ExpectOneAsync(async () =>
        {
            Sys.ActorOf(MetagraphActor.Props(chain, 1, "local", Settings(save: true)));
            await Task.CompletedTask;
        });
        Assert.Equal(2, _updates.ExpectMsg<MetagraphUpdated>().Snapshot.N);
        Assert.Equal(2, MetagraphStore.Load(path).N);
    }

    [Fact]
    public async Task A_failed_sync_keeps_the_previous_snapshot_and_retries_on_the_next_block()
    {
        var calls = 0;
        _backend.NeuronsSource = _ => Interlocked.Increment(ref calls) == 2
            ? Task.FromException<IReadOnlyList<NeuronInfo>>(new InvalidOperationException("read failed"))
            : Task.FromResult(TestNeurons.Many(calls + 1));
        var chain = Chain();
        var metagraph = Sys.ActorOf(MetagraphActor.Props(chain, 1, "local", Settings()));
        Assert.Equal(2, _updates.ExpectMsg<MetagraphUpdated>().Snapshot.N);

        metagraph.Tell(SyncMetagraph.Instance, TestActor);
        Assert.Equal("read failed", ExpectMsg<Status.Failure>().Cause.Message);
        Assert.Equal(2, (await metagraph.Ask<MetagraphSnapshot>(GetMetagraph.Instance, Reply)).N);

        _backend.Produce(2);
        Assert.Equal(4, _updates.ExpectMsg<MetagraphUpdated>().Snapshot.N);
    }

    [Fact]
    public void SyncMetagraph_answers_with_a_fresh_read()
    {
        var n = 1;
        _backend.NeuronsSource = _ => Task.FromResult(TestNeurons.Many(n));
        var metagraph = Sys.ActorOf(MetagraphActor.Props(Chain(), 1, "local", Settings(every: 1000)));
        _updates.ExpectMsg<MetagraphUpdated>();
        n = 5;
        metagraph.Tell(SyncMetagraph.Instance, TestActor);
        Assert.Equal(5, ExpectMsg<MetagraphUpdated>().Snapshot.N);
    }
}
