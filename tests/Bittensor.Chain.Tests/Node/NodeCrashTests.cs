using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Bittensor.Chain.Local;
using Bittensor.Chain.Node;
using Bittensor.Chain.Substrate;
using Bittensor.Chain.Tests.Localnet;
using Bittensor.Core;

namespace Bittensor.Chain.Tests.Node;

/// <summary>
/// The real <c>btcli localnet run --rpc.port 0 --manual_seal</c> as a separate process, used over WebSocket, killed
/// with SIGKILL and restarted on its folder: included extrinsics stay (and cannot be replayed), the pool is gone, the
/// headers needed for mortal eras survive, the genesis is the same.
/// </summary>
public sealed class NodeCrashTests : IDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(3); // hang guard only
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bt-node-crash-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static string BtcliDll => typeof(NodeCrashTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    private sealed class Child : IAsyncDisposable
    {
        private readonly StringBuilder _output = new();

        public Child(string dir)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { BtcliDll, "localnet", "run", "--localnet.path", dir, "--rpc.port", "0", "--manual_seal" }) psi.ArgumentList.Add(a);
            var endpoint = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
            Process = Process.Start(psi)!;
            Process.OutputDataReceived += (_, e) =>
            {
                lock (_output) _output.AppendLine(e.Data);
                if (e.Data?.StartsWith("rpc: ", StringComparison.Ordinal) == true) endpoint.TrySetResult(new Uri(e.Data.Split(' ')[1]));
            };
            Process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
            Process.Exited += (_, _) => endpoint.TrySetException(new InvalidOperationException("btcli exited: " + Output));
            Process.EnableRaisingEvents = true;
            Process.BeginOutputReadLine();
            Process.BeginErrorReadLine();
            Endpoint = endpoint.Task;
        }

        public Process Process { get; }

        public Task<Uri> Endpoint { get; }

        public string Output
        {
            get { lock (_output) return _output.ToString(); }
        }

        public async Task KillAsync()
        {
            if (!Process.HasExited) Process.Kill(); // SIGKILL: no chance to finish anything
            await Process.WaitForExitAsync().WaitAsync(Guard);
        }

        public async ValueTask DisposeAsync()
        {
            await KillAsync();
            Process.Dispose();
        }
    }

    private static ulong Number(JsonElement header) => ulong.Parse(header.GetProperty("number").GetString()![2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_node_killed_with_sigkill_restarts_with_its_blocks_and_headers_and_refuses_replays()
    {
        Assert.True(File.Exists(BtcliDll), $"btcli is not built at {BtcliDll}");
        string genesis, includedBlock, xt1Hex, xt2Hex;
        ulong bobAfterFirst;
        await using (var child = new Child(_dir))
        {
            await using var c = await RpcClient.ConnectAsync(await child.Endpoint.WaitAsync(Guard));
            var md = RuntimeMetadata.Decode(Hex.Decode((await c.Call("state_getMetadata")).GetString()!));
            genesis = (await c.Call("chain_getBlockHash", 0)).GetString()!;
            await c.Call("dev_newBlock", new { count = 5 });
            var current = Number(await c.Call("chain_getHeader"));
            var era = Era.Mortal(128, current);
            var birth = Hex.Decode((await c.Call("chain_getBlockHash", era.BirthBlock(current))).GetString()!);
            var builder = new ExtrinsicBuilder(md);
            byte[] Transfer(uint nonce, long value) => builder.Sign(
                MetadataCalls.Encode(md, "Balances", "transfer_keep_alive", ("dest", ScaleValue.Enum("Id", ScaleValue.Account(DevAccounts.Bob))), ("value", ScaleValue.Int(value))),
                TestChain.Key("//Alice"), new TransactionParams(148, 1, Hex.Decode(genesis), nonce, era, birth));
            xt1Hex = Hex.Encode(Transfer(0, 1_000_000_000));
            xt2Hex = Hex.Encode(Transfer(1, 2_000_000_000));
            var watch = await c.Subscribe("author_submitAndWatchExtrinsic", xt1Hex);
            Assert.Equal("ready", (await c.Next(watch)).GetString());
            await c.Call("dev_newBlock", new { count = 1 });
            includedBlock = (await c.Next(watch)).GetProperty("inBlock").GetString()!;
            bobAfterFirst = await BobFree(c, md);
            // The second transfer waits in the pool when the process dies.
            await c.Call("author_submitExtrinsic", xt2Hex);
            Assert.Equal(2, (await c.Call("system_accountNextIndex", DevAccounts.Alice.ToString())).GetInt32());
            await child.KillAsync();
        }

        await using (var child = new Child(_dir))
        {
            await using var c = await RpcClient.ConnectAsync(await child.Endpoint.WaitAsync(Guard));
            var md = RuntimeMetadata.Decode(Hex.Decode((await c.Call("state_getMetadata")).GetString()!));
            Assert.Equal(genesis, (await c.Call("chain_getBlockHash", 0)).GetString());
            var header = await c.Call("chain_getHeader", includedBlock);
            Assert.Equal(JsonValueKind.Object, header.ValueKind); // headers survive the restart
            Assert.Equal(bobAfterFirst, await BobFree(c, md));
            // Included once, never again; the pooled one was lost with the process (as a node's pool is) and is
            // accepted again: its mortal era's birth block is still known.
            Assert.Equal(1, (await c.Call("system_accountNextIndex", DevAccounts.Alice.ToString())).GetInt32());
            var replay = await c.CallRaw("author_submitExtrinsic", xt1Hex);
            Assert.Equal("Transaction is outdated", replay.GetProperty("error").GetProperty("data").GetString());
            var watch = await c.Subscribe("author_submitAndWatchExtrinsic", xt2Hex);
            Assert.Equal("ready", (await c.Next(watch)).GetString());
            await c.Call("dev_newBlock", new { count = 1 });
            Assert.True((await c.Next(watch)).TryGetProperty("inBlock", out _));
            Assert.Equal(bobAfterFirst + 2_000_000_000, await BobFree(c, md));
        }
    }

    private static async Task<ulong> BobFree(RpcClient c, RuntimeMetadata md)
    {
        var raw = (await c.Call("state_getStorage", Hex.Encode(StorageKeys.Key(md, "System", "Account", ScaleValue.Account(DevAccounts.Bob))))).GetString()!;
        return ChainRecords.ToAccountInfo(StorageKeys.DecodeValue(md, "System", "Account", Hex.Decode(raw))!).Free.Rao;
    }
}
