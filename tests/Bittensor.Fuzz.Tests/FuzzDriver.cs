using System.Diagnostics;

namespace Bittensor.Fuzz.Tests;

/// <summary>What one bounded run found.</summary>
internal sealed record FuzzReport(string Target, int Executions, byte[]? Input, Exception? Failure, bool Hung)
{
    public bool Clean => Failure is null && !Hung;

    public override string ToString() => Clean
        ? $"{Target}: {Executions} inputs, no finding"
        : $"{Target}: {(Hung ? "hang" : "crash")} after {Executions} inputs on input (base64) {Convert.ToBase64String(Input ?? [])}\n{Failure}";
}

/// <summary>
/// The bounded in-process driver CI runs (no coverage feedback: the engine runs of docs/fuzzing.md add that): every
/// corpus file first, then <c>iterations</c> seeded mutations of them. Stops at the first finding. A hang is an input
/// that has not returned after <c>hangAfter</c> (a guard against a loop that never ends, not a speed limit).
/// </summary>
internal static class FuzzDriver
{
    public static IReadOnlyList<byte[]> Corpus(string target)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "Corpus", target);
        if (!Directory.Exists(dir)) return [[]];
        var files = Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();
        return files.Count == 0 ? [[]] : files;
    }

    public static FuzzReport Run(FuzzTarget target, IReadOnlyList<byte[]> corpus, int iterations, int seed, TimeSpan hangAfter)
    {
        var executions = 0;
        var starts = 0;
        byte[]? current = null;
        Exception? failure = null;
        var worker = new Thread(() =>
        {
            var mutator = new Mutator(new Random(seed), corpus, target.Dictionary, target.MaxLength);
            try
            {
                foreach (var input in corpus)
                {
                    Volatile.Write(ref current, input);
                    Interlocked.Increment(ref starts);
                    target.Run(input);
                    Interlocked.Increment(ref executions);
                }
                for (var i = 0; i < iterations; i++)
                {
                    var input = mutator.Next();
                    Volatile.Write(ref current, input);
                    Interlocked.Increment(ref starts);
                    target.Run(input);
                    Interlocked.Increment(ref executions);
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        }, 64 * 1024 * 1024) { IsBackground = true, Name = $"fuzz-{target.Name}" };
        worker.Start();
        // A hang is one input that was running at the last check and still runs (so for hangAfter at least): an input
        // that completes restarts the guard, and a worker the busy machine has not run yet is no hang (counting only
        // completions, a worker not yet started by the second check was reported hung, with no input).
        var (lastDone, lastStarted) = (-1, -1);
        while (!worker.Join(hangAfter))
        {
            var (done, started) = (Volatile.Read(ref executions), Volatile.Read(ref starts));
            if (done == lastDone && started == lastStarted && started > done)
                return new FuzzReport(target.Name, done, Volatile.Read(ref current), new TimeoutException($"one input ran longer than {hangAfter}"), Hung: true);
            (lastDone, lastStarted) = (done, started);
        }
        return new FuzzReport(target.Name, executions, failure is null ? null : current, failure, Hung: false);
    }
}
