using System.Globalization;
using System.Text;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace Bittensor.Benchmarks.Axon;

/// <summary>
/// <c>alloc-stacks FILE.nettrace [--min_bytes N] [--frames N] [--top N]</c>: where a process allocated, from a
/// <c>dotnet-trace</c> of the runtime's GC events at verbose level (<c>--providers Microsoft-Windows-DotNETRuntime:0x1:5</c>):
/// the GC's AllocationTick events (one per ~100 KB allocated, with the type and size of the object that crossed the mark,
/// and its stack), summed by type and by stack for objects of at least <c>--min_bytes</c> (default 85,000: the
/// large-object heap), plus the GC count by generation. Used by benchmarks/overload-alloc.sh (issue 11, session 12);
/// figures in benchmarks/results/axon.md. Exit code 2 on a bad argument or an unreadable trace.
/// </summary>
internal static class AllocStacks
{
    public static int Run(string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith("--", StringComparison.Ordinal))
        {
            Console.Error.WriteLine("usage: alloc-stacks FILE.nettrace [--min_bytes 85000] [--frames 8] [--top 12]");
            return 2;
        }
        var file = args[0];
        long min = 85_000;
        int frames = 8, top = 12;
        for (var i = 1; i < args.Length; i++)
        {
            if (i + 1 >= args.Length || !long.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < 0)
            {
                Console.Error.WriteLine($"alloc-stacks: {args[i]} needs a non-negative number");
                return 2;
            }
            switch (args[i])
            {
                case "--min_bytes": min = value; break;
                case "--frames": frames = (int)Math.Min(value, 64); break;
                case "--top": top = (int)Math.Min(value, 1000); break;
                default:
                    Console.Error.WriteLine($"alloc-stacks: unknown option {args[i]}");
                    return 2;
            }
            i++;
        }
        if (!File.Exists(file))
        {
            Console.Error.WriteLine($"alloc-stacks: {file} not found");
            return 2;
        }
        TraceLog log;
        try
        {
            log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(file));
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"alloc-stacks: {file} is not a readable .nettrace ({e.GetType().Name}: {e.Message})");
            return 2;
        }
        using (log)
        {
            Report(log, file, min, frames, top);
        }
        return 0;
    }

    private static void Report(TraceLog log, string file, long min, int frames, int top)
    {
        var byStack = new Dictionary<string, (long Bytes, long Ticks)>();
        var byType = new Dictionary<string, (long Bytes, long Ticks)>();
        long sampled = 0, ticks = 0, largeTicks = 0, largeBytes = 0;
        var gcs = new long[3];
        double first = double.MaxValue, last = 0;
        foreach (var e in log.Events)
        {
            if (e is GCStartTraceData gc)
            {
                gcs[Math.Clamp(gc.Depth, 0, 2)]++;
                continue;
            }
            if (e is not GCAllocationTickTraceData t) continue;
            first = Math.Min(first, e.TimeStampRelativeMSec);
            last = Math.Max(last, e.TimeStampRelativeMSec);
            ticks++;
            sampled += t.AllocationAmount64;
            if (t.AllocationKind == GCAllocationKind.Large)
            {
                largeTicks++;
                largeBytes += t.AllocationAmount64;
            }
            if (t.ObjectSize < min) continue;
            var type = $"{t.TypeName ?? "?"} of {t.ObjectSize:N0} B ({t.AllocationKind})";
            var stack = new StringBuilder(type).Append('\n');
            var shown = 0;
            for (var f = e.CallStack(); f is not null && shown < frames; f = f.Caller)
            {
                var name = f.CodeAddress.FullMethodName;
                if (string.IsNullOrEmpty(name)) name = $"{f.CodeAddress.ModuleName}!0x{f.CodeAddress.Address:x}";
                // The allocator's own frames say nothing about the caller.
                if (name.StartsWith("System.GC.", StringComparison.Ordinal) || name.Contains("AllocateNewArray", StringComparison.Ordinal)) continue;
                stack.Append("      ").Append(name).Append('\n');
                shown++;
            }
            var key = stack.ToString();
            byStack[key] = byStack.TryGetValue(key, out var s) ? (s.Bytes + t.AllocationAmount64, s.Ticks + 1) : (t.AllocationAmount64, 1);
            byType[type] = byType.TryGetValue(type, out var ty) ? (ty.Bytes + t.AllocationAmount64, ty.Ticks + 1) : (t.AllocationAmount64, 1);
        }
        var seconds = ticks == 0 ? 0 : (last - first) / 1000;
        Console.WriteLine($"# {file}: {ticks:N0} allocation ticks over {seconds:F1} s standing for {sampled / 1e6:F1} MB allocated " +
            $"({(seconds > 0 ? sampled / 1e6 / seconds : 0):F1} MB/s); large-object heap: {largeTicks:N0} ticks, {largeBytes / 1e6:F1} MB " +
            $"({(seconds > 0 ? largeBytes / 1e6 / seconds : 0):F1} MB/s); GCs gen0 {gcs[0]}, gen1 {gcs[1]}, gen2 {gcs[2]}");
        Console.WriteLine($"# objects of at least {min:N0} B that crossed a tick, by type (MB the ticks stand for, ticks):");
        foreach (var (k, v) in byType.OrderByDescending(x => x.Value.Bytes).Take(top))
            Console.WriteLine($"{v.Bytes / 1e6,9:F1} MB {v.Ticks,7:N0}  {k}");
        Console.WriteLine("# by stack:");
        foreach (var (k, v) in byStack.OrderByDescending(x => x.Value.Bytes).Take(top))
            Console.Write($"{v.Bytes / 1e6,9:F1} MB {v.Ticks,7:N0}  {k}");
    }
}
