using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;
using Bittensor.Actors.Cluster;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// <see cref="LocalEventSerializer"/>: with <see cref="LocalEventSerializer.SerializeMessagesCheck"/>, Akka's node-local
/// ReachabilityChanged goes through the ticket serializer (the JSON fallback could not rebuild it, so the
/// serialize-messages check dropped it before the split-brain resolver saw it), a ticket reads back its object once,
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
