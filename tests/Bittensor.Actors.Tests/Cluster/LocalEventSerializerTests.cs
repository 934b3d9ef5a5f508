using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using Bittensor.Actors.Cluster;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// <see cref="LocalEventSerializer"/>: with <see cref="LocalEventSerializer.SerializeMessagesCheck"/>, Akka's node-local
/// cluster events go through the ticket serializer (the JSON fallback could not rebuild ReachabilityChanged, so the
/// serialize-messages check dropped it before the split-brain resolver saw it, and read MemberUp back with up number 0),
/// a ticket reads back its object once,
/// and bytes that are no ticket of this process are refused with a SerializationException.
/// </summary>
public sealed class LocalEventSerializerTests : IDisposable
{
    private readonly ActorSystem _system = ActorSystem.Create("local-events", LocalEventSerializer.SerializeMessagesCheck
        .WithFallback(ConfigurationFactory.ParseString("akka.actor.provider = cluster\nakka.remote.dot-netty.tcp.port = 0\nakka.remote.dot-netty.tcp.hostname = 127.0.0.1")));

    public void Dispose() => _system.Terminate().Wait(TimeSpan.FromSeconds(30));

    [Fact]
    public void ReachabilityChanged_is_bound_to_the_ticket_serializer_and_a_ticket_reads_back_the_same_object_once()
    {
        var reachabilityChanged = Type.GetType(LocalEventSerializer.ReachabilityChangedType, throwOnError: true)!;
        Assert.True(_system.Settings.SerializeAllMessages);
        var serializer = Assert.IsType<LocalEventSerializer>(_system.Serialization.FindSerializerForType(reachabilityChanged));

        var message = new object();
        var bytes = serializer.ToBinary(message);
        Assert.Same(message, serializer.FromBinary(bytes, reachabilityChanged));
        var again = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, reachabilityChanged));
        Assert.Contains("node-local", again.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_member_event_a_subscriber_receives_under_the_check_keeps_the_members_up_number()
    {
        // The cluster singleton's oldest-member tracking orders members by their up number (Member.IsOlderThan). The
        // JSON fallback does not write Member's internal UpNumber, so a MemberUp read back from it said 0: a younger
        // front looked older than the active one, whose singleton manager then waited for a hand-over that never came
        // (ClusterSingletonManagerIsStuck; the front specs' routers died before the workers registered).
        var cluster = Akka.Cluster.Cluster.Get(_system);
        var inbox = Inbox.Create(_system);
        cluster.Subscribe(inbox.Receiver, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(Akka.Cluster.ClusterEvent.MemberUp));
        await cluster.JoinAsync(cluster.SelfAddress).WaitAsync(TimeSpan.FromMinutes(1)); // a hang guard, not a timing
        var up = Assert.IsType<Akka.Cluster.ClusterEvent.MemberUp>(await inbox.ReceiveAsync(TimeSpan.FromMinutes(1)));
        // Member's ToString shows its up number; the member as the cluster holds it was never serialized.
        Assert.Equal(cluster.SelfMember.ToString(), up.Member.ToString());
        Assert.Contains("upNumber=1", up.Member.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 1, 2, 3 })]
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f })]
    public void Bytes_that_are_no_ticket_of_this_process_are_refused(byte[] bytes)
    {
        var serializer = _system.Serialization.FindSerializerForType(Type.GetType(LocalEventSerializer.ReachabilityChangedType, throwOnError: true)!);
        Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, typeof(object)));
    }
}
