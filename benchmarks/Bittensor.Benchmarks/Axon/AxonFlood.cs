using System.Diagnostics;
using System.Globalization;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Grpc.Net.Client;
using WireClient = Bittensor.Protocol.Wire.Bittensor.BittensorClient;

namespace Bittensor.Benchmarks.Axon;

/// <summary>
/// Hostile-caller flood against a running axon (issue 13 A): <c>axon-flood --target host:port [--kind none|unsigned|badsig]
/// [--seconds 10] [--flooders 64] [--channels 4] [--tokens 16] [--flood_tokens 16]</c>. One legitimate caller (//legit/0..15,
/// signing live, one call at a time, the timer around the call only) keeps calling while <c>--flooders</c> tasks send,
/// as fast as they are answered: <c>unsigned</c> — no auth headers at all; <c>badsig</c> — well-formed headers (fresh
/// nonce, real SS58) with a wrong signature, i.e. one sr25519 verify each; <c>impersonate</c> — the same under a caller
/// the axon knows (//legit/0, whose correctly signed call this process makes first, so the flood also works with
/// <c>--no_legit</c>), with a nonce 10 s ahead so no accepted nonce makes it stale: the flood the new-caller budget does
/// not cover (<c>auth.failed_signature_hold</c> does). Prints one markdown row: the legitimate
/// caller's p50/p99 and calls, the flood's calls and codes. The server's CPU is read by benchmarks/flood.sh from /proc.
/// Split runs (flood.sh SPLIT=1): <c>--source IP</c> binds the flood's sockets to that local address (e.g. 127.0.0.2,
/// so the axon's per-address limits see the flood apart from the legitimate caller), <c>--legit_source IP</c> the
/// legitimate caller's; <c>--no_legit</c> runs the flood alone (the legitimate caller then runs in another process);
/// <c>--legit_rate R</c> paces the legitimate caller to at most R calls per second (a validator's calls are paced);
/// <c>--flood_rate R</c> caps the whole flood at R calls per second (spread over the flooding tasks; 0, the default: as
/// fast as the axon answers).
/// </summary>
internal static class AxonFlood
{
    public static async Task<int> Run(string[] args)
    {
        var opts = Args.Parse(args);
        var target = opts.Get("target", "");
        if (target.Length == 0)
        {
            Console.Error.WriteLine("axon-flood: --target host:port is required");
            return 2;
        }
        var colon = target.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(target[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            Console.Error.WriteLine($"axon-flood: --target must be host:port (got '{target}')");
            return 2;
        }
        var host = target[..colon];
        var kind = opts.Get("kind", "badsig");
        var seconds = double.Parse(opts.Get("seconds", "10"), CultureInfo.InvariantCulture);
        var flooders = kind == "none" ? 0 : int.Parse(opts.Get("flooders", "64"), CultureInfo.InvariantCulture);
        var channels = int.Parse(opts.Get("channels", "4"), CultureInfo.InvariantCulture);
        var tokens = int.Parse(opts.Get("tokens", "16"), CultureInfo.InvariantCulture);
        var floodTokens = int.Parse(opts.Get("flood_tokens", "16"), CultureInfo.InvariantCulture);
        var source = opts.Get("source", "");
        var legitSource = opts.Get("legit_source", "");
        var noLegit = opts.Has("no_legit");
        var legitRate = double.Parse(opts.Get("legit_rate", "0"), CultureInfo.InvariantCulture);
        var floodRate = double.Parse(opts.Get("flood_rate", "0"), CultureInfo.InvariantCulture);
        if (legitRate < 0 || floodRate < 0 || seconds <= 0 || channels < 1 || flooders < 0)
        {
            Console.Error.WriteLine("axon-flood: --seconds must be > 0, --channels >= 1, --flooders >= 0, rates >= 0");
            return 2;
        }
        var perFlooder = flooders == 0 || floodRate == 0 ? 0 : floodRate / flooders;

        var legitChannel = Channel(host, port, legitSource);
        var floodChannels = Enumerable.Range(0, Math.Max(1, channels)).Select(_ => Channel(host, port, source)).ToArray();
        var legitKeys = Enumerable.Range(0, 16).Select(i => SecretUri.ToSr25519($"//legit/{i}")).ToArray();
        var legitAuth = legitKeys.Select(k => new RequestAuth(new KeyPairRequestSigner(k))).ToArray();
        var attackerKey = SecretUri.ToSr25519("//attacker");
        var attacker = attackerKey.ToSs58();
        var attackerAuth = new RequestAuth(new KeyPairRequestSigner(attackerKey));
        var stop = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        var warmup = TimeSpan.FromSeconds(Math.Min(1, seconds / 5));

        // Bad-signature headers: a fresh nonce each second (inside the window), the same wrong signature; a refused
        // nonce is never recorded, so each copy costs the axon one verify.
        var impersonate = kind == "impersonate";
        if (kind is not ("none" or "unsigned" or "badsig" or "impersonate"))
        {
            Console.Error.WriteLine($"axon-flood: --kind must be none, unsigned, badsig or impersonate (got '{kind}')");
            return 2;
        }
        var victimAuth = new RequestAuth(new KeyPairRequestSigner(legitKeys[0]));
        if (impersonate)
        {
            // The victim signs correctly once, so the axon knows its hotkey before the flood claims it.
            try
            {
                var primed = await new WireClient(floodChannels[0]).ForwardAsync(Request(legitKeys[0].ToSs58(), floodTokens),
                    await victimAuth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(30));
                if (primed.ReturnCode != ReturnCode.Success) Console.Error.WriteLine($"axon-flood: the victim's first call answered {primed.ReturnCode}");
            }
            catch (RpcException e)
            {
                Console.Error.WriteLine($"axon-flood: the victim's first call failed: {e.StatusCode}");
            }
        }
        var floodAuth = impersonate ? victimAuth : attackerAuth;
        var floodHotkey = impersonate ? legitKeys[0].ToSs58() : attacker;
        var ahead = impersonate ? TimeSpan.FromSeconds(10) : TimeSpan.Zero;
        var badHeaders = await BadSignature(floodAuth, ahead);
        long floodCalls = 0;
        var floodCodes = new Dictionary<string, int>[flooders];
        var floodTasks = Enumerable.Range(0, flooders).Select(f => Task.Run(async () =>
        {
            var client = new WireClient(floodChannels[f % floodChannels.Length]);
            var codes = floodCodes[f] = new Dictionary<string, int>(StringComparer.Ordinal);
            var request = Request(floodHotkey, floodTokens);
            var sent = 0;
            // Paced tasks start spread over one interval, so a capped flood is even rather than 64 calls at once.
            var offset = perFlooder > 0 ? (double)f / flooders / perFlooder : 0;
            while (stop.Elapsed < deadline)
            {
                if (perFlooder > 0)
                {
                    var due = TimeSpan.FromSeconds(offset + sent++ / perFlooder) - stop.Elapsed;
                    if (due > TimeSpan.Zero) await Task.Delay(due);
                    // Behind by more than one interval (a stall of this process): skip the missed slots rather than
                    // send them at once, so the flood never runs above --flood_rate (an RT flood that tried to catch
                    // up ran at the whole core and into the RT throttle, 2026-12-05).
                    else if (-due.TotalSeconds > 1 / perFlooder) sent = (int)Math.Ceiling((stop.Elapsed.TotalSeconds - offset) * perFlooder);
                    if (stop.Elapsed >= deadline) break;
                }
                var headers = kind == "unsigned" ? new Metadata() : Volatile.Read(ref badHeaders);
                string code;
                try
                {
                    var answer = await client.ForwardAsync(request, headers, DateTime.UtcNow.AddSeconds(30));
                    code = answer.ReturnCode.ToString();
                }
                catch (RpcException e)
                {
                    code = e.StatusCode.ToString();
                }
                Interlocked.Increment(ref floodCalls);
                codes[code] = codes.GetValueOrDefault(code) + 1;
            }
        })).ToArray();
        var refresher = Task.Run(async () =>
        {
            while (stop.Elapsed < deadline)
            {
                await Task.Delay(500);
                Volatile.Write(ref badHeaders, await BadSignature(floodAuth, ahead));
            }
        });

        var latencies = new List<double>(1 << 16);
        var legitErrors = new Dictionary<string, int>(StringComparer.Ordinal);
        var legitClient = new WireClient(legitChannel);
        long legitCalls = 0;
        var i = 0;
        if (noLegit) await Task.WhenAll(floodTasks);
        while (!noLegit && stop.Elapsed < deadline)
        {
            if (legitRate > 0)
            {
                var due = TimeSpan.FromSeconds(i / legitRate) - stop.Elapsed;
                if (due > TimeSpan.Zero) await Task.Delay(due);
                if (stop.Elapsed >= deadline) break;
            }
            var k = i++ % legitAuth.Length;
            var headers = await legitAuth[k].CreateHeadersAsync();
            var request = Request(legitKeys[k].ToSs58(), tokens);
            var t0 = Stopwatch.GetTimestamp();
            string? code;
            try
            {
                var answer = await legitClient.ForwardAsync(request, headers, DateTime.UtcNow.AddSeconds(30));
                code = answer.ReturnCode == ReturnCode.Success ? null : answer.ReturnCode.ToString();
            }
            catch (RpcException e)
            {
                code = e.StatusCode.ToString();
            }
            var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            legitCalls++;
            if (stop.Elapsed < warmup) continue;
            if (code is null) latencies.Add(ms);
            else legitErrors[code] = legitErrors.GetValueOrDefault(code) + 1;
        }
        await Task.WhenAll(floodTasks);
        await refresher;
        var elapsed = stop.Elapsed.TotalSeconds;
        var sorted = latencies.Order().ToArray();
        var floodText = string.Join(", ", floodCodes.SelectMany(c => c).GroupBy(c => c.Key).Select(g => $"{g.Key}={g.Sum(x => x.Value)}"));
        var legitText = legitErrors.Count == 0 ? "none" : string.Join(", ", legitErrors.Select(e => $"{e.Key}={e.Value}"));
        // This process's CPU over its whole run (start-up included) per second of the run: how much of its core it got.
        using var self = Process.GetCurrentProcess();
        var busy = self.TotalProcessorTime.TotalSeconds / Math.Max(0.001, (DateTime.Now - self.StartTime).TotalSeconds);
        // | kind | legit calls | legit p50 ms | legit p99 ms | legit errors | flood calls | flood calls/s | flood codes | total calls | process cores busy |
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {kind} | {legitCalls} | {AxonLoad.Percentile(sorted, 0.50):F2} | {AxonLoad.Percentile(sorted, 0.99):F2} | {legitText} | {Interlocked.Read(ref floodCalls)} | {Interlocked.Read(ref floodCalls) / elapsed:F0} | {(floodText.Length == 0 ? "-" : floodText)} | {legitCalls + Interlocked.Read(ref floodCalls)} | {busy:F2} |"));
        legitChannel.Dispose();
        foreach (var c in floodChannels) c.Dispose();
        return 0;
    }

    /// <summary>A channel whose sockets are bound to <paramref name="source"/> (empty: the system's choice).</summary>
    private static GrpcChannel Channel(string host, int port, string source)
    {
        var options = BittensorChannelOptions.Default with { MaxReceiveMessageSize = 64 * 1024 * 1024 };
        if (source.Length == 0) return BittensorChannelFactory.Create(host, port, options);
        var local = System.Net.IPAddress.Parse(source);
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            UseProxy = false,
            ConnectCallback = async (context, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(local.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    socket.Bind(new System.Net.IPEndPoint(local, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return GrpcChannel.ForAddress($"http://{host}:{port}", new GrpcChannelOptions
        {
            HttpHandler = handler, DisposeHttpClient = true, MaxReceiveMessageSize = options.MaxReceiveMessageSize,
        });
    }

    private static TensorMessage Request(string hotkey, int tokens)
    {
        var m = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = hotkey };
        m.Tensors.Add(TensorCodec.ToTensor(Enumerable.Range(1, tokens).Select(t => (long)t).ToArray(), [1, tokens], Modality.Text));
        return m;
    }

    /// <summary>
    /// A real signature of the attacker's key moved onto another nonce: well-formed in every byte (a valid point, a
    /// canonical scalar, the schnorrkel marker), so the axon must run the whole verify to refuse it.
    /// </summary>
    private static async Task<Metadata> BadSignature(RequestAuth auth, TimeSpan ahead)
    {
        var valid = await auth.CreateSignatureHeaderAsync();
        var first = valid.IndexOf(AuthHeaders.Separator, StringComparison.Ordinal);
        var signedNonce = valid[..first];
        string other;
        var back = 2;
        do other = RequestNonce.Format(DateTime.Now.Add(ahead).AddMilliseconds(-back++));
        while (other == signedNonce);
        return new Metadata
        {
            { AuthHeaders.AuthName, AuthHeaders.AuthValue },
            { AuthHeaders.SignatureName, other + valid[first..] },
            { AuthHeaders.VersionName, ProtocolVersion.Current.ToString(CultureInfo.InvariantCulture) },
        };
    }
}
