using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Cluster;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// A clustered miner in one process: a front (router + real gRPC axon) and workers, each its own ActorSystem on
/// loopback, every message serialized. Calls come from real signed gRPC clients.
/// </summary>
[Collection(ClusterTestBase.Nodes)]
public sealed class ClusterRoutingSpec(Xunit.Abstractions.ITestOutputHelper output) : ClusterTestBase(output)
{
    /// <summary>A model whose forward waits on a gate; counts the calls that entered.</summary>
    private sealed class Gate
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly SemaphoreSlim _entered = new(0);

        public void Open() => _open.TrySetResult();

        public Task Entered(TimeSpan wait) => _entered.WaitAsync(wait).ContinueWith(t => Assert.True(t.Result, "no call entered the model"), TaskScheduler.Default);

        public AxonHandlers Handlers => new(async (r, ct) =>
        {
            _entered.Release();
            await _open.Task.WaitAsync(ct);
            return ModelResponse.Ok(DemoModels.EchoForward(r.Inputs, Dim));
        });
    }

    [Fact]
    public async Task Calls_through_the_front_are_served_by_every_worker_and_a_backward_goes_to_the_replica_that_served_its_forward()
    {
        var (front, router, port) = await StartFront();
        StartWorker(front, DemoModels.Echo(Dim));
        StartWorker(front, DemoModels.Echo(Dim));
        await AwaitWorkers(router, 2);
        var client = RawClient(port);

        for (var i = 1; i <= 8; i++) AssertEcho(await Forward(client, Alice, Row(i)), i);
        var status = await Status(router);
        Assert.All(status.Workers, w => Assert.True(w.Served > 0, $"worker {w.Replica} served nothing"));
        Assert.Equal(8, status.Workers.Sum(w => w.Served));

        // Forward then backward of the same inputs, one pair at a time: the backward lands where the forward did.
        for (var i = 100; i < 106; i++)
        {
            var before = (await Status(router)).Workers.ToDictionary(w => w.Replica, w => w.Served);
            AssertEcho(await Forward(client, Alice, Row(i)), i);
            var mid = (await Status(router)).Workers.ToDictionary(w => w.Replica, w => w.Served);
            var servedForward = Assert.Single(mid, kv => kv.Value != before[kv.Key]).Key;

            var backward = Row(i);
            backward.Tensors.Add(TensorCodec.ToTensor(Enumerable.Repeat(1f, 3 * Dim).ToArray(), [1, 3, Dim], Modality.Tensor));
            var answer = await client.BackwardAsync(backward, await Signed(Alice), DateTime.UtcNow.AddSeconds(60));
            Assert.Equal(ReturnCode.Success, answer.ReturnCode);
            var after = (await Status(router)).Workers.ToDictionary(w => w.Replica, w => w.Served);
            Assert.Equal(servedForward, Assert.Single(after, kv => kv.Value != mid[kv.Key]).Key);
        }
        Assert.Equal(6, (await Status(router)).AffinityHits);
    }

    [Fact]
    public async Task When_every_worker_is_full_the_axon_answers_NucleusFull_at_once()
    {
        var (front, router, port) = await StartFront();
        var gates = new[] { new Gate(), new Gate() };
        // Capacity 1 each: one call running, nothing queued.
        foreach (var g in gates) StartWorker(front, g.Handlers, concurrency: 1, queue: 0);
        await AwaitWorkers(router, 2);
        var client = RawClient(port);

        var first = client.ForwardAsync(Row(1, Alice), await Signed(Alice), DateTime.UtcNow.AddSeconds(60)).ResponseAsync;
        var second = client.ForwardAsync(Row(2, Bob), await Signed(Bob), DateTime.UtcNow.AddSeconds(60)).ResponseAsync;
        // Least in flight: one call at each worker.
        await Task.WhenAll(gates[0].Entered(Wait), gates[1].Entered(Wait));

        var third = await client.ForwardAsync(Row(3, Charlie), await Signed(Charlie), DateTime.UtcNow.AddSeconds(60));
        Assert.Equal(ReturnCode.NucleusFull, third.ReturnCode);
        Assert.Contains("every worker is full", third.Message, StringComparison.Ordinal);
        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted);
        Assert.Equal(1, (await Status(router)).RefusedFull);

        foreach (var g in gates) g.Open();
        AssertEcho(await first, 1);
        AssertEcho(await second, 2);
    }

    [Fact]
    public async Task A_worker_node_that_dies_has_its_forwards_answered_by_another_worker()
    {
        var (front, router, port) = await StartFront();
        var doomed = new Gate();
        var survivor = new Gate();
        // The doomed node dies without leaving: no CoordinatedShutdown, its transport just goes away.
        var dying = StartWorker(front, doomed.Handlers, concurrency: 1, queue: 0,
            extra: ConfigurationFactory.ParseString("akka.coordinated-shutdown.run-by-actor-system-terminate = off"));
        StartWorker(front, survivor.Handlers, concurrency: 2, queue: 0);
        await AwaitWorkers(router, 2);
        var client = RawClient(port);

        var calls = new[]
        {
            client.ForwardAsync(Row(1, Alice), await Signed(Alice), DateTime.UtcNow.AddSeconds(120)).ResponseAsync,
            client.ForwardAsync(Row(2, Bob), await Signed(Bob), DateTime.UtcNow.AddSeconds(120)).ResponseAsync,
        };
        await Task.WhenAll(doomed.Entered(Wait), survivor.Entered(Wait));

        await dying.Terminate();
        survivor.Open();
        var answers = await Task.WhenAll(calls);
        AssertEcho(answers[0], 1);
        AssertEcho(answers[1], 2);
        var status = await Status(router);
        Assert.Equal(1, status.Rerouted);
        Assert.Equal(0, status.Pending);
        // And the front keeps serving with the one worker left.
        AssertEcho(await Forward(client, Charlie, Row(3, Charlie)), 3);
    }

    [Fact]
    public async Task A_leaving_worker_drains_its_calls_before_it_goes()
    {
        var (front, router, port) = await StartFront();
        var leaving = new Gate();
        var staying = new Gate();
        var leaver = StartWorker(front, leaving.Handlers, concurrency: 1, queue: 0);
        StartWorker(front, staying.Handlers, concurrency: 4, queue: 0);
        await AwaitWorkers(router, 2);
        var client = RawClient(port);

        var first = client.ForwardAsync(Row(1, Alice), await Signed(Alice), DateTime.UtcNow.AddSeconds(120)).ResponseAsync;
        var second = client.ForwardAsync(Row(2, Bob), await Signed(Bob), DateTime.UtcNow.AddSeconds(120)).ResponseAsync;
        await Task.WhenAll(leaving.Entered(Wait), staying.Entered(Wait));

        // Graceful leave: CoordinatedShutdown drains before the node leaves the cluster. The front's view of the
        // membership is watched from now on, so the removal below is awaited as an event, however slow gossip is.
        var leaverAddress = Akka.Cluster.Cluster.Get(leaver).SelfAddress;
        var membership = CreateTestProbe(front);
        Akka.Cluster.Cluster.Get(front).Subscribe(membership.Ref, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(Akka.Cluster.ClusterEvent.MemberRemoved));
        // What the leaver served is published on its own event stream once it drained (hosts print it as they exit).
        var drained = CreateTestProbe(leaver);
        leaver.EventStream.Subscribe(drained.Ref, typeof(ClusterWorkerDrained));
        var shutdown = CoordinatedShutdown.Get(leaver).Run(CoordinatedShutdown.ClrExitReason.Instance);
        await AwaitAssertAsync(async () => Assert.Contains((await Status(router)).Workers, w => w.Draining), TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));
        Assert.False(shutdown.IsCompleted);
        Assert.False(first.IsCompleted);
        await drained.ExpectNoMsgAsync(TimeSpan.Zero); // not drained while its call is held

        // New calls go to the staying worker only.
        staying.Open();
        AssertEcho(await Forward(client, Charlie, Row(3, Charlie)), 3);

        leaving.Open();
        var answers = await Task.WhenAll(first, second);
        AssertEcho(answers[0], 1);
        AssertEcho(answers[1], 2);
        // Once its call was answered, with that call counted (it came on the front's data connection).
        Assert.Equal(new ClusterWorkerDrained(1, 1, TimedOut: false), await drained.ExpectMsgAsync<ClusterWorkerDrained>(Wait));
        await shutdown;
        await leaver.WhenTerminated;
        // The front forgets the worker once its node is removed from the cluster (on a loaded machine the leader may
        // only see the leave after a failure-detector round; the bound is generous, the wait ends at the event).
        await membership.FishForMessageAsync<Akka.Cluster.ClusterEvent.MemberRemoved>(m => m.Member.Address.Equals(leaverAddress), TimeSpan.FromMinutes(5));
        await drained.ExpectNoMsgAsync(TimeSpan.Zero);
        await AwaitAssertAsync(async () => Assert.Single((await Status(router)).Workers), TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));
        Assert.Equal(0, (await Status(router)).Rerouted);
    }
    [Fact]
    public async Task A_worker_that_joins_mid_load_takes_traffic_without_a_restart_of_anything()
    {
        var (front, router, port) = await StartFront();
        var busy = new Gate();
        // The first worker holds two calls and cannot take a third.
        StartWorker(front, busy.Handlers, concurrency: 2, queue: 0);
        await AwaitWorkers(router, 1);
        var client = RawClient(port);
        var held = new[]
        {
            client.ForwardAsync(Row(1, Alice), await Signed(Alice), DateTime.UtcNow.AddSeconds(120)).ResponseAsync,
            client.ForwardAsync(Row(2, Bob), await Signed(Bob), DateTime.UtcNow.AddSeconds(120)).ResponseAsync,
        };
        await busy.Entered(Wait);
        await busy.Entered(Wait);
        Assert.Equal(ReturnCode.NucleusFull, (await Forward(client, Charlie, Row(3, Charlie))).ReturnCode);

        // A second worker joins while those calls are held: the next calls go to it.
        StartWorker(front, DemoModels.Echo(Dim));
        await AwaitWorkers(router, 2);
        for (var i = 4; i < 8; i++) AssertEcho(await Forward(client, Charlie, Row(i, Charlie)), i);
        Assert.Equal(4, (await Status(router)).Workers[1].Served);

        busy.Open();
        var answers = await Task.WhenAll(held);
        AssertEcho(answers[0], 1);
        AssertEcho(answers[1], 2);
    }
}
