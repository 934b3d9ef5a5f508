using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Bittensor.Chain.Rpc;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Core.Resilience;

namespace Bittensor.Chain.Tests.Rpc;

/// <summary>
/// <c>btcli run server</c> as its own OS process against our node in another (<c>btcli localnet run --rpc.port 0
/// --manual_seal</c>), everything set up by <c>btcli</c> processes over the wire (<c>--subtensor.chain_endpoint</c>):
/// wallet files, the faucet, <c>subnets create</c>; then the server registers its hotkey and serves its axon, which
/// the test reads back from the node's storage with its own client. Blocks are sealed by the test (<c>dev_newBlock</c>)
/// whenever the node's pool holds an extrinsic, so nothing depends on a block timer. Real TorchSharp model, real
/// sockets, port 0, own temp folders.
/// </summary>
public sealed class RolesAgainstNodeProcessTests : IAsyncLifetime
{
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(8); // hang guard for a loaded 2-core machine
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-roles-node-").FullName;
    private readonly List<Process> _processes = [];

    private static string BtcliDll => typeof(RolesAgainstNodeProcessTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    private string Wallets => Path.Combine(_dir, "wallets");

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

    /// <summary>A btcli child process with its output collected line by line.</summary>
    private sealed class Btcli
    {
        private readonly StringBuilder _output = new();

        public required Process Process { get; init; }

        public string Output
        {
            get
            {
                lock (_output) return _output.ToString();
            }
        }

        /// <summary>Completes with the first stdout line starting with the prefix (fails when the process exits first).</summary>
        public Task<string> Line(string prefix)
        {
            var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_output)
            {
                foreach (var l in _output.ToString().Split('\n'))
                    if (l.StartsWith(prefix, StringComparison.Ordinal)) tcs.TrySetResult(l.TrimEnd('\r'));
                _watches.Add((prefix, tcs));
            }
            return tcs.Task;
        }

        private readonly List<(string Prefix, TaskCompletionSource<string> Tcs)> _watches = [];

        public void Append(string? line, bool stdout)
        {
            if (line is null) return;
            lock (_output)
            {
                _output.AppendLine(line);
                if (!stdout) return;
                foreach (var (prefix, tcs) in _watches)
                    if (line.StartsWith(prefix, StringComparison.Ordinal)) tcs.TrySetResult(line);
            }
        }

        public void Exited()
        {
            lock (_output)
            {
                foreach (var (_, tcs) in _watches) tcs.TrySetException(new InvalidOperationException($"btcli exited ({Process.ExitCode}): {_output}"));
            }
        }
    }

    private Btcli Start(params string[] args)
    {
        Assert.True(File.Exists(BtcliDll), $"btcli is not built at {BtcliDll}");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(BtcliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["HOME"] = Path.Combine(_dir, "home"); // nothing under the real ~/.bittensor
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var b = new Btcli { Process = process };
        process.OutputDataReceived += (_, e) => b.Append(e.Data, stdout: true);
        process.ErrorDataReceived += (_, e) => b.Append(e.Data, stdout: false);
        process.Exited += (_, _) => b.Exited();
        process.Start();
        _processes.Add(process);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return b;
    }

    /// <summary>Runs btcli to its end while sealing a block whenever the node's pool holds an extrinsic.</summary>
    private static async Task<string> RunSealing(Btcli b, SubstrateChainBackend chain, CancellationToken ct)
    {
        var exited = b.Process.WaitForExitAsync(ct);
        await SealWhilePending(chain, exited, ct);
        await exited;
        Assert.True(b.Process.ExitCode == 0, $"btcli {string.Join(' ', b.Process.StartInfo.ArgumentList.Skip(1))} exited {b.Process.ExitCode}: {b.Output}");
        return b.Output;
    }

    /// <summary>Until <paramref name="until"/> completes: a block whenever the pool holds an extrinsic (the node's pool subscription, <see cref="NodePool"/>).</summary>
    private static async Task SealWhilePending(SubstrateChainBackend chain, Task until, CancellationToken ct)
    {
        await using var pool = await NodePool.SubscribeAsync(chain.Client, ct);
        await pool.SealWhilePendingAsync(until, ct);
    }

    [Fact]
    public async Task Btcli_run_server_in_its_own_process_registers_and_serves_its_axon_on_a_node_in_another()
    {
        using var cts = new CancellationTokenSource(Guard);
        var ct = cts.Token;
        var node = Start("localnet", "run", "--localnet.path", Path.Combine(_dir, "localnet"), "--rpc.port", "0", "--manual_seal");
        var endpoint = (await node.Line("rpc: ").WaitAsync(ct)).Split(' ')[1];
        Assert.StartsWith("ws://127.0.0.1:", endpoint, StringComparison.Ordinal);
        await using var chain = await SubstrateChainBackend.ConnectAsync(new SubstrateBackendOptions
        {
            Rpc = new JsonRpcOptions
            {
                Endpoint = new Uri(endpoint),
                RequestTimeout = TimeSpan.FromSeconds(60),
                Reconnect = new BackoffPolicy(TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1), 0.2),
            },
        }, ct);
        string[] overWire = ["--subtensor.chain_endpoint", endpoint];
        string[] wallet = ["--wallet.path", Wallets];

        await RunSealing(Start(["wallet", "new_coldkey", "--n_words", "12", "--no_password", .. wallet]), chain, ct);
        await RunSealing(Start(["wallet", "new_hotkey", "--n_words", "12", "--no_password", .. wallet]), chain, ct);
        var coldkey = ReadSs58(Path.Combine(Wallets, "default", "coldkeypub.txt"));
        var hotkey = ReadSs58(Path.Combine(Wallets, "default", "hotkeys", "default"));
        await RunSealing(Start(["localnet", "faucet", "--amount", "5000", .. wallet, .. overWire]), chain, ct);
        Assert.True(await chain.GetBalanceAsync(coldkey, ct) >= Balance.FromTao(5000));
        await RunSealing(Start(["subnets", "create", .. wallet, .. overWire]), chain, ct);
        var subnet = Assert.Single(await chain.GetSubnetsAsync(ct));
        Assert.Equal(coldkey, subnet.Owner);

        var config = Path.Combine(_dir, "role.conf");
        await File.WriteAllTextAsync(config, "bittensor.model.threads = 1", ct);
        var server = Start(["run", "server", "--netuid", subnet.Netuid.ToString(CultureInfo.InvariantCulture), "--axon.port", "0", "--config", config,
            "--neuron.full_path", Path.Combine(_dir, "server-state"), .. wallet, .. overWire]);
        var running = server.Line("server running on subnet ");
        await SealWhilePending(chain, running, ct);
        Assert.Contains(hotkey.ToSs58(), await running, StringComparison.Ordinal);
        Assert.Contains($"chain: {endpoint}", server.Output, StringComparison.Ordinal); // it used the node, not an embedded chain

        // What the server did is on the node: its hotkey registered under the wallet's coldkey, its axon served.
        var neuron = Assert.Single(await chain.GetNeuronsAsync(subnet.Netuid, ct));
        Assert.Equal((hotkey, coldkey), (neuron.Hotkey, neuron.Coldkey));
        Assert.Equal("127.0.0.2", neuron.Axon.IpText);
        Assert.NotEqual(0, neuron.Axon.Port);
        Assert.False(server.Process.HasExited, server.Output);
        // The node's folder is the node's: the role never opened it (it would have said "in use").
        Assert.DoesNotContain("in use", server.Output, StringComparison.Ordinal);
    }

    private static AccountId ReadSs58(string path)
    {
        var text = File.ReadAllText(path);
        using var doc = JsonDocument.Parse(text);
        return new AccountId(Ss58.Decode(doc.RootElement.GetProperty("ss58Address").GetString()!));
    }
}
