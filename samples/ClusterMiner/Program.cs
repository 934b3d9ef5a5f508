using System.Globalization;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.ModelHost;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Samples.ClusterMiner;

/// <summary>
/// A miner that spans machines (docs/cluster.md), all on loopback in this one process so it runs anywhere: a front
/// node (the axon, the miner's one public address, and the cluster router) and <c>--workers N</c> worker nodes (each
/// a model replica), each its own ActorSystem joined over Akka.Cluster's TCP transport. A dendrite signed by //Alice
/// then sends <c>--calls M</c> forwards and backwards through the front, and the sample prints which replica served
/// how many. On real machines each node is its own process (<c>btcli axon serve --cluster.role front</c>,
/// <c>btcli axon worker</c>) with the same three calls below: <see cref="BittensorCluster.CreateSystem"/>,
/// <see cref="BittensorCluster.StartFront"/> / <see cref="BittensorCluster.StartWorker"/>.
/// </summary>
public static class ClusterMinerSample
{
    private const int Dim = 1024;

    /// <summary>Command-line entry: <c>[--workers 2] [--calls 20]</c>.</summary>
    public static Task<int> Main(string[] args) => RunAsync(args, CancellationToken.None);

    /// <summary>Runs the miner and the calls; 0 when every call succeeded and every replica served.</summary>
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var workers = Option(args, "--workers", 2);
        var calls = Option(args, "--calls", 20);
        var quiet = ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.coordinated-shutdown.run-by-clr-shutdown-hook = off");
        var nodes = new List<ActorSystem>();
        try
        {
            // 1. The front: the first node seeds itself; its axon's model host is the cluster router.
            var frontSettings = ClusterSettings.Default with { Role = ClusterSettings.FrontRole, Hostname = "127.0.0.1", Port = 0 };
            var front = BittensorCluster.CreateSystem(frontSettings, ClusterSettings.FrontRole, quiet);
            nodes.Add(front);
            // The front is a cluster singleton (the oldest front-capable node runs it): it starts the router and the axon.
            using var bob = SecretUri.ToSr25519("//Bob");
            var axonSettings = AxonSettings.Default with { Ip = "127.0.0.1", Port = 0, NetworkDim = Dim };
            var events = BittensorCluster.FrontEvents(front);
            BittensorCluster.StartFront(front, frontSettings, r => AxonActor.Props(axonSettings, r, new AxonOptions { Hotkey = bob.ToSs58() }));
            ClusterFrontActivated active;
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                wait.CancelAfter(TimeSpan.FromSeconds(60));
                while ((active = (await events.ReadAsync(wait.Token) as ClusterFrontActivated)!) is null)
                {
                }
            }
            var router = active.Router;
            var seed = Akka.Cluster.Cluster.Get(front).SelfAddress.ToString();
            Console.WriteLine($"front: axon on {active.Endpoint}, cluster at {seed}");

            // 2. Workers: join through the front; each hosts a model host (here the echo model) and registers with the front.
            for (var i = 0; i < workers; i++)
            {
                var settings = ClusterSettings.Default with { Role = ClusterSettings.WorkerRole, Hostname = "127.0.0.1", Port = 0, SeedNodes = [seed] };
                var node = BittensorCluster.CreateSystem(settings, ClusterSettings.WorkerRole, quiet);
                nodes.Add(node);
                BittensorCluster.StartWorker(node, settings, ModelHostActor.ForHandlers(DemoModels.Echo(Dim), 4, 64, TimeSpan.FromSeconds(30)), capacity: 68);
            }
            ClusterFrontStatus status;
            while ((status = await router.Ask<ClusterFrontStatus>(GetClusterFrontStatus.Instance, TimeSpan.FromSeconds(10), cancellationToken)).Workers.Count < workers)
                await Task.Delay(100, cancellationToken); // a sample polls the router; tests wait the same way, bounded
            Console.WriteLine($"front: {status.Workers.Count} workers registered");

            // 3. A caller: a signed dendrite, exactly as against any axon (the cluster is invisible from outside).
            using var alice = SecretUri.ToSr25519("//Alice");
            var dendrite = new Dendrite(front, new KeyPairRequestSigner(alice));
            var endpoint = new EndpointInfo(bob.ToSs58(), "127.0.0.1", active.Endpoint.Port);
            var ok = 0;
            for (var c = 0; c < calls; c++)
            {
                var tokens = new long[,] { { c + 1, 2, 3 } };
                var forward = (await dendrite.ForwardText([endpoint], tokens))[0];
                var grads = DenseTensor.Float32([1, 3, Dim], [.. Enumerable.Repeat(1f, 3 * Dim)]);
                var backward = (await dendrite.Backward([endpoint], DenseTensor.FromTokens(tokens), [grads]))[0];
                if (forward.Code == ReturnCode.Success && backward.Code == ReturnCode.Success) ok++;
                else Console.WriteLine($"call {c}: forward {forward.Code} {forward.Message}, backward {backward.Code} {backward.Message}");
            }

            status = await router.Ask<ClusterFrontStatus>(GetClusterFrontStatus.Instance, TimeSpan.FromSeconds(10), cancellationToken);
            foreach (var w in status.Workers) Console.WriteLine($"replica {w.Replica}: served {w.Served}");
            Console.WriteLine($"{ok} of {calls} forward+backward pairs succeeded; {status.AffinityHits} backwards reached the replica of their forward");
            return ok == calls && status.Workers.All(w => w.Served > 0) ? 0 : 1;
        }
        finally
        {
            // Workers leave first (each drains its calls, then leaves the cluster), then the front.
            foreach (var node in Enumerable.Reverse(nodes)) await node.Terminate();
        }
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
