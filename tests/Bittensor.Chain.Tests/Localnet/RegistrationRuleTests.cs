using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using static Bittensor.Chain.Tests.Localnet.TestChain;

namespace Bittensor.Chain.Tests.Localnet;

public sealed class RegistrationRuleTests
{
    [Fact]
    public async Task Register_network_burns_the_lock_cost_and_creates_netuid_1_owned_by_the_signer()
    {
        await using var t = Create();
        var before = await t.Chain.GetBalanceAsync(DevAccounts.Alice);
        var cost = await t.Chain.GetNetworkLockCostAsync();
        Assert.Equal(Balance.FromTao(1000), cost);
        var netuid = await t.CreateSubnet("//Alice");
        Assert.Equal(1, netuid);
        var subnet = await t.Chain.GetSubnetAsync(1);
        Assert.NotNull(subnet);
        Assert.Equal(DevAccounts.Alice, subnet.Owner);
        Assert.Equal(before - cost, await t.Chain.GetBalanceAsync(DevAccounts.Alice));
        // root.rs: the next lock costs twice the last one (decaying over the reduction interval).
        Assert.True(await t.Chain.GetNetworkLockCostAsync() > cost);
    }

    [Fact]
    public async Task Burned_register_appends_a_uid_and_burns_the_registration_cost()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        var before = await t.Chain.GetBalanceAsync(DevAccounts.Alice);
        var uid0 = await t.Register(netuid, "//hot0");
        var uid1 = await t.Register(netuid, "//hot1");
        Assert.Equal((0, 1), (uid0, uid1));
        Assert.Equal(before - Balance.FromTao(2), await t.Chain.GetBalanceAsync(DevAccounts.Alice));
        Assert.Equal(DevAccounts.Alice, await t.Chain.GetHotkeyOwnerAsync(Id("//hot0")));
        var n = await t.Chain.GetNeuronAsync(netuid, 1);
        Assert.Equal(t.Chain.BlockNumber, n!.BlockAtRegistration);
        Assert.Equal(DevAccounts.Alice, n.Coldkey);
    }

    [Fact]
    public async Task Registering_on_a_missing_subnet_fails_with_NetworkDoesNotExist()
    {
        await using var t = Create();
        AssertFails("NetworkDoesNotExist", await t.Submit("//Alice", new BurnedRegister(9, Id("//hot0"))));
    }

    [Fact]
    public async Task Registering_a_hotkey_twice_fails_with_AlreadyRegistered()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        AssertFails("AlreadyRegistered", await t.Submit("//Alice", new BurnedRegister(netuid, Id("//hot0"))));
    }

    [Fact]
    public async Task A_second_registration_in_one_block_fails_with_TooManyRegistrationsThisBlock()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        t.Chain.SetHyperparameters(netuid, h => h with { MaxRegistrationsPerBlock = 1 });
        var results = await t.SubmitTogether(
            ("//Alice", new BurnedRegister(netuid, Id("//hot0"))),
            ("//Bob", new BurnedRegister(netuid, Id("//hot1"))));
        AssertOk(results[0]);
        AssertFails("TooManyRegistrationsThisBlock", results[1]);
        AssertOk(await t.Submit("//Bob", new BurnedRegister(netuid, Id("//hot1"))));
    }

    [Fact]
    public async Task More_than_three_times_the_target_per_interval_fails_with_TooManyRegistrationsThisInterval()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        t.Chain.SetHyperparameters(netuid, h => h with { TargetRegistrationsPerInterval = 1, AdjustmentInterval = 360 });
        for (var i = 0; i < 3; i++) await t.Register(netuid, $"//hot{i}");
        AssertFails("TooManyRegistrationsThisInterval", await t.Submit("//Alice", new BurnedRegister(netuid, Id("//hot3"))));
    }

    [Fact]
    public async Task A_coldkey_without_the_burn_fails_with_NotEnoughBalanceToStake()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        // //poor has no balance at all.
        AssertFails("NotEnoughBalanceToStake", await t.Submit("//poor", new BurnedRegister(netuid, Id("//hot0"))));
    }

    [Fact]
    public async Task Burning_the_whole_balance_fails_with_BalanceWithdrawalError()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        t.Chain.Fund(Id("//exact"), Balance.FromTao(1)); // exactly the burn: paying it would reap the account
        AssertFails("BalanceWithdrawalError", await t.Submit("//exact", new BurnedRegister(netuid, Id("//hot0"))));
    }

    [Fact]
    public async Task Registering_another_coldkeys_hotkey_fails_with_NonAssociatedColdKey()
    {
        await using var t = Create();
        var a = await t.CreateSubnet();
        var b = await t.CreateSubnet("//Bob");
        await t.Register(a, "//hot0", "//Alice");
        AssertFails("NonAssociatedColdKey", await t.Submit("//Bob", new BurnedRegister(b, Id("//hot0"))));
    }

    [Fact]
    public async Task A_full_subnet_replaces_the_lowest_pruning_score_outside_the_immunity_period()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        t.Chain.SetHyperparameters(netuid, h => h with { MaxAllowedUids = 3, ImmunityPeriod = 20, Tempo = 4 });
        await t.Register(netuid, "//hot0");
        await t.Register(netuid, "//hot1");
        await t.Register(netuid, "//hot2");
        // Stake on hot0 and hot2 only: with no weights the epoch pays emission by stake, so hot1 scores 0.
        AssertOk(await t.Submit("//Alice", new AddStake(Id("//hot0"), Balance.FromTao(10))));
        AssertOk(await t.Submit("//Alice", new AddStake(Id("//hot2"), Balance.FromTao(10))));
        await t.Blocks(25); // past an epoch and past everyone's immunity
        var before = await t.Chain.GetNeuronsAsync(netuid);
        Assert.True(before[1].PruningScore < before[0].PruningScore && before[1].PruningScore < before[2].PruningScore,
            $"pruning scores {string.Join(",", before.Select(n => n.PruningScore))}");
        await t.Register(netuid, "//hot3");
        var after = await t.Chain.GetNeuronsAsync(netuid);
        Assert.Equal(3, after.Count);
        Assert.Equal(Id("//hot3"), after[1].Hotkey);
        Assert.Equal(t.Chain.BlockNumber, after[1].BlockAtRegistration);
        Assert.Equal(Id("//hot0"), after[0].Hotkey);
        Assert.Equal(Id("//hot2"), after[2].Hotkey);
    }

    [Fact]
    public async Task A_neuron_in_its_immunity_period_is_not_pruned_while_one_outside_exists()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        t.Chain.SetHyperparameters(netuid, h => h with { MaxAllowedUids = 3, ImmunityPeriod = 30, Tempo = 4 });
        await t.Register(netuid, "//hot0");
        await t.Register(netuid, "//hot1");
        AssertOk(await t.Submit("//Alice", new AddStake(Id("//hot0"), Balance.FromTao(10))));
        AssertOk(await t.Submit("//Alice", new AddStake(Id("//hot1"), Balance.FromTao(5))));
        await t.Blocks(30); // hot0 and hot1 leave immunity with scores 65535 and about 32767
        await t.Register(netuid, "//hot2"); // score 0 but immune for 30 blocks
        await t.Blocks(6);
        var before = await t.Chain.GetNeuronsAsync(netuid);
        Assert.True(before[2].PruningScore < before[1].PruningScore && before[1].PruningScore < before[0].PruningScore,
            $"pruning scores {string.Join(",", before.Select(n => n.PruningScore))}");
        await t.Register(netuid, "//hot3");
        var after = await t.Chain.GetNeuronsAsync(netuid);
        Assert.Equal(Id("//hot0"), after[0].Hotkey);
        Assert.Equal(Id("//hot3"), after[1].Hotkey);
        Assert.Equal(Id("//hot2"), after[2].Hotkey);
        // hot1 is no longer registered anywhere, so its stake went back to its coldkey.
        Assert.Equal(Balance.Zero, await t.Chain.GetTotalStakeForHotkeyAsync(Id("//hot1")));
    }

    [Fact]
    public async Task Registering_on_netuid_0_fails_with_OperationNotPermittedonRootSubnet()
    {
        await using var t = Create();
        AssertFails("OperationNotPermittedonRootSubnet", await t.Submit("//Alice", new BurnedRegister(0, Id("//hot0"))));
    }

    [Fact]
    public async Task Registering_on_a_closed_subnet_fails_with_RegistrationDisabled()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        t.Chain.SetHyperparameters(netuid, h => h with { RegistrationAllowed = false });
        AssertFails("RegistrationDisabled", await t.Submit("//Alice", new BurnedRegister(netuid, Id("//hot0"))));
    }

    [Fact]
    public async Task A_second_subnet_within_the_network_rate_limit_fails_with_TxRateLimitExceeded()
    {
        await using var t = Create(new LocalnetOptions { SubnetDefaults = Relaxed, NetworkRateLimit = 5 });
        await t.Blocks(4);
        await t.CreateSubnet(); // block 5: 5 blocks since the (default) last lock block 0
        AssertFails("TxRateLimitExceeded", await t.Submit("//Bob", new RegisterNetwork()));
        await t.Blocks(3);
        AssertOk(await t.Submit("//Bob", new RegisterNetwork()));
    }

    [Fact]
    public async Task A_subnet_beyond_the_limit_fails_with_AllNetworksInImmunity()
    {
        await using var t = Create(new LocalnetOptions { SubnetDefaults = Relaxed, SubnetLimit = 1 });
        await t.CreateSubnet();
        AssertFails("AllNetworksInImmunity", await t.Submit("//Bob", new RegisterNetwork()));
    }

    [Fact]
    public async Task A_subnet_the_owner_cannot_afford_fails_with_NotEnoughBalanceToStake()
    {
        await using var t = Create();
        t.Chain.Fund(Id("//small"), Balance.FromTao(999));
        AssertFails("NotEnoughBalanceToStake", await t.Submit("//small", new RegisterNetwork()));
    }
}
