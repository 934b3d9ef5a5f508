using Bittensor.Chain.Local;
using Bittensor.Chain.Tests.Localnet;
using Bittensor.Core;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Tests.Node;

/// <summary>
/// The node's storage views are updated per block with only the keys a block changed (<see cref="LocalnetStorageTracker"/>):
/// after every block of a flow that touches every kind of entry (accounts created and reaped, subnets, registrations
/// with pruning and replacement, axons, stake added and removed, weights, epochs with bonds and emission, a
/// hyperparameter change) the incremental view equals a view built from scratch, byte for byte, and the views of
/// earlier blocks are not changed by later ones (they share structure).
/// </summary>
public sealed class LocalnetStorageTrackerTests
{
    [Fact]
    public async Task Incremental_views_equal_full_builds_after_every_block_and_old_views_stay_intact()
    {
        var hyper = TestChain.Relaxed with { MaxAllowedUids = 3, ImmunityPeriod = 0 };
        await using var t = TestChain.Create(new LocalnetOptions { SubnetDefaults = hyper, TargetStakesPerInterval = 100 });
        var chain = t.Chain;
        var tracker = new LocalnetStorageTracker();
        var views = new List<(LocalnetStorage Incremental, string[] Full)>();
        var changed = new List<int>();
        chain.Read(s =>
        {
            var first = tracker.Next(s, chain.BestBlockUnlocked(s), chain.Options);
            views.Add((first, Dump(LocalnetStorage.Build(s, chain.BestBlockUnlocked(s), chain.Options))));
            chain.BlockCommitted += (state, block) =>
            {
                views.Add((tracker.Next(state, block, chain.Options), Dump(LocalnetStorage.Build(state, block, chain.Options))));
                changed.Add(tracker.LastChanged);
            };
            return 0;
        });

        void Check()
        {
            var (incremental, full) = views[^1];
            Assert.Equal(full, Dump(incremental));
        }

        TestChain.AssertOk(await t.Submit("//Alice", new Transfer(TestChain.Id("//dust"), Balance.FromTao(2))));
        Check();
        TestChain.AssertOk(await t.Submit("//dust", new Transfer(TestChain.Id("//Bob"), Balance.FromTao(2), KeepAlive: false))); // reaped
        Check();
        var net1 = await t.CreateSubnet();
        Check();
        var net2 = await t.CreateSubnet("//Eve");
        Check();
        foreach (var hot in new[] { "//h0", "//h1", "//h2" }) await t.Register(net1, hot);
        Check();
        await t.Register(net2, "//h0"); // one hotkey in two subnets
        Check();
        TestChain.AssertOk(await t.Submit("//h1", new ServeAxon(net1, 1, 0x0a000001, 8091, 4, 0)));
        Check();
        TestChain.AssertOk(await t.Submit("//h1", new ServeAxon(net1, 2, 0x0a000002, 8092, 4, 0))); // axon replaced
        Check();
        TestChain.AssertOk(await t.Submit("//Alice", new AddStake(TestChain.Id("//h0"), Balance.FromTao(50))));
        TestChain.AssertOk(await t.Submit("//Alice", new AddStake(TestChain.Id("//h1"), Balance.FromTao(5))));
        TestChain.AssertOk(await t.Submit("//Alice", new RemoveStake(TestChain.Id("//h1"), Balance.FromTao(5))));
        Check();
        TestChain.AssertOk(await t.Submit("//h0", new SetWeights(net1, [0, 1, 2], [100, 65535, 7], 0)));
        TestChain.AssertOk(await t.Submit("//h0", new SetWeights(net1, [1, 2], [65535, 20], 0))); // row replaced
        Check();
        await t.Blocks(20); // epochs: ranks, bonds, emission into stake
        Check();
        chain.SetHyperparameters(net1, h => h with { Kappa = 1234, Burn = h.Burn + 1 });
        await t.Blocks(1);
        Check();
        // The subnet is full: registering prunes a neuron and replaces its hotkey (Keys, Uids, IsNetworkMember, weights).
        await t.Register(net1, "//h3");
        Check();
        await t.Register(net1, "//h4");
        await t.Blocks(10);
        Check();

        Assert.True(views.Count > 30);
        foreach (var (incremental, full) in views) Assert.Equal(full, Dump(incremental));
        // A block without calls changes only a handful of keys (number, parent hash, events, timestamp, block hash,
        // pending emission, owner cut…), not the state.
        var fewest = changed.TakeLast(10).Min();
        Assert.True(fewest < views[^1].Full.Length / 4, $"{fewest} of {views[^1].Full.Length} entries changed in an empty block");
    }

    private static string[] Dump(LocalnetStorage s) => [.. s.Entries.Select(e => Hex.Encode(e.Key) + "=" + Hex.Encode(e.Value!))];
}
