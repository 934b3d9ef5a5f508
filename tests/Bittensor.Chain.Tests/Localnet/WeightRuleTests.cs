using System.Collections.Immutable;
using Bittensor.Core.Domain;
using static Bittensor.Chain.Tests.Localnet.TestChain;

namespace Bittensor.Chain.Tests.Localnet;

public sealed class WeightRuleTests
{
    private static SetWeights Weights(ushort netuid, ushort[] uids, ushort[] values, ulong version = 0) =>
        new(netuid, [.. uids], [.. values], version);

    /// <summary>A subnet with hot0 (a staked validator holding a permit after one epoch) and hot1, hot2.</summary>
    private static async Task<(TestChain T, ushort Netuid)> SubnetWithValidator()
    {
        var t = Create();
        var netuid = await t.CreateSubnet();
        for (var i = 0; i < 3; i++) await t.Register(netuid, $"//hot{i}");
        AssertOk(await t.Submit("//Alice", new AddStake(Id("//hot0"), Balance.FromTao(100))));
        await t.Blocks(10); // tempo 9: one epoch gives the permits
        Assert.True((await t.Chain.GetNeuronAsync(netuid, 0))!.ValidatorPermit);
        return (t, netuid);
    }

    [Fact]
    public async Task Weights_are_stored_max_upscaled_and_update_last_update()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        AssertOk(await t.Submit("//hot0", Weights(netuid, [1, 2], [100, 50])));
        var n = (await t.Chain.GetNeuronAsync(netuid, 0))!;
        Assert.Equal([new UidWeight(1, 65535), new UidWeight(2, 32768)], n.Weights.ToArray());
        Assert.Equal(t.Chain.BlockNumber, n.LastUpdate);
    }

    [Fact]
    public async Task Unequal_uid_and_weight_lengths_fail_with_WeightVecNotEqualSize()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        AssertFails("WeightVecNotEqualSize", await t.Submit("//hot0", Weights(netuid, [1, 2], [1])));
    }

    [Fact]
    public async Task Weights_on_a_missing_subnet_fail_with_NetworkDoesNotExist()
    {
        var (t, _) = await SubnetWithValidator();
        await using var __ = t;
        AssertFails("NetworkDoesNotExist", await t.Submit("//hot0", Weights(7, [1], [1])));
    }

    [Fact]
    public async Task More_uids_than_neurons_fail_with_TooManyUids()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        AssertFails("TooManyUids", await t.Submit("//hot0", Weights(netuid, [0, 1, 2, 3], [1, 1, 1, 1])));
    }

    [Fact]
    public async Task Weights_from_an_unregistered_hotkey_fail_with_NotRegistered()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        AssertFails("NotRegistered", await t.Submit("//stranger", Weights(netuid, [1], [1])));
    }

    [Fact]
    public async Task An_old_version_key_fails_with_IncorrectNetworkVersionKey()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        t.Chain.SetHyperparameters(netuid, h => h with { WeightsVersionKey = 5 });
        AssertFails("IncorrectNetworkVersionKey", await t.Submit("//hot0", Weights(netuid, [1], [1], version: 4)));
        AssertOk(await t.Submit("//hot0", Weights(netuid, [1], [1], version: 5)));
    }

    [Fact]
    public async Task Setting_weights_again_within_the_rate_limit_fails_with_SettingWeightsTooFast()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        t.Chain.SetHyperparameters(netuid, h => h with { WeightsRateLimit = 5 });
        AssertOk(await t.Submit("//hot0", Weights(netuid, [1], [1])));
        AssertFails("SettingWeightsTooFast", await t.Submit("//hot0", Weights(netuid, [1], [1])));
        await t.Blocks(3);
        AssertOk(await t.Submit("//hot0", Weights(netuid, [1], [1])));
    }

    [Fact]
    public async Task Non_self_weights_without_a_permit_fail_with_NoValidatorPermit()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        t.Chain.SetHyperparameters(netuid, h => h with { MaxAllowedValidators = 1 });
        await t.Blocks(10); // next epoch: only the top stake (hot0) keeps a permit
        Assert.False((await t.Chain.GetNeuronAsync(netuid, 1))!.ValidatorPermit);
        AssertFails("NoValidatorPermit", await t.Submit("//hot1", Weights(netuid, [0], [1])));
        AssertOk(await t.Submit("//hot1", Weights(netuid, [1], [1]))); // self-weight needs no permit
    }

    [Fact]
    public async Task A_repeated_uid_fails_with_DuplicateUids()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        AssertFails("DuplicateUids", await t.Submit("//hot0", Weights(netuid, [1, 1], [1, 2])));
    }

    [Fact]
    public async Task A_uid_past_the_end_fails_with_InvalidUid()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        AssertFails("InvalidUid", await t.Submit("//hot0", Weights(netuid, [1, 9], [1, 2])));
    }

    [Fact]
    public async Task Fewer_weights_than_the_minimum_fail_with_NotSettingEnoughWeights()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        t.Chain.SetHyperparameters(netuid, h => h with { MinAllowedWeights = 2 });
        AssertFails("NotSettingEnoughWeights", await t.Submit("//hot0", Weights(netuid, [1], [1])));
        AssertOk(await t.Submit("//hot0", Weights(netuid, [1, 2], [1, 1])));
    }

    [Fact]
    public async Task A_normalised_weight_above_the_limit_fails_with_MaxWeightExceeded()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        t.Chain.SetHyperparameters(netuid, h => h with { MaxWeightsLimit = 40_000 }); // about 0.61
        AssertFails("MaxWeightExceeded", await t.Submit("//hot0", Weights(netuid, [1, 2], [3, 1])));
        AssertOk(await t.Submit("//hot0", Weights(netuid, [1, 2], [1, 1])));
    }

    [Fact]
    public void Max_upscaling_follows_the_runtime_fixed_point_rounding()
    {
        Assert.Equal([65535, 32768], Bittensor.Chain.Local.LocalnetRuntime.MaxUpscale([100, 50]));
        Assert.Equal([65535, 21845, 0], Bittensor.Chain.Local.LocalnetRuntime.MaxUpscale([3, 1, 0]));
        Assert.Equal([65535, 1000], Bittensor.Chain.Local.LocalnetRuntime.MaxUpscale([65535, 1000]));
        Assert.Equal([0, 0], Bittensor.Chain.Local.LocalnetRuntime.MaxUpscale([0, 0]));
    }

    [Fact]
    public async Task Weights_from_a_hotkey_below_the_minimum_stake_fail_with_NotEnoughStakeToSetWeights()
    {
        var (t, netuid) = await SubnetWithValidator();
        await using var _ = t;
        t.Chain.SetHyperparameters(netuid, h => h with { WeightsMinStake = 1_000_000_000 });
        AssertFails("NotEnoughStakeToSetWeights", await t.Submit("//hot1", Weights(netuid, [1], [1])));
        AssertOk(await t.Submit("//hot0", Weights(netuid, [1], [1])));
    }
}
