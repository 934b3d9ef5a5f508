using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Bittensor.Cli.Tests.Shipped;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// <c>btcli demo --processes</c> (issue 10 part C) as a real process: it starts the node, the servers and the
/// validator as its own children (real TorchSharp models, JSON-RPC and gRPC on loopback, port 0) — the useful server
/// as a cluster (issue 10: one front process and two worker processes on Akka.Cluster) — and no child may
/// outlive it — neither when it ends nor when it is killed with kill -9. Each test gets its own folder, which is
/// also the orchestrator's TMPDIR and HOME, so every child's command line names it: a survivor is any process
/// whose command line holds that folder.
/// </summary>
public sealed partial class DemoProcessesTests : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(8); // hang guard for a loaded 2-core machine, not a speed claim
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-demo-procs-").FullName;

    private static string BtcliDll => typeof(DemoProcessesTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    [GeneratedRegex(@"^demo: (\w+) \(pid (\d+)\)")]
    private static partial Regex ChildLine();

    [GeneratedRegex(@"^demo: (server1_worker\d) \(pid \d+\) stopped \(exit code 0\): worker drained and left the cluster; it served (\d+) calls, (\d+) on the data plane")]
    private static partial Regex WorkerServed();

    /// <summary>The children of <see cref="DemoArgs"/>: the node, server1 as a cluster front and its two workers, the NaN server, the validator.</summary>
    private static readonly string[] Children = ["bad1", "node", "server1", "server1_worker1", "server1_worker2", "validator"];

    public void Dispose()
    {
        foreach (var pid in Survivors()) KillQuietly(pid);
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>
    /// A small demo: one useful server (a cluster by default: 1 front + 2 workers), one NaN server, two epochs of tempo 6,
    /// event-driven blocks.
    /// </summary>
    private string[] DemoArgs()
    {
        var config = Path.Combine(_dir, "demo.conf");
        File.WriteAllText(config, "bittensor.demo { servers = 1, bad_kinds = \"nan\", epochs = 2, tempo = 6, block_time = 0s }");
        return [BtcliDll, "demo", "--processes", "--json", "--config", config, "--seed", "3"];
    }

    private Dictionary<string, string?> Environment() => new()
    {
        ["TMPDIR"] = _dir, // the demo folder (wallets, chain, configs) lands here, so every child's arguments name it
        ["HOME"] = _dir,
    };

    [Fact]
    public async Task Demo_as_processes_ends_with_the_market_verdict_and_leaves_no_child_running()
    {
        var result = await CliProcess.RunAsync(CliProcess.Dotnet, DemoArgs(), _dir, Guard, Environment());
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Stdout);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("market_worked").GetBoolean(), result.ToString());
        var neurons = root.GetProperty("neurons").EnumerateArray().ToArray();
        Assert.Equal(new[] { "bad_server", "server", "validator" }, neurons.Select(n => n.GetProperty("role").GetString()).Order().ToArray());
        // The useful server is the cluster: listed as one neuron that says so, answering (scored, joined) and paid.
        var cluster = neurons.Single(n => n.GetProperty("role").GetString() == "server");
        Assert.Equal("1 front + 2 workers", cluster.GetProperty("cluster").GetString());
        Assert.True(cluster.GetProperty("incentive").GetDouble() > 0, result.ToString());
        Assert.True(cluster.GetProperty("joined").GetInt64() > 0, result.ToString());
        Assert.Empty(cluster.GetProperty("refused").EnumerateObject());
        var bad = neurons.Single(n => n.GetProperty("role").GetString() == "bad_server");
        Assert.True(bad.GetProperty("refused").GetProperty("InvalidResponse").GetInt64() > 0, result.ToString()); // scored by the validator process
        Assert.Equal(2, root.GetProperty("incentive_by_epoch").GetArrayLength());
        Assert.True(root.GetProperty("batches").GetInt64() > 0);

        // Every child was a process of its own, named with its pid, and stopped when the demo ended.
        var lines = result.Stderr.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        var names = lines.Select(l => ChildLine().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToHashSet();
        Assert.Equal(Children, names.Order().ToArray());
        foreach (var name in names)
            Assert.Contains(lines, l => l.StartsWith($"demo: {name} (pid ", StringComparison.Ordinal) && l.Contains(") stopped (exit code ", StringComparison.Ordinal));
        // Each worker process served calls of the validator (the front has no model: without them it answers nothing),
        // every one of them on the front's data connection (docs/cluster.md "Data plane"), none over Akka.Remote.
        var served = lines.Select(l => WorkerServed().Match(l)).Where(m => m.Success).ToDictionary(m => m.Groups[1].Value,
            m => (Calls: long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), OnDataPlane: long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture)));
        Assert.Equal(new[] { "server1_worker1", "server1_worker2" }, served.Keys.Order().ToArray());
        Assert.All(served, w => Assert.True(w.Value.Calls > 0, $"{w.Key} served no call: {result}"));
        Assert.All(served, w => Assert.True(w.Value.OnDataPlane == w.Value.Calls,
            $"{w.Key} served {w.Value.Calls} calls, {w.Value.OnDataPlane} of them on the data plane: {result}"));
        Assert.Empty(Survivors());
    }

    [GeneratedRegex(@"^demo: server1_worker1 \(pid (\d+)\) killed with SIGKILL after epoch 1 \(exit code (\d+)\); restarting it")]
    private static partial Regex WorkerKilled();

    [GeneratedRegex(@"^demo: server1_worker1 \(pid (\d+)\) restarted; worker registered with the front at ")]
    private static partial Regex WorkerRestarted();

    [GeneratedRegex(@"^demo: server1_worker1 \(pid (\d+)\) stopped \(exit code 0\): worker drained and left the cluster; it served (\d+) calls, (\d+) on the data plane")]
    private static partial Regex RestartedServed();

    [Fact]
    public async Task A_cluster_worker_killed_with_kill_9_mid_demo_is_restarted_and_serves_again_while_the_cluster_server_keeps_answering()
    {
        var result = await CliProcess.RunAsync(CliProcess.Dotnet, [.. DemoArgs(), "--kill_worker_at_epoch", "1"], _dir, Guard, Environment());
        Assert.True(result.ExitCode == 0, result.ToString());
        using var doc = JsonDocument.Parse(result.Stdout);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("market_worked").GetBoolean(), result.ToString());
        var cluster = root.GetProperty("neurons").EnumerateArray().Single(n => n.GetProperty("role").GetString() == "server");
        // The JSON (and the table and live view, from the same field) say what happened to the cluster.
        Assert.StartsWith("1 front + 2 workers; server1_worker1 killed (kill -9) after epoch 1, restarted, ", cluster.GetProperty("cluster").GetString());
        // The cluster server kept answering: paid at the end, its last epoch included.
        Assert.True(cluster.GetProperty("incentive").GetDouble() > 0, result.ToString());
        var uid = cluster.GetProperty("uid").GetInt32();
        var last = root.GetProperty("incentive_by_epoch").EnumerateArray().Last();
        Assert.True(IncentiveOf(last, uid) > 0, $"the cluster earned nothing in the epoch after the kill: {result}");

        var lines = result.Stderr.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        var killed = OneLine(lines, WorkerKilled(), result);
        Assert.Equal("137", killed.Groups[2].Value); // 128 + SIGKILL
        var restarted = OneLine(lines, WorkerRestarted(), result);
        Assert.NotEqual(killed.Groups[1].Value, restarted.Groups[1].Value);
        // The restarted process (its own pid) served calls before the demo ended, and drained cleanly.
        var served = OneLine(lines, RestartedServed(), result);
        Assert.Equal(restarted.Groups[1].Value, served.Groups[1].Value);
        Assert.True(long.Parse(served.Groups[2].Value, CultureInfo.InvariantCulture) > 0, $"the restarted worker served no call: {result}");
        Assert.True(served.Groups[3].Value == served.Groups[2].Value, $"the restarted worker's calls were not all on the data plane: {result}");
        Assert.Empty(Survivors());
    }

    /// <summary>The one line matching <paramref name="pattern"/>; a failure quotes the demo's whole output.</summary>
    private static Match OneLine(IEnumerable<string> lines, Regex pattern, ProcessResult result)
    {
        var matches = lines.Select(l => pattern.Match(l)).Where(m => m.Success).ToArray();
        Assert.True(matches.Length == 1, $"{matches.Length} lines match {pattern}: {result}");
        return matches[0];
    }

    /// <summary>The incentive of <paramref name="uid"/> in one element of <c>incentive_by_epoch</c> (an object keyed by uid).</summary>
    private static double IncentiveOf(JsonElement epoch, int uid) => epoch.GetProperty(uid.ToString(CultureInfo.InvariantCulture)).GetDouble();

    [Fact]
    public async Task Killing_the_demo_with_kill_9_stops_every_child_it_started()
    {
        using var cts = new CancellationTokenSource(Guard);
        var info = new ProcessStartInfo(CliProcess.Dotnet)
        {
            WorkingDirectory = _dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in DemoArgs()) info.ArgumentList.Add(a);
        foreach (var (k, v) in Environment()) info.Environment[k] = v;
        using var demo = new Process { StartInfo = info };
        var stderr = new StringBuilder();
        var validatorRunning = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        demo.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr) stderr.AppendLine(e.Data);
            // All six children are up once the validator says it runs (it starts after the servers and the cluster's workers).
            if (e.Data.StartsWith("demo: validator (pid ", StringComparison.Ordinal)) validatorRunning.TrySetResult();
        };
        demo.OutputDataReceived += (_, _) => { };
        demo.Start();
        demo.BeginErrorReadLine();
        demo.BeginOutputReadLine();
        var exited = demo.WaitForExitAsync(cts.Token);
        await Task.WhenAny(validatorRunning.Task, exited).WaitAsync(cts.Token);
        string Err()
        {
            lock (stderr) return stderr.ToString();
        }
        Assert.True(validatorRunning.Task.IsCompleted, "the demo exited before its children were up: " + Err());
        var pids = Err().Split('\n').Select(l => ChildLine().Match(l)).Where(m => m.Success)
            .Select(m => int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)).Distinct().ToArray();
        Assert.Equal(Children.Length, pids.Length);
        Assert.All(pids, pid => Assert.True(Alive(pid), $"child {pid} is not running before the kill"));

        demo.Kill(entireProcessTree: false); // SIGKILL to the orchestrator alone: no finally block runs in it
        await exited;

        // Each child sees its standard input close (the kernel closes the dead parent's end) and stops by itself: the
        // test waits for the children's exits themselves (pidfds; the guard: a child that outlives it fails the test),
        // then no process naming this test's folder may be left.
        await ProcessExits.WaitAsync(pids, cts.Token);
        Assert.Empty(Survivors());
    }

    [Fact]
    public async Task A_child_that_fails_ends_the_demo_with_exit_code_1_naming_it_and_quoting_its_error()
    {
        // The demo itself does not read bittensor.axon; each server process does, and refuses the value at start.
        var config = Path.Combine(_dir, "bad-axon.conf");
        File.WriteAllText(config, "bittensor.demo { servers = 1, bad_kinds = \"nan\", epochs = 2, tempo = 6, block_time = 0s }\nbittensor.axon.max_workers = 0");
        var result = await CliProcess.RunAsync(CliProcess.Dotnet, [BtcliDll, "demo", "--processes", "--json", "--config", config], _dir, Guard, Environment());
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Empty(result.Stdout.Trim());
        Assert.Matches(@"error: (server1|bad1) \(pid \d+\) exited with code 1; its last lines:", result.Stderr);
        Assert.Contains("bittensor.axon.max_workers", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("demo: validator", result.Stderr, StringComparison.Ordinal); // it never started
        Assert.Empty(Survivors()); // the node and the other server were stopped too
    }

    [Fact]
    public async Task A_cluster_worker_that_fails_ends_the_demo_naming_it_and_quoting_its_error()
    {
        // Only the cluster's workers load the server model (the front has none, the NaN server answers without one):
        // a checkpoint that is not the model's state dict stops them at start.
        var checkpoint = Path.Combine(_dir, "model.ckpt");
        File.WriteAllText(checkpoint, "this is not a TorchSharp state dict");
        var config = Path.Combine(_dir, "bad-model.conf");
        File.WriteAllText(config, "bittensor.demo { servers = 1, bad_kinds = \"nan\", epochs = 2, tempo = 6, block_time = 0s\n" +
            $"  server_model {{ checkpoint.path = \"{checkpoint}\", start_attempts = 2, backoff.min = 10ms, backoff.max = 20ms }} }}");
        var result = await CliProcess.RunAsync(CliProcess.Dotnet, [BtcliDll, "demo", "--processes", "--json", "--config", config], _dir, Guard, Environment());
        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Empty(result.Stdout.Trim());
        Assert.Matches(@"error: server1_worker[12] \(pid \d+\) exited with code 1; its last lines:", result.Stderr);
        Assert.Contains("error: the worker's model host stopped: its model cannot start (2 tries): ", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("demo: validator", result.Stderr, StringComparison.Ordinal); // it never started
        Assert.Empty(Survivors()); // the front, the other worker, the NaN server and the node were stopped too
    }

    /// <summary>True while the process exists and is not a zombie.</summary>
    private static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state != "Z" && state != "X";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Live processes (not this one) whose command line names this test's folder.</summary>
    private List<int> Survivors()
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == System.Environment.ProcessId) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(_dir, StringComparison.Ordinal) && Alive(pid)) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return found;
    }

    private static void KillQuietly(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            p.Kill(entireProcessTree: true);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
        }
    }
}
