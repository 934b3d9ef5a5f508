using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Hosting.Logging;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Bittensor.Actors.Logging;

/// <summary>
/// One <see cref="ILoggerFactory"/> per process, configured from <c>bittensor.logging</c> (<see cref="LoggingSettings"/>),
/// with Akka's logging bridged into it (<see cref="LoggerFactoryBridge"/>). btcli's long-running verbs use it; a host
/// on Akka.Hosting passes its own factory to <see cref="CreateSystem"/> or adds the bridge with
/// <see cref="AkkaConfig"/> and a <see cref="LoggerFactorySetup"/>.
/// </summary>
public static class BittensorLogging
{
    /// <summary>Category of the axon's per-call log lines (Debug; off unless a level enables it).</summary>
    public const string RequestsCategory = "Bittensor.Actors.Axon.Requests";

    /// <summary>Events the console keeps queued for its writer thread; beyond that new events are dropped, never waited for.</summary>
    public const int ConsoleQueueLength = 10_000;

    /// <summary>
    /// Akka's side of the bridge: <see cref="LoggerFactoryBridge"/> as the only logger, <c>akka.loglevel</c> at the most
    /// verbose level any category is enabled at (Akka drops events below it before any filter sees them), nothing on
    /// standard output (Akka's start-up/shutdown logger writes to standard error, or through the factory in a system
    /// made by <see cref="CreateSystem"/>: <see cref="StandardErrorMinimalLogger"/>).
    /// </summary>
    public static Config AkkaConfig(LoggingSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return ConfigurationFactory.ParseString(
            $"akka.loggers = [\"{LoggerFactoryBridge.TypeName}\"]\nakka.loglevel = {settings.AkkaLogLevel}\nakka.stdout-loglevel = OFF\n" +
            $"akka.stdout-logger-class = \"{StandardErrorMinimalLogger.TypeName}\"");
    }

    /// <summary>The levels of <paramref name="settings"/> as <paramref name="builder"/>'s minimum level and filter rules.</summary>
    public static ILoggingBuilder AddFilters(ILoggingBuilder builder, LoggingSettings settings)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        builder.SetMinimumLevel(settings.Level);
        foreach (var (category, level) in settings.Levels) builder.AddFilter(category, level);
        return builder;
    }

    /// <summary>
    /// A factory writing to standard error (standard output carries only a verb's results) in
    /// <see cref="LoggingSettings.Format"/>, filtered by the settings' levels. Colours only when standard error is a
    /// terminal. Dispose it last: that flushes the queued events.
    /// </summary>
    public static ILoggerFactory CreateConsoleFactory(LoggingSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var colors = !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
        var timestamp = settings.TimestampFormat.Length == 0 ? null : settings.TimestampFormat + " ";
        return LoggerFactory.Create(b =>
        {
            AddFilters(b, settings);
            b.AddConsole(o =>
            {
                o.FormatterName = settings.Format;
                o.LogToStandardErrorThreshold = LogLevel.Trace;
                o.MaxQueueLength = ConsoleQueueLength;
                o.QueueFullMode = ConsoleLoggerQueueFullMode.DropWrite;
            });
            switch (settings.Format)
            {
                case "json":
                    b.AddJsonConsole(o =>
                    {
                        o.IncludeScopes = settings.Scopes;
                        o.TimestampFormat = settings.TimestampFormat.Length == 0 ? null : settings.TimestampFormat;
                        o.UseUtcTimestamp = true;
                    });
                    break;
                case "systemd":
                    b.AddSystemdConsole(o =>
                    {
                        o.IncludeScopes = settings.Scopes;
                        o.TimestampFormat = timestamp;
                        o.UseUtcTimestamp = true;
                    });
                    break;
                default:
                    b.AddSimpleConsole(o =>
                    {
                        o.SingleLine = true;
                        o.IncludeScopes = settings.Scopes;
                        o.TimestampFormat = timestamp;
                        o.UseUtcTimestamp = true;
                        o.ColorBehavior = colors ? LoggerColorBehavior.Enabled : LoggerColorBehavior.Disabled;
                    });
                    break;
            }
        });
    }

    /// <summary>
    /// Creates an actor system on <paramref name="config"/> that logs through <paramref name="loggerFactory"/> (with the
    /// levels of <paramref name="config"/>'s <c>bittensor.logging</c>); without a factory, a plain system on the config.
    /// </summary>
    /// <exception cref="ConfigurationException"><c>bittensor.logging</c> is invalid; the message names the key.</exception>
    public static ActorSystem CreateSystem(string name, Config config, ILoggerFactory? loggerFactory)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(config);
        if (loggerFactory is null) return ActorSystem.Create(name, config);
        var settings = LoggingSettings.Create(BittensorRuntime.Section(config, LoggingSettings.SectionPath));
        var setup = BootstrapSetup.Create().WithConfig(AkkaConfig(settings).WithFallback(config)).And(new LoggerFactorySetup(loggerFactory));
        // Its start-up/shutdown logger writes through the factory too (events left queued for the bridge at shutdown).
        return StandardErrorMinimalLogger.CreatingWith(loggerFactory, () => ActorSystem.Create(name, setup));
    }
}
