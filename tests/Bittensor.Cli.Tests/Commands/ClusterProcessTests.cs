using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Grpc.Net.Client;
using WireClient = Bittensor.Protocol.Wire.Bittensor.BittensorClient;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// A clustered miner as real OS processes: <c>btcli axon serve --cluster.role front</c>, two <c>btcli axon worker</c>,
/// and signed gRPC clients in this process. One worker is killed with SIGKILL while calls are in flight: every call
/// sent is answered (by the other worker, or with a clear code), and calls succeed after the kill.
/// </summary>
public sealed partial class ClusterProcessTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int Dim = 1024;
    private const int Callers = 8;
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-cluster-").FullName;
    private readonly List<Child> _children = [];
    private readonly List<GrpcChannel> _channels = [];

    public void Dispose()
    {
        foreach (var c in _channels) c.Dispose();
        foreach (var c in _children) c.Dispose();
        foreach (var c in _children) output.WriteLine($"--- {c.Name}\n{c.Output}");
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static string BtcliDll => typeof(ClusterProcessTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    [GeneratedRegex(@"serving on [^ ]*:(\d+) .*cluster front at (akka\.tcp://\S+) ")]
    private static partial Regex FrontLine();

    [GeneratedRegex(@"; (\d+) workers")]
    private static partial Regex WorkerCount();

    [GeneratedRegex(@"joined \(capacity \d+, data plane 127\.0\.0\.1:\d+\); \d+ workers")]
    private static partial Regex DataPlaneJoined();

    [Fact]
    public async Task A_worker_killed_with_SIGKILL_under_load_leaves_no_call_unanswered_and_the_front_keeps_serving()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var front = Start("front", ["axon", "serve", "--uri", "//Ferdie", "--axon.port", "0", "--axon.state_path", Path.Combine(_dir, "front"),
            "--cluster.role", "front", "--cluster.port", "0"]);
        var (axonPort, frontAddress) = await front.WaitFor(FrontLine(), m => (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value), timeout.Token);
        // A fixed cost per call keeps calls in flight at both workers while the load runs.
        string[] worker = ["axon", "worker", "--model", "echo", "--model.delay_ms", "40", "--cluster.seed_nodes", frontAddress, "--cluster.port", "0"];
        var doomed = Start("worker-1", worker);
        Start("worker-2", worker);
        await front.WaitFor(WorkerCount(), m => m.Groups[1].Value == "2" ? true : (bool?)null, timeout.Token);
        // Both workers joined on their data plane (docs/cluster.md "Data plane"): the calls below travel on it.
        Assert.Equal(2, DataPlaneJoined().Matches(front.Output).Count);

        // A 2021-style Python client (grpcio + msgpack-numpy) is served through the front like through any axon.
        using (var python = SecretUri.ToSr25519("//PythonCaller"))
        {
            var signature = await new RequestAuth(new KeyPairRequestSigner(python)).CreateSignatureHeaderAsync();
            var reply = RunPythonClient(axonPort, python.ToSs58(), signature);
            Assert.Equal("OK", reply.GetProperty("grpc_status").GetString());
            Assert.Equal((int)ReturnCode.Success, reply.GetProperty("code").GetInt32());
            Assert.Equal([1, 3, Dim], reply.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray());
            // The echo model: out[0, 0, d] = token 4 * 1e-3 + d * 1e-6.
            Assert.Equal(4e-3, reply.GetProperty("head")[0].GetDouble(), 6);
        }

        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{axonPort}");
        var client = new WireClient(channel);
        var answers = new ConcurrentQueue<(ReturnCode Code, string Message, bool AfterKill)>();
        var failures = new ConcurrentQueue<string>();
        var killed = 0;
        var succeeded = 0;
        var succeededAfterKill = 0;
        var midLoad = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var recovered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();

        async Task Caller(int i)
        {
            using var key = SecretUri.ToSr25519($"//ClusterCaller{i}");
            var auth = new RequestAuth(new KeyPairRequestSigner(key));
            var row = 0L;
            while (!stop.IsCancellationRequested)
            {
                var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = key.ToSs58() };
                var first = (++row % 500) + 1;
                request.Tensors.Add(TensorCodec.ToTensor(new long[] { first, 2, 3 }, [1, 3], Modality.Text));
                var afterKill = Volatile.Read(ref killed) == 1;
                try
                {
                    var answer = await client.ForwardAsync(request, await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(90), timeout.Token);
                    answers.Enqueue((answer.ReturnCode, answer.Message, afterKill));
                    if (answer.ReturnCode == ReturnCode.Success)
                    {
                        var values = TensorCodec.Decode(answer.Tensors[0]).Tensor.ToFloat32Array();
                        if (values.Length != 3 * Dim || Math.Abs(values[0] - (first * 1e-3)) > 1e-5)
                            failures.Enqueue($"wrong answer for row {first}: {values.Length} values, first {values.FirstOrDefault()}");
                        if (Interlocked.Increment(ref succeeded) == 100) midLoad.TrySetResult();
                        if (afterKill && Interlocked.Increment(ref succeededAfterKill) == 100) recovered.TrySetResult();
                    }
                }
                catch (RpcException e)
                {
                    failures.Enqueue($"call not answered by the axon: {e.StatusCode} {e.Status.Detail}");
                }
            }
        }

        var load = Enumerable.Range(0, Callers).Select(i => Task.Run(() => Caller(i))).ToArray();
        var callers = Task.WhenAll(load);
        // Mid-load: after 100 calls succeeded (both workers serve: least in flight spreads them).
        await Task.WhenAny(midLoad.Task, callers).WaitAsync(timeout.Token);
        Assert.True(midLoad.Task.IsCompleted, $"the load stopped early: {callers.Exception}");
        doomed.Kill();
        Volatile.Write(ref killed, 1);
        // The killed process's data connection closes at once (its kernel closes the socket): the front routes around it
        // without waiting for the failure detector.
        await front.WaitFor(new Regex("worker \\S+'s data connection closed: "), _ => true, timeout.Token);
        // Throughput recovers: the remaining worker serves the load.
        await Task.WhenAny(recovered.Task, callers).WaitAsync(timeout.Token);
        await stop.CancelAsync();
        await callers;

        var byCode = answers.GroupBy(a => a.Code).ToDictionary(g => g.Key, g => g.Count());
        output.WriteLine($"answers: {string.Join(", ", byCode.Select(kv => $"{kv.Key}={kv.Value}"))}; after the kill {succeededAfterKill} succeeded");
        Assert.Empty(failures);
        // Every call was answered; anything but Success is one of the codes that say why.
        Assert.All(answers.Where(a => a.Code != ReturnCode.Success), a =>
            Assert.True(a.Code is ReturnCode.NotServingNucleus or ReturnCode.NucleusFull or ReturnCode.NucleusTimeout && a.Message.Length > 0, $"{a.Code}: {a.Message}"));
        Assert.True(succeededAfterKill >= 100);
    }

    [GeneratedRegex(@"^worker drained and left the cluster; it served (\d+) calls, (\d+) on the data plane$")]
    private static partial Regex WorkerLeft();

    /// <summary>
    /// A worker whose standard input closes (how <c>btcli demo --processes</c> stops its children) drains, leaves and exits
    /// 0, and its last line says how many calls it served: the counts the worker published when it drained
    /// (<c>ClusterWorkerDrained</c>), not an answer asked for at the end of its node's shutdown (that phase's 5 s could run
    /// out first on a starved machine, and the line then had no counts).
    /// </summary>
    [Fact]
    public async Task A_worker_whose_input_closes_drains_leaves_and_says_how_many_calls_it_served()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var front = Start("front", ["axon", "serve", "--uri", "//Ferdie", "--axon.port", "0", "--axon.state_path", Path.Combine(_dir, "front"),
            "--cluster.role", "front", "--cluster.port", "0"]);
        var (axonPort, frontAddress) = await front.WaitFor(FrontLine(), m => (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value), timeout.Token);
        var worker = Start("worker", ["axon", "worker", "--model", "echo", "--cluster.seed_nodes", frontAddress, "--cluster.port", "0"], exitWithStdin: true);
        await front.WaitFor(WorkerCount(), m => m.Groups[1].Value == "1" ? true : (bool?)null, timeout.Token);

        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{axonPort}");
        var client = new WireClient(channel);
        using var key = SecretUri.ToSr25519("//ClusterCaller0");
        var auth = new RequestAuth(new KeyPairRequestSigner(key));
        for (var i = 1; i <= 3; i++)
        {
            var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = key.ToSs58() };
            request.Tensors.Add(TensorCodec.ToTensor(new long[] { i, 2, 3 }, [1, 3], Modality.Text));
            var answer = await client.ForwardAsync(request, await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(90), timeout.Token);
            Assert.True(answer.ReturnCode == ReturnCode.Success, $"{answer.ReturnCode}: {answer.Message}");
        }

        worker.CloseInput();
        var code = await worker.Exit(TimeSpan.FromMinutes(2));
        Assert.True(code == 0, $"the worker exited {code}: {worker.Output}");
        var left = await worker.WaitFor(WorkerLeft(), m => m, timeout.Token);
        Assert.Equal(("3", "3"), (left.Groups[1].Value, left.Groups[2].Value));
    }

    [GeneratedRegex(@"cluster worker: draining \((\d+) calls in flight\)")]
    private static partial Regex WorkerDraining();

    [GeneratedRegex(@"^btcli: SIGINT: stopping \(ended regardless after (\d+) s\)")]
    private static partial Regex Stopping();

    /// <summary>
    /// Ctrl-C (SIGINT) on a worker holding a call whose model needs 10 s: the worker drains — the call is answered
    /// Success by it — leaves, says how many calls it served and exits 0. Until session 22 System.CommandLine ended the
    /// process 2 s after the signal: exit 130, no stop line, and the front answered the call NotServingNucleus when the
    /// worker's data connection closed. The backstop btcli announces covers the worker's drain (drain_timeout 30 s, its
    /// phase 35 s).
    /// </summary>
    [Fact]
    public async Task A_worker_stopped_with_SIGINT_finishes_a_drain_longer_than_2_s_and_exits_0_with_its_counts()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var (worker, held) = await WorkerHoldingACall(timeout.Token);

        Assert.Equal(0, kill(worker.Pid, SigInt));
        Assert.Equal("1", await worker.WaitFor(WorkerDraining(), m => m.Groups[1].Value, timeout.Token));
        var answer = await held.WaitAsync(timeout.Token);
        Assert.True(answer.ReturnCode == ReturnCode.Success, $"the held call: {answer.ReturnCode} {answer.Message}; worker: {worker.Output}");
        var code = await worker.Exit(TimeSpan.FromMinutes(2));
        Assert.True(code == 0, $"the worker exited {code}: {worker.Output}");
        var left = await worker.WaitFor(WorkerLeft(), m => m, timeout.Token);
        Assert.Equal(("1", "1"), (left.Groups[1].Value, left.Groups[2].Value));
        var bound = await worker.WaitFor(Stopping(), m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), timeout.Token);
        Assert.True(bound >= 35, $"the backstop ({bound} s) is shorter than the worker's drain phase (35 s)");
    }

    /// <summary>
    /// A second Ctrl-C while the worker drains ends it at once: it dies of SIGINT (exit status 130) before its held call
    /// is answered (the front answers that call NotServingNucleus when the worker's data connection closes), and prints
    /// no stop line.
    /// </summary>
    [Fact]
    public async Task A_second_SIGINT_while_a_worker_drains_ends_it_at_once()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var (worker, held) = await WorkerHoldingACall(timeout.Token);

        Assert.Equal(0, kill(worker.Pid, SigInt));
        Assert.Equal("1", await worker.WaitFor(WorkerDraining(), m => m.Groups[1].Value, timeout.Token));
        Assert.Equal(0, kill(worker.Pid, SigInt));
        var code = await worker.Exit(TimeSpan.FromMinutes(2));
        Assert.True(code == 130, $"the worker exited {code}: {worker.Output}");
        var answer = await held.WaitAsync(timeout.Token);
        Assert.True(answer.ReturnCode == ReturnCode.NotServingNucleus, $"the held call: {answer.ReturnCode} {answer.Message}");
        Assert.Contains("btcli: SIGINT again: ending now", worker.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(Bittensor.Cli.Commands.AxonCommands.LeftLine, worker.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// A front and one worker that takes one call at a time (<c>--cluster.capacity 1</c>) with a model that needs 10 s
    /// per call, started so that SIGINT reaches it (<see cref="Start"/>'s <c>sigIntDefault</c>). Two calls go to the front
    /// at once: one is answered NucleusFull (every worker full), so the other was dispatched to the worker; once the
    /// worker says it has it (its Debug line for an arriving call, on with <c>--logging.levels.Bittensor.Actors.Cluster
    /// Debug</c>) that one is returned, unanswered. The front counts a call against the worker's capacity when it
    /// dispatches it, so its NucleusFull alone does not prove the call reached the worker: a SIGINT sent then found the
    /// worker draining 0 calls on a busy machine (session 26).
    /// </summary>
    private async Task<(Child Worker, Task<TensorMessage> Held)> WorkerHoldingACall(CancellationToken ct)
    {
        var front = Start("front", ["axon", "serve", "--uri", "//Ferdie", "--axon.port", "0", "--axon.state_path", Path.Combine(_dir, "front"),
            "--cluster.role", "front", "--cluster.port", "0"]);
        var (axonPort, frontAddress) = await front.WaitFor(FrontLine(), m => (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value), ct);
        var worker = Start("worker", ["axon", "worker", "--model", "echo", "--model.delay_ms", "10000", "--cluster.capacity", "1",
            "--cluster.seed_nodes", frontAddress, "--cluster.port", "0", "--logging.levels.Bittensor.Actors.Cluster", "Debug"], sigIntDefault: true);
        await front.WaitFor(WorkerCount(), m => m.Groups[1].Value == "1" ? true : (bool?)null, ct);

        var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{axonPort}");
        _channels.Add(channel);
        var client = new WireClient(channel);
        async Task<TensorMessage> Call(int i)
        {
            using var key = SecretUri.ToSr25519($"//ClusterCaller{i}");
            var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = key.ToSs58() };
            request.Tensors.Add(TensorCodec.ToTensor(new long[] { i, 2, 3 }, [1, 3], Modality.Text));
            var headers = await new RequestAuth(new KeyPairRequestSigner(key)).CreateHeadersAsync();
            return await client.ForwardAsync(request, headers, DateTime.UtcNow.AddSeconds(90), ct);
        }
        List<Task<TensorMessage>> calls = [Call(1), Call(2)];
        var first = await Task.WhenAny(calls).WaitAsync(ct);
        var full = await first;
        Assert.True(full.ReturnCode == ReturnCode.NucleusFull, $"the first answer: {full.ReturnCode} {full.Message} (expected NucleusFull: the other call holds the worker)");
        calls.Remove(first);
        await worker.WaitFor(WorkerTookCall(), m => m.Groups[1].Value == "1" ? true : (bool?)null, ct);
        return (worker, calls[0]);
    }

    [GeneratedRegex(@"cluster worker: a call arrived \((\d+) in flight\)")]
    private static partial Regex WorkerTookCall();

    [GeneratedRegex(@"worker (akka\.tcp://\S+) is up in the cluster")]
    private static partial Regex WorkerUp();

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    private const int SigInt = 2;
    private const int SigStop = 19;
    private const int SigCont = 18;

    /// <summary>
    /// A live worker that the cluster takes for dead (its process stopped with SIGSTOP — a long GC pause or a starved
    /// machine, as far as the others can tell — until the front's split-brain resolver downed it and the front removed
    /// it) is resumed: with rejoin on (the default) it says it was downed, joins again as a new node and serves; with
    /// <c>--cluster.rejoin off</c> it exits 1 saying why. Neither hangs half-alive.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_live_worker_downed_by_the_cluster_joins_again_as_a_new_node_or_with_rejoin_off_exits_1(bool rejoin)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var front = Start("front", ["axon", "serve", "--uri", "//Ferdie", "--axon.port", "0", "--axon.state_path", Path.Combine(_dir, "front"),
            "--cluster.role", "front", "--cluster.port", "0"]);
        var (axonPort, frontAddress) = await front.WaitFor(FrontLine(), m => (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value), timeout.Token);
        var worker = Start("worker", ["axon", "worker", "--model", "echo", "--cluster.seed_nodes", frontAddress, "--cluster.port", "0",
            "--cluster.rejoin", rejoin ? "on" : "off"]);
        var first = await worker.WaitFor(WorkerUp(), m => m.Groups[1].Value, timeout.Token);
        await front.WaitFor(WorkerCount(), m => m.Groups[1].Value == "1" ? true : (bool?)null, timeout.Token);
        await AssertPythonServed(axonPort);

        Assert.Equal(0, kill(worker.Pid, SigStop));
        try
        {
            // The front's failure detector marks the silent node unreachable, its resolver downs it (keep-oldest: the
            // front is the oldest), the leader removes it and the front forgets its worker.
            await front.WaitFor(new Regex($"worker {Regex.Escape(first)} removed \\("), _ => true, timeout.Token);
        }
        finally
        {
            Assert.Equal(0, kill(worker.Pid, SigCont));
        }
        if (!rejoin)
        {
            Assert.Equal(1, await worker.Exit(TimeSpan.FromMinutes(3)));
            Assert.Contains("error: the worker was downed by the cluster (bittensor.cluster.worker.rejoin = off); restart it to rejoin", worker.Output,
                StringComparison.Ordinal);
            return;
        }
        // Resumed, it learns it was downed (from the front's gossip, or its own resolver); it starts a new node that joins
        // through the seed and registers with the front again.
        var second = await worker.WaitFor(new Regex(@"joining again as (akka\.tcp://\S+) \(node 2 of this worker\)"), m => m.Groups[1].Value, timeout.Token);
        await worker.WaitFor(WorkerUp(), m => m.Groups[1].Value == second ? true : (bool?)null, timeout.Token);
        await front.WaitFor(new Regex($"worker {Regex.Escape(second)} joined .*; 1 workers"), _ => true, timeout.Token);
        await AssertPythonServed(axonPort);
    }

    [GeneratedRegex(@"cluster member (akka\.tcp://\S+) \(([a-z,]*)\) is up")]
    private static partial Regex MemberUp();

    [GeneratedRegex(@"cluster front node (akka\.tcp://\S+) is up")]
    private static partial Regex FrontUp();

    /// <summary>The 2021-style Python client's forward of tokens 4,5,6 through the axon at <paramref name="port"/> succeeds.</summary>
    private static async Task AssertPythonServed(int port)
    {
        using var python = SecretUri.ToSr25519("//PythonCaller");
        var signature = await new RequestAuth(new KeyPairRequestSigner(python)).CreateSignatureHeaderAsync();
        var reply = RunPythonClient(port, python.ToSs58(), signature);
        Assert.Equal("OK", reply.GetProperty("grpc_status").GetString());
        Assert.Equal((int)ReturnCode.Success, reply.GetProperty("code").GetInt32());
        Assert.Equal([1, 3, Dim], reply.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        Assert.Equal(4e-3, reply.GetProperty("head")[0].GetDouble(), 6);
    }

    [Fact]
    public async Task The_active_front_killed_with_SIGKILL_is_replaced_by_the_standby_front_which_serves_the_Python_client()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        string[] Front(string name, params string[] more) => ["axon", "serve", "--uri", "//Ferdie", "--axon.port", "0", "--axon.state_path", Path.Combine(_dir, name),
            "--cluster.role", "front", "--cluster.port", "0", .. more];
        var first = Start("front-1", Front("front-1"));
        var (firstPort, firstAddress) = await first.WaitFor(FrontLine(), m => (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value), timeout.Token);
        // The standby: front-capable, joined through the first; it serves nothing until it is the oldest front node.
        var standby = Start("front-2", Front("front-2", "--cluster.seed_nodes", firstAddress));
        await standby.WaitFor(FrontUp(), _ => true, timeout.Token);
        string[] worker = ["axon", "worker", "--model", "echo", "--cluster.seed_nodes", firstAddress, "--cluster.port", "0"];
        Start("worker-1", worker);
        Start("worker-2", worker);
        await first.WaitFor(WorkerCount(), m => m.Groups[1].Value == "2" ? true : (bool?)null, timeout.Token);
        // The standby's split-brain resolver counts Up members only: killed while the workers are still Joining in its
        // view, the dead front and the standby are a 1:1 split that keep-oldest resolves for the dead (oldest) side.
        var workersUp = new HashSet<string>();
        await standby.WaitFor(MemberUp(), m => { lock (workersUp) return m.Groups[2].Value == "worker" && workersUp.Add(m.Groups[1].Value) && workersUp.Count == 2 ? true : (bool?)null; }, timeout.Token);
        await AssertPythonServed(firstPort);
        Assert.DoesNotContain("serving on", standby.Output, StringComparison.Ordinal);

        var killedAt = Stopwatch.StartNew();
        first.Kill();
        // The others' failure detector, then the split-brain resolver (keep-oldest, down-if-alone) downs the dead front;
        // the singleton moves to the standby, which binds its own axon port.
        var nextPort = await standby.WaitFor(FrontLine(), m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), timeout.Token);
        await standby.WaitFor(WorkerCount(), m => m.Groups[1].Value == "2" ? true : (bool?)null, timeout.Token);
        output.WriteLine($"the standby front served on port {nextPort} with both workers {killedAt.Elapsed.TotalSeconds:F1} s after the SIGKILL");
        await AssertPythonServed(nextPort);
    }

    [Fact]
    public async Task A_front_whose_axon_port_is_taken_says_why_leaves_the_cluster_and_exits_1()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var front = Start("front", ["axon", "serve", "--uri", "//Ferdie", "--axon.ip", "127.0.0.1", "--axon.port", port.ToString(CultureInfo.InvariantCulture),
            "--axon.state_path", Path.Combine(_dir, "front"), "--cluster.role", "front", "--cluster.port", "0"]);
        var code = await front.Exit(TimeSpan.FromMinutes(3));
        Assert.Equal(1, code);
        Assert.Contains("error: the front cannot run on this node (the axon could not listen", front.Output, StringComparison.Ordinal);
        Assert.Contains("this front node left the cluster", front.Output, StringComparison.Ordinal);
        // (Kestrel's host also logs "Hosting failed to start" with its exception through the Akka logger, as for a
        // non-clustered axon whose port is taken.)
    }

    [GeneratedRegex(@"as a cluster front node \((akka\.tcp://\S+)\)")]
    private static partial Regex RunFrontNode();

    [GeneratedRegex(@"this node is the front; axon ([0-9.]+):(\d+) served on chain")]
    private static partial Regex RunFrontServed();

    /// <summary>Runs btcli to its end (a setup step) and asserts exit 0.</summary>
    private async Task Step(string name, params string[] args)
    {
        var child = Start(name, args);
        var code = await child.Exit(TimeSpan.FromMinutes(3));
        Assert.True(code == 0, $"{name} exited {code}: {child.Output}");
    }

    [Fact]
    public async Task Run_server_as_a_cluster_front_and_a_worker_serves_the_server_model_at_the_address_it_announced_on_chain()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        string[] wallet = ["--wallet.path", Path.Combine(_dir, "wallets")];
        string[] net = ["--localnet.path", Path.Combine(_dir, "localnet")];
        // No probe of ws://127.0.0.1:9944 (another node could serve there): the embedded localnet of this test.
        var config = Path.Combine(_dir, "run.conf");
        await File.WriteAllTextAsync(config, $"bittensor.subtensor.local_endpoint = \"\"\nbittensor.model.threads = 1\n" +
            $"bittensor.metagraph.path = \"{Path.Combine(_dir, "metagraphs")}\"\n", timeout.Token);
        await Step("new_coldkey", ["wallet", "new_coldkey", "--n_words", "12", "--no_password", .. wallet]);
        await Step("new_hotkey", ["wallet", "new_hotkey", "--n_words", "12", "--no_password", .. wallet]);
        await Step("faucet", ["localnet", "faucet", "--amount", "5000", .. wallet, .. net, "--config", config]);
        await Step("subnet", ["subnets", "create", .. wallet, .. net, "--config", config]);

        var front = Start("run-front", ["run", "server", "--netuid", "1", "--axon.port", "0", "--cluster.role", "front", "--cluster.port", "0",
            "--neuron.full_path", Path.Combine(_dir, "front"), "--config", config, .. wallet, .. net]);
        var frontAddress = await front.WaitFor(RunFrontNode(), m => m.Groups[1].Value, timeout.Token);
        var (ip, port) = await front.WaitFor(RunFrontServed(), m => (m.Groups[1].Value, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)), timeout.Token);
        var worker = Start("run-worker", ["run", "server", "--netuid", "1", "--cluster.role", "worker", "--cluster.seed_nodes", frontAddress,
            "--cluster.port", "0", "--config", config]);
        await worker.WaitFor(new Regex("registered with the front"), _ => true, timeout.Token);

        // The chain says where the server is; a signed query there is answered by the worker's TorchSharp model.
        var query = Start("query", ["query", "--endpoint", $"{ip}:{port}", "--text", "hello cluster", "--uri", "//Alice"]);
        var code = await query.Exit(TimeSpan.FromMinutes(2));
        Assert.True(code == 0, $"query exited {code}: {query.Output}");
        Assert.Contains("Success", query.Output, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^cluster front node started at (akka\.tcp://[^;\s]+);")]
    private static partial Regex RunFrontStarted();

    [GeneratedRegex(@"worker registered with the front at (akka\.tcp://\S+)")]
    private static partial Regex WorkerRegisteredAt();

    [GeneratedRegex(@"^rpc: (ws://\S+)")]
    private static partial Regex NodeRpc();

    /// <summary>
    /// Issue 10's take-over for the real thing, every part a process: our node (<c>btcli localnet run --rpc.port 0
    /// --manual_seal</c>; this test seals a block whenever its pool holds an extrinsic), a wallet made by btcli, the
    /// subnet created over the wire, two <c>btcli run server --cluster.role front</c> nodes with that one hotkey and a
    /// <c>--cluster.role worker</c> hosting the TorchSharp model. The first front registers the hotkey and serves its
    /// axon on chain; it is killed with SIGKILL; the standby becomes the front, binds its own port and serves it on
    /// chain (the node's axon info for the hotkey changes to it), and the 2021-style Python client is answered there.
    /// </summary>
    [Fact]
    public async Task Run_server_fronts_on_a_node_process_the_standby_takes_over_after_SIGKILL_and_serves_its_own_address_on_chain()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(12));
        var ct = timeout.Token;
        var node = Start("node", ["localnet", "run", "--localnet.path", Path.Combine(_dir, "localnet"), "--rpc.port", "0", "--manual_seal"]);
        var endpoint = await node.WaitFor(NodeRpc(), m => m.Groups[1].Value, ct);
        await using var chain = await Bittensor.Chain.Rpc.SubstrateChainBackend.ConnectAsync(new Bittensor.Chain.Rpc.SubstrateBackendOptions
        {
            Rpc = new Bittensor.Chain.Rpc.JsonRpcOptions
            {
                Endpoint = new Uri(endpoint), RequestTimeout = TimeSpan.FromSeconds(60), ConnectTimeout = TimeSpan.FromSeconds(60),
                Reconnect = new Bittensor.Core.Resilience.BackoffPolicy(TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1), 0.2),
            },
        }, ct);
        using var sealing = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sealer = Task.Run(() => SealWhilePending(chain, sealing.Token), CancellationToken.None);
        try
        {
            string[] wallet = ["--wallet.path", Path.Combine(_dir, "wallets")];
            string[] overWire = ["--subtensor.chain_endpoint", endpoint];
            await Step("new_coldkey", ["wallet", "new_coldkey", "--n_words", "12", "--no_password", .. wallet]);
            await Step("new_hotkey", ["wallet", "new_hotkey", "--n_words", "12", "--no_password", .. wallet]);
            await Step("faucet", ["localnet", "faucet", "--amount", "5000", .. wallet, .. overWire]);
            await Step("subnet", ["subnets", "create", .. wallet, .. overWire]);
            var netuid = Assert.Single(await chain.GetSubnetsAsync(ct)).Netuid;
            var hotkey = ReadSs58(Path.Combine(_dir, "wallets", "default", "hotkeys", "default"));
            var config = Path.Combine(_dir, "run.conf");
            // A small model (the worker trains it on 2 cores beside everything else); nothing under ~/.bittensor.
            await File.WriteAllTextAsync(config, $"bittensor.model {{ threads = 1, d_model = 64, layers = 1, heads = 2, feed_forward = 128 }}\n" +
                $"bittensor.metagraph.path = \"{Path.Combine(_dir, "metagraphs")}\"\n", ct);
            string[] Front(string name, params string[] more) => ["run", "server", "--netuid", netuid.ToString(CultureInfo.InvariantCulture),
                "--axon.port", "0", "--cluster.role", "front", "--cluster.port", "0",
                "--neuron.full_path", Path.Combine(_dir, name), "--config", config, .. wallet, .. overWire, .. more];

            var first = Start("front-1", Front("front-1"));
            var firstNode = await first.WaitFor(RunFrontStarted(), m => m.Groups[1].Value, ct);
            var (_, firstPort) = await ServedOnChain(first, ct);
            Assert.Equal(firstPort, await AxonPortOnChain(chain, netuid, hotkey, ct));
            // The chain refuses a hotkey's next serve_axon for ServingRateLimit blocks; the node seals blocks only on
            // demand, so the test moves it past that window now (on a live chain the blocks pass by themselves, and
            // the front retries a refused serve for up to 50 × 12 s).
            var limit = (await chain.GetHyperparametersAsync(netuid, ct))!.ServingRateLimit;
            await chain.Client.RequestAsync("dev_newBlock", [new Dictionary<string, object?> { ["count"] = (long)limit + 1 }], null, ct);

            // The standby: same wallet and hotkey (it finds the uid), its own axon port and state; it stands by.
            var standby = Start("front-2", Front("front-2", "--cluster.seed_nodes", firstNode));
            var standbyNode = await standby.WaitFor(RunFrontStarted(), m => m.Groups[1].Value, ct);
            await standby.WaitFor(new Regex("^server running on subnet "), _ => true, ct);
            var worker = Start("worker", ["run", "server", "--netuid", netuid.ToString(CultureInfo.InvariantCulture), "--cluster.role", "worker",
                "--cluster.seed_nodes", $"{firstNode},{standbyNode}", "--cluster.port", "0", "--config", config]);
            await worker.WaitFor(WorkerRegisteredAt(), m => m.Groups[1].Value == firstNode ? true : (bool?)null, ct);
            // The standby's split-brain resolver counts Up members only: it must see the worker Up, else the SIGKILL
            // leaves it in a 1:1 split with the dead oldest front, which keep-oldest resolves by downing the standby.
            var workerNode = await standby.WaitFor(MemberUp(), m => m.Groups[2].Value == "worker" ? m.Groups[1].Value : null, ct);
            Assert.DoesNotContain("this node is the front", standby.Output, StringComparison.Ordinal);

            var killedAt = Stopwatch.StartNew();
            first.Kill();
            var (ip, port) = await ServedOnChain(standby, ct);
            output.WriteLine($"front-1 at port {firstPort} killed; the standby served {ip}:{port} on chain {killedAt.Elapsed.TotalSeconds:F1} s after the SIGKILL; worker {workerNode}");
            Assert.Equal("127.0.0.2", ip); // run server's default --axon.ip (the chain refuses 127.0.0.1)
            Assert.NotEqual(firstPort, port);
            Assert.Equal(port, await AxonPortOnChain(chain, netuid, hotkey, ct));
            // The worker re-registers with the new front; then a caller at the address on chain is answered by its model.
            await worker.WaitFor(WorkerRegisteredAt(), m => m.Groups[1].Value == standbyNode ? true : (bool?)null, ct);
            using var python = SecretUri.ToSr25519("//PythonCaller");
            var signature = await new RequestAuth(new KeyPairRequestSigner(python)).CreateSignatureHeaderAsync();
            var reply = RunPythonClient(port, python.ToSs58(), signature, ip);
            Assert.Equal("OK", reply.GetProperty("grpc_status").GetString());
            Assert.Equal((int)ReturnCode.Success, reply.GetProperty("code").GetInt32());
            Assert.Equal([1, 3, Dim], reply.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        }
        finally
        {
            await sealing.CancelAsync();
            try
            {
                await sealer;
            }
            catch (Exception e) when (e is OperationCanceledException or Bittensor.Chain.ChainUnavailableException or Bittensor.Chain.Rpc.JsonRpcException)
            {
            }
        }
    }

    /// <summary>The front's "this node is the front; axon IP:PORT served on chain" line; fails on its error line.</summary>
    private static async Task<(string Ip, int Port)> ServedOnChain(Child front, CancellationToken ct)
    {
        var served = front.WaitFor(RunFrontServed(), m => (m.Groups[1].Value, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)), ct);
        var failed = front.WaitFor(new Regex("^error: cluster front: .*"), m => m.Value, ct);
        if (await Task.WhenAny(served, failed) == failed) Assert.Fail($"{front.Name}: {await failed}");
        return await served;
    }

    private static async Task<int> AxonPortOnChain(Bittensor.Chain.Rpc.SubstrateChainBackend chain, ushort netuid, Bittensor.Core.Domain.AccountId hotkey, CancellationToken ct) =>
        Assert.Single(await chain.GetNeuronsAsync(netuid, ct), n => n.Hotkey.Equals(hotkey)).Axon.Port;

    /// <summary>Until cancelled: a block whenever the node's pool holds an extrinsic (its pool subscription, <c>NodePool</c>).</summary>
    private static async Task SealWhilePending(Bittensor.Chain.Rpc.SubstrateChainBackend chain, CancellationToken ct)
    {
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var registration = ct.Register(() => cancelled.TrySetResult());
        await using var pool = await Bittensor.Chain.Tests.Rpc.NodePool.SubscribeAsync(chain.Client, ct);
        await pool.SealWhilePendingAsync(cancelled.Task, ct);
        ct.ThrowIfCancellationRequested();
    }

    private static Bittensor.Core.Domain.AccountId ReadSs58(string path)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
        return new Bittensor.Core.Domain.AccountId(Ss58.Decode(doc.RootElement.GetProperty("ss58Address").GetString()!));
    }

    private static System.Text.Json.JsonElement RunPythonClient(int port, string hotkey, string signature, string ip = "127.0.0.1")
    {
        string? root = null;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null && root is null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "tests", "python", "bt2021_client.py"))) root = d.FullName;
        Assert.True(root is not null, "tests/python/bt2021_client.py not found");
        var psi = new ProcessStartInfo(File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { Path.Combine(root!, "tests", "python", "bt2021_client.py"), "--endpoint", $"{ip}:{port}", "--hotkey", hotkey,
            "--signature", signature, "--tokens", "4,5,6", "--timeout", "60" })
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"bt2021_client.py exited {p.ExitCode}: {stderr.Result.Trim()}");
        return System.Text.Json.JsonDocument.Parse(stdout.Result).RootElement.Clone();
    }

    /// <param name="exitWithStdin">Its standard input is a pipe and it stops when the pipe closes (<see cref="Child.CloseInput"/>), as btcli demo's children.</param>
    /// <param name="sigIntDefault">
    /// Started through <c>env --default-signal=INT</c>: SIGINT has its default action in it, as in a terminal. A test run
    /// started in the background by a script ignores SIGINT, and an ignored signal stays ignored across exec: the .NET
    /// runtime then does not handle it, and SIGINT would not reach btcli.
    /// </param>
    private Child Start(string name, string[] args, bool exitWithStdin = false, bool sigIntDefault = false)
    {
        Assert.True(File.Exists(BtcliDll), $"btcli is not built at {BtcliDll}");
        var psi = new ProcessStartInfo(sigIntDefault ? "env" : "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _dir,
        };
        if (sigIntDefault)
        {
            psi.ArgumentList.Add("--default-signal=INT");
            psi.ArgumentList.Add("dotnet");
        }
        psi.Environment["HOME"] = Path.Combine(_dir, "home"); // nothing under the real ~/.bittensor
        if (exitWithStdin)
        {
            psi.RedirectStandardInput = true;
            psi.Environment["BITTENSOR_EXIT_WITH_STDIN"] = "1";
        }
        psi.ArgumentList.Add(BtcliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var child = new Child(name, System.Diagnostics.Process.Start(psi)!);
        _children.Add(child);
        return child;
    }

    private sealed class Child : IDisposable
    {
        private readonly System.Diagnostics.Process _process;
        private readonly StringBuilder _output = new();
        private readonly List<string> _lines = [];
        private readonly List<Action<string>> _watchers = [];

        public Child(string name, System.Diagnostics.Process process)
        {
            Name = name;
            _process = process;
            process.OutputDataReceived += (_, e) => OnLine(e.Data);
            process.ErrorDataReceived += (_, e) => OnLine(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public string Name { get; }

        public int Pid => _process.Id;

        public string Output
        {
            get { lock (_output) return _output.ToString(); }
        }

        private void OnLine(string? line)
        {
            if (line is null) return;
            Action<string>[] watchers;
            lock (_output)
            {
                _output.AppendLine(line);
                _lines.Add(line);
                watchers = [.. _watchers];
            }
            foreach (var w in watchers) w(line);
        }

        /// <summary>The first line (already printed or to come) for which <paramref name="pick"/> gives a value; fails if the process exits first.</summary>
        public async Task<T> WaitFor<T>(Regex pattern, Func<Match, T?> pick, CancellationToken cancellationToken)
        {
            var found = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
            void Check(string line)
            {
                if (pattern.Match(line) is { Success: true } m && pick(m) is { } value) found.TrySetResult(value);
            }
            string[] seen;
            lock (_output)
            {
                _watchers.Add(Check);
                seen = [.. _lines];
            }
            foreach (var line in seen) Check(line);
            var exited = _process.WaitForExitAsync(cancellationToken);
            if (await Task.WhenAny(found.Task, exited) != found.Task)
            {
                await exited;
                Assert.Fail($"{Name} exited with {_process.ExitCode} before printing /{pattern}/: {Output}");
            }
            return await found.Task;
        }

        /// <summary>Waits for the process to exit (at most <paramref name="within"/>) and returns its exit code.</summary>
        public async Task<int> Exit(TimeSpan within)
        {
            using var cts = new CancellationTokenSource(within);
            await _process.WaitForExitAsync(cts.Token);
            _process.WaitForExit(); // flush the output readers
            return _process.ExitCode;
        }

        /// <summary>Closes its standard input (started with exitWithStdin): it stops as on Ctrl-C.</summary>
        public void CloseInput() => _process.StandardInput.Close();

        public void Kill()
        {
            _process.Kill(); // SIGKILL on Unix: no drain, no leave
            _process.WaitForExit();
        }

        public void Dispose()
        {
            if (!_process.HasExited) Kill();
            _process.Dispose();
        }
    }
}
