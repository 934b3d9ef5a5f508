using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text.Json;
using Bittensor.Chain;
using Bittensor.Chain.Node;
using Bittensor.Chain.Rpc;
using Bittensor.Core.Domain;

namespace Bittensor.Benchmarks.Chain;

/// <summary>
/// <c>metagraph-sync [n] [rounds] [polkadot-js folder]</c> (benchmarks/results/node.md): one full metagraph sync of a
/// subnet of <c>n</c> neurons (default 4096) from our node, by our client and by polkadot-js, each in its own OS
/// process against the node served by this one. A sync is what the client needs for the metagraph: the best block
/// hash, <c>NeuronInfoRuntimeApi_get_neurons(netuid)</c> at it, decoded into records, and every neuron's
/// <c>BlockAtRegistration</c> read at the same block (<c>state_queryStorageAt</c>). Both clients report wall time and
/// their own process CPU per sync and a checksum (neurons, Σ stake, Σ registration block) that must agree. The two
/// clients alternate (ours, polkadot-js, ours, polkadot-js) so that a change in machine load hits both.
/// </summary>
public static class MetagraphSync
{
    public static async Task<int> Run(string[] args)
    {
        var n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4096;
        var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;
        var js = args.Length > 2 ? args[2] : FindUp(Path.Combine("tests", "js", "polkadot-node"));
        if (!File.Exists(Path.Combine(js, "node_modules", "@polkadot", "api", "package.json")))
        {
            Console.Error.WriteLine($"metagraph-sync: no @polkadot/api in {js}/node_modules (run `npm install` there, or the PolkadotJsTests test, first)");
            return 2;
        }
        var (chain, alice, nonce) = await NodeLoad.PopulateAsync(n);
        await using var owned = chain;
        // Stake on up to 64 neurons, so the stake column is not all zero (the checksum compares it).
        var staked = new List<Task<CallResult>>();
        foreach (var neuron in (await chain.GetNeuronsAsync(1)).Take(64))
            staked.Add(chain.SubmitAsync(CallSigner.Sign(new AddStake(neuron.Hotkey, new Balance(1_000_000_000UL + neuron.Uid)), alice, nonce++, chain.Identity)));
        await chain.ProduceBlockAsync();
        foreach (var t in staked)
            if (!(await t).IsSuccess) throw new InvalidOperationException((await t).ToString());
        await using var node = await LocalnetNode.StartAsync(chain, new LocalnetNodeOptions { Port = 0 });
        var endpoint = node.Endpoint.ToString().TrimEnd('/');
        Console.WriteLine($"metagraph-sync: subnet 1 of {n} neurons at block {chain.BlockNumber}, node {endpoint}; {Environment.ProcessorCount} cores, load {Load()}");

        var ours = new List<Round>();
        var pjs = new List<Round>();
        for (var pass = 0; pass < 2; pass++)
        {
            ours.AddRange(await Child("dotnet", Environment.CurrentDirectory, [typeof(MetagraphSync).Assembly.Location, "metagraph-sync-client", endpoint, rounds.ToString(CultureInfo.InvariantCulture)]));
            pjs.AddRange(await Child("node", js, ["metagraph-sync.mjs", endpoint, rounds.ToString(CultureInfo.InvariantCulture)]));
        }
        var checks = ours.Concat(pjs).Select(r => r.Check).Distinct().ToList();
        if (checks.Count != 1) throw new InvalidOperationException("the clients read different metagraphs: " + string.Join(" / ", checks));
        Console.WriteLine($"both read: {checks[0]}");
        Report("our client (SubstrateChainBackend.GetNeuronsAsync)", ours);
        Report("polkadot-js 16.5.6 (state.call + createType + query.multi)", pjs);
        Console.WriteLine($"ratio (polkadot-js / ours), medians: wall {Median(pjs, r => r.WallMs) / Median(ours, r => r.WallMs):F1}×, CPU {Median(pjs, r => r.CpuMs) / Median(ours, r => r.CpuMs):F1}×; load now {Load()}");
        return 0;
    }

    /// <summary>The child side: <c>metagraph-sync-client endpoint rounds</c>, one JSON line per sync (after one warm-up).</summary>
    public static async Task<int> Client(string[] args)
    {
        var endpoint = new Uri(args[0]);
        var rounds = int.Parse(args[1], CultureInfo.InvariantCulture);
        var connect = Stopwatch.StartNew();
        await using var chain = await SubstrateChainBackend.ConnectAsync(new SubstrateBackendOptions
        {
            Rpc = new JsonRpcOptions { Endpoint = endpoint, RequestTimeout = TimeSpan.FromMinutes(2), MaxMessageBytes = 256 << 20 },
        });
        Console.WriteLine(JsonSerializer.Serialize(new { connectMs = connect.Elapsed.TotalMilliseconds }));
        for (var i = 0; i <= rounds; i++)
        {
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            var neurons = await chain.GetNeuronsAsync(1);
            var wall = sw.Elapsed.TotalMilliseconds;
            var cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds;
            BigInteger stake = 0, reg = 0;
            foreach (var x in neurons)
            {
                stake += x.Stake.Rao;
                reg += x.BlockAtRegistration;
            }
            if (i == 0) continue; // warm-up (JIT)
            Console.WriteLine(JsonSerializer.Serialize(new { wallMs = wall, cpuMs, check = $"{neurons.Count} neurons, stake {stake}, reg {reg}" }));
        }
        return 0;
    }

    private sealed record Round(double WallMs, double CpuMs, string Check);

    private static async Task<List<Round>> Child(string file, string dir, string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        var (o, e) = (await stdout, await stderr);
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {o}\n{e}");
        if (e.Length > 0) Console.Error.Write(e);
        var rounds = new List<Round>();
        foreach (var line in o.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!line.StartsWith('{')) continue;
            var j = JsonDocument.Parse(line).RootElement;
            if (j.TryGetProperty("connectMs", out var c))
            {
                Console.WriteLine($"  {file}: connected in {c.GetDouble():F0} ms");
                continue;
            }
            rounds.Add(new Round(j.GetProperty("wallMs").GetDouble(), j.GetProperty("cpuMs").GetDouble(), j.GetProperty("check").GetString()!));
        }
        return rounds;
    }

    private static void Report(string who, List<Round> rounds) =>
        Console.WriteLine($"{who}: {rounds.Count} syncs, wall median {Median(rounds, r => r.WallMs):F0} ms (min {rounds.Min(r => r.WallMs):F0}), " +
            $"client CPU median {Median(rounds, r => r.CpuMs):F0} ms (min {rounds.Min(r => r.CpuMs):F0})");

    private static double Median(List<Round> rounds, Func<Round, double> f)
    {
        var v = rounds.Select(f).Order().ToList();
        return v[v.Count / 2];
    }

    private static string FindUp(string relative)
    {
        for (var d = new DirectoryInfo(Environment.CurrentDirectory); d is not null; d = d.Parent)
            if (Directory.Exists(Path.Combine(d.FullName, relative))) return Path.Combine(d.FullName, relative);
        return relative;
    }

    private static string Load()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
