using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using Bittensor.Neurons.Roles;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Benchmarks.Models;

/// <summary>
/// `dotnet run -c Release --project benchmarks/Bittensor.Benchmarks -- model-batching [--seconds S] [--callers C] [--seq N]`:
/// samples/s of one hosted model (default sizes from hocon/bittensor.conf) with C concurrent callers, each sending
/// one [1, N] forward request at a time through the model host (ModelHostActor), unbatched (max_batch 1) versus batched
/// (max_batch = C, max_delay 5ms). Goal: batched ≥ 3× unbatched at 64 callers.
/// </summary>
internal static class ModelBatchingHarness
{
    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = Option(args, "--seconds", 15);
        var callers = Option(args, "--callers", 64);
        var seq = Option(args, "--seq", 32);
        var settings = ModelSettings.Default with { RequestTimeout = TimeSpan.FromMinutes(5), MaxQueue = Math.Max(1024, callers * 2) };
        Console.WriteLine($"model-batching: {callers} callers, [1, {seq}] each, d_model {settings.DModel}, layers {settings.Layers}, heads {settings.Heads}, threads {settings.Threads}, {seconds}s per mode");

        var unbatched = await MeasureAsync(settings with { MaxBatch = 1, MaxDelay = TimeSpan.Zero }, callers, seq, seconds);
        Print("unbatched (max_batch 1)", unbatched);
        var batched = await MeasureAsync(settings with { MaxBatch = callers, MaxDelay = TimeSpan.FromMilliseconds(5) }, callers, seq, seconds);
        Print($"batched (max_batch {callers}, max_delay 5ms)", batched);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio batched/unbatched: {batched.SamplesPerSecond / unbatched.SamplesPerSecond:F2}x"));
        return 0;
    }

    private sealed record Result(double SamplesPerSecond, long Failed, double MeanRowsPerCall);

    private static void Print(string mode, Result r) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{mode,-40} {r.SamplesPerSecond,10:F1} samples/s   rows/call {r.MeanRowsPerCall,5:F1}   failed {r.Failed}"));

    private static async Task<Result> MeasureAsync(ModelSettings settings, int callers, int seq, int seconds)
    {
        using var system = ActorSystem.Create("model-batching", Bittensor.Actors.BittensorRuntime.ReferenceConfig);
        var model = system.ActorOf(ServerModelHost.Props(settings), "model");
        await model.Ask<ModelStats>(GetModelStats.Instance, TimeSpan.FromMinutes(1));
        var random = new Random(1);
        var tokens = Enumerable.Range(0, callers).Select(_ => Enumerable.Range(0, seq).Select(_ => (long)random.Next(50257)).ToArray()).ToArray();

        long completed = 0, failed = 0;
        var measuring = 0;
        using var stop = new CancellationTokenSource();
        async Task Caller(int index)
        {
            long id = index * 1_000_000L;
            while (!stop.IsCancellationRequested)
            {
                var r = await model.Ask<ModelForwardResult>(new ModelForward(id++, tokens[index], 1, seq), settings.RequestTimeout);
                if (Volatile.Read(ref measuring) == 0) continue;
                if (r.Code == ModelReturnCode.Success) Interlocked.Increment(ref completed);
                else Interlocked.Increment(ref failed);
            }
        }
        var tasks = Enumerable.Range(0, callers).Select(i => Task.Run(() => Caller(i))).ToArray();
        await Task.Delay(TimeSpan.FromSeconds(Math.Max(2, seconds / 5)));
        var before = await model.Ask<ModelStats>(GetModelStats.Instance, TimeSpan.FromMinutes(1));
        var clock = Stopwatch.StartNew();
        Volatile.Write(ref measuring, 1);
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref measuring, 0);
        var elapsed = clock.Elapsed.TotalSeconds;
        var after = await model.Ask<ModelStats>(GetModelStats.Instance, TimeSpan.FromMinutes(1));
        var done = Interlocked.Read(ref completed);
        await stop.CancelAsync();
        await Task.WhenAll(tasks);
        var calls = Math.Max(1, after.ForwardCalls - before.ForwardCalls);
        return new Result(done / elapsed, Interlocked.Read(ref failed), (after.ForwardRows - before.ForwardRows) / (double)calls);
    }

    internal static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
