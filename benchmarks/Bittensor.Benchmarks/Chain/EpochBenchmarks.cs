using BenchmarkDotNet.Attributes;
using Bittensor.Chain.Yuma;

namespace Bittensor.Benchmarks.Chain;

/// <summary>
/// One Yuma epoch (<see cref="YumaEpoch.Run"/>, the runtime's sparse path) for n neurons. Inputs come from a
/// seeded <see cref="Random"/>: every neuron has stake and a weights row of the given density; bonds are the
/// steady state of one previous epoch. <c>Validators</c> = 128 is the spec-148 default permit count (only permitted
/// rows take part); <c>Validators</c> = n is the worst case where every neuron is a validator.
/// </summary>
[ShortRunJob]
[MemoryDiagnoser]
public class EpochBenchmarks
{
    private EpochInput _input = null!;

    /// <summary>Subnet size.</summary>
    [Params(256, 1024, 4096)]
    public int N { get; set; }

    /// <summary>Fraction of the other uids each row weights (1.0 = dense, 0.1 = 10 % sparse).</summary>
    [Params(1.0, 0.1)]
    public double Density { get; set; }

    /// <summary>0 = every neuron holds a validator permit; otherwise max_allowed_validators.</summary>
    [Params(128, 0)]
    public int Validators { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(42);
        var neurons = new EpochNeuron[N];
        var row = new List<UidValue>(N);
        for (int i = 0; i < N; i++)
        {
            row.Clear();
            for (int j = 0; j < N; j++)
                if (j != i && rng.NextDouble() < Density) row.Add(new UidValue((ushort)j, (ushort)rng.Next(1, 65536)));
            neurons[i] = new EpochNeuron((ushort)i, (ulong)rng.NextInt64(1, 1_000_000_000_000_000), 1000, 0, row.ToArray(), []);
        }
        var hp = YumaHyperparams.Default with { MaxAllowedValidators = (ushort)(Validators == 0 ? N : Validators) };
        var first = YumaEpoch.Run(new EpochInput(1000, 360, 1_000_000_000, hp, neurons));
        _input = new EpochInput(1001, 360, 1_000_000_000, hp,
            [.. neurons.Select(ne => ne with { Bonds = first.Bonds[ne.Uid] })], first.ValidatorPermit);
    }

    /// <summary>Validation plus the whole epoch, as the localnet calls it each tempo.</summary>
    [Benchmark]
    public EpochOutput Epoch() => YumaEpoch.Run(_input);
}
