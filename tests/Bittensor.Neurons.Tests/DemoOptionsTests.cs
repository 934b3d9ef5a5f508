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
        var e = Assert.Throws<ArgumentException>(() => (DemoOptions.Default with { Servers = servers, BadServers = bad, Epochs = epochs }).Validate());
        Assert.Contains(flag, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_reference_demo_is_the_documented_one_and_a_configuration_overrides_it_key_by_key()
    {
        var d = DemoOptions.Default;
        Assert.Equal((3, 1, "uniform", 3, 500, 1, (ushort)20, 42), (d.Servers, d.BadServers, string.Join(",", d.BadKinds), d.Epochs, (int)d.BlockTime.TotalMilliseconds, d.StepsPerBlock, d.Tempo, d.Seed));
        // The servers' small model is bittensor.demo.server_model over bittensor.model: keys it does not name come from there.
        Assert.Equal((64, 1, 2, Bittensor.Actors.ModelHost.ModelSettings.Default.VocabSize), (d.ServerModel.DModel, d.ServerModel.Layers, d.ServerModel.Heads, d.ServerModel.VocabSize));
        Assert.Equal((4, 16, 8), (d.Pipeline.BatchSize, d.Pipeline.SequenceLength, d.Pipeline.TopK));
        Assert.Null(d.Config);
        Assert.Equal(1, d.ClusterServer); // --processes: server1 runs as a cluster (1 front + 2 workers)
        Assert.Equal(0, d.KillWorkerAtEpoch);

        var file = Akka.Configuration.ConfigurationFactory.ParseString("""
            bittensor.demo { servers = 2, bad_kinds = "nan, inf", tempo = 9, server_model.d_model = 32, pipeline.top_k = 3 }
            bittensor.model.learning_rate = 0.5
            bittensor.validator.nucleus.hidden = 32
            """).WithFallback(Bittensor.Actors.BittensorRuntime.ReferenceConfig);
        var o = DemoOptions.Create(file);
        Assert.Equal((2, 2, "nan,inf", (ushort)9), (o.Servers, o.BadServers, string.Join(",", o.BadKinds), o.Tempo));
        Assert.Equal(0, DemoOptions.Create(Akka.Configuration.ConfigurationFactory.ParseString("bittensor.demo.cluster_server = 0").WithFallback(file)).ClusterServer);
        Assert.Equal((32, 1, 0.5, 3, 32), (o.ServerModel.DModel, o.ServerModel.Layers, o.ServerModel.LearningRate, o.Pipeline.TopK, o.Nucleus.Hidden));
        Assert.Same(file, o.Config);
    }

    [Theory]
    [InlineData("bittensor.demo.servers = many", "bittensor.demo.servers")]
    [InlineData("bittensor.demo.tempo = 2", "bittensor.demo.tempo")]
    [InlineData("bittensor.demo.bad_kinds = \"inf,bogus\"", "bogus")]
    [InlineData("bittensor.demo.server_model.heads = 3", "heads")]
    [InlineData("bittensor.demo.cluster_server = 4", "bittensor.demo.cluster_server")] // 3 useful servers by default
    [InlineData("bittensor.demo.cluster_server = -1", "--cluster_server")]
    [InlineData("bittensor.demo.kill_worker_at_epoch = 3", "--kill_worker_at_epoch")] // 3 epochs: the restarted worker must serve in a later one
    [InlineData("bittensor.demo { cluster_server = 0, kill_worker_at_epoch = 1 }", "needs a cluster server")]
    public void A_bad_key_is_refused_naming_it(string hocon, string named)
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString(hocon).WithFallback(Bittensor.Actors.BittensorRuntime.ReferenceConfig);
        var e = Assert.ThrowsAny<Exception>(() => DemoOptions.Create(config));
        Assert.True(e is ArgumentException or Akka.Configuration.ConfigurationException, e.GetType().Name);
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_negative_block_time_is_refused() =>
        Assert.Throws<ArgumentException>(() => (DemoOptions.Default with { BlockTime = TimeSpan.FromSeconds(-1) }).Validate());

    [Fact]
    public void The_market_works_only_when_every_useless_server_earns_less_than_every_useful_one_and_the_validator_earns_dividends()
    {
        DemoNeuron N(ushort uid, string role, double incentive, double dividends = 0) => new(uid, "hk" + uid, role, 0, incentive, dividends, 0, double.NaN);
        Assert.True(DemoNetwork.Judge([N(0, "server", 0.5), N(1, "server", 0.49), N(2, "bad_server", 0.01), N(3, "validator", 0, 1)]).Worked);
        // Below every useful server but above 1 % of the subnet's incentive: noise still earns, the market did not work.
        var (paid, why) = DemoNetwork.Judge([N(0, "server", 0.5), N(1, "server", 0.4), N(2, "bad_server", 0.1), N(3, "validator", 0, 1)]);
        Assert.False(paid);
        Assert.Contains("more than 1", why, StringComparison.Ordinal);
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
    public void Weights_are_scores_to_the_configured_power_and_nothing_at_or_below_the_floor()
    {
        // The seed-42 demo's final scores (docs/validator.md): three useful servers and a uniform-noise one.
        double[] scores = [0.158062, 0.201974, 0.146402, -2.7e-05, Roles.WeightSetter.MinScore, double.NaN];
        Assert.Equal(0.5, Roles.ValidatorOptions.Default.WeightExponent);
        var half = scores.Select(s => Roles.WeightSetter.Weigh(s, 0.5)).ToArray();
        var linear = scores.Select(s => Roles.WeightSetter.Weigh(s, 1)).ToArray();
        Assert.Equal([0.0, 0.0, 0.0], half[3..]);
        Assert.Equal(scores[..3], linear[..3]);
        // Linear weights spread the useful servers 1.38x; the square root within 20 % (1.17x), same order.
        Assert.True(linear[1] / linear[2] > 1.3);
        Assert.InRange(half[1] / half[2], 1.0, 1.2);
        Assert.Equal(Enumerable.Range(0, 3).OrderBy(i => scores[i]), Enumerable.Range(0, 3).OrderBy(i => half[i]));
        var bad = Akka.Configuration.ConfigurationFactory.ParseString("bittensor.validator.weight_exponent = 0").WithFallback(Bittensor.Actors.BittensorRuntime.ReferenceConfig);
        Assert.StartsWith("bittensor.validator.weight_exponent", Assert.Throws<Akka.Configuration.ConfigurationException>(() =>
            Roles.ValidatorOptions.Create(bad.GetConfig(Roles.ValidatorOptions.SectionPath))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_zero_batch_size_in_hocon_is_refused_with_its_key() =>
        Assert.StartsWith("bittensor.validator.pipeline.batch_size", Assert.Throws<Akka.Configuration.ConfigurationException>(() => Roles.ValidatorOptions.Create(
            Bittensor.Actors.BittensorRuntime.Section(Akka.Configuration.ConfigurationFactory.ParseString("bittensor.validator.pipeline.batch_size = 0"),
                Roles.ValidatorOptions.SectionPath))).Message, StringComparison.Ordinal);
}

public sealed class AdversaryOptionsTests
{
    [Fact]
    public void Bad_kinds_parse_from_a_comma_separated_list_and_an_unknown_kind_is_refused_naming_it()
    {
        Assert.Equal(["inf", "gauss", "constant"], Adversaries.Parse("inf, gauss,constant"));
        var e = Assert.Throws<ArgumentException>(() => Adversaries.Parse("inf,bogus"));
        Assert.Contains("'bogus'", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Adversaries.Parse(" , "));
        Assert.Throws<ArgumentException>(() => (DemoOptions.Default with { BadKinds = ["nope"] }).Validate());
    }

    [Theory]
    [InlineData("uniform")]
    [InlineData("gauss")]
    [InlineData("constant")]
    [InlineData("zeros")]
    [InlineData("nan")]
    [InlineData("inf")]
    [InlineData("huge")]
    [InlineData("wrong_shape")]
    public async Task Each_kind_answers_what_it_says(string kind)
    {
        var handlers = Adversaries.Create(kind, 8, seed: 1);
        var inputs = Bittensor.Protocol.DenseTensor.Int64([2, 3], new long[6]);
        var request = new Bittensor.Actors.Axon.ForwardRequest("caller", 0, Bittensor.Protocol.Wire.Modality.Text, inputs);
        var a = (await handlers.Forward(request, CancellationToken.None)).Outputs!;
        var b = (await handlers.Forward(request, CancellationToken.None)).Outputs!;
        Assert.Equal(kind == "wrong_shape" ? [2L, 3, 4] : [2L, 3, 8], a.Shape.ToArray());
        var x = a.Floats!;
        switch (kind)
        {
            case "uniform": Assert.All(x, v => Assert.InRange(v, 0f, 1f)); Assert.NotEqual(x, b.Floats!); break;
            case "gauss": Assert.Contains(x, v => v < 0); Assert.NotEqual(x, b.Floats!); break;
            case "constant": Assert.All(x, v => Assert.InRange(v, 0.5f, 1.5f)); Assert.Equal(x, b.Floats!); Assert.Equal(x[..8], x[8..16]); break;
            case "zeros": Assert.All(x, v => Assert.Equal(0f, v)); break;
            case "nan": Assert.All(x, v => Assert.True(float.IsNaN(v))); break;
            case "inf": Assert.All(x, v => Assert.True(float.IsInfinity(v))); Assert.Contains(x, float.IsNegative); break;
            case "huge": Assert.All(x, v => Assert.Equal(1e30f, Math.Abs(v))); break;
        }
    }

    [Fact]
    public async Task The_slow_kind_answers_only_after_the_deadline_cancels_it()
    {
        var handlers = Adversaries.Create("slow", 8, seed: 1);
        var request = new Bittensor.Actors.Axon.ForwardRequest("caller", 0, Bittensor.Protocol.Wire.Modality.Text, Bittensor.Protocol.DenseTensor.Int64([1, 1], new long[1]));
        using var deadline = new CancellationTokenSource();
        var call = handlers.Forward(request, deadline.Token);
        Assert.False(call.IsCompleted);
        await deadline.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
    }
}
