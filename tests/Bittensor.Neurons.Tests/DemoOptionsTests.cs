using Bittensor.Neurons.Demo;

namespace Bittensor.Neurons.Tests;

public sealed class DemoOptionsTests
{
    [Theory]
    [InlineData(0, 1, 3, "--servers")]
    [InlineData(3, -1, 3, "--bad_servers")]
    [InlineData(3, 1, 1, "--epochs")]
    public void Out_of_range_options_are_refused_naming_the_flag(int servers, int bad, int epochs, string flag)
    {
        var e = Assert.Throws<ArgumentException>(() => new DemoOptions { Servers = servers, BadServers = bad, Epochs = epochs }.Validate());
        Assert.Contains(flag, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_negative_block_time_is_refused() =>
        Assert.Throws<ArgumentException>(() => new DemoOptions { BlockTime = TimeSpan.FromSeconds(-1) }.Validate());

    [Fact]
    public void The_market_works_only_when_every_useless_server_earns_less_than_every_useful_one_and_the_validator_earns_dividends()
    {
        DemoNeuron N(ushort uid, string role, double incentive, double dividends = 0) => new(uid, "hk" + uid, role, 0, incentive, dividends, 0, double.NaN);
        Assert.True(DemoNetwork.Judge([N(0, "server", 0.5), N(1, "server", 0.4), N(2, "bad_server", 0.1), N(3, "validator", 0, 1)]).Worked);
        Assert.False(DemoNetwork.Judge([N(0, "server", 0.5), N(1, "server", 0.1), N(2, "bad_server", 0.1), N(3, "validator", 0, 1)]).Worked);
        Assert.False(DemoNetwork.Judge([N(0, "server", 0.5), N(2, "bad_server", 0.0), N(3, "validator", 0, 0)]).Worked);
        var (worked, verdict) = DemoNetwork.Judge([N(0, "server", 0.2), N(2, "bad_server", 0.3), N(3, "validator", 0, 1)]);
        Assert.False(worked);
        Assert.Contains("useless server", verdict, StringComparison.Ordinal);
    }
}

public sealed class ValidatorOptionsTests
{
    [Fact]
    public void Validator_options_read_the_reference_hocon_and_overrides()
    {
        var reference = Bittensor.Actors.BittensorRuntime.ReferenceConfig;
        var defaults = Roles.ValidatorOptions.Create(reference.GetConfig(Roles.ValidatorOptions.SectionPath));
        Assert.Equal((4, 16, 8, 128, 2), (defaults.Pipeline.BatchSize, defaults.Pipeline.SequenceLength, defaults.Pipeline.TopK, defaults.Nucleus.Hidden, defaults.WeightsLeadBlocks));
        var custom = Akka.Configuration.ConfigurationFactory.ParseString("bittensor.validator.pipeline.top_k = 3\nbittensor.validator.nucleus.hidden = 32")
            .WithFallback(reference);
        var options = Roles.ValidatorOptions.Create(custom.GetConfig(Roles.ValidatorOptions.SectionPath));
        Assert.Equal((3, 32), (options.Pipeline.TopK, options.Nucleus.Hidden));
    }

    [Fact]
    public void A_zero_batch_size_in_hocon_is_refused_with_its_key() =>
        Assert.StartsWith("bittensor.validator.pipeline.batch_size", Assert.Throws<Akka.Configuration.ConfigurationException>(() => Roles.ValidatorOptions.Create(
            Bittensor.Actors.BittensorRuntime.Section(Akka.Configuration.ConfigurationFactory.ParseString("bittensor.validator.pipeline.batch_size = 0"),
                Roles.ValidatorOptions.SectionPath))).Message, StringComparison.Ordinal);
}
