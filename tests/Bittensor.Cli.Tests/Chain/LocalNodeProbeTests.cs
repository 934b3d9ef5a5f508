using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;

namespace Bittensor.Cli.Tests.Chain;

/// <summary>
/// <c>--subtensor.network local</c> looks for a node at <c>bittensor.subtensor.local_endpoint</c> before opening the
/// embedded localnet. Verbs run in-process by this test assembly must never do that (a node at ws://127.0.0.1:9944 on
/// the machine would be used by the tests): the assembly forces <c>local_endpoint = ""</c>
/// (<see cref="InProcessVerbs"/>). A loopback listener stands in for that node; it never accepts, so any connection
/// attempt stays in its backlog and <see cref="TcpListener.Pending"/> reports it, without timing.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class LocalNodeProbeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-probe-").FullName;

    private static string BtcliDll => typeof(LocalNodeProbeTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task In_process_verbs_never_probe_the_local_endpoint_while_a_btcli_process_does()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var config = Path.Combine(_dir, "probe.conf");
            await File.WriteAllTextAsync(config, $"bittensor.subtensor.local_endpoint = \"ws://127.0.0.1:{port}\"");
            var wallets = Path.Combine(_dir, "wallets");
            string[] local = ["--localnet.path", Path.Combine(_dir, "localnet"), "--config", config];

            // In-process, even with the endpoint named in --config: the embedded localnet, no connection attempt.
            Assert.Equal(0, (await CliHarness.RunAsync("wallet", "new_coldkey", "--no_password", "--wallet.path", wallets)).Code);
            var subnets = await CliHarness.RunAsync(["subnets", "list", "--json", .. local]);
            Assert.True(subnets.Code == 0, subnets.Err);
            var balance = await CliHarness.RunAsync(["balance", "--json", "--wallet.path", wallets, .. local]);
            Assert.True(balance.Code == 0, balance.Err);
            Assert.False(listener.Pending(), "an in-process verb connected to the local_endpoint listener");

            // The same verb as a btcli process (no test switch): it probes the listener, gets no answer, uses the embedded localnet.
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in (string[])[BtcliDll, "subnets", "list", "--json", .. local]) psi.ArgumentList.Add(a);
            psi.Environment["HOME"] = Path.Combine(_dir, "home");
            using var process = Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(3)); // hang guard only
            await process.WaitForExitAsync(guard.Token);
            Assert.True(process.ExitCode == 0, await stderr);
            Assert.StartsWith("[", (await stdout).TrimStart(), StringComparison.Ordinal);
            Assert.True(listener.Pending(), "the btcli process did not probe the local_endpoint: the in-process check above proves nothing");
        }
        finally
        {
            listener.Stop();
        }
    }
}
