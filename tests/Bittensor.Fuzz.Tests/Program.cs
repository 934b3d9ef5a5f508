using SharpFuzz;

namespace Bittensor.Fuzz.Tests;

/// <summary>
/// Entry point of the fuzz targets outside the test runner (docs/fuzzing.md):
/// <c>afl TARGET</c> (SharpFuzz out-of-process loop for afl-fuzz), <c>libfuzzer TARGET</c> (for libfuzzer-dotnet),
/// <c>run TARGET [ITERATIONS] [SEED]</c> (the CI driver, longer), <c>repro TARGET FILE</c> (one input), <c>seeds DIR</c>
/// (writes the seed corpus), <c>dict TARGET FILE</c> (the target's tokens as an AFL++ dictionary).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        // Bad arguments get one line and exit 2; what a target throws is a finding and is left to escape (with its trace).
        if (args.Length >= 2 && args[0] != "seeds" && !FuzzTargets.Names.Contains(args[1]))
        {
            Console.Error.WriteLine($"error: unknown fuzz target '{args[1]}' (known: {string.Join(", ", FuzzTargets.Names)})");
            return 2;
        }
        if (args.Length >= 3 && args[0] == "run" && args.Skip(2).Any(a => !int.TryParse(a, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _)))
        {
            Console.Error.WriteLine("error: run TARGET [ITERATIONS] [SEED]: ITERATIONS and SEED are non-negative integers");
            return 2;
        }
        return Run(args);
    }

    private static int Run(string[] args)
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
        if (args.Length >= 3 && args[0] == "dict")
        {
            // The target's tokens as an AFL++ dictionary (afl-fuzz -x FILE): one "…" line each, \xNN for bytes outside
            // printable ASCII and for " and \.
            var lines = FuzzTargets.Get(args[1]).Dictionary.Select(token =>
                "\"" + string.Concat(token.Select(b => b is >= 0x20 and < 0x7f and not (byte)'"' and not (byte)'\\' ? ((char)b).ToString() : $"\\x{b:x2}")) + "\"");
            File.WriteAllLines(args[2], lines);
            return 0;
        }
        if (args.Length >= 2 && args[0] == "seeds")
        {
            SeedCorpus.Write(args[1]);
            return 0;
        }
        Console.Error.WriteLine("usage: afl|libfuzzer|run|repro|dict TARGET … | seeds DIR; targets: " + string.Join(", ", FuzzTargets.Names));
        return 2;
    }
}
