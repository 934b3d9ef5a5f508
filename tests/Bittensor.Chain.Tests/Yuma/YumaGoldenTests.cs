using Bittensor.Chain.Yuma;
using static Bittensor.Chain.Tests.Yuma.EpochCases;

namespace Bittensor.Chain.Tests.Yuma;

/// <summary>
/// Numbers from subtensor's own tests at da21fb6a (pallets/subtensor/tests/epoch.rs): the asserted values and the
/// E (emission) lines of the traces logged in the comments of those tests. Weights are given as stored on chain
/// (set_weights max-upscales them).
/// </summary>
public sealed class YumaGoldenTests
{
    private static readonly bool[] AllPermits8 = [true, true, true, true, true, true, true, true];

    private static EpochNeuron[] BondsNeurons(UidValue[][] weights, ulong[] lastUpdate, UidValue[][] bonds)
    {
        ulong[] stakes = [1, 2, 3, 4, 0, 0, 0, 0];
        return [.. Enumerable.Range(0, 8).Select(i =>
            new EpochNeuron((ushort)i, stakes[i], lastUpdate[i], 0, weights[i], bonds[i]))];
    }

    [Fact]
    public void Test_bonds_sequence_from_subtensor_matches_bonds_and_emission_every_epoch()
    {
        // test_bonds: 4 validators (stake 1..4) weighting servers 4..7 with 0.1/0.2/0.3/0.4, then validators
        // switching one by one to self-weights, then uid2 moving all weight to server 7.
        var hp = new YumaHyperparams(32_767, 900_000, 5_000, 8, 2, 1, 65_535);
        var honest = Row([(4, 16383), (5, 32767), (6, 49149), (7, 65535)]);
        var w = new UidValue[8][];
        for (int i = 0; i < 8; i++) w[i] = i < 4 ? honest : [];
        var bonds = new UidValue[8][];
        for (int i = 0; i < 8; i++) bonds[i] = [];
        ulong[] lu = [1, 1, 1, 1, 0, 0, 0, 0];

        EpochOutput Step(ulong block)
        {
            var o = YumaEpoch.Run(new EpochInput(block, 65_534, 1_000_000_000, hp, BondsNeurons(w, lu, bonds), AllPermits8));
            bonds = o.Bonds;
            return o;
        }

        var o1 = Step(1);
        Assert.Equal(new ulong[] { 49999998, 99999999, 150000000, 200000001, 49998779, 100000610, 149996337, 200004272 }, o1.EmissionRao);
        Assert.Equal(new ushort[] { 16383, 32767, 49151, 65535 }, Col(bonds, 4));

        w[0] = Row([(0, 65535)]);
        var o2 = Step(2);
        Assert.Equal(new ulong[] { 44998351, 101110561, 151667215, 202223870, 49998779, 100000610, 149996337, 200004272 }, o2.EmissionRao);
        Assert.Equal(new ushort[] { 14582, 32767, 49151, 65535 }, Col(bonds, 4));

        w[1] = Row([(1, 65535)]); lu[1] = 2;
        var o3 = Step(3);
        Assert.Equal(new ulong[] { 40496805, 90999783, 157929636, 210573773, 49998779, 100000610, 149996337, 200004272 }, o3.EmissionRao);
        Assert.Equal(new ushort[] { 12603, 28321, 49151, 65535 }, Col(bonds, 4));

        w[2] = Row([(2, 65535)]); lu[2] = 3;
        var o4 = Step(4);
        Assert.Equal(new ulong[] { 99999999, 199999999, 299999999, 399999999, 0, 0, 0, 0 }, o4.EmissionRao);
        Assert.Equal(new ushort[] { 12602, 28320, 49150, 65535 }, Col(bonds, 7));

        w[2] = Row([(7, 65535)]); lu[2] = 4;
        var o5 = Step(5);
        Assert.Equal(new ulong[] { 36443733, 81898628, 163565493, 218092144, 0, 0, 0, 500000000 }, o5.EmissionRao);
        Assert.Equal(new ushort[] { 10951, 24609, 49150, 65535 }, Col(bonds, 7));
        // Full stored rows as logged ("B:") at the start of the block-6 epoch.
        Assert.Equal(Row([(4, 12601), (5, 12601), (6, 12601), (7, 10951)]), bonds[0]);
        Assert.Equal(Row([(4, 49149), (5, 49149), (6, 49149), (7, 49150)]), bonds[2]);

        var o6 = Step(6);
        Assert.Equal(new ulong[] { 32799427, 73706612, 168638129, 224855830, 0, 0, 0, 500000000 }, o6.EmissionRao);
        Assert.Equal(new ushort[] { 9559, 21482, 49150, 65535 }, Col(bonds, 7));

        var o7 = Step(7);
        Assert.Equal(new ulong[] { 29518068, 66336137, 173203134, 230942659, 0, 0, 0, 500000000 }, o7.EmissionRao);
        Assert.Equal(new ushort[] { 8376, 18824, 49150, 65535 }, Col(bonds, 7));

        var o8 = Step(8);
        Assert.Equal(new ulong[] { 26565175, 59701871, 177311856, 236421095, 0, 0, 0, 500000000 }, o8.EmissionRao);
    }

    [Fact]
    public void Test_active_stake_from_subtensor_shifts_dividends_to_the_still_active_validator()
    {
        // test_active_stake: 4 neurons with stake 1; uids 0 and 1 weight servers 2 and 3 equally.
        var hp = new YumaHyperparams(32_767, 900_000, 5_000, 4, 2, 0, 65_535);
        var half = Row([(2, 65535), (3, 65535)]); // set_weights([32767, 32767]) max-upscaled
        bool[] permits = [true, true, true, true];
        EpochNeuron[] Neurons(ulong[] lu, UidValue[][] bonds) =>
            [.. Enumerable.Range(0, 4).Select(i => new EpochNeuron((ushort)i, 1, lu[i], 0, i < 2 ? half : [], bonds[i]))];

        var o1 = YumaEpoch.Run(new EpochInput(1, 65_534, 1_000_000_000, hp, Neurons([1, 1, 0, 0], [[], [], [], []]), permits));
        Assert.Equal(32767, o1.Dividends[0]);
        Assert.Equal(32767, o1.Dividends[1]);
        Assert.All(o1.EmissionRao, e => Assert.Equal(250_000_000UL, e));
        Assert.Equal(half, o1.Bonds[0]);
        Assert.Equal(half, o1.Bonds[1]);

        // Block 5002: only uid0 refreshed its weights; uid1 (last update 1) is now beyond the 5000-block cutoff.
        var o2 = YumaEpoch.Run(new EpochInput(5002, 65_534, 1_000_000_000, hp, Neurons([5002, 1, 0, 0], o1.Bonds), permits));
        Assert.Equal(new[] { true, false, false, false }, o2.Active);
        Assert.Equal(36044, o2.Dividends[0]);
        Assert.Equal(29490, o2.Dividends[1]);
        Assert.Equal(new ulong[] { 274999999, 224999999, 250000000, 250000000 }, o2.EmissionRao);
        Assert.Equal(half, o2.Bonds[0]);
        Assert.Equal(Row([(2, 53619), (3, 53619)]), o2.Bonds[1]);
    }

    [Fact]
    public void Test_outdated_weights_from_subtensor_masks_weights_and_bonds_on_a_re_registered_uid()
    {
        // test_outdated_weights: validators 0 and 1 weight servers 2 and 3 as 2/3 and 1/3 (stored max-upscaled:
        // 65535, 32768); servers self-weight. Then uid 3 is replaced by a new hotkey registered at block 1 (stake 0)
        // and only uid 0 sets weights again (block 2).
        var hp = new YumaHyperparams(32_767, 900_000, 5_000, 4, 2, 0, 65_535);
        var twoThirds = Row([(2, 65535), (3, 32768)]);
        UidValue[][] weights = [twoThirds, twoThirds, Row([(2, 65535)]), Row([(3, 65535)])];
        EpochNeuron[] Neurons(ulong[] stake, ulong[] lu, ulong[] bar, UidValue[][] bonds) =>
            [.. Enumerable.Range(0, 4).Select(i => new EpochNeuron((ushort)i, stake[i], lu[i], bar[i], weights[i], bonds[i]))];

        var o1 = YumaEpoch.Run(new EpochInput(1, 65_534, 1_000_000_000, hp,
            Neurons([1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [[], [], [], []]), [true, true, true, true]));
        Assert.Equal(new ulong[] { 250000000, 250000000, 333331637, 166668361 }, o1.EmissionRao);
        // (The trace's "P (u16)" line shows truncated values; the code rounds, as math.rs test_vec_max_upscale_to_u16
        // pins down, see FixedPointTests. So pruning scores are not compared against that line.)
        Assert.Equal(Row([(2, 65535), (3, 65535)]), o1.Bonds[0]);

        var o2 = YumaEpoch.Run(new EpochInput(2, 65_534, 1_000_000_000, hp,
            Neurons([1, 1, 1, 0], [2, 1, 1, 1], [0, 0, 0, 1], o1.Bonds), [true, true, true, false]));
        // Logged: C = [0, 0, 0.6666632756, 0], T = [0, 0, 0.799997558, 0], I = [0, 0, 1, 0], D = [0.5, 0.5, 0, 0].
        Assert.Equal(new ushort[] { 0, 0, 43689, 0 }, o2.Consensus); // floor(0.6666632756 · 65535)
        Assert.Equal(new ushort[] { 0, 0, 52427, 0 }, o2.Trust);     // floor(0.799997558 · 65535)
        Assert.Equal(new ushort[] { 0, 0, 65535, 0 }, o2.Incentive);
        Assert.Equal(32767, o2.Dividends[0]);
        Assert.Equal(new ulong[] { 250000000, 250000000, 500000000, 0 }, o2.EmissionRao);
        // round(0.25 · 65535 / 0.5) = round(32767.5) = 32768 (ties away from zero); the trace line says 32767.
        Assert.Equal(new ushort[] { 32768, 32768, 65535, 0 }, o2.PruningScores);
        Assert.Equal(Row([(2, 65535), (3, 65535)]), o2.Bonds[0]); // uid 0 updated after the re-registration
        Assert.Equal(Row([(2, 65535)]), o2.Bonds[1]);              // uid 1's bond on the new uid 3 is masked
        Assert.Equal(new[] { true, true, true, true }, o2.ValidatorPermit);
    }

    private static ushort[] Col(UidValue[][] bonds, int column) =>
        [.. Enumerable.Range(0, 4).Select(i => Dense(bonds[i], 8)[column])];
}
