using Akka.Configuration;

namespace Bittensor.Actors.Chain;

/// <summary>The embedded reference <c>bittensor.conf</c> and the path helpers its settings need.</summary>
internal static class ReferenceConfig
{
    private static readonly Lazy<Config> Reference = new(() =>
    {
        using var stream = typeof(ReferenceConfig).Assembly.GetManifestResourceStream("Bittensor.Actors.bittensor.conf")
            ?? throw new InvalidOperationException("embedded resource Bittensor.Actors.bittensor.conf is missing");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    });

    /// <summary>The whole reference configuration.</summary>
    public static Config Root => Reference.Value;

    /// <summary>One section of the reference configuration, e.g. <c>bittensor.subtensor</c>.</summary>
    public static Config Section(string path) => Reference.Value.GetConfig(path);

    /// <summary>Expands a leading <c>~</c> to the user's home folder and makes the path absolute.</summary>
    public static string ExpandHome(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
            path = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.Length > 2 ? path[2..] : "");
        return System.IO.Path.GetFullPath(path);
    }
}
