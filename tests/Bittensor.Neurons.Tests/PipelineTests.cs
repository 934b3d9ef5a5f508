using Akka.TestKit.Xunit2;
using Bittensor.Neurons.Roles;
using Xunit.Abstractions;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Neurons.Tests;

public sealed class PipelineTests(ITestOutputHelper output) : TestKit(TestConfig.Hocon, output: output)
{
    [Fact]
    public async Task The_pipeline_over_a_localnet_with_three_servers_sets_weights_on_chain()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var ct = timeout.Token;
        await using var subnet = await LocalSubnet.StartAsync(Sys, tempo: 8, seed: 5, ct);
        var servers = new List<ServerNeuron>();
        for (var i = 0; i < 3; i++)
        {
            var options = new ServerOptions { AxonIp = $"127.0.0.{10 + i}", Model = LocalSubnet.TinyModel with { Seed = 100 + i }, StatePath = subnet.State($"server{i}") };
            servers.Add(await ServerNeuron.StartAsync(Sys, subnet.Chain, subnet.Netuid, subnet.NewKeys(), options, ct));
        }
        var attempts = CreateTestProbe();
        Sys.EventStream.Subscribe(attempts, typeof(WeightsAttempt));
        var validator = await ValidatorNeuron.StartAsync(Sys, subnet.Chain, subnet.Netuid, subnet.NewKeys(), LocalSubnet.SmallValidator(5), ct);
        // A round that had a Success answer gave its pooled arrays back before it completed (the step releases them).
        long returnedAfterSuccessRound = -1;
        validator.Pipeline.RoundCompleted += r =>
        {
            if (r.Codes.Contains(Bittensor.Protocol.Wire.ReturnCode.Success) && Interlocked.Read(ref returnedAfterSuccessRound) < 0)
                Interlocked.Exchange(ref returnedAfterSuccessRound, validator.Pipeline.AnswerArrays.Sum(p => p.Returned));
            subnet.Driver.BatchDone();
            subnet.Driver.Lockstep = true;
        };
        WeightsAttempt set;
        try
        {
            // Attempts before the validator's first epoch are refused (no permit yet) or skipped (no score yet): data, not failure.
            set = (WeightsAttempt)await attempts.FishForMessageAsync(m => m is WeightsAttempt { Success: true }, TimeSpan.FromMinutes(5), cancellationToken: ct);
            var serverUids = servers.Select(s => s.Uid).ToHashSet();
            Assert.NotEmpty(set.Uids);
            Assert.All(set.Uids, u => Assert.Contains(u, serverUids));

            var onChain = await subnet.Localnet.GetNeuronAsync(subnet.Netuid, validator.Uid, ct);
            Assert.NotNull(onChain);
            Assert.Equal(set.Uids.ToArray(), onChain.Weights.Select(w => w.Uid).ToArray());
            Assert.Contains(onChain.Weights, w => w.Value == ushort.MaxValue);
            Assert.True(validator.Pipeline.Metrics.Snapshot().Batches > 0);
            // The first round with a Success answer had given that answer's array back to the dendrite's pool by the
            // time it completed (the step releases a round's answers once the nucleus is done with them). Whether a
            // later round has landed in one yet depends on how far the forward stage ran ahead: AnswerPoolSpec shows the reuse.
            var answers = validator.Pipeline.AnswerArrays;
            Assert.True(answers.Count is > 0 and <= 2, $"{answers.Count} answer pools"); // forward and backward answer lengths
            var returned = Interlocked.Read(ref returnedAfterSuccessRound);
            Assert.True(returned != 0, "a round with a Success answer completed without giving its array back");
            Assert.Equal($"/user/bittensor/validator-{validator.Hotkey}/metagraph", validator.Metagraph.Path.ToStringWithoutAddress());
            Assert.Equal($"/user/bittensor/validator-{validator.Hotkey}/nucleus", validator.Pipeline.Nucleus?.Path.ToStringWithoutAddress());
            Assert.Equal(0, validator.Pipeline.DroppedBatches);
            // The nucleus trained on the model dispatcher's pinned thread, not on a stream or default-dispatcher thread.
            var placement = await validator.Pipeline.NucleusPlacementAsync();
            Assert.NotNull(placement);
            Assert.Equal(ModelSettings.DispatcherPath, placement.Dispatcher);
            Assert.True(placement.Steps > 0);
            // The default dispatcher (and so Akka.Streams) runs on the .NET thread pool; the pinned model dispatcher does not.
            Assert.False(placement.LastStepOnThreadPool);
        }
        finally
        {
            await validator.DisposeAsync();
            foreach (var s in servers) await s.DisposeAsync();
        }
        // The servers kept the validator's accepted nonces in their own state folders (replay-safe across restarts).
        Assert.NotEmpty(set.Uids);
        Assert.Contains(Enumerable.Range(0, servers.Count),
            i => File.ReadAllText(Path.Combine(subnet.State($"server{i}"), "nonces")).Contains(validator.Hotkey, StringComparison.Ordinal));
    }
}
