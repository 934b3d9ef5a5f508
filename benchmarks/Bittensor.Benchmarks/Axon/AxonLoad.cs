using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Dendrite;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Grpc.Net.Client;
using WireClient = Bittensor.Protocol.Wire.Bittensor.BittensorClient;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;

namespace Bittensor.Benchmarks.Axon;

/// <summary>
/// Load generator for any 2021-protocol axon: <c>axon-load [--target host:port] [--concurrency 1,16,128] [--seconds 10]
/// [--unsigned] [--shape 1,8] [--network_dim 1024] [--channels 4]</c>. Without <c>--target</c> it starts an in-process axon
/// (echo model) on loopback. Each caller signs every request live with one of a pool of dev keys (//bench/i): the
/// 2021 rule wants nonces 1 ms apart per hotkey, so one key cannot carry more than 1,000 req/s.
/// <c>--unsigned</c> sends a zero signature and turns verification off on the in-process axon (benchmark anchor mode).
/// <c>--presign N</c> signs N requests per level before the clock starts (spread over 256 keys), so the figure measures
/// the axon and the transport rather than the load generator's own signing; a level then ends early when they run out.
/// <c>--rate R</c> paces the callers to R calls per second in all (caller c's i-th call is due at (i·callers + c) / R s;
/// a late caller catches up at once), i.e. an offered load instead of a closed loop (soak: benchmarks/soak.sh).
/// </summary>
internal static class AxonLoad
{
    public static async Task<int> Run(string[] args)
    {
        var opts = Args.Parse(args);
        var seconds = double.Parse(opts.Get("seconds", "10"), CultureInfo.InvariantCulture);
        var concurrency = opts.Get("concurrency", "1,16,128").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var unsigned = opts.Has("unsigned");
        var shape = opts.Get("shape", "1,8").Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var dim = int.Parse(opts.Get("network_dim", "1024"), CultureInfo.InvariantCulture);
        var channels = int.Parse(opts.Get("channels", "4"), CultureInfo.InvariantCulture);
        var presign = int.Parse(opts.Get("presign", "0"), CultureInfo.InvariantCulture);
        var rate = double.Parse(opts.Get("rate", "0"), CultureInfo.InvariantCulture);

        ActorSystem? system = null;
        string host;
        int port;
        if (opts.Get("target", "") is { Length: > 0 } target)
        {
            var colon = target.LastIndexOf(':');
            host = target[..colon];
            port = int.Parse(target[(colon + 1)..], CultureInfo.InvariantCulture);
        }
        else
        {
            var config = ConfigurationFactory.ParseString($"akka.loglevel = WARNING\nbittensor.axon.auth.disable_signature_verification = {(unsigned ? "on" : "off")}")
                .WithFallback(BittensorRuntime.ReferenceConfig);
            system = ActorSystem.Create("axon-load", config);
            var settings = AxonSettings.Create(config) with { Ip = "127.0.0.1", Port = 0, NetworkDim = dim, QueueCapacity = 4096, MaxWorkers = 64 };
            var axon = system.ActorOf(AxonActor.Props(settings, DemoModels.Echo(dim)));
            var bound = await axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, TimeSpan.FromSeconds(30));
            host = "127.0.0.1";
            port = bound.Endpoint.Port;
        }

        Console.WriteLine($"# axon-load target={host}:{port} in-process={system is not null} signed={!unsigned} shape=[{string.Join(",", shape)}] " +
            $"answer=[{shape[0]},{shape[1]},{dim}] seconds={seconds} channels={channels} presigned={presign} rate={(rate > 0 ? rate.ToString(CultureInfo.InvariantCulture) : "closed-loop")} cores={Environment.ProcessorCount}");
        Console.WriteLine("| callers | req/s | p50 ms | p99 ms | ok | errors | calls |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---|");
        var keys = Enumerable.Range(0, 256).Select(i => SecretUri.ToSr25519($"//bench/{i}")).ToArray();
        var tokens = Enumerable.Range(0, (int)(shape[0] * shape[1])).Select(i => (long)(i % 50000)).ToArray();
        var wireTensor = TensorCodec.ToTensor(tokens, shape, Modality.Text);
        var grpcChannels = Enumerable.Range(0, channels).Select(_ => BittensorChannelFactory.Create(host, port,
            BittensorChannelOptions.Default with { MaxReceiveMessageSize = 64 * 1024 * 1024 })).ToArray();
        try
        {
            foreach (var c in concurrency)
                await RunLevel(c, seconds, unsigned, presign, rate, keys, wireTensor, grpcChannels);
        }
        finally
        {
            foreach (var ch in grpcChannels) ch.Dispose();
            if (system is not null) await system.Terminate();
        }
        return 0;
    }

    private static async Task RunLevel(int callers, double seconds, bool unsigned, int presign, double rate, Sr25519KeyPair[] keys, Tensor tensor, GrpcChannel[] channels)
    {
        Queue<(string Hotkey, Metadata Headers)>[]? presigned = null;
        if (presign > 0)
        {
            var auths = keys.Select(k => (Hotkey: k.ToSs58(), Auth: new RequestAuth(new KeyPairRequestSigner(k)))).ToArray();
            var signedHeaders = new (string, Metadata)[presign];
            await Parallel.ForAsync(0, presign, async (i, ct) =>
            {
                var (hotkey, auth) = auths[i % auths.Length];
                signedHeaders[i] = (hotkey, await auth.CreateHeadersAsync(ct));
            });
            // Per key, nonces were made in rising order; keep that order inside each caller's queue.
            presigned = Enumerable.Range(0, callers).Select(c => new Queue<(string, Metadata)>(
                signedHeaders.Where((_, i) => i % auths.Length % callers == c).OrderBy(h => h.Item2.GetValue(AuthHeaders.SignatureName), StringComparer.Ordinal))).ToArray();
        }
        // Each caller rotates over its own keys so no hotkey needs more than ~1,000 nonces per second.
        var keysPerCaller = Math.Max(1, Math.Min(16, keys.Length / callers));
        var stop = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        var warmup = TimeSpan.FromSeconds(Math.Min(1, seconds / 5));
        var latencies = new List<double>[callers];
        var errors = new Dictionary<string, int>[callers];
        long answered = 0; // every call answered, warm-up and errors included: what the server handled
        var tasks = Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
        {
            var client = new WireClient(channels[c % channels.Length]);
            var mine = Enumerable.Range(0, keysPerCaller).Select(k => keys[((c * keysPerCaller) + k) % keys.Length]).ToArray();
            var auth = mine.Select(k => new RequestAuth(new KeyPairRequestSigner(k))).ToArray();
            var hotkeys = mine.Select(k => k.ToSs58()).ToArray();
            var lat = latencies[c] = new List<double>(1 << 14);
            var err = errors[c] = new Dictionary<string, int>(StringComparer.Ordinal);
            var i = 0;
            while (stop.Elapsed < deadline)
            {
                if (rate > 0)
                {
                    var due = TimeSpan.FromSeconds(((double)i * callers + c) / rate) - stop.Elapsed;
                    if (due > TimeSpan.Zero) await Task.Delay(due);
                    if (stop.Elapsed >= deadline) break;
                }
                var k = i++ % auth.Length;
                var t0 = Stopwatch.GetTimestamp();
                string hotkey;
                Metadata headers;
                if (presigned is not null)
                {
                    if (!presigned[c].TryDequeue(out var next)) break;
                    (hotkey, headers) = next;
                }
                else
                {
                    hotkey = hotkeys[k];
                    headers = unsigned ? Unsigned(hotkey) : await auth[k].CreateHeadersAsync();
                }
                var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = hotkey };
                request.Tensors.Add(tensor);
                string? code;
                try
                {
                    var response = await client.ForwardAsync(request, headers, DateTime.UtcNow.AddSeconds(30));
                    code = response.ReturnCode == ReturnCode.Success ? null : response.ReturnCode.ToString();
                }
                catch (RpcException e)
                {
                    code = e.StatusCode.ToString();
                }
                Interlocked.Increment(ref answered);
                if (presigned is null && stop.Elapsed < warmup) continue;
                if (code is null) lat.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                else err[code] = err.GetValueOrDefault(code) + 1;
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        var measured = (stop.Elapsed - warmup).TotalSeconds;
        if (presigned is not null) measured = stop.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        var errorText = string.Join(", ", errors.SelectMany(e => e).GroupBy(e => e.Key).Select(g => $"{g.Key}={g.Sum(x => x.Value)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {callers} | {all.Length / measured:F0} | {Percentile(all, 0.50):F2} | {Percentile(all, 0.99):F2} | {all.Length} | {(errorText.Length == 0 ? "none" : errorText)} | {Interlocked.Read(ref answered)} |"));
    }

    private static Metadata Unsigned(string hotkey) => new()
    {
        { AuthHeaders.AuthName, AuthHeaders.AuthValue },
        { AuthHeaders.SignatureName, RequestNonce.Format(DateTime.Now) + AuthHeaders.Separator + hotkey + AuthHeaders.Separator + "0x" + new string('0', 128) },
        { AuthHeaders.VersionName, ProtocolVersion.Current.ToString(CultureInfo.InvariantCulture) },
    };

    internal static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
}

/// <summary>Minimal <c>--name value</c> / <c>--flag</c> parsing for the load harnesses.</summary>
internal sealed class Args
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public static Args Parse(string[] args)
    {
        var a = new Args();
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) continue;
            var name = args[i][2..];
            a._values[name] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "true";
        }
        return a;
    }

    public string Get(string name, string fallback) => _values.TryGetValue(name, out var v) ? v : fallback;

    public bool Has(string name) => _values.ContainsKey(name);
}
