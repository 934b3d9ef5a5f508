using Bittensor.Actors.Chain;

namespace Bittensor.Actors.Tests.Chain;

public sealed class BackoffSettingsTests
{
    private static readonly BackoffSettings Backoff = new(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10), 0.2);

    [Fact]
    public void Delays_double_per_attempt_and_stop_at_the_cap()
    {
        var delays = Enumerable.Range(0, 10).Select(a => Backoff.Delay(a, 0.5).TotalMilliseconds).ToArray();
        Assert.Equal([100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000], delays);
    }

    [Fact]
    public void Jitter_stays_within_the_random_factor_and_never_exceeds_the_cap()
    {
        Assert.Equal(80, Backoff.Delay(0, 0).TotalMilliseconds, 6);
        Assert.Equal(120, Backoff.Delay(0, 1).TotalMilliseconds, 6);
        Assert.Equal(10_000, Backoff.Delay(20, 1).TotalMilliseconds, 6);
        Assert.Equal(10_000, Backoff.Delay(int.MaxValue, 0.5).TotalMilliseconds, 6);
    }

    [Fact]
    public void Invalid_bounds_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => new BackoffSettings(TimeSpan.Zero, TimeSpan.FromSeconds(1), 0).Validate());
        Assert.Throws<ArgumentException>(() => new BackoffSettings(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1), 0).Validate());
        Assert.Throws<ArgumentException>(() => new BackoffSettings(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), 1.5).Validate());
    }

    [Fact]
    public void Reference_configuration_parses_into_valid_settings()
    {
        var s = SubtensorSettings.Default;
        Assert.Equal("local", s.Network);
        Assert.True(s.IsLocal);
        Assert.Equal(WaitFor.Inclusion, s.WaitFor);
        Assert.Equal(TimeSpan.FromMilliseconds(200), s.Reconnect.MinBackoff);
        Assert.Equal(TimeSpan.FromSeconds(1), LocalnetSettings.Default.BlockTime);
        Assert.EndsWith(Path.Combine(".bittensor", "localnet", "default"), LocalnetSettings.Default.Path, StringComparison.Ordinal);
        Assert.Equal(1, Bittensor.Actors.Metagraph.MetagraphSettings.Default.SyncEveryBlocks);
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
