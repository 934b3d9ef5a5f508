using Bittensor.Actors.Chain;

namespace Bittensor.Actors.Tests.Chain;

public sealed class SubtensorSettingsTests
{
    [Fact]
    public void Reference_configuration_parses_into_valid_settings()
    {
        var s = SubtensorSettings.Default;
        Assert.Equal("local", s.Network);
        Assert.True(s.IsLocal);
        Assert.Equal(WaitFor.Inclusion, s.WaitFor);
        Assert.Equal(TimeSpan.FromMilliseconds(200), s.Reconnect.Min);
        Assert.Equal(TimeSpan.FromSeconds(30), s.Reconnect.Max);
        Assert.Equal(0.2, s.Reconnect.RandomFactor);
        Assert.Equal(TimeSpan.FromSeconds(1), LocalnetSettings.Default.BlockTime);
        Assert.EndsWith(Path.Combine(".bittensor", "localnet", "default"), LocalnetSettings.Default.Path, StringComparison.Ordinal);
        Assert.Equal(1, Bittensor.Actors.Metagraph.MetagraphSettings.Default.SyncEveryBlocks);
    }

    [Fact]
    public void A_bad_reconnect_backoff_is_a_clear_error()
    {
        var bad = Akka.Configuration.ConfigurationFactory.ParseString("reconnect { min_backoff = 2s, max_backoff = 1s }");
        Assert.Throws<ArgumentException>(() => SubtensorSettings.Create(bad));
    }

    [Fact]
    public void A_bad_wait_for_or_endpoint_is_a_clear_error()
    {
        var bad = Akka.Configuration.ConfigurationFactory.ParseString("wait_for = sometimes");
        var e = Assert.Throws<ArgumentException>(() => SubtensorSettings.Create(bad));
        Assert.Contains("wait_for", e.Message, StringComparison.Ordinal);
        var endpoint = Akka.Configuration.ConfigurationFactory.ParseString("chain_endpoint = \"http://x\"");
        Assert.Contains("chain_endpoint", Assert.Throws<ArgumentException>(() => SubtensorSettings.Create(endpoint)).Message, StringComparison.Ordinal);
    }
}
