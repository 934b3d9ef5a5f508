using Akka.Configuration;
using Akka.Configuration.Hocon;
using Microsoft.Extensions.Logging;

namespace Bittensor.Actors.Logging;

/// <summary>
/// The <c>bittensor.logging</c> section (docs/logging.md): the minimum level of every log category, per-category
/// levels (a key names a category and every category under it, as Microsoft.Extensions.Logging's <c>LogLevel</c>
/// section does), and how the console shows events. btcli builds one <see cref="ILoggerFactory"/> from it
/// (<see cref="BittensorLogging.CreateConsoleFactory"/>) and bridges Akka's logging into that factory
/// (<see cref="LoggerFactoryBridge"/>).
/// </summary>
public sealed record LoggingSettings
{
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.logging";

    /// <summary>The level names a HOCON value may use (case-insensitive), as Microsoft.Extensions.Logging spells them.</summary>
    public static IReadOnlyList<string> LevelNames { get; } = ["Trace", "Debug", "Information", "Warning", "Error", "Critical", "None"];

    /// <summary>The reference configuration's values (hocon/bittensor.conf).</summary>
    public static LoggingSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Minimum level of a category no entry of <see cref="Levels"/> names.</summary>
    public required LogLevel Level { get; init; }

    /// <summary>
    /// Per-category minimum levels, applied as Microsoft.Extensions.Logging filter rules: the longest key the category
    /// starts with wins (<c>*</c> is a wildcard), else <see cref="Level"/>.
    /// </summary>
    public required IReadOnlyDictionary<string, LogLevel> Levels { get; init; }

    /// <summary>Console format: <c>simple</c> (one line per event), <c>json</c> (one JSON object per line) or <c>systemd</c>.</summary>
    public required string Format { get; init; }

    /// <summary>.NET format of the UTC timestamp that starts each simple/systemd line (a space follows it); empty = none.</summary>
    public required string TimestampFormat { get; init; }

    /// <summary>Whether each event shows where it came from (the actor's path) as a scope (<c>=&gt; akka://…</c>).</summary>
    public required bool Scopes { get; init; }

    /// <summary>The most verbose level any category is enabled at (what Akka must publish for the filters to see).</summary>
    public LogLevel MostVerbose => Levels.Values.Append(Level).Min();

    /// <summary>Akka's <c>akka.loglevel</c> for <see cref="MostVerbose"/>: Akka drops anything below it before any filter runs.</summary>
    public string AkkaLogLevel => MostVerbose switch
    {
        LogLevel.Trace or LogLevel.Debug => "DEBUG",
        LogLevel.Information => "INFO",
        LogLevel.Warning => "WARNING",
        LogLevel.Error or LogLevel.Critical => "ERROR",
        _ => "OFF",
    };

    /// <summary>Reads the <c>bittensor.logging</c> section (every key required).</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static LoggingSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        var levels = new Dictionary<string, LogLevel>(StringComparer.Ordinal);
        if (!section.HasPath("levels")) throw new ConfigurationException($"{c.Key("levels")}: missing (hocon/bittensor.conf defines every key)");
        var levelsValue = section.GetValue("levels");
        if (levelsValue is null || !levelsValue.IsObject())
            throw new ConfigurationException($"{c.Key("levels")}: must be a section {{ \"Category\" = Level … }}");
        Flatten(levelsValue.GetObject(), "", c.Key("levels"), levels);
        return new LoggingSettings
        {
            Level = ParseLevel(c.Key("level"), c.String("level")),
            Levels = levels,
            Format = c.OneOf("format", "simple", "json", "systemd"),
            TimestampFormat = ValidTimestamp(c.Key("timestamp_format"), c.String("timestamp_format")),
            Scopes = c.Bool("scopes"),
        };
    }

    /// <summary>A level name (case-insensitive; <c>Info</c>, <c>Warn</c> and <c>Off</c> as Akka and others spell them).</summary>
    /// <exception cref="ConfigurationException">Not a level name; the message names <paramref name="key"/>.</exception>
    public static LogLevel ParseLevel(string key, string? value)
    {
        var v = (value ?? "").Trim();
        foreach (var name in LevelNames)
            if (string.Equals(v, name, StringComparison.OrdinalIgnoreCase)) return Enum.Parse<LogLevel>(name);
        return v.ToUpperInvariant() switch
        {
            "INFO" => LogLevel.Information,
            "WARN" => LogLevel.Warning,
            "OFF" => LogLevel.None,
            _ => throw new ConfigurationException($"{key} = '{value}': not a log level; use one of {string.Join(", ", LevelNames)}"),
        };
    }

    // levels { "Bittensor.Actors.Axon" = Debug } keeps the dotted key whole; levels { Akka.Remote = Debug } is a nested
    // object in HOCON: both name the category Akka.Remote.
    private static void Flatten(HoconObject obj, string prefix, string path, Dictionary<string, LogLevel> into)
    {
        foreach (var (name, value) in obj.Items)
        {
            var category = prefix.Length == 0 ? name : prefix + "." + name;
            var key = $"{path}.\"{category}\"";
            if (category.Length == 0 || category.Any(ch => char.IsControl(ch) || ch == '"'))
                throw new ConfigurationException($"{key}: not a category name");
            if (value.IsObject()) Flatten(value.GetObject(), category, path, into);
            else if (value.IsString()) into[category] = ParseLevel(key, value.GetString());
            else throw new ConfigurationException($"{key}: must be a level ({string.Join(", ", LevelNames)})");
        }
    }

    private static string ValidTimestamp(string key, string format)
    {
        if (format.Length == 0) return format;
        try
        {
            _ = DateTimeOffset.UnixEpoch.ToString(format, System.Globalization.CultureInfo.InvariantCulture);
            return format;
        }
        catch (FormatException e)
        {
            throw new ConfigurationException($"{key} = '{format}': not a .NET date format ({e.Message})");
        }
    }
}
