using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Actors.ModelHost;
using Bittensor.Neurons.Demo;
using Bittensor.Neurons.Pipelines;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// The parts of <c>btcli demo --processes</c> that cross a process boundary: the validator's report line and the
/// configuration each child reads. (The processes themselves: <c>DemoProcessesTests</c> in the CLI tests.)
/// </summary>
public sealed class DemoProcessPartsTests
{
    private const string UserFile = """
        bittensor.demo.server_model.d_model = 32
        bittensor.demo.server_model.checkpoint.every_steps = 0
        bittensor.demo.pipeline.top_k = 3
        bittensor.model.learning_rate = 0.5
        bittensor.validator.pipeline.batch_window = 150ms
        bittensor.logging.levels { "Bittensor.Actors.Dendrite" = Debug }
        """;

    private static Config Layered() => ConfigurationFactory.ParseString(UserFile)
        .WithFallback(ConfigurationFactory.ParseString(DemoOptions.OwnDefaults)).WithFallback(BittensorRuntime.ReferenceConfig);

    /// <summary>What a child's btcli makes of its file (its own layers: the file over the reference).</summary>
    private static Config AsChild(string file) => ConfigurationFactory.ParseString(file).WithFallback(BittensorRuntime.ReferenceConfig);

    [Fact]
    public void A_server_child_reads_the_same_model_as_an_in_process_server()
    {
        var options = DemoOptions.Create(Layered());
        var file = ProcessNetwork.ChildConfig(options.Config!, UserFile,
            ProcessNetwork.Render(options.Config!, "bittensor.demo.server_model", "bittensor.model") + "bittensor.model.seed = 45\n");
        var child = ModelSettings.Create(BittensorRuntime.Section(AsChild(file), ModelSettings.SectionPath));
        Assert.Equal(options.ServerModel with { Seed = 45 }, child);
        Assert.Equal((32, 0.5), (child.DModel, child.LearningRate)); // the demo's key and the user's bittensor.model key both arrive
        Assert.Equal("ERROR", AsChild(file).GetString("akka.loglevel"));
        Assert.False(AsChild(file).GetBoolean("bittensor.metagraph.save"));
        // The demo's logging (its own Error default, the user's per-category level) is the child's.
        var logging = Bittensor.Actors.Logging.LoggingSettings.Create(BittensorRuntime.Section(AsChild(file), Bittensor.Actors.Logging.LoggingSettings.SectionPath));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Error, logging.Level);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Debug, logging.Levels["Bittensor.Actors.Dendrite"]);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, logging.Levels["Akka"]);
    }

    [Fact]
    public void A_validator_child_reads_the_same_pipeline_as_the_in_process_validator()
    {
        var options = DemoOptions.Create(Layered());
        var file = ProcessNetwork.ChildConfig(options.Config!, UserFile,
            ProcessNetwork.Render(options.Config!, "bittensor.demo.pipeline", "bittensor.validator.pipeline") + "bittensor.validator.pipeline.seed = 42\n");
        var child = PipelineSettings.Create(BittensorRuntime.Section(AsChild(file), PipelineSettings.SectionPath));
        Assert.Equal(options.Pipeline with { Seed = 42 }, child);
        Assert.Equal((3, TimeSpan.FromMilliseconds(150)), (child.TopK, child.BatchWindow));
    }

    [Fact]
    public void A_validator_report_line_reads_back_as_written_with_nan_and_refusals()
    {
        var metrics = new PipelineSnapshot(7, 35, 2, 6, 3.5, double.NaN, 1.25, 10, 20, 30, double.PositiveInfinity,
            new Dictionary<ushort, IReadOnlyDictionary<string, long>> { [1] = new Dictionary<string, long> { ["InvalidResponse"] = 5 } },
            new Dictionary<ushort, long> { [0] = 7 });
        var report = new DemoValidatorReport(metrics, new Dictionary<ushort, double> { [0] = 0.0125, [1] = 0 });
        var line = report.ToLine();
        Assert.DoesNotContain('\n', line);
        var back = DemoValidatorReport.TryParse(line)!;
        Assert.Equal((7L, 35L, 2L, 6L, 3.5, 1.25), (back.Metrics.Batches, back.Metrics.Queries, back.Metrics.Failures, back.Metrics.Backwards, back.Metrics.Loss, back.Metrics.QueriesPerSecond));
        Assert.True(double.IsNaN(back.Metrics.BaselineLoss));
        Assert.Equal(double.PositiveInfinity, back.Metrics.HeldOutLoss);
        Assert.Equal(5, back.Metrics.Refusals[1]["InvalidResponse"]);
        Assert.Equal(7, back.Metrics.Joined[0]);
        Assert.Equal(0.0125, back.Scores[0]);

        Assert.Null(DemoValidatorReport.TryParse("validator uid 2, block 7"));
        Assert.Null(DemoValidatorReport.TryParse(null));
        Assert.Throws<FormatException>(() => DemoValidatorReport.TryParse("batch {not json"));
        Assert.Throws<FormatException>(() => DemoValidatorReport.TryParse("batch {}"));
        Assert.Throws<FormatException>(() => DemoValidatorReport.TryParse("batch " + new string(' ', DemoValidatorReport.MaxLineLength)));
    }

    [Fact]
    public void A_weights_line_reads_back_as_the_live_views_text()
    {
        var set = DemoWeightsReport.Of(new Bittensor.Neurons.Roles.WeightsAttempt(1, 118, [0, 2, 3], [65535, 60000, 1], true, "InBlock"));
        var back = DemoWeightsReport.TryParse(set.ToLine())!;
        Assert.Equal(set, back);
        Assert.Equal("set at block 118 on 3 peers", back.Text);
        var refused = new DemoWeightsReport(40, false, 0, "no scores yet\nsecond line");
        var line = refused.ToLine();
        Assert.DoesNotContain('\n', line);
        Assert.Equal("not set at block 40: no scores yet\nsecond line", DemoWeightsReport.TryParse(line)!.Text);

        Assert.Null(DemoWeightsReport.TryParse("batch {}"));
        Assert.Null(DemoWeightsReport.TryParse(null));
        Assert.Throws<FormatException>(() => DemoWeightsReport.TryParse("weights {not json"));
        Assert.Throws<FormatException>(() => DemoWeightsReport.TryParse("weights {}"));
        Assert.Throws<FormatException>(() => DemoWeightsReport.TryParse("weights " + new string(' ', DemoWeightsReport.MaxLineLength)));
    }
}
