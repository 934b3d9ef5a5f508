using System.Collections.Concurrent;
using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Configuration;
using Akka.Serialization;

namespace Bittensor.Actors.Cluster;

/// <summary>
/// A "serializer" for Akka's own node-local cluster events that never cross the wire (every
/// <c>ClusterEvent.IClusterDomainEvent</c>: MemberUp, UnreachableMember, LeaderChanged, the internal ReachabilityChanged,
/// ..., which Akka publishes to local subscribers such as the split-brain resolver and the singleton manager): the
/// object is parked in this process and its bytes are only a ticket for it. It exists for
/// <c>akka.actor.serialize-messages = on</c> (see <see cref="SerializeMessagesCheck"/>), which round-trips every local
/// Tell through the serializer bound to its type; Akka binds these events to nothing but the JSON fallback, which
/// cannot rebuild ReachabilityChanged's immutable dictionaries (the check dropped it, and the resolver never saw a node
/// become unreachable) and does not write a Member's internal up number (a MemberUp read back said 0, so the singleton
/// manager took a younger front for the oldest and waited for a hand-over that never came). A ticket sent to another
/// process finds nothing there and fails, which is right: these events are not meant to be sent.
/// </summary>
public sealed class LocalEventSerializer(ExtendedActorSystem system) : Serializer(system)
{
    /// <summary>This serializer's identifier (Akka reserves 0–40; the cluster serializers use 7310 and 7311).</summary>
    public const int Id = 7312;

    private static readonly ConcurrentDictionary<long, object> Parked = new();
    private static long _next;

    /// <inheritdoc />
    public override int Identifier => Id;

    /// <inheritdoc />
    public override bool IncludeManifest => false;

    /// <inheritdoc />
    public override byte[] ToBinary(object obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var ticket = Interlocked.Increment(ref _next);
        Parked[ticket] = obj;
        return BitConverter.GetBytes(ticket);
    }

    /// <inheritdoc />
    public override object FromBinary(byte[] bytes, Type type)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length != sizeof(long) || !Parked.TryRemove(BitConverter.ToInt64(bytes), out var obj))
            throw new SerializationException($"{type?.Name ?? "this event"} is a node-local Akka event: it cannot be read from bytes made elsewhere");
        return obj;
    }

    /// <summary>Akka.Cluster's internal <c>ClusterEvent.ReachabilityChanged</c>, by name (the type is not public).</summary>
    public const string ReachabilityChangedType = "Akka.Cluster.ClusterEvent+ReachabilityChanged, Akka.Cluster";

    /// <summary>Every cluster domain event (<c>ClusterEvent.IClusterDomainEvent</c>), by name.</summary>
    public const string ClusterDomainEventType = "Akka.Cluster.ClusterEvent+IClusterDomainEvent, Akka.Cluster";

    /// <summary>
    /// <c>akka.actor.serialize-messages = on</c> with Akka's node-local cluster events bound to this serializer: every
    /// message of ours sent to an actor is serialized and read back with the serializer a remote send would use, while
    /// the cluster's own machinery keeps working. Layer it over a node's configuration in tests.
    /// </summary>
    public static Config SerializeMessagesCheck { get; } = ConfigurationFactory.ParseString($$"""
        akka.actor {
          serialize-messages = on
          serializers.bittensor-local-event = "{{typeof(LocalEventSerializer).AssemblyQualifiedName}}"
          serialization-bindings {
            "{{ClusterDomainEventType}}" = bittensor-local-event
            "{{ReachabilityChangedType}}" = bittensor-local-event
          }
        }
        """);
}
