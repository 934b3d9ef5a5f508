using Akka.Actor;
using MemberStatus = Akka.Cluster.MemberStatus;
using Bittensor.Actors.Cluster;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// The front acknowledges (and serves) a new worker only once the worker's node is Up and every reachable node has seen
/// that (docs/cluster.md "Split brain"): each node's split-brain resolver counts Up members only, so a worker served before
/// a standby front knew it Up was not counted there, and a take-over in that window downed the standby and the workers
/// (the take-over flake). Each node its own ActorSystem on loopback, every message serialized.
/// </summary>
[Collection(ClusterTestBase.Nodes)]
public sealed class ClusterRegistrationSpec(Xunit.Abstractions.ITestOutputHelper output) : ClusterTestBase(output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);

    /// <summary>A stand-in worker: registers once with the router at start; forwards the acknowledgement to the test.</summary>
    private sealed class OneRegistration : ReceiveActor
    {
        public OneRegistration(ActorSelection router, IActorRef probe)
        {
            Receive<WorkerRegistered>(r => probe.Tell(r));
            ReceiveAny(_ => { });
            router.Tell(new RegisterWorker(4, false, "stand-in"));
        }
    }

    [Fact]
    public async Task A_worker_is_acknowledged_only_once_its_node_is_Up_and_seen_by_every_node()
    {
        var (front, router, _) = await StartFront();
        var (standby, _) = StartFrontNode(seeds: Akka.Cluster.Cluster.Get(front).SelfAddress.ToString());
        await Up(standby).WaitAsync(Bound);
        // A worker node that has not joined yet (its only seed answers nothing; no join timeout): its registration reaches
        // the front over Akka.Remote while it is no member at all.
        using var dead = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        dead.Start();
        var deadSeed = $"127.0.0.1:{((System.Net.IPEndPoint)dead.LocalEndpoint).Port}";
        dead.Stop();
        var node = BittensorCluster.CreateSystem(Settings(deadSeed) with { JoinTimeout = null }, ClusterSettings.WorkerRole, overrides: TestOverrides);
        Track(node);
        var probe = CreateTestProbe(node);
        var selection = node.ActorSelection(router.Path.ToStringWithAddress(Akka.Cluster.Cluster.Get(front).SelfAddress));
        node.ActorOf(Props.Create(() => new OneRegistration(selection, probe.Ref)), "stand-in");

        // Now it joins; the acknowledgement of its one registration comes when the front's view has it Up and seen by all.
        Akka.Cluster.Cluster.Get(node).Join(Akka.Cluster.Cluster.Get(front).SelfAddress);
        await probe.ExpectMsgAsync<WorkerRegistered>(Bound);

        // Seen by every node when it was acknowledged: each node's own view has the worker Up (a member stays Up until it
        // leaves or is downed, so this still holds when the test looks). The front's SeenBy cannot be read after the fact:
        // it is the set of nodes that have seen the front's latest gossip, and any later change (a heartbeat's reachability
        // record, another member's status) starts a new version seen by the front alone (a fresh-clone CI run of session 26
        // read it without the worker).
        var self = Akka.Cluster.Cluster.Get(node).SelfAddress;
        foreach (var (name, system) in new[] { ("front", front), ("standby", standby), ("worker", node) })
        {
            var member = Akka.Cluster.Cluster.Get(system).State.Members.SingleOrDefault(m => m.Address == self);
            Assert.True(member?.Status == MemberStatus.Up, $"the {name}'s view has the acknowledged worker {member?.Status.ToString() ?? "missing"}");
        }
        await AwaitWorkers(router, 1);
    }
}
