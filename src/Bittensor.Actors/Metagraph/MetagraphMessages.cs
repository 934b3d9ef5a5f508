using Bittensor.Core.Domain;
namespace Bittensor.Actors.Metagraph;

/// <summary>Ask a MetagraphActor for its current snapshot; answered at once with a <see cref="MetagraphSnapshot"/>.</summary>
public sealed record GetMetagraph
{
    /// <summary>The single instance.</summary>
    public static GetMetagraph Instance { get; } = new();
}

/// <summary>
/// Ask a MetagraphActor to sync now (regardless of the block cadence); answered with <see cref="MetagraphUpdated"/>
/// when that sync (or the one already running, followed by a fresh one) completes, or <c>Status.Failure</c>. Before the
/// chain actor has first connected, the chain being unavailable is not a failure: the asker is answered by the sync
/// that follows the connection (bound the wait with the ask's timeout).
/// </summary>
public sealed record SyncMetagraph
{
    /// <summary>The single instance.</summary>
    public static SyncMetagraph Instance { get; } = new();
}

/// <summary>Published on the EventStream after every completed sync (and sent to <see cref="SyncMetagraph"/> askers).</summary>
/// <param name="Snapshot">The new snapshot.</param>
public sealed record MetagraphUpdated(MetagraphSnapshot Snapshot);

/// <summary>
/// Subscribes <paramref name="Subscriber"/> to this MetagraphActor's snapshots (unlike the EventStream, only this
/// subnet's): it is sent the current snapshot at once when one is known (loaded from disk or synced), then a
/// <see cref="MetagraphUpdated"/> after every sync, always before any <see cref="SyncMetagraph"/> asker is answered
/// (so a caller that awaited a sync may rely on the subscriber having been told first). The subscriber is watched
/// and forgotten when it stops.
/// </summary>
/// <param name="Subscriber">Who receives the snapshots (e.g. an AxonActor).</param>
public sealed record SubscribeMetagraph(Akka.Actor.IActorRef Subscriber);

/// <summary>Stops sending snapshots to <paramref name="Subscriber"/>.</summary>
/// <param name="Subscriber">A subscriber added with <see cref="SubscribeMetagraph"/>.</param>
public sealed record UnsubscribeMetagraph(Akka.Actor.IActorRef Subscriber);
