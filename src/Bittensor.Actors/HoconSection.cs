using System.Globalization;
using Akka.Configuration;

namespace Bittensor.Actors;

/// <summary>
/// One HOCON section read by a settings record's <c>Create</c>: every key is required (defaults live only in
/// hocon/bittensor.conf, which the runtime injects as fallback), and a missing or malformed key throws a
/// <see cref="ConfigurationException"/> whose message starts with the key's full path.
/// </summary>
public readonly struct HoconSection
{
    private readonly Config _config;

    /// <summary>Wraps <paramref name="section"/>, the config found at <paramref name="path"/> (e.g. <c>bittensor.axon</c>).</summary>
    /// <exception cref="ConfigurationException">The section is missing or empty.</exception>
    public HoconSection(Config? section, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (section is null || section.IsEmpty) throw new ConfigurationException($"{path}: missing HOCON section (is hocon/bittensor.conf the fallback?)");
        _config = section;
        Path = path;
    }

    /// <summary>Full path of the section.</summary>
    public string Path { get; }

    /// <summary>The section of <paramref name="config"/> at <paramref name="path"/>.</summary>
    public static HoconSection Of(Config config, string path)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new HoconSection(config.HasPath(path) ? SectionAt(config, path) : null, path);
    }

    /// <summary>
    /// The section at <paramref name="path"/> (which must exist). A value there that is not a section (a list, a string)
    /// is a <see cref="ConfigurationException"/> naming the path: Akka's <c>GetConfig</c> would throw a
    /// <see cref="NullReferenceException"/> merging it with the reference's section (found by fuzzing, issue 13 B).
    /// </summary>
    /// <exception cref="ConfigurationException">The value at <paramref name="path"/> is not a section.</exception>
    public static Config SectionAt(Config config, string path)
    {
        ArgumentNullException.ThrowIfNull(config);
        Akka.Configuration.Hocon.HoconValue? value;
        try
        {
            value = config.GetValue(path);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not ConfigurationException)
        {
            throw new ConfigurationException($"{path}: not a section ({e.Message})");
        }
        if (value is null || !value.IsObject())
            throw new ConfigurationException($"{path}: must be a section {{ key = value … }}, not {(value is null ? "empty" : value.IsArray() ? "a list" : "a value")}");
        return config.GetConfig(path);
    }

    /// <summary>The full path of <paramref name="key"/>.</summary>
    public string Key(string key) => $"{Path}.{key}";

    /// <summary>A required string (may be empty).</summary>
    public string String(string key) => Read(key, c => c.GetString(key) ?? throw new FormatException("not a string"));

    /// <summary>A required 32-bit integer.</summary>
    public int Int(string key) => Read(key, c => checked((int)c.GetLong(key)));

    /// <summary>A required 64-bit integer.</summary>
    public long Long(string key) => Read(key, c => c.GetLong(key));

    /// <summary>A required number.</summary>
    public double Double(string key) => Read(key, c => c.GetDouble(key));

    /// <summary>A required boolean (<c>on/off</c>, <c>true/false</c>, <c>yes/no</c>).</summary>
    public bool Bool(string key) => Read(key, c => c.GetBoolean(key));

    /// <summary>A required finite duration (<c>200ms</c>, <c>12s</c>, <c>1m</c>).</summary>
    public TimeSpan Duration(string key) => Read(key, c => c.GetTimeSpan(key, null, allowInfinite: false));

    /// <summary>A required string that is one of <paramref name="allowed"/> (case-sensitive).</summary>
    public string OneOf(string key, params string[] allowed)
    {
        var value = String(key);
        if (Array.IndexOf(allowed, value) < 0)
            throw new ConfigurationException($"{Key(key)} = '{value}': must be one of {string.Join(", ", allowed)}");
        return value;
    }

    /// <summary>Throws a <see cref="ConfigurationException"/> naming <paramref name="key"/> unless <paramref name="ok"/>.</summary>
    public static void Require(bool ok, string key, object? value, string rule)
    {
        if (!ok) throw new ConfigurationException(string.Create(CultureInfo.InvariantCulture, $"{key} = {value}: {rule}"));
    }

    private T Read<T>(string key, Func<Config, T> read)
    {
        if (!_config.HasPath(key)) throw new ConfigurationException($"{Key(key)}: missing (hocon/bittensor.conf defines every key)");
        try
        {
            return read(_config);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ConfigurationException($"{Key(key)}: {e.Message}");
        }
    }
}
