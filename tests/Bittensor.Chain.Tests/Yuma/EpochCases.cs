using Bittensor.Chain.Yuma;

namespace Bittensor.Chain.Tests.Yuma;

/// <summary>Small builders for epoch inputs used by the Yuma tests.</summary>
internal static class EpochCases
{
    public static EpochNeuron Neuron(ushort uid, ulong stake, ulong lastUpdate = 1, ulong registered = 0,
        (int Uid, int Value)[]? weights = null, (int Uid, int Value)[]? bonds = null) =>
        new(uid, stake, lastUpdate, registered, Row(weights), Row(bonds));

    public static UidValue[] Row((int Uid, int Value)[]? entries) =>
        entries is null ? [] : [.. entries.Select(e => new UidValue((ushort)e.Uid, (ushort)e.Value))];

    public static YumaHyperparams Hyper(ushort maxValidators, ushort kappa = 32_767, ulong bma = 900_000, ushort cutoff = 5_000) =>
        new(kappa, bma, cutoff, maxValidators, 4_096, 0, 65_535);

    public static EpochInput Input(ulong block, YumaHyperparams hp, EpochNeuron[] neurons, bool[]? prev = null, ulong emission = 1_000_000_000) =>
        new(block, 360, emission, hp, neurons, prev);

    /// <summary>Dense view of a sparse bonds row (missing entries are 0).</summary>
    public static ushort[] Dense(UidValue[] row, int n)
    {
        var d = new ushort[n];
        foreach (var e in row) d[e.Uid] = e.Value;
        return d;
    }

    /// <summary>A random but chain-plausible epoch input, reproducible from <paramref name="seed"/>.</summary>
    public static EpochInput Random(int seed, int maxN = 10, bool distinctStakes = false, bool bondsOnlyWhenStaked = false, bool ties = false)
    {
        var rng = new Random(seed);
        int n = rng.Next(1, maxN + 1);
        ulong block = (ulong)rng.Next(0, 200);
        var hp = new YumaHyperparams(
            Kappa: ties ? (ushort)new[] { 0, 1, 32_767, 32_768, 65_534, 65_535, rng.Next(0, 65536) }[rng.Next(7)]
                : (ushort)(rng.Next(4) == 0 ? rng.Next(0, 65536) : 32_767),
            BondsMovingAverage: (ulong)(rng.Next(3) == 0 ? rng.Next(0, 1_000_001) : 900_000),
            ActivityCutoff: (ushort)rng.Next(0, 150),
            MaxAllowedValidators: (ushort)rng.Next(1, n + 2),
            ImmunityPeriod: 10, MinAllowedWeights: 0, MaxWeightsLimit: 65_535);
        var stakes = new ulong[n];
        var used = new HashSet<ulong>();
        for (int i = 0; i < n; i++)
        {
            if (distinctStakes)
            {
                ulong s;
                do s = (ulong)rng.Next(1, 1 << 20); while (!used.Add(s));
                stakes[i] = s;
            }
            else
            {
                stakes[i] = rng.Next(4) == 0 ? 0UL
                    : ties ? (ulong)new[] { 1, 2, 3, 1_000_000_000_000 }[rng.Next(4)]
                    : (ulong)rng.NextInt64(1, 10_000_000_000_000);
            }
        }
        var neurons = new EpochNeuron[n];
        for (int i = 0; i < n; i++)
        {
            neurons[i] = new EpochNeuron((ushort)i, stakes[i], (ulong)rng.Next(0, 200), (ulong)rng.Next(0, 120),
                RandomRow(rng, n, rng.Next(3) == 0 ? 0 : rng.Next(1, n + 1), ties),
                bondsOnlyWhenStaked && stakes[i] == 0 ? [] : RandomRow(rng, n, rng.Next(0, n + 1), ties));
        }
        bool[]? prev = null;
        if (rng.Next(2) == 0)
        {
            prev = new bool[n];
            for (int i = 0; i < n; i++) prev[i] = rng.Next(3) != 0;
        }
        return new EpochInput(block, 100, (ulong)rng.NextInt64(0, 2_000_000_000_000), hp, neurons, prev);
    }

    private static UidValue[] RandomRow(Random rng, int n, int count, bool ties = false)
    {
        ushort[] few = [0, 1, 16384, 32768, 65535];
        var targets = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Take(count).ToArray();
        var row = new UidValue[count];
        for (int t = 0; t < count; t++)
            row[t] = new UidValue((ushort)targets[t],
                ties ? few[rng.Next(few.Length)] : (ushort)(rng.Next(5) == 0 ? 65535 : rng.Next(0, 65536)));
        return row;
    }
}
