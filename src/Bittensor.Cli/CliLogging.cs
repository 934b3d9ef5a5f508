using System.CommandLine;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Logging;
using Microsoft.Extensions.Logging;

namespace Bittensor.Cli;

/// <summary>
/// A long-running verb's logging (docs/logging.md): one <see cref="ILoggerFactory"/> built from the layered
/// <c>bittensor.logging</c> section (flags <c>--logging.level</c>, <c>--logging.levels.CATEGORY</c>), writing to
/// standard error; the verb's actor systems log through it (<see cref="CreateSystem"/>). Human-facing output (tables,
/// the demo's live view, <c>serving on …</c> lines) is not logging and does not go through it. Dispose it after the
/// actor systems have stopped: that flushes the queued events.
/// </summary>
internal sealed class CliLogging : IDisposable
{
    private const string LevelsFlag = "--logging.levels";

    private CliLogging(LoggingSettings settings, ILoggerFactory factory)
    {
        Settings = settings;
        Factory = factory;
    }

    /// <summary>The settings the factory was built from.</summary>
    public LoggingSettings Settings { get; }

    /// <summary>The process's logger factory.</summary>
    public ILoggerFactory Factory { get; }

    /// <summary>Builds the factory from <c>bittensor.logging</c> of <paramref name="hocon"/>.</summary>
    /// <exception cref="CliException">A key is invalid; the message names it.</exception>
    public static CliLogging Start(Config hocon)
    {
        var settings = CliConfig.Settings(hocon, LoggingSettings.SectionPath, LoggingSettings.Create);
        return new CliLogging(settings, BittensorLogging.CreateConsoleFactory(settings));
    }

    /// <summary>
    /// An actor system on <paramref name="config"/> logging through <see cref="Factory"/>; after Ctrl-C / SIGTERM the
    /// process waits for its CoordinatedShutdown (<see cref="Termination.Allow(ActorSystem)"/>).
    /// </summary>
    public ActorSystem CreateSystem(string name, Config config) => Termination.Allow(BittensorLogging.CreateSystem(name, config, Factory));

    /// <summary>
    /// The <c>--logging.*</c> flags, added to <paramref name="command"/>; call the result to get their HOCON keys.
    /// <c>--logging.levels.CATEGORY LEVEL</c> is rewritten to <c>--logging.levels CATEGORY=LEVEL</c> before parsing
    /// (<see cref="NormaliseArgs"/>); both spellings work and the flag repeats.
    /// </summary>
    public static Func<ParseResult, IEnumerable<(string Key, object? Value)>> AddFlags(Command command)
    {
        var level = new Option<string?>("--logging.level")
        {
            Description = "Minimum log level: Trace, Debug, Information, Warning, Error, Critical, None (default bittensor.logging.level)",
        };
        var levels = new Option<string[]>(LevelsFlag)
        {
            Description = "A category's level, CATEGORY=LEVEL (also --logging.levels.CATEGORY LEVEL), repeatable; e.g. Bittensor.Actors.Axon=Debug, Akka=Warning",
            AllowMultipleArgumentsPerToken = false,
            Arity = ArgumentArity.ZeroOrMore,
        };
        command.Options.Add(level);
        command.Options.Add(levels);
        return parse => Flags(parse.GetValue(level), parse.GetValue(levels) ?? []);
    }

    /// <summary>The HOCON keys of the flags' values.</summary>
    /// <exception cref="CliException">A <c>--logging.levels</c> value is not CATEGORY=LEVEL.</exception>
    internal static IEnumerable<(string Key, object? Value)> Flags(string? level, IEnumerable<string> levels)
    {
        var keys = new List<(string, object?)> { ($"{LoggingSettings.SectionPath}.level", level) };
        foreach (var entry in levels)
        {
            var eq = entry.LastIndexOf('=');
            var category = eq > 0 ? entry[..eq] : "";
            if (category.Length == 0 || eq == entry.Length - 1 || category.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '"' or '\\'))
                throw new CliException($"{LevelsFlag} '{entry}': expected CATEGORY=LEVEL, e.g. Bittensor.Actors.Axon=Debug");
            keys.Add(($"{LoggingSettings.SectionPath}.levels.\"{category}\"", entry[(eq + 1)..]));
        }
        return keys;
    }

    /// <summary>
    /// <c>--logging.levels.CATEGORY LEVEL</c> and <c>--logging.levels.CATEGORY=LEVEL</c> become
    /// <c>--logging.levels CATEGORY=LEVEL</c> (the flag names its HOCON key, <c>bittensor.logging.levels."CATEGORY"</c>).
    /// </summary>
    internal static string[] NormaliseArgs(string[] args)
    {
        var prefix = LevelsFlag + ".";
        if (!args.Any(a => a.StartsWith(prefix, StringComparison.Ordinal))) return args;
        var result = new List<string>(args.Length + 2);
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a == "--")
            {
                result.AddRange(args[i..]);
                break;
            }
            if (!a.StartsWith(prefix, StringComparison.Ordinal) || a.Length == prefix.Length)
            {
                result.Add(a);
                continue;
            }
            var rest = a[prefix.Length..];
            result.Add(LevelsFlag);
            if (rest.Contains('=', StringComparison.Ordinal)) result.Add(rest);
            else if (i + 1 < args.Length) result.Add(rest + "=" + args[++i]);
            else result.Add(rest + "=");
        }
        return [.. result];
    }

    /// <summary>Flushes and stops the console writer.</summary>
    public void Dispose() => Factory.Dispose();
}
