using System.Collections;
using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Event;
using Akka.Hosting.Logging;
using Microsoft.Extensions.Logging;
using AkkaLogLevel = Akka.Event.LogLevel;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace Bittensor.Actors.Logging;

/// <summary>
/// An Akka logger (<c>akka.loggers</c>) that hands every Akka log event to the process's <see cref="ILoggerFactory"/>
/// (the one in the system's <see cref="LoggerFactorySetup"/>), under the category of the class that logged it: an
/// actor's full type name (<c>Bittensor.Actors.Axon.AxonActor</c>), or the name given to <c>Logging.GetLogger(system, name)</c>.
/// So per-category levels (<c>bittensor.logging.levels</c>) work for actors as for any .NET class. Akka.Hosting's own
/// <c>LoggerFactoryLogger</c> logs every event under the one category <c>Akka.Actor.ActorSystem</c>, which no
/// per-component level can tell apart. The message template's named values travel as the event's state
/// (a JSON console shows them); the event's source (the actor's path) is the scope.
/// </summary>
public sealed class LoggerFactoryBridge : ActorBase, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    /// <summary>The HOCON value naming this logger in <c>akka.loggers</c>.</summary>
    public const string TypeName = "Bittensor.Actors.Logging.LoggerFactoryBridge, Bittensor.Actors";

    private readonly AkkaEventWriter _writer;

    /// <summary>Creates the logger (Akka does, from <c>akka.loggers</c>).</summary>
    /// <exception cref="ConfigurationException">The actor system was created without a <see cref="LoggerFactorySetup"/>.</exception>
    public LoggerFactoryBridge()
    {
        var setup = Context.System.Settings.Setup.Get<LoggerFactorySetup>();
        if (!setup.HasValue)
            throw new ConfigurationException($"{TypeName} needs a {nameof(LoggerFactorySetup)} in the actor system's setup (BittensorLogging.CreateSystem adds it)");
        _writer = new AkkaEventWriter(setup.Value.LoggerFactory);
    }

    /// <inheritdoc />
    protected override bool Receive(object message)
    {
        switch (message)
        {
            case InitializeLogger:
                Sender.Tell(new LoggerInitialized());
                return true;
            case LogEvent e:
                _writer.Log(e);
                return true;
            default:
                return false;
        }
    }
}

/// <summary>
/// Writes Akka log events to an <see cref="ILoggerFactory"/> under the logging class's category (see
/// <see cref="LoggerFactoryBridge"/>). Not thread-safe: one caller at a time (the bridge actor, or
/// <see cref="StandardErrorMinimalLogger"/> under its lock).
/// </summary>
internal sealed class AkkaEventWriter(ILoggerFactory factory)
{
    // Categories named by strings (Logging.GetLogger(system, "name")) are chosen by code, not by callers; the bound only
    // keeps a bug from growing the cache without end.
    private const int MaxNamedCategories = 1024;

    private readonly Dictionary<Type, ILogger> _byType = [];
    private readonly Dictionary<string, ILogger> _byName = new(StringComparer.Ordinal);

    /// <summary>Writes <paramref name="e"/> if its category is enabled at its level.</summary>
    /// <exception cref="ObjectDisposedException">The factory was disposed and the event's category has no logger yet.</exception>
    public void Log(LogEvent e)
    {
        var logger = LoggerFor(e);
        var level = e.LogLevel() switch
        {
            AkkaLogLevel.DebugLevel => LogLevel.Debug,
            AkkaLogLevel.InfoLevel => LogLevel.Information,
            AkkaLogLevel.WarningLevel => LogLevel.Warning,
            _ => LogLevel.Error,
        };
        if (!logger.IsEnabled(level)) return;
        using var scope = logger.BeginScope(e.LogSource);
        logger.Log(level, default, new Entry(e), e.Cause, static (entry, _) => entry.ToString());
    }

    private ILogger LoggerFor(LogEvent e)
    {
        if (e.LogClass is { } type && type != typeof(DummyClassForStringSources))
        {
            if (!_byType.TryGetValue(type, out var typed)) _byType[type] = typed = factory.CreateLogger(type);
            return typed;
        }
        // A string source reads "name (akka://system)" or "name": the category is the name.
        var source = e.LogSource ?? "Akka";
        var cut = source.IndexOf(" (akka", StringComparison.Ordinal);
        var name = cut > 0 ? source[..cut] : source;
        if (_byName.TryGetValue(name, out var named)) return named;
        named = factory.CreateLogger(_byName.Count < MaxNamedCategories ? name : "Akka");
        if (_byName.Count < MaxNamedCategories) _byName[name] = named;
        return named;
    }

    /// <summary>The state of one event: the template's named values, the source and the template (<c>{OriginalFormat}</c>).</summary>
    private sealed class Entry(LogEvent e) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        private KeyValuePair<string, object?>[]? _items;

        public int Count => Items.Length;

        public KeyValuePair<string, object?> this[int index] => Items[index];

        private KeyValuePair<string, object?>[] Items => _items ??= Build();

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, object?>>)Items).GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString()
        {
            try
            {
                return e.Message?.ToString() ?? "";
            }
            catch (Exception x) when (x is FormatException or InvalidOperationException or ArgumentException)
            {
                return $"(log message could not be formatted: {x.GetType().Name})";
            }
        }

        private KeyValuePair<string, object?>[] Build()
        {
            var items = new List<KeyValuePair<string, object?>>();
            if (e.Message is LogMessage m)
            {
                try
                {
                    foreach (var p in m.GetProperties()) items.Add(new(p.Key, p.Value));
                }
                catch (Exception x) when (x is FormatException or InvalidOperationException or ArgumentException)
                {
                    // a template that does not match its values still logs its text
                }
                items.Add(new("LogSource", e.LogSource));
                items.Add(new("{OriginalFormat}", m.Format));
            }
            else
            {
                items.Add(new("LogSource", e.LogSource));
            }
            return [.. items];
        }
    }
}
