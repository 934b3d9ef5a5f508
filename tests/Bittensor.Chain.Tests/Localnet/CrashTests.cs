using System.Diagnostics;
using System.Reflection;
using System.Text;
using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using static Bittensor.Chain.Tests.Localnet.TestChain;

namespace Bittensor.Chain.Tests.Localnet;

public sealed class CrashTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bt-localnet-crash-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static string BtcliDll => typeof(CrashTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    /// <summary>TotalIssuance = free balances + stake + locked subnet cost: true at every whole block here (only dev accounts hold TAO).</summary>
    private static async Task AssertIssuanceIsAccountedFor(Bittensor.Chain.Local.Localnet chain)
    {
        ulong sum = 0;
        foreach (var (_, account) in DevAccounts.All)
        {
            sum += (await chain.GetBalanceAsync(account)).Rao;
            foreach (var s in await chain.GetStakesForColdkeyAsync(account)) sum += s.Stake.Rao;
        }
        foreach (var subnet in await chain.GetSubnetsAsync()) sum += subnet.LockedBalance.Rao;
        Assert.Equal(chain.TotalIssuance.Rao, sum);
    }

    [Fact]
    public async Task Killing_the_localnet_process_mid_run_restarts_at_a_whole_block_that_continues()
    {
        var options = new LocalnetOptions { Path = _dir, SubnetDefaults = Relaxed with { Tempo = 4 }, TargetStakesPerInterval = 100 };
        ulong start;
        await using (var t = Create(options))
        {
            var netuid = await t.CreateSubnet();
            await t.Register(netuid, "//validator");
            await t.Register(netuid, "//miner");
            AssertOk(await t.Submit("//Alice", new AddStake(Id("//validator"), Balance.FromTao(50))));
            await t.Blocks(5);
            AssertOk(await t.Submit("//validator", new SetWeights(netuid, [1], [65535], 0)));
            await AssertIssuanceIsAccountedFor(t.Chain);
            start = t.Chain.BlockNumber;
        }

        Assert.True(File.Exists(BtcliDll), $"btcli is not built at {BtcliDll}");
        var output = new StringBuilder();
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { BtcliDll, "localnet", "run", "--no_rpc", "--localnet.path", _dir, "--block_time", "0.05" }) psi.ArgumentList.Add(a);
        var target = start + 30; // several epochs (tempo 4) run in the child
        // The child prints "#N <hash>" for each block after committing it to disk (Localnet commits, then notifies).
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var child = Process.Start(psi)!;
        child.OutputDataReceived += (_, e) =>
        {
            lock (output) output.AppendLine(e.Data);
            if (e.Data is ['#', ..] line && line.IndexOf(' ', StringComparison.Ordinal) is > 1 and var space
                && ulong.TryParse(line.AsSpan(1, space - 1), System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= target)
                reached.TrySetResult();
        };
        child.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();

        try
        {
            // The line of block `target` itself (bounded: a hang guard for a loaded machine, not a speed claim).
            var exited = child.WaitForExitAsync();
            try
            {
                if (await Task.WhenAny(reached.Task, exited).WaitAsync(TimeSpan.FromMinutes(2)) == exited)
                    Assert.Fail($"btcli exited with {child.ExitCode}: {output}");
            }
            catch (TimeoutException)
            {
                Assert.Fail($"no block {target} within 2 minutes: {output}");
            }
        }
        finally
        {
            if (!child.HasExited) child.Kill(); // SIGKILL on Unix: no chance to finish the block in progress
            await child.WaitForExitAsync();
        }

        await using (var t = Create(options))
        {
            Assert.True(t.Chain.BlockNumber >= target, $"restarted at {t.Chain.BlockNumber}, expected at least {target}");
            await AssertIssuanceIsAccountedFor(t.Chain);
            var miner = (await t.Chain.GetNeuronAsync(1, 1))!;
            Assert.Equal(65535, miner.Incentive); // epochs ran in the child with the weights set before
            var block = t.Chain.BlockNumber;
            await t.Blocks(2);
            Assert.Equal(block + 2, t.Chain.BlockNumber);
            await AssertIssuanceIsAccountedFor(t.Chain);
        }
    }
}
