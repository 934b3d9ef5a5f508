using System.Reflection;
using Akka.Configuration;

namespace Bittensor.Actors;

/// <summary>The embedded reference configuration (hocon/bittensor.conf) with every default documented.</summary>
public static class BittensorReferenceConfig
{
    private static readonly Lazy<Config> Reference = new(Load);

    /// <summary>The parsed reference configuration (the whole file, rooted at <c>bittensor</c>).</summary>
    public static Config Default => Reference.Value;

    private static Config Load()
    {
        using var stream = typeof(BittensorReferenceConfig).Assembly.GetManifestResourceStream("Bittensor.Actors.bittensor.conf")
            ?? throw new InvalidOperationException("embedded resource Bittensor.Actors.bittensor.conf is missing");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }
}
