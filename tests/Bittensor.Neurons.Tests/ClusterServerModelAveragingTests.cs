using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit.Xunit2;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.ModelHost;
using Bittensor.Neurons.Roles;
using Xunit.Abstractions;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// Parameter averaging of the TorchSharp server model (<c>ServerTextModel</c>, hosted by a model host as
/// <c>btcli run server --cluster.role worker</c> hosts it): a front and worker nodes, each its own ActorSystem on
/// loopback with every message serialized (<c>serialize-messages = on</c>; the parameters cross as raw floats), the
/// replicas built from different seeds. Parameters are read and written through each host's queue.
/// </summary>
public sealed class ClusterServerModelAveragingTests(ITestOutputHelper output) : TestKit(TestConfig.Hocon, output: output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromMinutes(2);
    private readonly List<ActorSystem> _nodes = [];

    /// <summary>A tiny model: 32 tokens, width 8, one layer, 16-wide representations.</summary>
    private static ModelSettings Tiny(int seed) => ModelSettings.Default with
    {
        VocabSize = 32, DModel = 8, Layers = 1, Heads = 2, FeedForward = 16, MaxSequence = 8, NetworkDim = 16, Dropout = 0, Threads = 1,
        CheckpointEverySteps = 0, CheckpointInterval = TimeSpan.Zero, MaxDelay = TimeSpan.Zero, Seed = seed, LearningRate = 0.05,
    };

    private static ClusterSettings Settings(params string[] seeds) => ClusterSettings.Default with
    {
        Hostname = "127.0.0.1", Port = 0, SeedNodes = seeds, RegisterInterval = TimeSpan.FromMilliseconds(300), AveragingInterval = TimeSpan.Zero,
    };

    private ActorSystem Node(ClusterSettings settings, string role)
    {
        var overrides = ConfigurationFactory.ParseString("""
            akka.loglevel = WARNING
            akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
            """).WithFallback(LocalEventSerializer.SerializeMessagesCheck).WithFallback(TestConfig.Hocon);
        var node = BittensorCluster.CreateSystem(settings, role, overrides: overrides);
        _nodes.Add(node);
        return node;
    }

    private async Task<(ActorSystem Node, IActorRef Router)> StartFrontAsync()
    {
        var node = Node(Settings(), ClusterSettings.FrontRole);
        var events = CreateTestProbe(node);
        node.EventStream.Subscribe(events.Ref, typeof(ClusterFrontActivated));
        var axon = AxonSettings.Default with { Ip = "127.0.0.1", Port = 0, NetworkDim = 16 };
        BittensorCluster.StartFront(node, Settings(), router => AxonActor.Props(axon, router));
        return (node, (await events.ExpectMsgAsync<ClusterFrontActivated>(Wait)).Router);
    }

    /// <summary>
    /// A worker node hosting a ServerTextModel built with <paramref name="seed"/>, once the front acknowledged it (the
    /// worker registers after its model is built; the front routes to it from then): its model host and its
    /// applied-average events.
    /// </summary>
    private async Task<(IActorRef Host, Akka.TestKit.TestProbe Applied)> StartReplicaAsync(ActorSystem front, int seed)
    {
        var settings = Settings(Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        var node = Node(settings, ClusterSettings.WorkerRole);
        var applied = CreateTestProbe(node);
        node.EventStream.Subscribe(applied.Ref, typeof(ReplicaParametersApplied));
        var joined = CreateTestProbe(node);
        node.EventStream.Subscribe(joined.Ref, typeof(ClusterWorkerJoinedFront));
        BittensorCluster.StartWorker(node, settings, ServerModelHost.Props(Tiny(seed)), 20, hostedParameters: true);
        await joined.ExpectMsgAsync<ClusterWorkerJoinedFront>(Wait);
        var host = await node.ActorSelection($"/user/{ClusterSettings.WorkerName}/model").ResolveOne(Wait); // started before it registered
        return (host, applied);
    }

    private static async Task<float[]> ParametersAsync(IActorRef host) => (await host.Ask<ModelParameters>(new GetModelParameters(0), Wait)).Values;

    private static async Task<float[]> ForwardAsync(IActorRef host)
    {
        var result = await host.Ask<ModelForwardResult>(new ModelForward(1, [3, 1, 4, 1], 1, 4), Wait);
        Assert.True(result.Code == ModelReturnCode.Success, result.Message);
        return result.Data;
    }

    /// <summary>The front's table: <paramref name="n"/> reachable, non-draining workers (each acknowledged already, see <see cref="StartReplicaAsync"/>).</summary>
    private static async Task AssertWorkersAsync(IActorRef router, int n) =>
        Assert.Equal(n, (await router.Ask<ClusterFrontStatus>(GetClusterFrontStatus.Instance, Wait)).Workers.Count(w => w.Reachable && !w.Draining));

    private static float[] Mean(float[] a, float[] b)
    {
        var mean = new float[a.Length];
        for (var i = 0; i < mean.Length; i++) mean[i] = (a[i] + b[i]) / 2;
        return mean;
    }

    [Fact]
    public async Task Server_model_replicas_converge_after_a_round_and_a_joining_worker_starts_from_the_checkpoint()
    {
        var (front, router) = await StartFrontAsync();
        var (hostA, appliedA) = await StartReplicaAsync(front, seed: 1);
        var (hostB, appliedB) = await StartReplicaAsync(front, seed: 2);
        await AssertWorkersAsync(router, 2);
        var count = (await hostA.Ask<ModelParameterCount>(GetModelParameterCount.Instance, Wait)).Count;
        Assert.True(count > 0);

        // Replica A trains (a backward step through its host); the two replicas differ anyway (other seeds).
        var grads = Enumerable.Range(0, 4 * 16).Select(i => (i % 7) / 7f - 0.5f).ToArray();
        var step = await hostA.Ask<ModelBackwardResult>(new ModelBackward(2, [3, 1, 4, 1], grads, 1, 4), Wait);
        Assert.Equal(ModelReturnCode.Success, step.Code);
        var (beforeA, beforeB) = (await ParametersAsync(hostA), await ParametersAsync(hostB));
        Assert.Equal(count, beforeA.Length);
        Assert.NotEqual(beforeA, beforeB);
        Assert.NotEqual(await ForwardAsync(hostA), await ForwardAsync(hostB));

        var result = await router.Ask<AveragingResult>(AverageNow.Instance, Wait);
        Assert.Equal((1L, 2, (string?)null), (result.Round, result.Replicas, result.Skipped));
        foreach (var applied in new[] { appliedA, appliedB })
        {
            var e = await applied.ExpectMsgAsync<ReplicaParametersApplied>(Wait);
            Assert.Equal((1L, false, 2), (e.Round, e.Exact, e.Replicas));
        }
        // Both replicas hold exactly the mean of what they sent (nothing stepped meanwhile) and answer alike.
        var expected = Mean(beforeA, beforeB);
        Assert.Equal(expected, await ParametersAsync(hostA));
        Assert.Equal(expected, await ParametersAsync(hostB));
        var served = await ForwardAsync(hostA);
        Assert.Equal(served, await ForwardAsync(hostB));

        // A third replica (its own seed) joins: the front sends it the checkpoint before any call.
        var (hostC, appliedC) = await StartReplicaAsync(front, seed: 3);
        var joined = await appliedC.ExpectMsgAsync<ReplicaParametersApplied>(Wait);
        Assert.Equal((1L, true), (joined.Round, joined.Exact));
        Assert.Equal(expected, await ParametersAsync(hostC));
        Assert.Equal(served, await ForwardAsync(hostC));
        await AssertWorkersAsync(router, 3);
    }

    protected override void AfterAll()
    {
        foreach (var node in _nodes)
        {
            try
            {
                node.Terminate().Wait(TimeSpan.FromSeconds(30));
            }
            catch (AggregateException)
            {
            }
        }
        base.AfterAll();
    }
}
