using SharpFuzz;

namespace Bittensor.Fuzz.Tests;

/// <summary>
/// Entry point of the fuzz targets outside the test runner (docs/fuzzing.md):
/// <c>afl TARGET</c> (SharpFuzz out-of-process loop for afl-fuzz), <c>libfuzzer TARGET</c> (for libfuzzer-dotnet),
/// <c>run TARGET [ITERATIONS] [SEED]</c> (the CI driver, longer), <c>repro TARGET FILE</c> (one input), <c>seeds DIR</c>
/// (writes the seed corpus).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length >= 2 && args[0] == "afl")
        {
            var target = FuzzTargets.Get(args[1]);
            Fuzzer.OutOfProcess.Run(stream =>
            {
                using var buffer = new MemoryStream();
                stream.CopyTo(buffer);
                target.Run(buffer.ToArray());
            });
            return 0;
        }
        if (args.Length >= 2 && args[0] == "libfuzzer")
        {
            var target = FuzzTargets.Get(args[1]);
            Fuzzer.LibFuzzer.Run(span => target.Run(span.ToArray()));
            return 0;
        }
        if (args.Length >= 2 && args[0] == "run")
        {
            var target = FuzzTargets.Get(args[1]);
            var iterations = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : target.Iterations;
            var seed = args.Length > 3 ? int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 13;
            var report = FuzzDriver.Run(target, FuzzDriver.Corpus(target.Name), iterations, seed, TimeSpan.FromMinutes(1));
            Console.WriteLine(report);
            return report.Clean ? 0 : 1;
        }
        if (args.Length >= 3 && args[0] == "repro")
        {
            FuzzTargets.Get(args[1]).Run(File.ReadAllBytes(args[2]));
            Console.WriteLine("no finding");
            return 0;
        }
        if (args.Length >= 2 && args[0] == "seeds")
        {
            SeedCorpus.Write(args[1]);
            return 0;
        }
        Console.Error.WriteLine("usage: afl|libfuzzer|run|repro TARGET … | seeds DIR; targets: " + string.Join(", ", FuzzTargets.Names));
        return 2;
    }
}
