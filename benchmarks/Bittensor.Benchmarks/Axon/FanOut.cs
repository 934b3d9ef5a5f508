using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Dendrite;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Benchmarks.Axon;

/// <summary>
/// One forward round to many axons through the dendrite (endpoint actors, Akka.Streams fan-out, every request signed
/// with //Alice): <c>fanout [--targets host:port,…|@file] [--axons 16,64] [--rounds 50] [--warmup 5] [--shape 1,8]
/// [--network_dim 1024] [--timeout 30] [--parallelism 256] [--pids p,…] [--signature_reuse ms] [--sign_ahead 0|1] [--transport lean|grpc] [--io batch|loop|sockets] [--dispatcher loop|pool] [--sign_ahead_on pool] [--loop_runs 64] [--batch_chunk 16] [--perf_ctl fifo]</c>
/// (the last three: the dendrite's <c>signature_reuse</c>, 0 = sign every call, <c>sign_ahead</c> and <c>transport</c>; without them the
/// reference configuration's values).
/// With <c>--targets</c> the axons run elsewhere (other processes: benchmarks/fanout.sh) and each count N in
/// <c>--axons</c> (default: all targets) queries the first N; <c>@file</c> reads one <c>host:port</c> per line.
/// Without it the axons (echo model) run in this process, as before (their CPU then counts as the client's).
/// Per count: round time p50/p99 after <c>--warmup</c> unmeasured rounds, and over the measured rounds this process's
/// CPU (utime + stime from /proc/self/stat) per answered request (Success), bytes allocated per answered request and
/// gen-0 collections per 100 answered requests; with <c>--pids</c> also the CPU those processes (the axons) spent over the
/// measured rounds per call made. <c>--perf_ctl</c> names a <c>perf stat|record --control fifo:…</c> control FIFO: the
/// harness writes <c>enable</c> to it right before the measured rounds and <c>disable</c> right after, so perf counts the
/// measured rounds only (start with <c>-D -1</c>, events off). The CPU per answer is also printed split into user and
/// kernel time.
/// </summary>
internal static partial class FanOutLoad
{
    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Sec;
        public long Nsec;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec ts);

    private static double ThreadCpuUs()
    {
        ClockGetTime(3, out var ts); // CLOCK_THREAD_CPUTIME_ID
        return (ts.Sec * 1e6) + (ts.Nsec / 1e3);
    }

    public static async Task<int> Run(string[] args)
    {
        var opts = Args.Parse(args);
        List<EndpointInfo>? remote;
        try
        {
            remote = ParseTargets(opts.Get("targets", ""));
        }
        catch (Exception e) when (e is FormatException or IOException or OverflowException)
        {
            Console.Error.WriteLine($"fanout: --targets: {e.Message}");
            return 2;
        }
        var counts = opts.Get("axons", remote is null ? "16,64,256" : remote.Count.ToString(CultureInfo.InvariantCulture))
            .Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        if (remote is not null && counts.Any(n => n < 1 || n > remote.Count))
        {
            Console.Error.WriteLine($"fanout: --axons must be between 1 and the {remote.Count} targets given");
            return 2;
        }
        var rounds = int.Parse(opts.Get("rounds", "20"), CultureInfo.InvariantCulture);
        var warmupRounds = int.Parse(opts.Get("warmup", "1"), CultureInfo.InvariantCulture);
        var shape = opts.Get("shape", "1,8").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var dim = int.Parse(opts.Get("network_dim", "1024"), CultureInfo.InvariantCulture);
        var timeout = TimeSpan.FromSeconds(double.Parse(opts.Get("timeout", "30"), CultureInfo.InvariantCulture));
        var parallelism = int.Parse(opts.Get("parallelism", "256"), CultureInfo.InvariantCulture);
        var perfCtl = opts.Get("perf_ctl", "");
        // Processes serving the axons (benchmarks/fanout.sh passes them): their CPU over the measured rounds, per call.
        var serverPids = opts.Get("pids", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        var config = ConfigurationFactory.ParseString("akka.loglevel = WARNING").WithFallback(BittensorRuntime.ReferenceConfig);
        var system = ActorSystem.Create("fanout", config);
        Console.WriteLine($"# fanout rounds={rounds} warmup={warmupRounds} shape=[{string.Join(",", shape)}] answer=[{shape[0]},{shape[1]},{dim}] " +
            $"axons={(remote is null ? "in-process" : $"{remote.Count} targets")} cores={Environment.ProcessorCount} " +
            $"load average {LoadAverage()}");
        Console.WriteLine($"| axons | p50 round ms | p99 round ms | rounds/s | answers ok | {(remote is null ? "process (client + axons)" : "client")} CPU µs per answer | KB allocated per answer | gen0 GCs per 100 answers | axon processes' CPU µs per call |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var axonSettings = AxonSettings.Default with { Ip = "127.0.0.1", Port = 0, NetworkDim = dim, MaxWorkers = 2 };
        var endpoints = new List<EndpointInfo>();
        try
        {
            using var key = SecretUri.ToSr25519("//Alice");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"# this thread's CPU per signed request header (RequestAuth.CreateHeadersAsync: nonce, sr25519 sign, hex; what the dendrite pays per call): {SigningCostUs(key):F1} us"));
            var settings = DendriteSettings.Default with { NetworkDim = dim, Parallelism = parallelism, Timeout = timeout };
            if (opts.Has("signature_reuse")) settings = settings with { SignatureReuse = TimeSpan.FromMilliseconds(double.Parse(opts.Get("signature_reuse", "50"), CultureInfo.InvariantCulture)) };
            if (opts.Has("sign_ahead")) settings = settings with { SignAhead = opts.Get("sign_ahead", "1") is not ("0" or "off" or "false") };
            if (opts.Has("transport")) settings = (settings with { Transport = opts.Get("transport", "lean") }).Validate();
            if (opts.Has("io")) settings = (settings with { Io = opts.Get("io", "sockets") }).Validate();
            if (opts.Has("dispatcher")) settings = (settings with { Dispatcher = opts.Get("dispatcher", "loop") }).Validate();
            if (opts.Has("loop_runs")) Bittensor.Protocol.Lean.ClientIoLoop.RunsPerTurn = int.Parse(opts.Get("loop_runs", "64"), CultureInfo.InvariantCulture);
            if (opts.Has("batch_chunk")) Bittensor.Protocol.SendBatch.Chunk = int.Parse(opts.Get("batch_chunk", "16"), CultureInfo.InvariantCulture);
            Console.WriteLine($"# dendrite transport: {settings.Transport}, io {settings.Io}, dispatcher {settings.Dispatcher}, sign_ahead {(settings.SignAhead ? "on" : "off")}");
            // --sign_ahead_on pool: the dendrite's signing ahead as a thread-pool work item even with its actors on the I/O loop.
            var options = opts.Get("sign_ahead_on", "") == "pool"
                ? new DendriteOptions { SignAheadRunner = static work => ThreadPool.UnsafeQueueUserWorkItem(static w => _ = w(), work, preferLocal: false) }
                : null;
            var dendrite = new Bittensor.Actors.Dendrite.Dendrite(system, new KeyPairRequestSigner(key), settings, options);
            var tokens = new long[shape[0], shape[1]];
            for (var s = 0; s < shape[1]; s++) tokens[0, s] = s + 1;
            foreach (var n in counts)
            {
                if (remote is not null)
                {
                    endpoints = remote;
                }
                else
                {
                    while (endpoints.Count < n)
                    {
                        var axon = system.ActorOf(AxonActor.Props(axonSettings, DemoModels.Echo(dim)));
                        var bound = await axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, TimeSpan.FromSeconds(30));
                        endpoints.Add(new EndpointInfo($"axon-{endpoints.Count}", "127.0.0.1", bound.Endpoint.Port));
                    }
                }
                var targets = endpoints.Take(n).ToArray();
                // Each round's answers are given back once counted, as `btcli run validator`'s pipeline does after its step.
                for (var w = 0; w < warmupRounds; w++) Bittensor.Actors.Dendrite.Dendrite.Release(await dendrite.ForwardText(targets, tokens)); // connections, JIT
                var times = new double[rounds];
                var ok = 0;
                var errors = new Dictionary<string, int>(StringComparer.Ordinal);
                // The harness's own readings first (the threads' switches from /proc/self/task: a directory walk and a file per
                // thread, and their first call's JIT), then the CPU: until session 27 the CPU was read before them, so the
                // figure per answer carried their cost (h2-clientcpu: printed below as "readings before the rounds").
                var readings0 = CpuTime();
                var switches0 = SocketFloor.ContextSwitches();
                var byThread0 = SwitchesByThread();
                var loopRuns0 = LoopRuns();
                var onLoop = settings.Io is "loop" or "batch" && Bittensor.Protocol.Lean.ClientIoLoop.Supported;
                var loop = onLoop ? Bittensor.Protocol.Lean.ClientIoLoop.Shared : null;
                var (wakeups0, wakeWrites0, flushes0) = loop is null ? (0L, 0L, 0L) : (loop.Wakeups, loop.WakeWrites, loop.BatchFlushes);
                var servers0 = ServersCpuTicks(serverPids);
                var (user0, kernel0) = CpuSplit();
                if (perfCtl.Length > 0) PerfControl(perfCtl, "enable");
                var cpu0 = CpuTime();
                var readingsCpu = cpu0 - readings0;
                var alloc0 = GC.GetTotalAllocatedBytes(false);
                var landed0 = targets.Sum(t => Bittensor.Protocol.LeanClientTransport.BytesLandedFrom(t.Port));
                var gen0 = GC.CollectionCount(0);
                var (gen1, gen2, pause0) = (GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration());
                var total = Stopwatch.StartNew();
                for (var r = 0; r < rounds; r++)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    var results = await dendrite.ForwardText(targets, tokens);
                    times[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                    foreach (var x in results)
                    {
                        if (x.Code == ReturnCode.Success) ok++;
                        else errors[x.Code.ToString()] = errors.GetValueOrDefault(x.Code.ToString()) + 1;
                    }
                    Bittensor.Actors.Dendrite.Dendrite.Release(results);
                }
                var wall = total.Elapsed.TotalSeconds;
                var cpu = CpuTime() - cpu0;
                if (perfCtl.Length > 0) PerfControl(perfCtl, "disable");
                var (user1, kernel1) = CpuSplit();
                var switches = SocketFloor.ContextSwitches() - switches0;
                var byThread = SwitchesByThread();
                var loopRuns = LoopRuns() - loopRuns0;
                var serversUs = serverPids.Length == 0 ? double.NaN : (ServersCpuTicks(serverPids) - servers0) * 1e6 / ClockTicksPerSecond / (rounds * n);
                var allocated = GC.GetTotalAllocatedBytes(false) - alloc0;
                var collections = GC.CollectionCount(0) - gen0;
                var landed = targets.Sum(t => Bittensor.Protocol.LeanClientTransport.BytesLandedFrom(t.Port)) - landed0;
                var pause = GC.GetTotalPauseDuration() - pause0;
                Array.Sort(times);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {n} | {AxonLoad.Percentile(times, 0.5):F2} | {AxonLoad.Percentile(times, 0.99):F2} | {rounds / wall:F1} | {ok}/{rounds * n} | " +
                    $"{(ok > 0 ? cpu.TotalMicroseconds / ok : double.NaN):F1} | {(ok > 0 ? allocated / 1024.0 / ok : double.NaN):F1} | {(ok > 0 ? collections * 100.0 / ok : double.NaN):F2} | {(double.IsNaN(serversUs) ? "n/a" : serversUs.ToString("F1", CultureInfo.InvariantCulture))} |"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# {n} axons, the harness's readings before the rounds: {readingsCpu.TotalMicroseconds:F0} us of CPU, {(ok > 0 ? readingsCpu.TotalMicroseconds / ok : double.NaN):F2} us per answer (not in the figure above; counted in it before session 27)"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# {n} axons, CPU split: user {(ok > 0 ? (user1 - user0).TotalMicroseconds / ok : double.NaN):F1} us, kernel {(ok > 0 ? (kernel1 - kernel0).TotalMicroseconds / ok : double.NaN):F1} us per answer (/proc/self/stat utime / stime)"));
                // The collections' pauses (this runtime's GC pauses the whole process; workstation GC runs on the allocating thread).
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# {n} axons, GC: pause {(ok > 0 ? pause.TotalMicroseconds / ok : double.NaN):F2} us per answer over {collections} gen-0, {GC.CollectionCount(1) - gen1} gen-1, {GC.CollectionCount(2) - gen2} gen-2 collections ({(collections > 0 ? pause.TotalMicroseconds / collections : double.NaN):F0} us each)"));
                // As socket-floor counts them: voluntary + involuntary switches of the threads alive at both readings.
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# {n} axons, context switches: {(ok > 0 ? switches / (double)ok : double.NaN):F2} per answer, {(double)switches / rounds:F1} per round (all threads, /proc/self/task)"));
                // Which threads switched (voluntary / involuntary, per round), by thread name: threads alive at both readings.
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# {n} axons, context switches per round by thread: {string.Join(", ", byThread.Where(t => byThread0.ContainsKey(t.Key)).Select(t => (Name: t.Value.Name, Vol: t.Value.Vol - byThread0[t.Key].Vol, Invol: t.Value.Invol - byThread0[t.Key].Invol)).GroupBy(t => t.Name).Select(g => (Name: g.Key, Threads: g.Count(), Vol: g.Sum(t => t.Vol), Invol: g.Sum(t => t.Invol))).Where(g => g.Vol + g.Invol > 0).OrderByDescending(g => g.Vol + g.Invol).Select(g => $"{g.Name} x{g.Threads} {g.Vol / (double)rounds:F1}/{g.Invol / (double)rounds:F1}"))}"));
                if (loop is not null)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"# {n} axons, I/O loop per round: {(loop.Wakeups - wakeups0) / (double)rounds:F1} wake-ups, {(loop.WakeWrites - wakeWrites0) / (double)rounds:F2} eventfd writes, {(loop.BatchFlushes - flushes0) / (double)rounds:F2} outbox flushes ({loop.FallbackFlushes} by the fallback timer, whole run), {loopRuns / (double)rounds:F1} mailbox runs on its thread"));
                // The lean client's answers received from the socket straight into the results' arrays (AnswerLanding),
                // the rest copied there from its read buffer (docs/axon.md "Answer landing").
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# {n} axons, answer landing: {(ok > 0 ? landed / (double)ok : double.NaN):F0} bytes per answer received straight into its result's array (of {shape[0] * shape[1] * dim * 4} float bytes)"));
                foreach (var pool in dendrite.AnswerPools)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"# {n} axons, GC: answer arrays of {pool.ElementCount} floats (the dendrite's pool, whole run so far): {pool.Allocated} allocated, {pool.Reused} reused, {pool.Available} kept"));
                var signing = await dendrite.Actor.Ask<DendriteActor.SigningStats>(DendriteActor.GetSigningStats.Instance, TimeSpan.FromSeconds(30));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# {n} axons, request signatures (whole run so far): {signing.Signed} made, {signing.TakenAhead} rounds took one signed ahead"));
                if (errors.Count > 0)
                    Console.WriteLine($"# {n} axons, not Success: {string.Join(", ", errors.Select(e => $"{e.Key}={e.Value}"))}");
            }
        }
        finally
        {
            await system.Terminate();
        }
        Console.WriteLine($"# done, load average {LoadAverage()}");
        return 0;
    }

    // The client I/O loop's posted runs so far (the dendrite's actors on its thread), 0 when it is not in use.
    private static long LoopRuns() =>
        Bittensor.Protocol.Lean.ClientIoLoop.Supported ? Bittensor.Protocol.Lean.ClientIoLoop.Shared.Runs : 0;

    // Voluntary and involuntary context switches of each thread of this process, by thread id, with its name.
    private static Dictionary<string, (string Name, long Vol, long Invol)> SwitchesByThread()
    {
        var threads = new Dictionary<string, (string Name, long Vol, long Invol)>(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                var name = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
                long vol = 0, invol = 0;
                foreach (var line in File.ReadLines(Path.Combine(dir, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal)) vol = long.Parse(line[(line.IndexOf(':') + 1)..].Trim(), CultureInfo.InvariantCulture);
                    else if (line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal)) invol = long.Parse(line[(line.IndexOf(':') + 1)..].Trim(), CultureInfo.InvariantCulture);
                }
                threads[Path.GetFileName(dir)] = (name, vol, invol);
            }
            catch (IOException)
            {
                // a thread that ended meanwhile
            }
        }
        return threads;
    }

    // Median over 5 runs of 500 headers of the thread CPU time per header (tier-1 code after a 500-header warm-up).
    private static double SigningCostUs(Sr25519KeyPair key)
    {
        var auth = new RequestAuth(new KeyPairRequestSigner(key));
        for (var i = 0; i < 500; i++) _ = auth.CreateHeadersAsync().AsTask().Result;
        var samples = new double[5];
        for (var r = 0; r < samples.Length; r++)
        {
            var t0 = ThreadCpuUs();
            for (var i = 0; i < 500; i++) _ = auth.CreateHeadersAsync().AsTask().Result;
            samples[r] = (ThreadCpuUs() - t0) / 500;
        }
        Array.Sort(samples);
        return samples[2];
    }

    /// <summary>Parses <c>host:port,…</c> or <c>@file</c> (one <c>host:port</c> per line); null when empty.</summary>
    internal static List<EndpointInfo>? ParseTargets(string spec)
    {
        if (spec.Length == 0) return null;
        var items = spec.StartsWith('@')
            ? File.ReadAllLines(spec[1..]).Select(l => l.Trim()).Where(l => l.Length > 0)
            : spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var list = new List<EndpointInfo>();
        foreach (var item in items)
        {
            var colon = item.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(item.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
                throw new FormatException($"'{item}' is not host:port");
            // Distinct names: the dendrite keeps one endpoint actor (one channel) per hotkey.
            list.Add(new EndpointInfo($"axon-{list.Count}", item[..colon], port));
        }
        if (list.Count == 0) throw new FormatException("no host:port given");
        return list;
    }

    // utime + stime of this process (Process.TotalProcessorTime reads the same /proc/self/stat fields on Linux).
    private static TimeSpan CpuTime()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }

    // One command to perf's control FIFO (a FIFO does not seek: opened for writing, not appending).
    private static void PerfControl(string fifo, string command)
    {
        using var ctl = new FileStream(fifo, FileMode.Open, FileAccess.Write);
        ctl.Write(System.Text.Encoding.ASCII.GetBytes(command + "\n"));
    }

    // utime and stime of this process, apart.
    private static (TimeSpan User, TimeSpan Kernel) CpuSplit()
    {
        using var self = Process.GetCurrentProcess();
        return (self.UserProcessorTime, self.PrivilegedProcessorTime);
    }

    private const double ClockTicksPerSecond = 100; // USER_HZ on Linux

    // utime + stime (clock ticks) summed over the given processes, from /proc/<pid>/stat (fields 14 and 15).
    private static long ServersCpuTicks(int[] pids)
    {
        long sum = 0;
        foreach (var pid in pids)
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            sum += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        return sum;
    }

    internal static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "n/a";
        }
    }
}
