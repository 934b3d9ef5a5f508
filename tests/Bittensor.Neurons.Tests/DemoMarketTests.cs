using Bittensor.Neurons.Demo;
using Bittensor.Neurons.Pipelines;
using Xunit.Abstractions;
using Bittensor.Models.Validation;

namespace Bittensor.Neurons.Tests;

public sealed class DemoMarketTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_short_seeded_demo_ranks_the_useless_server_last_and_pays_the_validator_dividends()
    {
        // Blocks are driven by events (a block per submitted call, and in lockstep two validator batches per block), not by
        // a clock: the amount of training per epoch is the same on any machine, and only the CancellationToken bounds time.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        var options = DemoOptions.Default with
        {
            Servers = 2,
            BadServers = 1,
            Epochs = 3,
            Tempo = 8,
            BlockTime = TimeSpan.Zero,
            StepsPerBlock = 2,
            Seed = 7,
            ServerModel = LocalSubnet.TinyModel,
            Pipeline = PipelineSettings.Default with { BatchSize = 2, SequenceLength = 12 },
            Nucleus = NucleusSettingsHocon.Default with { Hidden = 64, Threads = 1 },
        };
        var result = await DemoNetwork.RunAsync(options, cancellationToken: timeout.Token);
        foreach (var n in result.Neurons)
            output.WriteLine($"uid {n.Uid} {n.Role} incentive {n.Incentive:F4} dividends {n.Dividends:F4} score {n.Score:F4}");
        output.WriteLine(result.Verdict);

        var bad = Assert.Single(result.Neurons, n => n.Role == "bad_server");
        var good = result.Neurons.Where(n => n.Role == "server").ToArray();
        var validator = Assert.Single(result.Neurons, n => n.Role == "validator");
        Assert.Equal(2, good.Length);
        Assert.All(good, g => Assert.True(bad.Incentive < g.Incentive, $"bad server incentive {bad.Incentive} is not below server uid {g.Uid}'s {g.Incentive}"));
        Assert.True(validator.Dividends > 0, "the validator earned no dividends");
        Assert.All(good, g => Assert.True(bad.Score < g.Score, $"bad server score {bad.Score} is not below server uid {g.Uid}'s {g.Score}"));
        var badWeight = result.ValidatorWeights.Where(w => w.Uid == bad.Uid).Select(w => (int)w.Weight).DefaultIfEmpty(0).Single();
        Assert.All(good, g => Assert.True(badWeight < result.ValidatorWeights.Single(w => w.Uid == g.Uid).Weight));
        Assert.True(result.MarketWorked, result.Verdict);
    }
}
