using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Chain.Node;
using Bittensor.Chain.Substrate;
using Bittensor.Core;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;

namespace Bittensor.Benchmarks.Chain;

/// <summary>
/// <c>node-load [n] [clients] [seconds]</c>: the localnet node under load (benchmarks/results/node.md). Builds an
/// in-memory localnet with one subnet of <c>n</c> neurons (default 4096), serves it on a loopback port and measures:
/// the per-block storage view build (it runs inside block production), <c>get_neurons_lite</c> over RPC, requests/s
/// of <c>clients</c> WebSocket clients (default 8) each keeping one <c>state_getStorage</c> in flight for
/// <c>seconds</c> (default 10), and submit → inBlock latency with blocks made by <c>dev_newBlock</c>.
/// </summary>
public static class NodeLoad
{
    public static async Task<int> Run(string[] args)
    {
        var n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4096;
        var clients = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 8;
        var seconds = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 10;
        var (chain, alice, next) = await PopulateAsync(n);
        await using var owned = chain;
        var nonce = next;
        Console.WriteLine($"node-load: localnet with 1 subnet of {n} neurons (block {chain.BlockNumber}); {Environment.ProcessorCount} cores, load {LoadAverage()}");

        // 1. Storage view build (runs under the chain lock in every block while a node serves it).
        var sw = Stopwatch.StartNew();
        const int builds = 5;
        LocalnetStorage view = chain.BuildStorage(); // warm-up (JIT)
        sw.Restart();
        var c0 = Cpu();
        for (var i = 0; i < builds; i++) view = chain.BuildStorage();
        Console.WriteLine($"storage view: {view.Count} keys, {sw.Elapsed.TotalMilliseconds / builds:F1} ms wall, {(Cpu() - c0) / builds:F1} ms CPU per build (mean of {builds})");

        // Blocks without calls: block production alone, then with the node attached (its per-block storage view is
        // made inside block production), then the managed heap once the node keeps its full view history.
        const int blocks = 20;
        await chain.ProduceBlockAsync(); // warm-up
        sw.Restart();
        var b0 = Cpu();
        for (var i = 0; i < blocks; i++) await chain.ProduceBlockAsync();
        var bare = (Cpu() - b0) / blocks;
        Console.WriteLine($"one block, no node: {sw.Elapsed.TotalMilliseconds / blocks:F1} ms wall, {bare:F1} ms CPU (mean of {blocks})");
        var nodeOptions = new LocalnetNodeOptions { Port = 0 };
        await using var node = await LocalnetNode.StartAsync(chain, nodeOptions);
        await chain.ProduceBlockAsync(); // warm-up
        sw.Restart();
        b0 = Cpu();
        for (var i = 0; i < blocks; i++) await chain.ProduceBlockAsync();
        var attached = (Cpu() - b0) / blocks;
        Console.WriteLine($"one block with the node attached: {sw.Elapsed.TotalMilliseconds / blocks:F1} ms wall, {attached:F1} ms CPU (mean of {blocks}); the node's share {attached - bare:F1} ms CPU");
        for (var i = 0; i < nodeOptions.StateHistory; i++) await chain.ProduceBlockAsync();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Console.WriteLine($"managed heap with {nodeOptions.StateHistory} state views kept: {GC.GetTotalMemory(true) / (1024 * 1024)} MiB");

        // 2. get_neurons_lite over RPC (the node's side of a metagraph sync).
        using (var ws = await Connect(node.Endpoint))
        {
            sw.Restart();
            const int reads = 5;
            var bytes = 0;
            var c1 = Cpu();
            for (var i = 0; i < reads; i++) bytes = (await Call(ws, "state_call", "NeuronInfoRuntimeApi_get_neurons_lite", "0x0100")).GetString()!.Length / 2;
            Console.WriteLine($"get_neurons_lite(1) over WebSocket: {sw.Elapsed.TotalMilliseconds / reads:F1} ms wall, {(Cpu() - c1) / reads:F1} ms CPU (client and node) per call, {bytes / 1024} KiB");
        }

        // 3. Requests/s: clients each keep one state_getStorage in flight.
        var key = Hex.Encode(StorageKeys.Key(chain.Metadata.Metadata, "System", "Account", ScaleValue.Account(DevAccounts.Alice)));
        var sockets = new List<ClientWebSocket>();
        for (var i = 0; i < clients; i++) sockets.Add(await Connect(node.Endpoint));
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        long done = 0;
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        sw.Restart();
        await Task.WhenAll(sockets.Select(async s =>
        {
            while (!stop.IsCancellationRequested)
            {
                await Call(s, "state_getStorage", key);
                Interlocked.Increment(ref done);
            }
        }));
        var elapsed = sw.Elapsed.TotalSeconds;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        Console.WriteLine($"state_getStorage: {clients} clients, {done} requests in {elapsed:F1} s = {done / elapsed:F0} req/s (clients and node in one process: {cpu / done * 1e6:F0} µs CPU per request)");
        foreach (var s in sockets) s.Dispose();

        // 4. submit → inBlock with dev_newBlock right after the submission.
        var md = chain.Metadata.Metadata;
        var builder = new ExtrinsicBuilder(md);
        using (var ws = await Connect(node.Endpoint))
        {
            var latencies = new List<double>();
            for (var i = 0; i < 20; i++)
            {
                var p = new TransactionParams(148, 1, chain.Identity.GenesisHash, nonce++, Era.Immortal, chain.Identity.GenesisHash);
                var xt = builder.Sign(new Transfer(DevAccounts.Bob, new Balance(1_000_000)).ToBytes(), alice, p);
                var t0 = Stopwatch.GetTimestamp();
                var sub = (await Call(ws, "author_submitAndWatchExtrinsic", Hex.Encode(xt))).GetString()!;
                await Send(ws, "dev_newBlock", new { count = 1 });
                var newBlockId = _lastId;
                bool answered = false, included = false;
                while (!included || !answered)
                {
                    // The dev_newBlock answer and the inBlock notification may come in either order.
                    var m = await Receive(ws);
                    if (m.TryGetProperty("id", out var id) && id.GetInt64() == newBlockId) answered = true;
                    if (m.TryGetProperty("params", out var ps) && ps.GetProperty("subscription").GetString() == sub
                        && ps.GetProperty("result").ValueKind == JsonValueKind.Object && ps.GetProperty("result").TryGetProperty("inBlock", out _))
                    {
                        included = true;
                        latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                    }
                }
            }
            latencies.Sort();
            Console.WriteLine($"submit → inBlock (dev_newBlock at once, {n} neurons in state): median {latencies[latencies.Count / 2]:F1} ms, p90 {latencies[(int)(latencies.Count * 0.9)]:F1} ms");
        }
        return 0;
    }

    /// <summary>An in-memory localnet with subnet 1 of <paramref name="n"/> neurons registered by real signed <c>burned_register</c>s from //Alice; returns Alice's next nonce.</summary>
    internal static async Task<(Localnet Chain, Sr25519KeyPair Alice, uint Nonce)> PopulateAsync(int n)
    {
        var hyper = SubnetHyperparameters.Default with
        {
            MaxAllowedUids = (ushort)Math.Min(n, 65535), MaxRegistrationsPerBlock = 4096, TargetRegistrationsPerInterval = 4096,
            MaxAllowedValidators = 64, Tempo = 360, WeightsRateLimit = 0,
        };
        var chain = Localnet.Open(new LocalnetOptions { SubnetDefaults = hyper, MaxPendingCalls = 8192 });
        var alice = SecretUri.ToSr25519("//Alice");
        uint nonce = 0;
        async Task Submit(ChainCall call)
        {
            var pending = chain.SubmitAsync(CallSigner.Sign(call, alice, nonce++, chain.Identity));
            await chain.ProduceBlockAsync();
            var r = await pending;
            if (!r.IsSuccess) throw new InvalidOperationException(r.ToString());
        }
        await Submit(new RegisterNetwork());
        var registered = 0;
        while (registered < n)
        {
            var batch = Math.Min(1000, n - registered);
            var tasks = new List<Task<CallResult>>(batch);
            for (var i = 0; i < batch; i++)
                tasks.Add(chain.SubmitAsync(CallSigner.Sign(new BurnedRegister(1, new AccountId(RandomNumberGenerator.GetBytes(32))), alice, nonce++, chain.Identity)));
            await chain.ProduceBlockAsync();
            foreach (var t in tasks)
                if (!(await t).IsSuccess) throw new InvalidOperationException((await t).ToString());
            registered += batch;
        }
        return (chain, alice, nonce);
    }

    private static double Cpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;

    private static string LoadAverage()
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

    private static long _lastId;

    private static async Task<ClientWebSocket> Connect(Uri endpoint)
    {
        var ws = new ClientWebSocket();
        await ws.ConnectAsync(endpoint, CancellationToken.None);
        return ws;
    }

    private static async Task Send(ClientWebSocket ws, string method, params object?[] ps)
    {
        var id = Interlocked.Increment(ref _lastId);
        var msg = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?> { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = ps });
        await ws.SendAsync(msg, WebSocketMessageType.Text, true, CancellationToken.None);
    }

    private static async Task<JsonElement> Call(ClientWebSocket ws, string method, params object?[] ps)
    {
        await Send(ws, method, ps);
        while (true)
        {
            var m = await Receive(ws);
            if (m.TryGetProperty("result", out var r)) return r.Clone();
            if (m.TryGetProperty("error", out var e)) throw new InvalidOperationException(e.ToString());
        }
    }

    private static async Task<JsonElement> Receive(ClientWebSocket ws)
    {
        var buffer = new byte[1 << 16];
        using var ms = new MemoryStream();
        WebSocketReceiveResult r;
        do
        {
            r = await ws.ReceiveAsync(buffer, CancellationToken.None);
            ms.Write(buffer, 0, r.Count);
        }
        while (!r.EndOfMessage);
        return JsonDocument.Parse(ms.ToArray()).RootElement.Clone();
    }
}
