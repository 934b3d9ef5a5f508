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
