using Bittensor.Neurons.Demo;
using Bittensor.Neurons.Pipelines;
using Xunit.Abstractions;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// The adversary zoo (issue 12) at small scale: seeded demos with event-driven blocks (the same training per epoch on
/// any machine; only the CancellationToken bounds time), every kind ending at ≤ 1 % incentive and not rising after
/// the second epoch, and never joining the validator's context (so never moving its loss; ScoringTests measures that
/// against a run without them, which two demos cannot do: servers train asynchronously, so two runs differ anyway).
/// </summary>
public sealed class AdversaryZooTests(ITestOutputHelper output)
{
    internal static DemoOptions Small(params string[] kinds) => DemoOptions.Default with
    {
        Servers = 2,
        BadServers = kinds.Length,
        BadKinds = kinds.Length == 0 ? ["uniform"] : kinds,
        Epochs = 4,
        Tempo = 8,
        BlockTime = TimeSpan.Zero,
        StepsPerBlock = 2,
        Seed = 7,
        ServerModel = LocalSubnet.TinyModel,
        // The slow kind answers after the call's deadline: a short one keeps its batches short (the dendrite then backs off).
        // Without it the deadline is only a hang guard: on a busy machine a short one refuses useful replies as well.
        Pipeline = PipelineSettings.Default with
        {
            BatchSize = 2, SequenceLength = 12, CallTimeout = kinds.Contains("slow") ? TimeSpan.FromSeconds(2) : TimeSpan.FromSeconds(60),
        },
        Nucleus = NucleusSettingsHocon.Default with { Hidden = 64, Threads = 1 },
    };

    [Fact]
    public async Task Useless_servers_noise_constants_and_zeros_end_at_no_incentive_and_never_reach_the_validators_model()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var zoo = await DemoNetwork.RunAsync(Small("uniform", "gauss", "constant", "zeros"), cancellationToken: timeout.Token);
        Report("zoo", zoo);
        AssertStarved(zoo, ["uniform", "gauss", "constant", "zeros"]);
        // A constant or zeros has no spread left once standardised and centred: its gain is exactly 0.
        Assert.All(zoo.Neurons.Where(n => n.Kind is "constant" or "zeros"), n => Assert.Equal(0.0, n.Score));
    }

    [Fact]
    public async Task Hostile_servers_are_refused_with_their_reason_and_end_at_no_incentive()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        string[] kinds = ["nan", "inf", "huge", "wrong_shape", "slow"];
        var zoo = await DemoNetwork.RunAsync(Small(kinds), cancellationToken: timeout.Token);
        Report("zoo", zoo);
        AssertStarved(zoo, kinds);
        var bad = zoo.Neurons.Where(n => n.Role == "bad_server").ToDictionary(n => n.Kind!);
        // Every reply of theirs was refused before it touched the model, each with its reason, and none scored.
        Assert.All(bad.Values, n => Assert.Equal(0.0, n.Score));
        Assert.True(bad["nan"].Refusals!.ContainsKey("InvalidResponse"), Reasons(bad["nan"]));
        Assert.True(bad["inf"].Refusals!.ContainsKey("InvalidResponse"), Reasons(bad["inf"]));
        Assert.True(bad["huge"].Refusals!.ContainsKey(Bittensor.Models.Validation.ReplySanitiser.TooLarge), Reasons(bad["huge"]));
        Assert.True(bad["wrong_shape"].Refusals!.Count > 0, Reasons(bad["wrong_shape"]));
        Assert.True(bad["slow"].Refusals!.ContainsKey("Timeout"), Reasons(bad["slow"]));
    }

    private static string Reasons(DemoNeuron n) => $"{n.Kind}: " + string.Join(", ", n.Refusals!.Select(r => $"{r.Key}×{r.Value}"));

    private static void AssertStarved(DemoResult result, string[] kinds)
    {
        var good = result.Neurons.Where(n => n.Role == "server").ToArray();
        var bad = result.Neurons.Where(n => n.Role == "bad_server").ToArray();
        Assert.Equal(kinds.Order(), bad.Select(b => b.Kind!).Order());
        Assert.True(result.MarketWorked, result.Verdict);
        Assert.All(bad, b => Assert.True(b.Incentive <= 0.01, $"{b.Kind} earned {b.Incentive:P2} incentive"));
        Assert.All(bad, b => Assert.All(good, g => Assert.True(b.Incentive < g.Incentive, $"{b.Kind} earned {b.Incentive:F4}, server uid {g.Uid} {g.Incentive:F4}")));
        var history = result.IncentiveHistory!;
        Assert.Equal(4, history.Count);
        // From the second epoch on (the first only grants the validator its permit) no bad server's incentive rises.
        foreach (var b in bad)
            for (var e = 2; e < history.Count; e++)
                Assert.True(history[e][b.Uid] <= history[e - 1][b.Uid], $"{b.Kind}'s incentive rose in epoch {e + 1}: {history[e - 1][b.Uid]:F4} → {history[e][b.Uid]:F4}");
        Assert.All(bad, b => Assert.All(history.Skip(1), e => Assert.True(e[b.Uid] <= 0.01, $"{b.Kind} earned {e[b.Uid]:P2} in an epoch")));
        // None of them ever joined the decoder's context, so none moved the validator's held-out loss: with the same
        // batches its model trains exactly as without them (ScoringTests checks that on one machine-independent run;
        // two demos differ anyway, as servers train asynchronously on the gradients they receive).
        Assert.All(bad, b => Assert.True(b.Joined == 0, $"{b.Kind} joined the validator's context in {b.Joined} batches"));
        Assert.All(good, g => Assert.True(g.Joined > 0, $"server uid {g.Uid} never joined the validator's context"));
    }

    private void Report(string name, DemoResult result)
    {
        output.WriteLine($"{name}:");
        foreach (var n in result.Neurons)
            output.WriteLine($"  uid {n.Uid} {n.Role} {n.Kind} incentive {n.Incentive:F4} score {n.Score:F4} joined {n.Joined} refused {string.Join(",", (n.Refusals ?? new Dictionary<string, long>()).Select(r => $"{r.Key}x{r.Value}"))}");
        for (var e = 0; e < (result.IncentiveHistory?.Count ?? 0); e++)
            output.WriteLine($"  epoch {e + 1}: " + string.Join(" ", result.IncentiveHistory![e].OrderBy(p => p.Key).Select(p => $"{p.Key}:{p.Value:F4}")));
        output.WriteLine($"  held-out loss {result.HeldOutLoss:F4} batches {result.Batches} wall {result.WallTimeSeconds:F1}s; {result.Verdict}");
    }
}
