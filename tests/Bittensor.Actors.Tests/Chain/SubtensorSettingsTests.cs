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
    public void The_keepalive_timeout_is_set_apart_from_the_keepalive_and_reaches_the_client()
    {
        Assert.Equal((TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(20)), (SubtensorSettings.Default.KeepAlive, SubtensorSettings.Default.KeepAliveTimeout));
        var s = SubtensorSettings.Create(BittensorRuntime.Section(Akka.Configuration.ConfigurationFactory.ParseString(
            "bittensor.subtensor { keepalive = 2s, keepalive_timeout = 45s }"), SubtensorSettings.SectionPath));
        var rpc = s.BackendOptions("ws://127.0.0.1:9944").Rpc;
        Assert.Equal((TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(45)), (rpc.KeepAliveInterval, rpc.KeepAliveTimeout));
        var e = Assert.Throws<Akka.Configuration.ConfigurationException>(() => SubtensorSettings.Create(BittensorRuntime.Section(
            Akka.Configuration.ConfigurationFactory.ParseString("bittensor.subtensor.keepalive_timeout = 0s"), SubtensorSettings.SectionPath)));
        Assert.StartsWith("bittensor.subtensor.keepalive_timeout", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_reconnect_backoff_is_a_clear_error()
    {
        var bad = BittensorRuntime.Section(Akka.Configuration.ConfigurationFactory.ParseString(
            "bittensor.subtensor.reconnect { min_backoff = 2s, max_backoff = 1s }"), SubtensorSettings.SectionPath);
        var e = Assert.Throws<Akka.Configuration.ConfigurationException>(() => SubtensorSettings.Create(bad));
        Assert.StartsWith("bittensor.subtensor.reconnect.max_backoff", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_wait_for_or_endpoint_is_a_clear_error()
    {
        static Akka.Configuration.Config Section(string hocon) =>
            BittensorRuntime.Section(Akka.Configuration.ConfigurationFactory.ParseString(hocon), SubtensorSettings.SectionPath);
        var e = Assert.Throws<Akka.Configuration.ConfigurationException>(() => SubtensorSettings.Create(Section("bittensor.subtensor.wait_for = sometimes")));
        Assert.StartsWith("bittensor.subtensor.wait_for", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("bittensor.subtensor.chain_endpoint", Assert.Throws<Akka.Configuration.ConfigurationException>(
            () => SubtensorSettings.Create(Section("bittensor.subtensor.chain_endpoint = \"http://x\""))).Message, StringComparison.Ordinal);
        Assert.StartsWith("bittensor.localnet.block_time", Assert.Throws<Akka.Configuration.ConfigurationException>(
            () => LocalnetSettings.Create(BittensorRuntime.Section(Akka.Configuration.ConfigurationFactory.ParseString("bittensor.localnet.block_time = -1s"),
                LocalnetSettings.SectionPath))).Message, StringComparison.Ordinal);
    }
}
