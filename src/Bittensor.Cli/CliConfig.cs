using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Akka.Configuration;
using Bittensor.Actors;

namespace Bittensor.Cli;

/// <summary>
/// The one way every verb reads its settings: command-line flags over the <c>--config FILE</c> HOCON over the verb's
/// own defaults (if any) over the embedded reference configuration (hocon/bittensor.conf). Settings records are then
/// built with <c>XSettings.Create(section)</c>, so a bad value from any layer fails the same way: one line naming
/// the key, exit code 1.
/// </summary>
internal static class CliConfig
{
    /// <summary>Adds <c>--config FILE</c> to <paramref name="command"/>.</summary>
    public static Option<FileInfo?> AddTo(Command command)
    {
        var option = new Option<FileInfo?>("--config")
        {
            Description = "HOCON file with a bittensor { } section (keys as in hocon/bittensor.conf); flags override it",
        };
        command.Options.Add(option);
        return option;
    }

    /// <summary>
    /// The layered configuration: <paramref name="flags"/> (dotted HOCON key, value; null values are left out) over
    /// the file named by <paramref name="configOption"/> over <paramref name="verbDefaults"/> (HOCON text) over the
    /// reference configuration; <see cref="HostOverrides"/> (tests only) over all of them.
    /// </summary>
    /// <exception cref="CliException">The file is missing or is not HOCON.</exception>
    public static Config Load(ParseResult parse, Option<FileInfo?> configOption, IEnumerable<(string Key, object? Value)> flags, string? verbDefaults = null)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var config = Logging.WithFallback(BittensorRuntime.ReferenceConfig);
        if (!string.IsNullOrWhiteSpace(verbDefaults)) config = ConfigurationFactory.ParseString(verbDefaults).WithFallback(config);
        if (parse.GetValue(configOption) is { } file)
        {
            if (!file.Exists) throw new CliException($"--config: file not found: {file.FullName}");
            try
            {
                config = HoconText.Parse(File.ReadAllText(file.FullName)).WithFallback(config);
            }
            catch (Exception e) when (e is not OutOfMemoryException and not CliException)
            {
                throw new CliException($"--config {file.FullName}: not valid HOCON: {e.Message}");
            }
        }
        var lines = flags.Where(f => f.Value is not null).Select(f => FlagLine(f.Key, f.Value!)).ToList();
        if (lines.Count > 0) config = ConfigurationFactory.ParseString(string.Join('\n', lines)).WithFallback(config);
        return HostOverrides is { } forced ? forced.WithFallback(config) : config;
    }

    /// <summary>
    /// Settings the process hosting the verbs forces over every layer (flags included); null in btcli itself.
    /// In-process test harnesses set <see cref="NoLocalNodeProbe"/> here so no verb looks for a node at
    /// <c>bittensor.subtensor.local_endpoint</c> (ws://127.0.0.1:9944 by default): a node serving there on a
    /// developer's or CI machine would otherwise be used by the tests.
    /// </summary>
    internal static Config? HostOverrides { get; set; }

    /// <summary><c>bittensor.subtensor.local_endpoint = ""</c>: <c>--subtensor.network local</c> opens the embedded localnet without probing.</summary>
    internal static Config NoLocalNodeProbe { get; } = ConfigurationFactory.ParseString("bittensor.subtensor.local_endpoint = \"\"");

    /// <summary>
    /// Builds a settings record from the section at <paramref name="path"/> of <paramref name="config"/>; a
    /// <see cref="ConfigurationException"/> becomes a one-line <see cref="CliException"/> naming the key.
    /// </summary>
    public static T Settings<T>(Config config, string path, Func<Config, T> create)
    {
        try
        {
            return create(BittensorRuntime.Section(config, path));
        }
        catch (ConfigurationException e)
        {
            throw new CliException(e.Message);
        }
    }

    /// <summary>
    /// btcli's logging, under every verb's defaults and the user's file: actors log to standard error (one line per event,
    /// <see cref="Bittensor.Actors.Logging.StandardErrorLogger"/>) and nothing is logged to standard output, which carries
    /// only results (JSON included).
    /// </summary>
    public static Config Logging { get; } = ConfigurationFactory.ParseString(
        $"akka.loggers = [\"{Bittensor.Actors.Logging.StandardErrorLogger.TypeName}\"]\nakka.stdout-loglevel = OFF");

    /// <summary>
    /// One flag as a HOCON line <c>key = literal</c>. A string value that starts or ends with whitespace is refused:
    /// Akka's HOCON reader trims quoted strings (escaped or not), so the setting would silently differ from the flag
    /// (found by fuzzing, issue 13 B).
    /// </summary>
    /// <exception cref="CliException">The value starts or ends with whitespace.</exception>
    internal static string FlagLine(string key, object value)
    {
        if (value is string s && s.Length > 0 && (char.IsWhiteSpace(s[0]) || char.IsWhiteSpace(s[^1])))
            throw new CliException($"the value for {key} starts or ends with whitespace, which the configuration cannot keep: {JsonSerializer.Serialize(s)}");
        return $"{key} = {Literal(value)}";
    }

    /// <summary>A flag value as a HOCON literal: strings JSON-quoted, booleans on/off, numbers invariant, durations in ms.</summary>
    internal static string Literal(object value) => value switch
    {
        string s => JsonSerializer.Serialize(s),
        string[] list => JsonSerializer.Serialize(list),
        bool b => b ? "on" : "off",
        TimeSpan t => string.Create(CultureInfo.InvariantCulture, $"{t.TotalMilliseconds:0.###}ms"),
        FileInfo f => JsonSerializer.Serialize(f.FullName),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => JsonSerializer.Serialize(value.ToString()),
    };
}
