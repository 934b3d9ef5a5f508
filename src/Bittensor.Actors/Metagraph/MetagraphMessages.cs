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
/// when that sync (or the one already running, followed by a fresh one) completes, or <c>Status.Failure</c>.
/// </summary>
public sealed record SyncMetagraph
{
    /// <summary>The single instance.</summary>
    public static SyncMetagraph Instance { get; } = new();
}

/// <summary>Published on the EventStream after every completed sync (and sent to <see cref="SyncMetagraph"/> askers).</summary>
/// <param name="Snapshot">The new snapshot.</param>
public sealed record MetagraphUpdated(MetagraphSnapshot Snapshot);
