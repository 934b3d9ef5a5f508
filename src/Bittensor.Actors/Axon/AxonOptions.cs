namespace Bittensor.Actors.Axon;

/// <summary>Code-level options of an axon (what HOCON cannot express).</summary>
public sealed record AxonOptions
{
    /// <summary>Options with every default.</summary>
    public static readonly AxonOptions Default = new();

    /// <summary>This axon's own hotkey SS58, put in every answer's <c>hotkey</c> field.</summary>
    public string Hotkey { get; init; } = "";

    /// <summary>
    /// The MetagraphActor of the axon's subnet. When set, the axon subscribes to it (<see cref="Metagraph.SubscribeMetagraph"/>)
    /// and every synced snapshot sets the callers' stakes (priority, <c>blacklist.min_stake</c>) and who is registered
    /// (<c>blacklist.registered_only</c>). Without it stakes come only from <see cref="AxonActor.UpdateStakes"/>.
    /// </summary>
    public Akka.Actor.IActorRef? Metagraph { get; init; }

    /// <summary>Optional cheap check run before signature verification; false answers UNAUTHENTICATED. Default: SS58 shape.</summary>
    public Func<string, bool>? PreVerifyBlacklist { get; init; }

    /// <summary>Called once per finished call (on a gRPC thread), e.g. to log one line per call.</summary>
    public Action<AxonCallRecord>? OnCall { get; init; }

    /// <summary>
    /// The server transport the axon listens with; null is the 2021 gRPC server (<see cref="KestrelServerTransport"/>).
    /// <see cref="Bittensor.Protocol.InMemoryTransport"/> serves in-process peers with the same checks and codes.
    /// </summary>
    public Bittensor.Protocol.IServerTransport? Transport { get; init; }

    /// <summary>Clock used for deadlines and nonces; tests inject a manual one.</summary>
    public TimeProvider? Time { get; init; }
}
