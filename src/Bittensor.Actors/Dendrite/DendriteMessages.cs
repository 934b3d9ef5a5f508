using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Dendrite;

/// <summary>
/// One call toward one endpoint: the wire tensors (encoded once, shared across endpoints) and the deadline.
/// Local-only like every message that holds tensors.
/// </summary>
/// <param name="IsBackward">Backward instead of Forward.</param>
/// <param name="Tensors">Tensors of the request, already encoded.</param>
/// <param name="Timeout">Deadline of the call, counted from when the endpoint actor receives it.</param>
public sealed record EndpointCall(bool IsBackward, IReadOnlyList<Tensor> Tensors, TimeSpan Timeout);

/// <summary>Outcome of one <see cref="EndpointCall"/>.</summary>
/// <param name="Code">The return code (the peer's, or one mapped from the transport).</param>
/// <param name="Message">The peer's message or a local reason.</param>
/// <param name="Response">The peer's answer when one arrived.</param>
/// <param name="Latency">Time from sending to the answer (zero when nothing was sent).</param>
public sealed record EndpointReply(ReturnCode Code, string Message, TensorMessage? Response, TimeSpan Latency);

/// <summary>Health of one endpoint.</summary>
/// <param name="Hotkey">The endpoint's hotkey.</param>
/// <param name="Calls">Calls sent.</param>
/// <param name="Successes">Calls answered with Success.</param>
/// <param name="LatencyEmaMs">Moving average of answered calls' latency in ms (0 before the first).</param>
/// <param name="ConsecutiveFailures">Unavailable/Timeout results since the last success.</param>
/// <param name="BackedOffUntil">Until when calls answer Backoff without being sent (null when not backed off).</param>
/// <param name="InFlight">Calls sent and not yet answered.</param>
/// <param name="Queued">Calls waiting in the endpoint's bounded queue.</param>
public sealed record EndpointStats(string Hotkey, long Calls, long Successes, double LatencyEmaMs, int ConsecutiveFailures, DateTimeOffset? BackedOffUntil,
    int InFlight = 0, int Queued = 0)
{
    /// <summary>Share of sent calls that succeeded (1 before the first call).</summary>
    public double SuccessRate => Calls == 0 ? 1.0 : (double)Successes / Calls;
}
