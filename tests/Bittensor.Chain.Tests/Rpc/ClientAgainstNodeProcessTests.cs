using System.Collections.Immutable;
using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Bittensor.Chain.Rpc;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Core.Resilience;

namespace Bittensor.Chain.Tests.Rpc;

/// <summary>
/// Our client against our node in another OS process (<c>btcli localnet run --rpc.port</c>) over loopback WebSocket:
/// subnet, register, serve, stake, weights and the metagraph; then the node is killed with SIGKILL while an
/// extrinsic waits in its pool, restarted on the same port, and the client reconnects, finds the extrinsic absent,
/// sends the same bytes once more and sees it applied exactly once.
/// </summary>
public sealed class ClientAgainstNodeProcessTests : IAsyncLifetime
{
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(3);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bt-client-node-" + Guid.NewGuid().ToString("N"));
    private readonly List<Process> _nodes = [];

    private static string BtcliDll => typeof(ClientAgainstNodeProcessTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var p in _nodes)
        {
            if (!p.HasExited) p.Kill();
            await p.WaitForExitAsync();
            p.Dispose();
        }
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Starts <c>btcli localnet run</c> and returns it with the endpoint it prints.</summary>
    private async Task<(Process Node, Uri Endpoint)> StartNodeAsync(int port, bool manualSeal)
    {
        Assert.True(File.Exists(BtcliDll), $"btcli is not built at {BtcliDll}");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var args = new List<string> { BtcliDll, "localnet", "run", "--localnet.path", _dir, "--rpc.port", port.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        args.AddRange(manualSeal ? ["--manual_seal"] : ["--block_time", "0.05"]);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["HOME"] = _dir + "-home";
        var output = new StringBuilder();
        var endpoint = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var node = Process.Start(psi)!;
        _nodes.Add(node);
        node.OutputDataReceived += (_, e) =>
        {
            lock (output) output.AppendLine(e.Data);
            if (e.Data is { } line && line.StartsWith("rpc: ", StringComparison.Ordinal)) endpoint.TrySetResult(new Uri(line.Split(' ')[1]));
        };
        node.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        node.Exited += (_, _) => endpoint.TrySetException(new InvalidOperationException($"the node exited: {output}"));
        node.EnableRaisingEvents = true;
        node.BeginOutputReadLine();
        node.BeginErrorReadLine();
        return (node, await endpoint.Task.WaitAsync(Guard));
    }

    private static void Kill9(Process node)
    {
        node.Kill(); // SIGKILL on Unix
        node.WaitForExit();
    }

    private static SubstrateBackendOptions Options(Uri endpoint) => new()
    {
        Rpc = new JsonRpcOptions
        {
            Endpoint = endpoint,
            RequestTimeout = TimeSpan.FromSeconds(60),
            Reconnect = new BackoffPolicy(TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1), 0.2),
        },
    };

    private static async Task<CallResult> Submit(SubstrateChainBackend chain, Sr25519KeyPair key, ChainCall call, CancellationToken ct = default)
    {
        var account = new AccountId(key.PublicKey.Span);
        var prepared = await chain.PrepareAsync(call, account, await chain.GetNonceAsync(account, ct), ct);
        return await chain.SubmitAsync(prepared, key.Sign(prepared.Payload.Span), waitForFinalization: true, ct);
    }

    private static void Ok(CallResult r) => Assert.True(r.IsSuccess, r.ToString());

    private static async Task NewBlock(SubstrateChainBackend chain) =>
        await chain.Client.RequestAsync("dev_newBlock", [new Dictionary<string, object?> { ["count"] = 1 }]);

    [Fact]
    public async Task Subnet_register_serve_stake_weights_metagraph_then_a_kill_9_mid_flow_loses_nothing_and_applies_nothing_twice()
    {
        using var cts = new CancellationTokenSource(Guard);
        var alice = SecretUri.ToSr25519("//Alice");
        var hot = SecretUri.ToSr25519("//Alice//hot1");
        var hotId = new AccountId(hot.PublicKey.Span);
        var (node, endpoint) = await StartNodeAsync(0, manualSeal: false);
        await using var chain = await SubstrateChainBackend.ConnectAsync(Options(endpoint), cts.Token);
        Assert.Equal(148u, chain.SpecVersion);

        Ok(await Submit(chain, alice, new RegisterNetwork(), cts.Token));
        var subnet = Assert.Single(await chain.GetSubnetsAsync(cts.Token));
        Ok(await Submit(chain, alice, new BurnedRegister(subnet.Netuid, hotId), cts.Token));
        Ok(await Submit(chain, hot, new ServeAxon(subnet.Netuid, 1, 0xCB007105, 8091, 4, 0), cts.Token));
        Ok(await Submit(chain, alice, new AddStake(hotId, Balance.FromTao(10)), cts.Token));
        var refused = Assert.IsType<CallResult.Failed>(await Submit(chain, hot, new SetWeights(subnet.Netuid, [0], [65535], 0), cts.Token));
        Assert.Equal("SettingWeightsTooFast", refused.Error); // the runtime's rule, by its module error name
        var registeredAt = (await chain.GetNeuronAsync(subnet.Netuid, 0, cts.Token))!.BlockAtRegistration;
        var limit = (await chain.GetHyperparametersAsync(subnet.Netuid, cts.Token))!.WeightsRateLimit;
        await foreach (var b in chain.SubscribeBlocksAsync(cts.Token))
        {
            if (b.Number > registeredAt + limit) break;
        }
        Ok(await Submit(chain, hot, new SetWeights(subnet.Netuid, [0], [65535], 0), cts.Token));

        var neurons = await chain.GetNeuronsAsync(subnet.Netuid, cts.Token);
        var n = Assert.Single(neurons);
        Assert.Equal((hotId, new AccountId(alice.PublicKey.Span)), (n.Hotkey, n.Coldkey));
        Assert.Equal(Balance.FromTao(10), n.Stake);
        Assert.Equal(8091, n.Axon.Port);
        Assert.Equal([new UidWeight(0, 65535)], n.Weights.ToArray());

        // Kill -9 between blocks, restart on the same port with blocks on demand: the client reconnects by itself.
        var port = endpoint.Port;
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        chain.ConnectionChanged += c =>
        {
            if (c.Connected) reconnected.TrySetResult();
        };
        Kill9(node);
        (node, _) = await StartNodeAsync(port, manualSeal: true);
        await reconnected.Task.WaitAsync(cts.Token); // the client's reconnect event itself
        var dest = new AccountId(SecretUri.ToSr25519("//Alice//dest").PublicKey.Span);
        var before = await chain.GetBalanceAsync(dest, cts.Token);
        var aliceId = new AccountId(alice.PublicKey.Span);
        var nonceBefore = await chain.GetChainNonceAsync(aliceId, null, cts.Token);

        // A transfer waits in the pool (no block yet); the node dies with it and comes back with an empty pool.
        var prepared = await chain.PrepareAsync(new Transfer(dest, Balance.FromTao(5)), aliceId, nonceBefore, cts.Token);
        var pending = chain.SubmitAsync(prepared, alice.Sign(prepared.Payload.Span), waitForFinalization: false, cts.Token);
        await WaitForPoolAsync(chain, 1, cts.Token);
        Kill9(node);
        (node, _) = await StartNodeAsync(port, manualSeal: true);
        // The client finds the chain without it (nonce unused, era open) and sends the same bytes again.
        await WaitForPoolAsync(chain, 1, cts.Token);
        Assert.False(pending.IsCompleted);
        await NewBlock(chain);
        var outcome = await pending.WaitAsync(cts.Token);
        var included = outcome as CallResult.InBlock ?? throw new Xunit.Sdk.XunitException($"expected inclusion, got {outcome}");
        Assert.Equal(before + Balance.FromTao(5), await chain.GetBalanceAsync(dest, cts.Token)); // applied once
        Assert.Equal(nonceBefore + 1, await chain.GetChainNonceAsync(aliceId, null, cts.Token));
        await NewBlock(chain);
        Assert.Empty((await chain.Client.RequestAsync("author_pendingExtrinsics", [], null, cts.Token)).EnumerateArray());
        Assert.Equal(before + Balance.FromTao(5), await chain.GetBalanceAsync(dest, cts.Token));
        Assert.Equal(Balance.FromTao(10), await chain.GetTotalStakeForHotkeyAsync(hotId, cts.Token)); // nothing else changed
        Assert.True(included.Block > 0);
    }

    /// <summary>Until the node's pool holds <paramref name="count"/> calls (its pool subscription, <see cref="NodePool"/>; made again after a restart).</summary>
    private static async Task WaitForPoolAsync(SubstrateChainBackend chain, int count, CancellationToken ct)
    {
        await using var pool = await NodePool.SubscribeAsync(chain.Client, ct);
        await pool.WaitForAsync(count, ct);
    }
}
