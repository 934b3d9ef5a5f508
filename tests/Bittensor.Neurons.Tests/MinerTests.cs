using Akka.TestKit.Xunit2;
using Bittensor.Models;
using Bittensor.Neurons.Roles;
using Xunit.Abstractions;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Neurons.Tests;

public sealed class MinerTests(ITestOutputHelper output) : TestKit(Bittensor.Actors.BittensorRuntime.ReferenceConfig, output: output)
{
    [Fact]
    public async Task A_miner_serves_and_distils_the_joined_remote_context_into_its_model()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var ct = timeout.Token;
        await using var subnet = await LocalSubnet.StartAsync(Sys, tempo: 50, seed: 9, ct);
        var peer = await ServerNeuron.StartAsync(Sys, subnet.Chain, subnet.Netuid, subnet.NewKeys(),
            new ServerOptions { AxonIp = "127.0.0.20", Model = LocalSubnet.TinyModel with { Seed = 1 }, StatePath = subnet.State("peer") }, ct);
        var miner = await MinerNeuron.StartAsync(Sys, subnet.Chain, subnet.Netuid, subnet.NewKeys(),
            new ServerOptions { AxonIp = "127.0.0.21", Model = LocalSubnet.TinyModel with { Seed = 2 }, StatePath = subnet.State("miner") },
            LocalSubnet.SmallValidator(9) with { Stake = Bittensor.Core.Domain.Balance.Zero }, ct);
        var rounds = new TaskCompletionSource<Pipelines.RoundResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var seen = 0;
        miner.Pipeline.RoundCompleted += r =>
        {
            if (Interlocked.Increment(ref seen) >= 3) rounds.TrySetResult(r);
        };
        try
        {
            var round = await rounds.Task.WaitAsync(ct);
            Assert.Equal(peer.Uid, Assert.Single(round.Peers).Uid);
            Assert.Equal(Bittensor.Protocol.Wire.ReturnCode.Success, round.Codes[0]);
            Assert.Equal(Bittensor.Protocol.Wire.ReturnCode.Success, round.BackwardCodes[0]);
            Assert.True(double.IsFinite(miner.LastDistillLoss), "no distillation step was taken");
            Assert.NotEqual(peer.Uid, miner.Server.Uid);
            // One supervised unit per neuron, with named children.
            Assert.Equal($"/user/bittensor/miner-{miner.Server.Hotkey}/axon", miner.Server.Axon.Path.ToStringWithoutAddress());
            Assert.Equal($"/user/bittensor/miner-{miner.Server.Hotkey}/model", miner.Server.Model!.Path.ToStringWithoutAddress());
            Assert.Equal($"/user/bittensor/server-{peer.Hotkey}/axon", peer.Axon.Path.ToStringWithoutAddress());
        }
        finally
        {
            await miner.DisposeAsync();
            await peer.DisposeAsync();
        }
    }
}
