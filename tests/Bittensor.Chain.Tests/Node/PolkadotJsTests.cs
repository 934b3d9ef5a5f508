using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using Bittensor.Chain.Local;
using Bittensor.Chain.Node;
using Bittensor.Chain.Tests.Localnet;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Tests.Node;

/// <summary>
/// Issue 9 test 2: polkadot-js (an independent client, <c>@polkadot/api</c> 16.5.6) against the localnet node. The
/// test installs the pinned packages with npm into <c>tests/js/polkadot-node/node_modules</c> (git-ignored) and runs
/// <c>node-check.mjs</c>: <c>ApiPromise.create</c>, SubtensorModule storage and System.Account through the decorated
/// queries, <c>balances.transferKeepAlive</c> signed by //Alice until finalized, its events decoded.
/// </summary>
public sealed class PolkadotJsTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(10); // hang guard (npm install on a cold cache)

    private static string Dir => Path.GetFullPath(typeof(PolkadotJsTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "PolkadotJsDir").Value!);

    [Fact]
    public async Task Polkadot_js_connects_reads_subtensor_storage_and_submits_a_transfer_it_sees_finalized_with_its_events()
    {
        await Npm("install", "--no-audit", "--no-fund", "--loglevel=error");

        await using var t = TestChain.Create();
        Assert.IsType<CallResult.InBlock>(await t.Submit("//Alice", new RegisterNetwork()));
        Assert.IsType<CallResult.InBlock>(await t.Submit("//Alice", new BurnedRegister(1, TestChain.Id("//hot0"))));
        var bobBefore = await t.Chain.GetBalanceAsync(DevAccounts.Bob);
        await using var node = await LocalnetNode.StartAsync(t.Chain, new LocalnetNodeOptions { Port = 0 });
        // Blocks on a timer, as `btcli localnet run` makes them: polkadot-js waits for inclusion by itself.
        using var stop = new CancellationTokenSource();
        var producing = new LocalnetBlockProducer(t.Chain, TimeSpan.FromMilliseconds(200)).RunAsync(null, stop.Token);
        string output;
        try
        {
            output = await Run("node", "node-check.mjs", node.Endpoint.ToString().TrimEnd('/'));
        }
        finally
        {
            await stop.CancelAsync();
            await producing;
        }
        var seen = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal(t.Chain.Identity.Name, seen.GetProperty("chain").GetString());
        Assert.Equal(148, seen.GetProperty("specVersion").GetInt32());
        Assert.Equal(15, seen.GetProperty("metadataVersion").GetInt32());
        Assert.Equal(1, seen.GetProperty("totalNetworks").GetInt32());
        Assert.Equal(1, seen.GetProperty("subnetworkN1").GetInt32());
        Assert.Equal("123456789", seen.GetProperty("bobGained").GetString());
        Assert.True(seen.GetProperty("headSeen").GetInt32() >= 0); // api.rpc.chain.subscribeNewHeads delivered a head
        Assert.Equal(["balances.Transfer@0", "system.ExtrinsicSuccess@0"], seen.GetProperty("events").EnumerateArray().Select(e => e.GetString()!));
        Assert.Equal(bobBefore.Rao + 123_456_789, (await t.Chain.GetBalanceAsync(DevAccounts.Bob)).Rao);
        var finalized = Bittensor.Core.Hex.Decode(seen.GetProperty("finalized").GetString()!);
        Assert.NotNull(t.Chain.FindBlock(finalized));
    }

    private static Task<string> Npm(params string[] args) => Run("npm", args);

    private static async Task<string> Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = Dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            await p.WaitForExitAsync().WaitAsync(Guard);
        }
        catch (TimeoutException)
        {
            p.Kill(entireProcessTree: true);
            throw;
        }
        var (o, e) = (await stdout, await stderr);
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)} exited with {p.ExitCode}:\n{o}\n{e}");
        return o;
    }
}
