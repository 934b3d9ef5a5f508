using Akka.TestKit.Xunit2;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Roles;
using Xunit.Abstractions;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// Neurons started together on a subnet that admits one registration per block (subtensor's default): every
/// <see cref="ChainOps.EnsureRegisteredAsync"/> ends with a uid. Blocks are produced by the test, one at a time, only
/// once every racer's call is in the pool, so each block really holds a collision.
/// </summary>
public sealed class RegistrationRaceTests(ITestOutputHelper output) : TestKit(TestConfig.Hocon, output: output)
{
    [Fact]
    public async Task Registrations_that_lose_a_block_to_another_are_submitted_again_and_all_get_a_uid()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        var hyper = LocalSubnet.Hyper(100) with { MaxRegistrationsPerBlock = 1 };
        await using var localnet = Localnet.Open(new LocalnetOptions { Name = "race", SubnetDefaults = hyper });
        var chain = Sys.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(new NonOwningChainBackend(localnet)),
            SubtensorSettings.Default, () => 0.5));
        var random = new Random(5);
        NeuronKeys Keys()
        {
            var mini = new byte[32];
            random.NextBytes(mini);
            var cold = Sr25519KeyPair.FromMiniSecret(mini);
            random.NextBytes(mini);
            localnet.Fund(new AccountId(cold.PublicKey.Span), Balance.FromTao(10_000m));
            return NeuronKeys.FromPairs(Sr25519KeyPair.FromMiniSecret(mini), cold);
        }

        var owner = Keys();
        var created = ChainOps.SubmitAsync(chain, new RegisterNetwork(), owner.Coldkey!, ct);
        await PoolHolds(localnet, 1, ct);
        await localnet.ProduceBlockAsync(ct);
        Assert.True((await created).IsSuccess);
        var netuid = (await localnet.GetSubnetsAsync(ct)).Max(s => s.Netuid);

        var racers = Enumerable.Range(0, 3).Select(_ => Keys()).ToList();
        var registering = racers.Select(k => ChainOps.EnsureRegisteredAsync(chain, netuid, k, ct)).ToList();
        for (var admitted = 0; admitted < racers.Count; admitted++)
        {
            // Every racer not yet admitted has (re)submitted before the block that decides between them: one gets in,
            // the others are refused with TooManyRegistrationsThisBlock and must come back for the next block.
            await PoolHolds(localnet, racers.Count - admitted, ct);
            await localnet.ProduceBlockAsync(ct);
        }

        var uids = await Task.WhenAll(registering);
        Assert.Equal(3, uids.Distinct().Count());
        var neurons = await localnet.GetNeuronsAsync(netuid, ct);
        Assert.All(racers, k => Assert.Contains(neurons, n => n.Hotkey == k.HotkeyAccount));
    }

    /// <summary>Waits (on events, with a bound) until the pool holds <paramref name="count"/> calls.</summary>
    private async Task PoolHolds(Localnet localnet, int count, CancellationToken ct) =>
        await AwaitConditionAsync(() => Task.FromResult(localnet.PendingExtrinsics().Count >= count), TimeSpan.FromSeconds(60), cancellationToken: ct);
}
