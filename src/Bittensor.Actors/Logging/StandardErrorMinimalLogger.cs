using Akka.Event;

namespace Bittensor.Actors.Logging;

/// <summary>
/// Akka's start-up and shutdown logger (<c>akka.stdout-logger-class</c>: it prints what happens before the configured
/// loggers start and after they stop) writing to standard error instead of standard output, so a verb's standard
/// output stays its results only even at Debug. Its Debug events (Akka's own "logger started/stopped" lines) are
/// dropped: warnings and errors before the loggers start or after they stop are what it is for.
/// </summary>
public sealed class StandardErrorMinimalLogger : MinimalLogger
{
    /// <summary>The HOCON value naming this logger in <c>akka.stdout-logger-class</c>.</summary>
    public const string TypeName = "Bittensor.Actors.Logging.StandardErrorMinimalLogger, Bittensor.Actors";

    /// <inheritdoc />
    protected override void Log(object message)
    {
        if (message is LogEvent e and not Debug) Console.Error.WriteLine(e.ToString());
    }
}
