using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Bittensor.Cli.Tests.Chain;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Net.Client;
using WireClient = Bittensor.Protocol.Wire.Bittensor.BittensorClient;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// Issue 13 D's done-when, as docs/metrics.md shows it: a real <c>btcli axon serve --metrics.port 0</c> process, one signed
/// Forward, then an HTTP GET of the printed /metrics URL shows the call counter (Prometheus text format).
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed partial class MetricsEndpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-metrics-").FullName;

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static string BtcliDll => typeof(MetricsEndpointTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    [GeneratedRegex(@"serving on [^ ]*:(\d+) ")]
    private static partial Regex ServingLine();

    [GeneratedRegex(@"^metrics on (http://\S+)$")]
    private static partial Regex MetricsLine();

    /// <summary>A running <c>btcli axon serve --metrics.port 0</c> process with its axon port and metrics URL.</summary>
    private sealed class Served(Process process, StringBuilder output, int port, string url) : IAsyncDisposable
    {
        public int Port { get; } = port;

        public string Url { get; } = url;

        public string Output
        {
            get
            {
                lock (output) return output.ToString();
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
            process.Dispose();
        }
    }

    private async Task<Served> Serve(CancellationToken guard, params string[] extra)
    {
        Assert.True(File.Exists(BtcliDll), $"btcli is not built at {BtcliDll}");
        var psi = new ProcessStartInfo(CliProcessDotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { BtcliDll, "axon", "serve", "--uri", "//Bob", "--axon.ip", "127.0.0.1", "--axon.port", "0", "--metrics.port", "0",
                     "--axon.state_path", Path.Combine(_dir, "state") }.Concat(extra))
            psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        var output = new StringBuilder();
        var axonPort = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var metricsUrl = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
            if (ServingLine().Match(line) is { Success: true } s) axonPort.TrySetResult(int.Parse(s.Groups[1].Value, CultureInfo.InvariantCulture));
            if (MetricsLine().Match(line) is { Success: true } m) metricsUrl.TrySetResult(m.Groups[1].Value);
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var served = new Served(process, output, 0, "");
        try
        {
            var exited = process.WaitForExitAsync(guard);
            var ready = Task.WhenAll(axonPort.Task, metricsUrl.Task);
            if (await Task.WhenAny(ready, exited) != ready)
            {
                await exited;
                Assert.Fail($"btcli axon serve exited with {process.ExitCode} before serving: {served.Output}");
            }
            return new Served(process, output, await axonPort.Task, await metricsUrl.Task);
        }
        catch
        {
            await served.DisposeAsync();
            throw;
        }
    }

    private static async Task<TensorMessage> Query(int port, Sr25519KeyPair caller, CancellationToken guard)
    {
        var headers = await new RequestAuth(new KeyPairRequestSigner(caller)).CreateHeadersAsync();
        var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = caller.ToSs58() };
        request.Tensors.Add(TensorCodec.ToTensor(new long[] { 104, 105 }, [1, 2], Modality.Text));
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        return await new WireClient(channel).ForwardAsync(request, headers, DateTime.UtcNow.AddSeconds(60), guard);
    }

    [Fact]
    public async Task A_serving_axon_shows_its_call_counters_at_metrics_after_a_query()
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(3)); // a hang guard, not a timing assertion
        await using var served = await Serve(guard.Token);
        var url = served.Url;
        Assert.StartsWith("http://127.0.0.1:", url, StringComparison.Ordinal);

        using var http = new HttpClient();
        // Before any call: the endpoint answers, in the Prometheus text format, and has no call counter yet.
        var before = await http.GetAsync(new Uri(url), guard.Token);
        Assert.True(before.IsSuccessStatusCode, $"GET {url}: {before.StatusCode}");
        Assert.StartsWith("text/plain", before.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        Assert.DoesNotContain("bittensor_axon_calls_total{", await before.Content.ReadAsStringAsync(guard.Token), StringComparison.Ordinal);

        using var alice = SecretUri.ToSr25519("//Alice");
        var response = await Query(served.Port, alice, guard.Token);
        Assert.Equal(ReturnCode.Success, response.ReturnCode);

        var text = await http.GetStringAsync(new Uri(url), guard.Token);
        var calls = text.Split('\n').Where(l => l.StartsWith("bittensor_axon_calls_total{", StringComparison.Ordinal)).ToList();
        var line = Assert.Single(calls);
        Assert.Contains($"caller=\"{alice.ToSs58()}\"", line, StringComparison.Ordinal);
        Assert.Contains("code=\"Success\"", line, StringComparison.Ordinal);
        Assert.Contains("method=\"Forward\"", line, StringComparison.Ordinal);
        Assert.EndsWith("} 1", line.TrimEnd(), StringComparison.Ordinal);
        Assert.Contains("bittensor_axon_duration_milliseconds_count{", text, StringComparison.Ordinal);
        Assert.Contains("bittensor_axon_waiting{", text, StringComparison.Ordinal);
        Assert.Contains("bittensor_model_queue{", text, StringComparison.Ordinal);
        // No secret in a label: the dev URI never appears, only public SS58 addresses.
        Assert.DoesNotContain("//Bob", text, StringComparison.Ordinal);
        Assert.DoesNotContain("//Alice", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Calls_the_transport_refuses_before_the_axon_sees_them_are_counted_by_code_and_reason_at_metrics()
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(3)); // a hang guard, not a timing assertion
        // Loopback is limited like any address here; one call per hour with a bucket of 1: the second call is refused
        // by the per-address rate limit before its headers are checked, whatever the machine's load.
        var config = Path.Combine(_dir, "limits.conf");
        await File.WriteAllTextAsync(config, "bittensor.axon.limits.per_ip { exempt_loopback = false, requests_per_second = 0.0003, burst = 1, rate_period = 1h }\n", guard.Token);
        await using var served = await Serve(guard.Token, "--config", config);
        using var alice = SecretUri.ToSr25519("//Alice");

        Assert.Equal(ReturnCode.Success, (await Query(served.Port, alice, guard.Token)).ReturnCode);
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await Query(served.Port, alice, guard.Token));
        Assert.Equal(Grpc.Core.StatusCode.ResourceExhausted, refused.StatusCode);

        using var http = new HttpClient();
        var text = await http.GetStringAsync(new Uri(served.Url), guard.Token);
        var line = Assert.Single(text.Split('\n'), l => l.StartsWith("bittensor_axon_refused_total{", StringComparison.Ordinal));
        Assert.Contains("code=\"ResourceExhausted\"", line, StringComparison.Ordinal);
        Assert.Contains("method=\"Forward\"", line, StringComparison.Ordinal);
        Assert.Contains($"reason=\"{RefusalReasons.PerIpRate}\"", line, StringComparison.Ordinal);
        Assert.EndsWith("} 1", line.TrimEnd(), StringComparison.Ordinal);
        // The refused call never reached the axon: only the first call is in the call counter.
        var call = Assert.Single(text.Split('\n'), l => l.StartsWith("bittensor_axon_calls_total{", StringComparison.Ordinal));
        Assert.EndsWith("} 1", call.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_serving_axon_pushes_its_call_counters_to_an_OTLP_collector()
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(3)); // a hang guard, not a timing assertion
        // The collector: a plain HTTP/1.1 listener on a free port that answers every POST 200 (an empty
        // ExportMetricsServiceResponse) and hands each request body to the test.
        using var collector = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        collector.Start();
        var collectorPort = ((System.Net.IPEndPoint)collector.LocalEndpoint).Port;
        var bodies = System.Threading.Channels.Channel.CreateUnbounded<(string Path, byte[] Body)>();
        var serving = Collect(collector, bodies.Writer, guard.Token);
        var config = Path.Combine(_dir, "otlp.conf");
        await File.WriteAllTextAsync(config, "bittensor.metrics.otlp { protocol = \"http/protobuf\", interval = 200ms }\n", guard.Token);
        await using var served = await Serve(guard.Token, "--config", config, "--metrics.otlp.endpoint", $"http://127.0.0.1:{collectorPort}/v1/metrics");

        using var alice = SecretUri.ToSr25519("//Alice");
        Assert.Equal(ReturnCode.Success, (await Query(served.Port, alice, guard.Token)).ReturnCode);

        // Pushes keep coming; the first that carries the call counter with the caller's label ends the wait.
        while (true)
        {
            var (path, body) = await bodies.Reader.ReadAsync(guard.Token);
            Assert.Equal("/v1/metrics", path);
            if (Contains(body, "bittensor.axon.calls"u8) && Contains(body, Encoding.UTF8.GetBytes(alice.ToSs58()))) break;
        }
        Assert.DoesNotContain("//Alice", served.Output, StringComparison.Ordinal);
        collector.Stop();
        await guard.CancelAsync();
        await serving;
    }

    private static bool Contains(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle) >= 0;

    /// <summary>Accepts connections and reads HTTP/1.1 requests (Content-Length or chunked), answering each 200.</summary>
    private static async Task Collect(System.Net.Sockets.TcpListener listener, System.Threading.Channels.ChannelWriter<(string, byte[])> bodies, CancellationToken ct)
    {
        var connections = new List<Task>();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var client = await listener.AcceptTcpClientAsync(ct);
                connections.Add(Task.Run(async () =>
                {
                    using var c = client;
                    var stream = c.GetStream();
                    var reader = new BufferedBytes(stream);
                    try
                    {
                        while (await reader.Line(ct) is { } requestLine)
                        {
                            var path = requestLine.Split(' ') is { Length: >= 2 } parts ? parts[1] : "";
                            long length = 0;
                            var chunked = false;
                            while (await reader.Line(ct) is { Length: > 0 } header)
                            {
                                if (header.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) length = long.Parse(header[15..].Trim(), CultureInfo.InvariantCulture);
                                if (header.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase) && header.Contains("chunked", StringComparison.OrdinalIgnoreCase)) chunked = true;
                            }
                            var body = new MemoryStream();
                            if (chunked)
                            {
                                while (await reader.Line(ct) is { } size && int.Parse(size.Split(';')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture) is var n && n > 0)
                                {
                                    body.Write(await reader.Bytes(n, ct));
                                    await reader.Line(ct);
                                }
                                await reader.Line(ct);
                            }
                            else body.Write(await reader.Bytes((int)length, ct));
                            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"u8.ToArray(), ct);
                            await bodies.WriteAsync((path, body.ToArray()), ct);
                        }
                    }
                    catch (Exception e) when (e is IOException or OperationCanceledException or System.Net.Sockets.SocketException)
                    {
                        // The exporter or the test went away.
                    }
                }, CancellationToken.None));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
        await Task.WhenAll(connections);
    }

    /// <summary>Lines and byte runs from a stream (HTTP/1.1 framing for <see cref="Collect"/>).</summary>
    private sealed class BufferedBytes(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        private async Task<bool> Fill(CancellationToken ct)
        {
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }
            if (_end == _buffer.Length) throw new IOException("line too long");
            var n = await stream.ReadAsync(_buffer.AsMemory(_end), ct);
            _end += n;
            return n > 0;
        }

        public async Task<string?> Line(CancellationToken ct)
        {
            while (true)
            {
                var at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
                if (at >= 0)
                {
                    var line = Encoding.ASCII.GetString(_buffer, _start, at);
                    _start += at + 2;
                    return line;
                }
                if (!await Fill(ct)) return null;
            }
        }

        public async Task<byte[]> Bytes(int count, CancellationToken ct)
        {
            var result = new byte[count];
            var have = 0;
            while (have < count)
            {
                if (_start == _end && !await Fill(ct)) throw new IOException("closed inside a body");
                var n = Math.Min(count - have, _end - _start);
                Buffer.BlockCopy(_buffer, _start, result, have, n);
                _start += n;
                have += n;
            }
            return result;
        }
    }

    [Theory]
    [InlineData("--metrics.port", "70000", "bittensor.metrics.port")]
    [InlineData("--metrics.ip", "not-an-ip", "bittensor.metrics.ip")]
    [InlineData("--metrics.otlp.endpoint", "ftp://x", "bittensor.metrics.otlp.endpoint")]
    public async Task A_bad_metrics_flag_is_one_line_naming_the_key_and_exit_1(string flag, string value, string key)
    {
        var (code, _, err) = await CliHarness.RunAsync(["axon", "serve", "--uri", "//Bob", "--axon.port", "0", "--axon.state_path", Path.Combine(_dir, "s"), flag, value]);
        Assert.Equal(1, code);
        Assert.Contains(key, err, StringComparison.Ordinal);
    }

    private static string CliProcessDotnet => Shipped.CliProcess.Dotnet;
}
