using Bittensor.Actors.Axon;
using Bittensor.Actors.Logging;
using Microsoft.Extensions.Logging;

namespace Bittensor.Cli;

/// <summary>
/// The axon's per-call log line (category <see cref="BittensorLogging.RequestsCategory"/>, Debug). Off by default:
/// when that level is not enabled at start the axon gets no callback at all, so the hot path does not even test a level.
/// </summary>
internal static partial class AxonRequestLog
{
    /// <summary>A callback logging each finished call, or null when Debug is off for the requests category.</summary>
    public static Action<AxonCallRecord>? For(ILoggerFactory factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        var logger = factory.CreateLogger(BittensorLogging.RequestsCategory);
        if (!logger.IsEnabled(LogLevel.Debug)) return null;
        return r => Call(logger, r.Method, r.Caller, r.Code, r.Elapsed.TotalMilliseconds, r.BytesIn, r.BytesOut, r.Message.Length == 0 ? "" : ": " + r.Message);
    }

    // The caller is a public hotkey (SS58) or "unverified"; the message is the axon's own answer text.
    [LoggerMessage(EventId = 1, Level = LogLevel.Debug,
        Message = "{Method} from {Caller}: {Code} in {ElapsedMs:F1} ms, {BytesIn} B in, {BytesOut} B out{Message}")]
    private static partial void Call(ILogger logger, string method, string caller, Bittensor.Protocol.Wire.ReturnCode code, double elapsedMs, long bytesIn, long bytesOut,
        string message);
}
