using Bittensor.Chain.Local;
using Bittensor.Chain.Substrate;
using Bittensor.Core.Domain;
using static Bittensor.Chain.Tests.Localnet.TestChain;

namespace Bittensor.Chain.Tests.Localnet;

public sealed class StakeAndTransferRuleTests
{
    [Fact]
    public async Task Adding_and_removing_stake_moves_tao_between_balance_and_stake()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        var before = await t.Chain.GetBalanceAsync(DevAccounts.Alice);
        AssertOk(await t.Submit("//Alice", new AddStake(Id("//hot0"), Balance.FromTao(10))));
        Assert.Equal(Balance.FromTao(10), await t.Chain.GetTotalStakeForHotkeyAsync(Id("//hot0")));
        Assert.Equal(before - Balance.FromTao(10), await t.Chain.GetBalanceAsync(DevAccounts.Alice));
        AssertOk(await t.Submit("//Alice", new RemoveStake(Id("//hot0"), Balance.FromTao(4))));
        var stakes = await t.Chain.GetStakesForColdkeyAsync(DevAccounts.Alice);
        Assert.Equal(Balance.FromTao(6), stakes.Single(s => s.Hotkey == Id("//hot0")).Stake);
        Assert.Equal(before - Balance.FromTao(6), await t.Chain.GetBalanceAsync(DevAccounts.Alice));
    }

    [Fact]
    public async Task A_stake_call_in_the_later_netuid_layout_is_refused_by_the_pool_as_BadCall()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        foreach (ChainCall call in new ChainCall[] { new AddStake(Id("//hot0"), Balance.FromTao(1), netuid), new RemoveStake(Id("//hot0"), Balance.FromTao(1), netuid) })
        {
            var failed = Assert.IsType<CallResult.Failed>(await t.Submit("//Alice", call));
            Assert.Equal("BadCall", failed.Error);
            Assert.Null(failed.Block);
            Assert.Contains("no netuid", failed.Message, StringComparison.Ordinal);
        }
        Assert.Equal(Balance.Zero, await t.Chain.GetTotalStakeForHotkeyAsync(Id("//hot0")));
    }

    [Fact]
    public async Task ForRuntime_drops_a_stake_calls_netuid_so_the_block_holds_a_call_its_metadata_describes()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        var call = t.Chain.ForRuntime(new AddStake(Id("//hot0"), Balance.FromTao(3), netuid));
        Assert.Null(Assert.IsType<AddStake>(call).Netuid);
        Assert.Null(Assert.IsType<RemoveStake>(t.Chain.ForRuntime(new RemoveStake(Id("//hot0"), Balance.FromTao(3), 7))).Netuid);
        var other = new BurnedRegister(netuid, Id("//hot1"));
        Assert.Same(other, t.Chain.ForRuntime(other));

        var result = await t.Submit("//Alice", call);
        AssertOk(result);
        var ok = Assert.IsType<CallResult.InBlock>(result);
        Assert.Equal(Balance.FromTao(3), await t.Chain.GetTotalStakeForHotkeyAsync(Id("//hot0")));
        var callBytes = call.ToBytes();
        var body = t.Chain.FindBlock(ok.Block)!.Extrinsics!;
        Assert.Contains(body, x => x.AsSpan().EndsWith(callBytes));
        var decoded = MetadataCalls.Decode(LocalnetMetadata.For(new LocalnetOptions()).Metadata, callBytes);
        Assert.Equal("add_stake", decoded.Call);
    }

    [Fact]
    public async Task Staking_more_than_the_balance_fails_with_NotEnoughBalanceToStake()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        AssertFails("NotEnoughBalanceToStake", await t.Submit("//Alice", new AddStake(Id("//hot0"), Balance.FromTao(10_000_000))));
    }

    [Fact]
    public async Task Staking_the_whole_balance_fails_with_BalanceWithdrawalError()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        var all = await t.Chain.GetBalanceAsync(DevAccounts.Alice);
        AssertFails("BalanceWithdrawalError", await t.Submit("//Alice", new AddStake(Id("//hot0"), all)));
    }

    [Fact]
    public async Task Staking_to_a_never_registered_hotkey_fails_with_NotRegistered()
    {
        await using var t = Create();
        AssertFails("NotRegistered", await t.Submit("//Alice", new AddStake(Id("//nobody"), Balance.FromTao(1))));
        AssertFails("NotRegistered", await t.Submit("//Alice", new RemoveStake(Id("//nobody"), Balance.FromTao(1))));
    }

    [Fact]
    public async Task Staking_to_another_coldkeys_hotkey_fails_with_NonAssociatedColdKey()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0", "//Alice");
        AssertFails("NonAssociatedColdKey", await t.Submit("//Bob", new AddStake(Id("//hot0"), Balance.FromTao(1))));
        AssertFails("NonAssociatedColdKey", await t.Submit("//Bob", new RemoveStake(Id("//hot0"), Balance.FromTao(1))));
    }

    [Fact]
    public async Task Unstaking_more_than_staked_fails_with_NotEnoughStaketoWithdraw()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        AssertOk(await t.Submit("//Alice", new AddStake(Id("//hot0"), Balance.FromTao(1))));
        AssertFails("NotEnoughStaketoWithdraw", await t.Submit("//Alice", new RemoveStake(Id("//hot0"), Balance.FromTao(2))));
        AssertFails("NotEnoughStaketoWithdraw", await t.Submit("//Alice", new RemoveStake(Id("//hot0"), Balance.Zero)));
    }

    [Fact]
    public async Task A_second_stake_operation_in_one_interval_fails_with_the_rate_limit_errors()
    {
        await using var t = Create(new LocalnetOptions { SubnetDefaults = Relaxed, TargetStakesPerInterval = 1, StakeInterval = 360 });
        var netuid = await t.CreateSubnet();
        await t.Register(netuid, "//hot0");
        AssertOk(await t.Submit("//Alice", new AddStake(Id("//hot0"), Balance.FromTao(2))));
        AssertFails("StakeRateLimitExceeded", await t.Submit("//Alice", new AddStake(Id("//hot0"), Balance.FromTao(1))));
        AssertFails("UnstakeRateLimitExceeded", await t.Submit("//Alice", new RemoveStake(Id("//hot0"), Balance.FromTao(1))));
    }

    [Fact]
    public async Task Transfer_keep_alive_moves_the_value()
    {
        await using var t = Create();
        var dest = Id("//fresh");
        AssertOk(await t.Submit("//Alice", new Transfer(dest, new Balance(123_456_789))));
        Assert.Equal(new Balance(123_456_789), await t.Chain.GetBalanceAsync(dest));
    }

    [Fact]
    public async Task Transferring_more_than_the_balance_fails_with_InsufficientBalance()
    {
        await using var t = Create();
        AssertFails("InsufficientBalance", await t.Submit("//Alice", new Transfer(DevAccounts.Bob, Balance.FromTao(2_000_000))));
    }

    [Fact]
    public async Task Transferring_everything_fails_with_KeepAlive()
    {
        await using var t = Create();
        var all = await t.Chain.GetBalanceAsync(DevAccounts.Alice);
        AssertFails("KeepAlive", await t.Submit("//Alice", new Transfer(DevAccounts.Bob, all)));
    }

    [Fact]
    public async Task Creating_an_account_below_the_existential_deposit_fails_with_ExistentialDeposit()
    {
        await using var t = Create();
        AssertFails("ExistentialDeposit", await t.Submit("//Alice", new Transfer(Id("//dust"), new Balance(499))));
    }
}
