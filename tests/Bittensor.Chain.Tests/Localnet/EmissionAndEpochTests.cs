using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using static Bittensor.Chain.Tests.Localnet.TestChain;

namespace Bittensor.Chain.Tests.Localnet;

public sealed class EmissionAndEpochTests
{
    [Fact]
    public async Task Emission_accrues_per_block_with_the_owner_cut_paid_to_the_subnet_owner()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet("//Bob");
        t.Chain.SetHyperparameters(netuid, h => h with { Tempo = 360 });
        var pending = t.Chain.PendingEmission(netuid);
        var ownerBefore = await t.Chain.GetBalanceAsync(DevAccounts.Bob);
        var issuanceBefore = t.Chain.TotalIssuance;
        await t.Blocks(5);
        // 1 TAO per block, owner cut 11796/65535 (18%) to the owner, the rest queued for the epoch.
        const ulong cut = 1_000_000_000UL * 11_796 / 65_535;
        Assert.Equal(pending + new Balance(5 * (1_000_000_000 - cut)), t.Chain.PendingEmission(netuid));
        Assert.Equal(ownerBefore + new Balance(5 * cut), await t.Chain.GetBalanceAsync(DevAccounts.Bob));
        Assert.Equal(issuanceBefore + new Balance(5 * cut), t.Chain.TotalIssuance);
    }

    [Fact]
    public void The_epoch_is_due_by_the_pre_2025_rule()
    {
        // blocks_until_next_epoch = tempo - (block + netuid + 1) mod (tempo + 1)
        Assert.Equal(0UL, LocalnetRuntime.BlocksUntilNextEpoch(1, 9, 7));
        Assert.Equal(9UL, LocalnetRuntime.BlocksUntilNextEpoch(1, 9, 8));
        Assert.Equal(1UL, LocalnetRuntime.BlocksUntilNextEpoch(1, 9, 16));
        Assert.Equal(0UL, LocalnetRuntime.BlocksUntilNextEpoch(1, 9, 17));
        Assert.Equal(0UL, LocalnetRuntime.BlocksUntilNextEpoch(3, 99, 95));
        Assert.Equal(99UL, LocalnetRuntime.BlocksUntilNextEpoch(3, 99, 96));
        Assert.Equal(1000UL, LocalnetRuntime.BlocksUntilNextEpoch(1, 0, 5));
    }

    [Fact]
    public async Task The_epoch_runs_exactly_at_the_due_block_and_pays_the_queued_emission_into_stake_next_block()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        t.Chain.SetHyperparameters(netuid, h => h with { Tempo = 9 });
        await t.Register(netuid, "//hot0");
        AssertOk(await t.Submit("//Alice", new AddStake(Id("//hot0"), Balance.FromTao(1))));
        while (LocalnetRuntime.BlocksUntilNextEpoch(netuid, 9, t.Chain.BlockNumber + 1) != 0) await t.Blocks(1);
        var queued = t.Chain.PendingEmission(netuid);
        Assert.True(queued > Balance.Zero);
        await t.Blocks(1); // the epoch block: pending is distributed (emission vector set), nothing queued
        Assert.Equal(Balance.Zero, t.Chain.PendingEmission(netuid));
        var n = (await t.Chain.GetNeuronAsync(netuid, 0))!;
        Assert.True(n.Emission > queued, $"epoch emission {n.Emission} should include this block's share on top of {queued}");
        Assert.Equal(Balance.FromTao(1), n.Stake); // paid at the start of the next block (drain_emission)
        await t.Blocks(1);
        Assert.Equal(Balance.FromTao(1) + n.Emission, await t.Chain.GetTotalStakeForHotkeyAsync(Id("//hot0")));
    }

    [Fact]
    public async Task After_weights_are_set_the_next_epoch_gives_the_miner_incentive_and_the_validator_dividends()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        t.Chain.SetHyperparameters(netuid, h => h with { Tempo = 9 });
        await t.Register(netuid, "//validator");
        await t.Register(netuid, "//miner");
        AssertOk(await t.Submit("//Alice", new AddStake(Id("//validator"), Balance.FromTao(100))));
        await t.Blocks(10); // one epoch: permits
        var before = (await t.Chain.GetNeuronAsync(netuid, 1))!;
        Assert.Equal(0, before.Incentive);
        AssertOk(await t.Submit("//validator", new SetWeights(netuid, [1], [65535], 0)));
        await t.Blocks(10);
        var miner = (await t.Chain.GetNeuronAsync(netuid, 1))!;
        var validator = (await t.Chain.GetNeuronAsync(netuid, 0))!;
        Assert.Equal(65535, miner.Incentive);
        Assert.Equal(65535, miner.Consensus);
        Assert.True(validator.Dividends > 0);
        Assert.True(validator.ValidatorTrust > 0);
        Assert.True(miner.Emission > Balance.Zero);
        Assert.NotEmpty(validator.Bonds);
    }
}

public sealed class BurnAdjustmentTests
{
    [Fact]
    public async Task The_burn_rises_after_an_interval_above_target_and_falls_after_an_empty_one()
    {
        await using var t = Create();
        var netuid = await t.CreateSubnet();
        t.Chain.SetHyperparameters(netuid, h => h with { TargetRegistrationsPerInterval = 1, AdjustmentInterval = 10 });
        await t.Register(netuid, "//hot0");
        await t.Register(netuid, "//hot1");
        await t.Blocks(10);
        // 1 TAO → 0.97·1 + 0.03·1.5 = 1.015 TAO; alpha truncated to 18 fractional bits moves it by about a microTAO.
        var raised = (await t.Chain.GetHyperparametersAsync(netuid))!.Burn;
        Assert.InRange(raised, 1_014_990_000UL, 1_015_010_000UL);
        await t.Blocks(10);
        var lowered = (await t.Chain.GetHyperparametersAsync(netuid))!.Burn;
        Assert.InRange(lowered, raised * 985 / 1000 - 10_000, raised * 985 / 1000 + 10_000);
    }

    [Fact]
    public void The_adjusted_burn_is_clamped_to_its_bounds()
    {
        var h = SubnetHyperparameters.Default with { Burn = 99_000_000_000, TargetRegistrationsPerInterval = 1 };
        Assert.Equal(h.MaxBurn, LocalnetRuntime.AdjustBurn(h, 200));
        var low = SubnetHyperparameters.Default with { Burn = 2, MinBurn = 2 };
        Assert.Equal(2UL, LocalnetRuntime.AdjustBurn(low, 0));
    }
}
