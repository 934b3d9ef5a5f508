using Akka.Configuration;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// The reference configuration for tests: metagraph snapshots are not saved (the default path is the user's
/// ~/.bittensor/metagraphs, which a test must never write; tests that check saving give their own folder).
/// </summary>
internal static class TestConfig
{
    public static Config Hocon { get; } = ConfigurationFactory.ParseString("bittensor.metagraph.save = off")
        .WithFallback(Bittensor.Actors.BittensorRuntime.ReferenceConfig);
}
