using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;

namespace Bittensor.Actors.Logging;

/// <summary>
/// An Akka logger that writes each event on one line to standard error, so a command-line tool's standard output
/// carries only its results (<c>btcli … --json</c> stays parseable while actors log). btcli's configuration layer sets
/// <c>akka.loggers = ["Bittensor.Actors.Logging.StandardErrorLogger, Bittensor.Actors"]</c>; a host embedding the
/// runtime keeps whatever loggers it configures. It writes to the standard error of the moment the actor system
/// started its loggers: a system never writes into a console another part of the process swapped in later (a test
/// capturing a verb's output while an earlier verb's system still drains its events).
/// </summary>
public sealed class StandardErrorLogger : ReceiveActor, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    /// <summary>The HOCON value naming this logger in <c>akka.loggers</c>.</summary>
    public const string TypeName = "Bittensor.Actors.Logging.StandardErrorLogger, Bittensor.Actors";

    /// <summary>Creates the logger (Akka does, from <c>akka.loggers</c>).</summary>
    public StandardErrorLogger()
    {
        var error = Console.Error;
        Receive<InitializeLogger>(_ => Sender.Tell(new LoggerInitialized()));
        Receive<LogEvent>(e => error.WriteLine(e.ToString()));
    }
}
