using Akka.Configuration;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// The reference configuration for tests: metagraph snapshots are not saved (the default path is the user's
/// ~/.bittensor/metagraphs, which a test must never write; tests that check saving give their own folder), and the
/// TestKit's calls given no wait bound a hang at 30 s instead of Akka's 3 s (each waits for an event that does come;
/// on a starved 2-core machine 3 s is within reach).
/// </summary>
internal static class TestConfig
{
    /// <summary>The TestKit's default wait (<c>akka.test.single-expect-default</c>), as Actors' TestKitWaits.</summary>
    public const string Waits = "akka.test.single-expect-default = 30s";

    public static Config Hocon { get; } = ConfigurationFactory.ParseString("bittensor.metagraph.save = off\n" + Waits)
        .WithFallback(Bittensor.Actors.BittensorRuntime.ReferenceConfig);
}
