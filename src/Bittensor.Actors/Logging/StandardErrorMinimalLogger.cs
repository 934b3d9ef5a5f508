using Akka.Event;
using Microsoft.Extensions.Logging;

namespace Bittensor.Actors.Logging;

/// <summary>
/// Akka's start-up and shutdown logger (<c>akka.stdout-logger-class</c>: it prints what happens before the configured
/// loggers start and after they stop, and it receives every event still queued for a logger actor when that logger
/// stops — Akka's logger mailbox drains them to it) writing to standard error instead of standard output, so a verb's
/// standard output stays its results only even at Debug.
/// <para>In a system made by <see cref="BittensorLogging.CreateSystem"/> with a logger factory, it writes through that
/// factory, like <see cref="LoggerFactoryBridge"/>: the events a busy machine leaves queued for the bridge at shutdown
/// keep the log's format and levels (they used to appear as Akka-format <c>[ERROR]…</c> lines among the factory's).
/// Otherwise it writes each non-Debug event on one line to the standard error of the moment the actor system was
/// created (Akka's own "logger started/stopped" Debug lines are dropped), so a system never writes into a console
/// another part of the process has swapped in later (a test capturing a verb's output).</para>
/// </summary>
public sealed class StandardErrorMinimalLogger : MinimalLogger
{
    /// <summary>The HOCON value naming this logger in <c>akka.stdout-logger-class</c>.</summary>
    public const string TypeName = "Bittensor.Actors.Logging.StandardErrorMinimalLogger, Bittensor.Actors";

    // Akka creates this logger (by its type name, no arguments) while it builds the system's settings, on the thread
    // that calls ActorSystem.Create: CreatingWith sets the factory for that call only.
    [ThreadStatic]
    private static ILoggerFactory? t_factory;

    private readonly TextWriter _error = Console.Error;
    private readonly AkkaEventWriter? _writer;
    private readonly Lock _lock = new();

    /// <summary>Creates the logger (Akka does, from <c>akka.stdout-logger-class</c>).</summary>
    public StandardErrorMinimalLogger()
    {
        if (t_factory is { } factory) _writer = new AkkaEventWriter(factory);
    }

    /// <summary>Whether this logger writes through a logger factory (else straight to standard error).</summary>
    public bool WritesToLoggerFactory => _writer is not null;

    /// <summary>
    /// Runs <paramref name="create"/> (which creates one actor system on this thread) so that the system's
    /// <see cref="StandardErrorMinimalLogger"/>, if it has one, writes through <paramref name="factory"/>.
    /// </summary>
    internal static T CreatingWith<T>(ILoggerFactory factory, Func<T> create)
    {
        var prior = t_factory;
        t_factory = factory;
        try
        {
            return create();
        }
        finally
        {
            t_factory = prior;
        }
    }

    /// <inheritdoc />
    protected override void Log(object message)
    {
        if (message is not LogEvent e) return;
        if (_writer is not null)
        {
            // Akka calls this from any thread (whoever publishes or whichever logger mailbox drains).
            lock (_lock)
            {
                try
                {
                    _writer.Log(e);
                    return;
                }
                catch (ObjectDisposedException)
                {
                    // the factory is gone (its owner disposed it before the system stopped): the console still works
                }
            }
        }
        if (e is not Debug) _error.WriteLine(e.ToString());
    }
}
