using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.Json;

namespace Bittensor.Chain.Tests.Rpc;

/// <summary>
/// Issue 9's "done when", as a stranger types it: <c>btcli localnet run --rpc.port P --localnet.path L</c> in one
/// process (blocks on its timer), and every verb its own <c>btcli</c> process with
/// <c>--subtensor.chain_endpoint ws://127.0.0.1:P</c>: <c>wallet create</c>, <c>localnet faucet</c>,
/// <c>subnets create</c>, <c>register</c>, <c>serve</c>, <c>stake add</c>, <c>dev_newBlock</c> over HTTP (past the
/// weights rate limit), <c>weights set</c>, <c>metagraph --json</c> — which shows what the verbs did. Own temp
/// folders, port 0 (the node prints its endpoint), HOME redirected.
/// </summary>
public sealed class BtcliProcessFlowTests : IAsyncLifetime
{
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(10); // hang guard for a loaded 2-core machine
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-flow-").FullName;
    private readonly List<Process> _processes = [];

    private static string BtcliDll => typeof(BtcliProcessFlowTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var p in _processes)
        {
            try
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync();
            }
            catch (InvalidOperationException)
            {
            }
            p.Dispose();
        }
        Directory.Delete(_dir, recursive: true);
    }

    private Process Start(IEnumerable<string> args, StringBuilder output, TaskCompletionSource<string>? endpoint = null)
    {
        Assert.True(File.Exists(BtcliDll), $"btcli is not built at {BtcliDll}");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(BtcliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["HOME"] = Path.Combine(_dir, "home"); // nothing under the real ~/.bittensor
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (endpoint is not null && e.Data.StartsWith("rpc: ", StringComparison.Ordinal)) endpoint.TrySetResult(e.Data.Split(' ')[1]);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
        };
        process.Exited += (_, _) =>
        {
            lock (output) endpoint?.TrySetException(new InvalidOperationException($"the node exited: {output}"));
        };
        process.Start();
        _processes.Add(process);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Runs one btcli verb to its end; asserts exit code 0 and returns its stdout+stderr.</summary>
    private async Task<string> Btcli(CancellationToken ct, params string[] args)
    {
        var output = new StringBuilder();
        var p = Start(args, output);
        await p.WaitForExitAsync(ct);
        string text;
        lock (output) text = output.ToString();
        Assert.True(p.ExitCode == 0, $"btcli {string.Join(' ', args)} exited {p.ExitCode}: {text}");
        return text;
    }

    private static JsonElement Json(string output)
    {
        var start = output.IndexOfAny(['{', '[']);
        Assert.True(start >= 0, output);
        using var doc = JsonDocument.Parse(output[start..]);
        return doc.RootElement.Clone();
    }

    private static async Task<JsonElement> Rpc(HttpClient http, string url, string method, object[] parameters, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync(url, new { jsonrpc = "2.0", id = 1, method, @params = parameters }, ct);
        response.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.True(doc.RootElement.TryGetProperty("result", out var result), doc.RootElement.ToString());
        return result.Clone();
    }

    [Fact]
    public async Task The_done_when_flow_runs_as_separate_btcli_processes_against_a_node_process()
    {
        using var cts = new CancellationTokenSource(Guard);
        var ct = cts.Token;
        var nodeOutput = new StringBuilder();
        var endpointSource = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Start(["localnet", "run", "--rpc.port", "0", "--localnet.path", Path.Combine(_dir, "localnet")], nodeOutput, endpointSource);
        var endpoint = await endpointSource.Task.WaitAsync(ct);
        Assert.StartsWith("ws://127.0.0.1:", endpoint, StringComparison.Ordinal);
        var http = "http://" + endpoint["ws://".Length..];
        string[] node = ["--subtensor.chain_endpoint", endpoint];
        string[] wallet = ["--wallet.path", Path.Combine(_dir, "wallets"), "--wallet.name", "owner", "--wallet.hotkey", "h1", "--no_password"];

        var created = await Btcli(ct, ["wallet", "create", "--n_words", "12", "--no_password", "--wallet.path", Path.Combine(_dir, "wallets"),
            "--wallet.name", "owner", "--wallet.hotkey", "h1"]);
        Assert.Contains("coldkey ", created, StringComparison.Ordinal);
        Assert.Contains("hotkey ", created, StringComparison.Ordinal);
        var coldkey = Json(await Btcli(ct, ["localnet", "faucet", "--amount", "5000", "--json", .. wallet, .. node])).GetProperty("coldkey").GetString();
        var netuid = Json(await Btcli(ct, ["subnets", "create", "--json", .. wallet, .. node])).GetProperty("netuid").GetInt32();
        var id = netuid.ToString(CultureInfo.InvariantCulture);
        var registered = Json(await Btcli(ct, ["register", "--netuid", id, "--json", .. wallet, .. node]));
        var uid = registered.GetProperty("uid").GetInt32();
        var hotkey = registered.GetProperty("hotkey").GetString();
        await Btcli(ct, ["serve", "--netuid", id, "--axon.ip", "203.0.113.5", "--axon.port", "8091", .. wallet, .. node]);
        var staked = Json(await Btcli(ct, ["stake", "add", "--amount", "100", "--netuid", id, "--json", .. wallet, .. node]));
        Assert.Equal(100_000_000_000UL, staked.GetProperty("stake_rao").GetUInt64());

        // dev_newBlock (chopsticks' name) moves the chain past the weights rate limit at once.
        using var client = new HttpClient();
        var before = Convert.ToUInt64((await Rpc(client, http, "chain_getHeader", [], ct)).GetProperty("number").GetString()![2..], 16);
        await Rpc(client, http, "dev_newBlock", [new { count = 101 }], ct);
        var after = Convert.ToUInt64((await Rpc(client, http, "chain_getHeader", [], ct)).GetProperty("number").GetString()![2..], 16);
        Assert.True(after >= before + 101, $"dev_newBlock 101: head {before} → {after}");

        var weights = Json(await Btcli(ct, ["weights", "set", "--netuid", id, "--uids", uid.ToString(CultureInfo.InvariantCulture), "--weights", "1", "--json",
            .. wallet, .. node]));
        var weightsBlock = weights.GetProperty("block").GetUInt64();
        Assert.True(weightsBlock > after);

        var metagraph = Json(await Btcli(ct, ["metagraph", "--netuid", id, "--json", .. node]));
        Assert.Equal(1, metagraph.GetProperty("n").GetInt32());
        var neuron = metagraph.GetProperty("neurons")[0];
        Assert.Equal(uid, neuron.GetProperty("uid").GetInt32());
        Assert.Equal(hotkey, neuron.GetProperty("hotkey").GetString());
        Assert.Equal(coldkey, neuron.GetProperty("coldkey").GetString());
        Assert.Equal(100_000_000_000UL, neuron.GetProperty("stake_rao").GetUInt64());
        Assert.Equal("203.0.113.5:8091", neuron.GetProperty("axon").GetString());
        Assert.Equal(weightsBlock, neuron.GetProperty("last_update").GetUInt64());
        lock (nodeOutput) Assert.DoesNotContain("error", nodeOutput.ToString(), StringComparison.OrdinalIgnoreCase);
    }
}
