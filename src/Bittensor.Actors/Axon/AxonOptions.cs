namespace Bittensor.Actors.Axon;

/// <summary>Code-level options of an axon (what HOCON cannot express).</summary>
public sealed record AxonOptions
{
    /// <summary>Options with every default.</summary>
    public static readonly AxonOptions Default = new();

    /// <summary>This axon's own hotkey SS58, put in every answer's <c>hotkey</c> field.</summary>
    public string Hotkey { get; init; } = "";

    /// <summary>
    /// Optional priority function: the caller's stake (TAO) by hotkey. When null the axon uses the stakes of
    /// the latest <see cref="AxonActor.UpdateStakes"/> snapshot; unknown callers have stake 0 and go last.
    /// Called on gRPC threads: must be thread-safe and fast.
    /// </summary>
    public Func<string, double>? Stake { get; init; }

    /// <summary>Optional cheap check run before signature verification; false answers UNAUTHENTICATED. Default: SS58 shape.</summary>
    public Func<string, bool>? PreVerifyBlacklist { get; init; }

    /// <summary>Called once per finished call (on a gRPC thread), e.g. to log one line per call.</summary>
    public Action<AxonCallRecord>? OnCall { get; init; }

    /// <summary>Clock used for deadlines and nonces; tests inject a manual one.</summary>
    public TimeProvider? Time { get; init; }
}
