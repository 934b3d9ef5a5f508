namespace Bittensor.Actors.Tests;

/// <summary>
/// The wait of Akka TestKit calls given no timeout (<c>ExpectMsg</c>, <c>ExpectTerminated</c>, <c>AwaitAssert</c>,
/// <c>AwaitCondition</c>): 3 s by Akka's default. Each such call here waits for an event that does come (a reply, a
/// published event, a state the actors reach), but on a 2-core machine running the whole suite (load 20 and more) a
/// reply can take longer than 3 s, and the test then fails although nothing is wrong. 30 s bounds a hang instead.
/// No test relies on the default for <c>ExpectNoMsg</c> (each names its window), so nothing waits longer when all is well.
/// </summary>
internal static class TestKitWaits
{
    /// <summary>HOCON for a test class's actor system; combine with its own (<c>Hocon + "\n" + …</c>).</summary>
    public const string Hocon = "akka.test.single-expect-default = 30s";
}

/// <summary>
/// A test client's channel options: a loopback connect bounded at 30 s instead of the product's 5 s (which guards
/// against a dead host). On a starved machine a client's first connect on its I/O loop took over 5 s (session 25's
/// flake-b, Protocol's <c>TestChannel.Options</c>), and the test then saw the client close the connection.
/// </summary>
internal static class TestChannel
{
    public static Bittensor.Protocol.BittensorChannelOptions Options { get; } =
        Bittensor.Protocol.BittensorChannelOptions.Default with { ConnectTimeout = TimeSpan.FromSeconds(30) };
}
