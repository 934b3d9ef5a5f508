using Akka.Actor;
using Bittensor.Actors.Cluster;
using Bittensor.Neurons.Demo;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// A worker's registration as the front sees it, on real cluster nodes (loopback, every message serialized): the front
/// singleton here is a stand-in at <c>/user/cluster-front/front</c> on a front-role node that hands every message it
/// gets to a probe, so the test answers as one front and then as another.
/// </summary>
[Collection(ClusterTestBase.Nodes)]
public sealed class ClusterWorkerRegistrationSpec(Xunit.Abstractions.ITestOutputHelper output) : ClusterTestBase(output)
{
    private sealed class Forwarding : ReceiveActor
    {
        public Forwarding(IActorRef to) => ReceiveAny(m => to.Forward(m));
    }

    private sealed class Manager : ReceiveActor
    {
        public Manager(IActorRef to)
        {
            Context.ActorOf(Props.Create(() => new Forwarding(to)), ClusterSettings.FrontSingletonName);
            ReceiveAny(_ => { });
        }
    }

    [Fact]
    public async Task An_acknowledged_worker_repeats_its_registration_so_a_front_that_does_not_know_it_learns_of_it_and_the_worker_follows_that_front()
    {
        var front = BittensorCluster.CreateSystem(Settings(), ClusterSettings.FrontRole, overrides: TestOverrides);
        Track(front);
        var registrations = CreateTestProbe(front);
        front.ActorOf(Props.Create(() => new Manager(registrations.Ref)), ClusterSettings.FrontName);
        var routerA = CreateTestProbe(front);
        var routerB = CreateTestProbe(front);
        await Up(front).WaitAsync(TimeSpan.FromSeconds(60));

        // No drain at the end (the stand-in fronts never acknowledge one): the node just stops.
        var node = StartWorker(front, DemoModels.Echo(Dim), extra: Akka.Configuration.ConfigurationFactory.ParseString(
            "akka.coordinated-shutdown.run-by-actor-system-terminate = off"));
        var joined = CreateTestProbe(node);
        node.EventStream.Subscribe(joined.Ref, typeof(ClusterWorkerJoinedFront));

        // Front A acknowledges the worker.
        await registrations.ExpectMsgAsync<RegisterWorker>(TimeSpan.FromSeconds(60));
        var worker = registrations.LastSender;
        worker.Tell(new WorkerRegistered(1), routerA.Ref);
        Assert.Equal(1, (await joined.ExpectMsgAsync<ClusterWorkerJoinedFront>(TimeSpan.FromSeconds(60))).Workers);

        // From now on every registration the worker sends says it drains: one that reaches the front singleton was sent
        // while A had acknowledged the worker (before this change a registered worker sent none, so a front that took
        // over before the worker's node heard of the old one's death never learned of it).
        node.ActorSelection($"/user/{ClusterSettings.WorkerName}").Tell(DrainWorker.Instance);
        await routerA.ExpectMsgAsync<WorkerDraining>(TimeSpan.FromSeconds(60));
        await registrations.FishForMessageAsync<RegisterWorker>(r => r.Draining, TimeSpan.FromSeconds(60));

        // Front B, which did not know the worker, acknowledges it: the worker follows B and tells B it drains.
        registrations.LastSender.Tell(new WorkerRegistered(2), routerB.Ref);
        Assert.Equal(2, (await joined.FishForMessageAsync<ClusterWorkerJoinedFront>(j => j.Workers == 2, TimeSpan.FromSeconds(60))).Workers);
        await routerB.ExpectMsgAsync<WorkerDraining>(TimeSpan.FromSeconds(60));
        Assert.Equal(worker, registrations.LastSender);
    }
}
