using Akka.Actor;
using Akka.TestKit.Xunit2;
using Bittensor.Models;
using Bittensor.Neurons.Roles;
using Xunit.Abstractions;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Neurons.Tests;

public sealed class MinerTests(ITestOutputHelper output) : TestKit(TestConfig.Hocon, output: output)
{
    private const int Rounds = 20;

    [Fact]
    public async Task A_miner_serves_and_distils_the_joined_remote_context_into_its_model()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(20));
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
            // Distillation starts once the peer's representations have shown information and joined the context.
            Interlocked.Increment(ref seen);
            if (miner!.DistillLosses.Count >= Rounds) rounds.TrySetResult(r);
        };
        try
        {
            var round = await rounds.Task.WaitAsync(ct);
            Assert.Equal(peer.Uid, Assert.Single(round.Peers).Uid);
            Assert.Equal(Bittensor.Protocol.Wire.ReturnCode.Success, round.Codes[0]);
            Assert.Equal(Bittensor.Protocol.Wire.ReturnCode.Success, round.BackwardCodes[0]);
            // The distillation loss falls: the miner's model moves towards the remote context it is distilled into.
            var losses = miner.DistillLosses;
            Output?.WriteLine(string.Join(" ", losses.Select(l => l.ToString("G4", System.Globalization.CultureInfo.InvariantCulture))));
            Assert.True(losses.Count >= Rounds, $"only {losses.Count} distillation steps in {seen} rounds");
            Assert.All(losses, l => Assert.True(double.IsFinite(l)));
            var first = losses.Take(5).Average();
            var last = losses.Skip(losses.Count - 5).Average();
            // Measured: 0.68 → 0.55 over 20 steps (the target moves as the peer trains, so it does not fall to 0).
            Assert.True(last < 0.9 * first, $"distillation loss did not fall: first five average {first:G4}, last five {last:G4}");
            Assert.NotEqual(peer.Uid, miner.Server.Uid);
            // One supervised unit per neuron, with named children.
            Assert.Equal($"/user/bittensor/miner-{miner.Server.Hotkey}/axon", miner.Server.Axon.Path.ToStringWithoutAddress());
            Assert.Equal($"/user/bittensor/miner-{miner.Server.Hotkey}/model", miner.Server.Model!.Path.ToStringWithoutAddress());
            Assert.Equal($"/user/bittensor/server-{peer.Hotkey}/axon", peer.Axon.Path.ToStringWithoutAddress());
            // One metagraph per neuron: the axon's stakes and the pipeline's peers come from the same MetagraphActor.
            Assert.Equal($"/user/bittensor/miner-{miner.Server.Hotkey}/metagraph", miner.Server.Metagraph.Path.ToStringWithoutAddress());
            // (a second one could not be named "metagraph" too: children names are unique, so it was "axon-metagraph" before).
            var resolved = await Sys.ActorSelection(miner.Neuron.Path / "metagraph").ResolveOne(TimeSpan.FromSeconds(10), ct);
            Assert.Equal(miner.Server.Metagraph, resolved);
            var old = await Sys.ActorSelection(miner.Neuron.Path / "axon-metagraph").Ask<Akka.Actor.ActorIdentity>(new Akka.Actor.Identify(1), TimeSpan.FromSeconds(10), ct);
            Assert.Null(old.Subject);
        }
        finally
        {
            await miner.DisposeAsync();
            await peer.DisposeAsync();
        }
    }
}
