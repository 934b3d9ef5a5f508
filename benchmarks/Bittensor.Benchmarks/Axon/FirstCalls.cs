using System.Diagnostics;
using System.Globalization;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Benchmarks.Axon;

/// <summary>
/// A fresh axon's first calls (session 18, h3-warm): <c>first-calls --target host:port --watch_pid PID [--calls 100]
/// [--shape 1,16] [--network_dim 1024] [--uri //Bob] [--client_warm host:port]</c>. One caller makes <c>--calls</c>
/// signed Forwards one after the other over one lean-client connection (what the dendrite uses) and prints, after call 1,
/// 2, 10, 100 (and the last), that call's latency and the CPU the server process <c>--watch_pid</c> spent since the
/// first call started (the sum of its threads' <c>/proc/PID/task/*/schedstat</c> run times), and first the server's
/// CPU over 1 s idle (the baseline each window includes). Each call is signed before its clock starts.
/// <c>--client_warm</c>: first make 20 calls to another axon (the harness's own first use of its client, kept out of the
/// figures). Figures live in benchmarks/results/axon.md, never in tests.
/// </summary>
internal static class FirstCalls
{
    public static async Task<int> Run(string[] args)
    {
        var opts = Args.Parse(args);
        var target = opts.Get("target", "");
        var pid = int.Parse(opts.Get("watch_pid", "0"), CultureInfo.InvariantCulture);
        if (target.Length == 0 || pid <= 0)
        {
            Console.Error.WriteLine("first-calls: --target host:port and --watch_pid PID are required");
            return 2;
        }
        var calls = int.Parse(opts.Get("calls", "100"), CultureInfo.InvariantCulture);
        var shape = opts.Get("shape", "1,16").Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        using var key = SecretUri.ToSr25519(opts.Get("uri", "//Bob"));
        var auth = new RequestAuth(new KeyPairRequestSigner(key));
        var tokens = Enumerable.Range(0, (int)(shape[0] * shape[1])).Select(i => (long)(i % 50000)).ToArray();
        var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = auth.Hotkey };
        request.Tensors.Add(TensorCodec.ToTensor(tokens, shape, Modality.Text));
        var options = BittensorChannelOptions.Default with { MaxReceiveMessageSize = 64 * 1024 * 1024 };

        if (opts.Get("client_warm", "") is { Length: > 0 } warm)
        {
            var (wh, wp) = Split(warm);
            using var w = LeanClientTransport.Instance.Connect(wh, wp, options);
            for (var i = 0; i < 20; i++)
                await w.CallAsync(BittensorMethod.Forward, request, await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(30), CancellationToken.None);
        }

        var idle0 = Cpu(pid);
        await Task.Delay(1000);
        Console.WriteLine($"# first-calls target={target} server pid {pid}: idle 1 s {(Cpu(pid) - idle0) / 1e6:F1} ms CPU");
        Console.WriteLine("| call | code | latency ms | server CPU since call 1 ms |");
        Console.WriteLine("|---:|---|---:|---:|");
        var (host, port) = Split(target);
        using var connection = LeanClientTransport.Instance.Connect(host, port, options);
        long cpu0 = 0;
        for (var i = 1; i <= calls; i++)
        {
            var headers = await auth.CreateHeadersAsync();
            if (i == 1) cpu0 = Cpu(pid);
            var t0 = Stopwatch.GetTimestamp();
            string code;
            try
            {
                var answer = await connection.CallAsync(BittensorMethod.Forward, request, headers, DateTime.UtcNow.AddSeconds(60), CancellationToken.None);
                code = answer.ReturnCode.ToString();
            }
            catch (RpcException e)
            {
                code = e.StatusCode.ToString();
            }
            var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            if (i is 1 or 2 or 10 or 100 || i == calls)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {i} | {code} | {ms:F2} | {(Cpu(pid) - cpu0) / 1e6:F1} |"));
        }
        return 0;
    }

    private static (string Host, int Port) Split(string endpoint)
    {
        var colon = endpoint.LastIndexOf(':');
        return (endpoint[..colon], int.Parse(endpoint[(colon + 1)..], CultureInfo.InvariantCulture));
    }

    // Nanoseconds the process's threads have run (schedstat's first field), summed.
    private static long Cpu(int pid)
    {
        long sum = 0;
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                var text = File.ReadAllText(Path.Combine(task, "schedstat"));
                sum += long.Parse(text.AsSpan(0, text.IndexOf(' ')), CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                // The thread ended between the listing and the read.
            }
        }
        return sum;
    }
}
