using Bittensor.Chain.Yuma;
using static Bittensor.Chain.Tests.Yuma.EpochCases;

namespace Bittensor.Chain.Tests.Yuma;

/// <summary>
/// Epochs on 3–4 neurons worked by hand. Fixed-point notes used below: u16 outputs are floor(x·65535); α = 1 − 0.9
/// with 0.9 truncated to 32 fraction bits (α ≈ 0.1000000001); kappa 32767/65535 ≈ 0.49999 so minority ≈ 0.5.
/// </summary>
public sealed class YumaHandWorkedTests
{
    [Fact]
    public void An_honest_validator_pays_servers_by_its_weights_and_earns_all_dividends()
    {
        // uid0: validator, stake 1000, weights raw [1: 65535, 2: 21845]; uid1, uid2: servers without stake.
        // S = [1, 0, 0]; permits = top-1 = [T, F, F]; active stake = [1, 0, 0].
        // W row0: sum 87380, w01 = 65535/87380 = 0.75, w02 = 21845/87380 = 0.25 (both exact in binary).
        // Consensus: one staked row, so C = its row = [0, 0.75, 0.25]; clipping changes nothing.
        // Validator trust = 0.75 + 0.25 = 1 → 65535. Ranks = [0, .75, .25] → incentive u16 [0, 49151, 16383].
        // Trust = rank / prerank = [0, 1, 1]. ΔB row0 = [.75, .25] → column-normalised [1, 1]; EMA = α·1 → column
        // normalised 1; D0 = 1·.75 + 1·.25 = 1 → 65535.
        // Emission: I + D = [1, .75, .25], sum 2 → shares [.5, .375, .125] of 1e9 rao.
        // Pruning (max .5 ≤ 32768): round(x·65535/.5) = [65535, 49151.25→49151, 16383.75→16384].
        var input = Input(10, Hyper(maxValidators: 1), [
            Neuron(0, 1000, lastUpdate: 10, weights: [(1, 65535), (2, 21845)]),
            Neuron(1, 0, lastUpdate: 10),
            Neuron(2, 0, lastUpdate: 10),
        ]);
        var o = YumaEpoch.Run(input);
        Assert.Equal(new ushort[] { 0, 49151, 16383 }, o.Incentive);
        Assert.Equal(new ushort[] { 0, 49151, 16383 }, o.Rank);
        Assert.Equal(new ushort[] { 0, 49151, 16383 }, o.Consensus);
        Assert.Equal(new ushort[] { 0, 65535, 65535 }, o.Trust);
        Assert.Equal(new ushort[] { 65535, 0, 0 }, o.ValidatorTrust);
        Assert.Equal(new ushort[] { 65535, 0, 0 }, o.Dividends);
        Assert.Equal(new[] { true, false, false }, o.ValidatorPermit);
        Assert.Equal(new ulong[] { 500_000_000, 375_000_000, 125_000_000 }, o.EmissionRao);
        Assert.Equal(new ulong[] { 0, 375_000_000, 125_000_000 }, o.ServerEmissionRao);
        Assert.Equal(new ulong[] { 500_000_000, 0, 0 }, o.ValidatorEmissionRao);
        Assert.Equal(new ushort[] { 65535, 49151, 16384 }, o.PruningScores);
        Assert.Equal(new[] { new UidValue(1, 65535), new UidValue(2, 65535) }, o.Bonds[0]);
        Assert.Empty(o.Bonds[1]);
    }

    [Fact]
    public void A_colluding_minority_validator_below_kappa_gets_its_favourite_clipped_to_zero()
    {
        // uid0 honest (stake 700) → all on server 2; uid1 colluder (stake 300) → all on its friend uid3.
        // Active stake ≈ [.7, .3, 0, 0]; minority = 1 − kappa ≈ .5.
        // Column 3, scores [0, 1]: pivot = score[1] = 1; lower = {uid0} with .7 > minority → recurse → 0. C3 = 0.
        // Column 2, scores [1, 0]: pivot = 0; upper = {uid0}: 1 − .7 = .3 ≤ .5 → recurse upper → 1. C2 = 1.
        // Clip: w13 = 1 > C3 = 0 and C3 ≤ 0 → entry dropped. W' = {0: [2 → 1]}, uid1 has nothing left.
        // Ranks = [0, 0, .7, 0] → incentive [0, 0, 1, 0]; trust3 = 0 / .3 = 0; validator trust [1, 0, 0, 0].
        // ΔB only in row 0 → D = [1, 0, 0, 0]; emission [.5, 0, .5, 0] of 1e9.
        var input = Input(10, Hyper(maxValidators: 2), [
            Neuron(0, 700, lastUpdate: 10, weights: [(2, 65535)]),
            Neuron(1, 300, lastUpdate: 10, weights: [(3, 65535)]),
            Neuron(2, 0, lastUpdate: 10),
            Neuron(3, 0, lastUpdate: 10),
        ]);
        var o = YumaEpoch.Run(input);
        Assert.Equal(new ushort[] { 0, 0, 65535, 0 }, o.Consensus);
        Assert.Equal(new ushort[] { 0, 0, 65535, 0 }, o.Incentive);
        Assert.Equal(new ushort[] { 0, 0, 65535, 0 }, o.Trust);
        Assert.Equal(new ushort[] { 65535, 0, 0, 0 }, o.ValidatorTrust);
        Assert.Equal(new ushort[] { 65535, 0, 0, 0 }, o.Dividends);
        Assert.Equal(new ulong[] { 500_000_000, 0, 500_000_000, 0 }, o.EmissionRao);
        Assert.Equal(new[] { true, true, false, false }, o.ValidatorPermit);
        Assert.Empty(o.Bonds[1]);
    }

    [Fact]
    public void An_inactive_validator_has_no_active_stake_and_its_weights_do_not_count()
    {
        // block 100, activity_cutoff 50. uid1 last updated at 40: 40 + 50 < 100 → inactive.
        // S = [.5, .5, 0, 0]; both validators keep permits (top-2 by stake, activity does not matter there).
        // Active stake: uid1 masked → [.5, 0, 0, 0] → normalised [1, 0, 0, 0].
        // Only uid0 has stake in the median: C = uid0's row = [0, 0, 0, 1]. uid1's weight on server 2 exceeds
        // C2 = 0 → dropped. Incentive = [0, 0, 0, 1]; D = [1, 0, 0, 0]; emission [.5, 0, 0, .5].
        var input = Input(100, Hyper(maxValidators: 2, cutoff: 50), [
            Neuron(0, 500, lastUpdate: 100, weights: [(3, 65535)]),
            Neuron(1, 500, lastUpdate: 40, weights: [(2, 65535)]),
            Neuron(2, 0, lastUpdate: 100),
            Neuron(3, 0, lastUpdate: 100),
        ]);
        var o = YumaEpoch.Run(input);
        Assert.Equal(new[] { true, false, true, true }, o.Active);
        Assert.Equal(new ushort[] { 0, 0, 0, 65535 }, o.Consensus);
        Assert.Equal(new ushort[] { 0, 0, 0, 65535 }, o.Incentive);
        Assert.Equal(new ushort[] { 65535, 0, 0, 0 }, o.ValidatorTrust);
        Assert.Equal(new ushort[] { 65535, 0, 0, 0 }, o.Dividends);
        Assert.Equal(new ulong[] { 500_000_000, 0, 0, 500_000_000 }, o.EmissionRao);
        Assert.Equal(new[] { true, true, false, false }, o.ValidatorPermit);
        Assert.Equal(new[] { new UidValue(3, 65535) }, o.Bonds[0]);
        Assert.Empty(o.Bonds[1]);
    }

    [Fact]
    public void A_weight_and_bond_set_before_the_target_registered_are_masked()
    {
        // uid0 (validator, stake 100) last set weights at block 10: raw [1: 65535, 2: 65535], bonds [1: 65535, 2: 65535].
        // uid2 registered at block 20 (still inside its immunity period; immunity does not enter the epoch):
        // last_update_0 = 10 ≤ 20 = block_at_registration_2 → w02 and b02 removed (they were meant for the old uid 2).
        // W row0 = [1 → 1]; C = [0, 1, 0]; incentive [0, 1, 0]. Old bonds: [1 → 1] after column normalisation;
        // ΔB = [1 → 1]; EMA = α·1 + (1−α)·1 = 1 exactly; stored [1 → 65535] and no bond on uid 2.
        // D = [1, 0, 0]; emission [.5, .5, 0].
        var input = Input(30, Hyper(maxValidators: 1), [
            Neuron(0, 100, lastUpdate: 10, weights: [(1, 65535), (2, 65535)], bonds: [(1, 65535), (2, 65535)]),
            Neuron(1, 0, lastUpdate: 30, registered: 0),
            Neuron(2, 0, lastUpdate: 20, registered: 20),
        ]);
        var o = YumaEpoch.Run(input);
        Assert.Equal(new ushort[] { 0, 65535, 0 }, o.Incentive);
        Assert.Equal(new ushort[] { 0, 65535, 0 }, o.Consensus);
        Assert.Equal(new ushort[] { 65535, 0, 0 }, o.Dividends);
        Assert.Equal(new ulong[] { 500_000_000, 500_000_000, 0 }, o.EmissionRao);
        Assert.Equal(new[] { new UidValue(1, 65535) }, o.Bonds[0]);
    }

    [Fact]
    public void Self_weights_are_removed_and_emission_falls_back_to_active_stake()
    {
        // Both validators weight only themselves: the diagonal mask leaves no weights, so I + D = 0 and
        // validator emission = active stake = [.25, .75, 0] (stakes 1 and 3 of 4); no server emission.
        var input = Input(5, Hyper(maxValidators: 2), [
            Neuron(0, 1, lastUpdate: 5, weights: [(0, 65535)]),
            Neuron(1, 3, lastUpdate: 5, weights: [(1, 65535)]),
            Neuron(2, 0, lastUpdate: 5),
        ]);
        var o = YumaEpoch.Run(input);
        Assert.All(o.Incentive, v => Assert.Equal(0, v));
        Assert.Equal(new ulong[] { 250_000_000, 750_000_000, 0 }, o.ValidatorEmissionRao);
        Assert.Equal(new ulong[] { 250_000_000, 750_000_000, 0 }, o.EmissionRao);
        Assert.Equal(new ulong[] { 0, 0, 0 }, o.ServerEmissionRao);
    }

    [Fact]
    public void Weights_from_a_neuron_without_a_previous_permit_are_ignored()
    {
        // prev_validator_permit = [T, F, F]: uid1's row is masked even though uid1 now wins a permit
        // (stake 900 > 100): its stake is not active this epoch, so the server uid1 votes for gets nothing.
        var input = Input(5, Hyper(maxValidators: 1), [
            Neuron(0, 100, lastUpdate: 5, weights: [(2, 65535)]),
            Neuron(1, 900, lastUpdate: 5, weights: [(0, 65535)]),
            Neuron(2, 0, lastUpdate: 5),
        ], prev: [true, false, false]);
        var o = YumaEpoch.Run(input);
        Assert.Equal(new ushort[] { 0, 0, 65535 }, o.Incentive);
        Assert.Equal(new[] { false, true, false }, o.ValidatorPermit);
        Assert.Empty(o.Bonds[0]); // lost its permit: row cleared
    }
}
