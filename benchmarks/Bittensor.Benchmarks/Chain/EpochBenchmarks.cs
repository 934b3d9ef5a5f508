using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Bittensor.Chain.Yuma;

namespace Bittensor.Benchmarks.Chain;

/// <summary>
/// One Yuma epoch (<see cref="YumaEpoch.Run"/>, the runtime's sparse path, input validation included) for n neurons.
/// <c>Validators</c> = 128 is the spec-148 default permit count (only permitted rows take part); 0 means every
/// neuron holds a permit, the worst case.
/// </summary>
[Config(typeof(ShortInProcess))]
[MemoryDiagnoser]
public class EpochBenchmarks
{
    private EpochInput _input = null!;

    /// <summary>ShortRun (3 warm-ups, 3 iterations, 1 launch) in-process: the machine is shared and small.</summary>
    private sealed class ShortInProcess : ManualConfig
    {
        public ShortInProcess() => AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
    }

    /// <summary>Subnet size.</summary>
    [Params(256, 1024, 4096)]
    public int N { get; set; }

    /// <summary>Fraction of the uids each row weights (1.0 = dense, 0.1 = 10 % sparse).</summary>
    [Params(1.0, 0.1)]
    public double Density { get; set; }

    /// <summary>0 = every neuron holds a validator permit; otherwise max_allowed_validators.</summary>
    [Params(128, 0)]
    public int Validators { get; set; }

    [GlobalSetup]
    public void Setup() => _input = EpochBenchmarkInputs.Create(N, Density, Validators);

    /// <summary>Validation plus the whole epoch, as the localnet calls it each tempo.</summary>
    [Benchmark]
    public EpochOutput Epoch() => YumaEpoch.Run(_input);
}

/// <summary>Deterministic epoch inputs shared by the BenchmarkDotNet class and the CPU-time harness.</summary>
public static class EpochBenchmarkInputs
{
    /// <summary>
    /// Seeded (42) input: every neuron staked; each row weights the same column set (all uids, or a fixed 10 % of
    /// them) with per-validator noise of ±25 % around a per-column base value, so validators broadly agree, the
    /// consensus is non-zero and clipping bites, as on a working subnet. Bonds are the output of one earlier epoch.
    /// </summary>
    public static EpochInput Create(int n, double density, int validators)
    {
        var rng = new Random(42);
        var baseWeight = new int[n];
        for (int j = 0; j < n; j++) baseWeight[j] = rng.Next(1000, 52000);
        int[] columns = density >= 1.0
            ? [.. Enumerable.Range(0, n)]
            : [.. Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Take(Math.Max(1, (int)(n * density))).Order()];
        var neurons = new EpochNeuron[n];
        var row = new List<UidValue>(columns.Length);
        for (int i = 0; i < n; i++)
        {
            row.Clear();
            foreach (int j in columns)
            {
                if (j == i) continue;
                int w = (int)(baseWeight[j] * (0.75 + 0.5 * rng.NextDouble()));
                row.Add(new UidValue((ushort)j, (ushort)Math.Clamp(w, 1, 65535)));
            }
            neurons[i] = new EpochNeuron((ushort)i, (ulong)rng.NextInt64(1, 1_000_000_000_000_000), 1000, 0, [.. row], []);
        }
        var hp = YumaHyperparams.Default with { MaxAllowedValidators = (ushort)(validators == 0 ? n : validators) };
        var first = YumaEpoch.Run(new EpochInput(1000, 360, 1_000_000_000, hp, neurons));
        return new EpochInput(1001, 360, 1_000_000_000, hp,
            [.. neurons.Select(ne => ne with { Bonds = first.Bonds[ne.Uid] })], first.ValidatorPermit);
    }

    /// <summary>
    /// <c>dotnet run -c Release -- epoch-cpu</c>: process CPU time per epoch (median of 5 after 40 warm-ups, 4 for n = 4096), which
    /// stays meaningful when other jobs share the cores and inflate wall-clock figures.
    /// </summary>
    public static void RunCpuTime()
    {
        var proc = Process.GetCurrentProcess();
        Console.WriteLine("| n | density | validators | CPU ms/epoch (median of 5) | entries kept in W |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (int n in new[] { 256, 1024, 4096 })
        foreach (double density in new[] { 1.0, 0.1 })
        foreach (int validators in new[] { 128, 0 })
        {
            var input = Create(n, density, validators);
            // Enough calls for tiered JIT to reach optimised code before measuring.
            int warmups = n <= 1024 ? 40 : 4;
            for (int w = 0; w < warmups; w++) YumaEpoch.Run(input);
            var times = new double[5];
            for (int r = 0; r < times.Length; r++)
            {
                proc.Refresh();
                var t0 = proc.TotalProcessorTime;
                YumaEpoch.Run(input);
                proc.Refresh();
                times[r] = (proc.TotalProcessorTime - t0).TotalMilliseconds;
            }
            Array.Sort(times);
            long kept = 0;
            var permits = input.PrevValidatorPermit!;
            foreach (var ne in input.Neurons) if (permits[ne.Uid]) kept += ne.Weights.Count;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {n} | {density:0.0} | {(validators == 0 ? "all" : validators.ToString(CultureInfo.InvariantCulture))} | {times[2]:F1} | {kept} |"));
        }
    }
}
