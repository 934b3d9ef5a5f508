using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Cluster;
using Bittensor.Cli.Tests.Chain;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// The cluster verbs end, bounded and saying why, when their node cannot be in the cluster (docs/cluster.md "Split brain"):
/// a worker or front whose only seed is dead exits 1 after <c>--cluster.join_timeout</c> (before: it waited for ever), and a
/// front node downed while alive — <c>btcli axon serve --cluster.role front</c> and <c>btcli run server --cluster.role
/// front</c> — exits 1 saying it was downed and does not rejoin by itself (before, <c>run server</c> ended as
/// "cancelled", exit 130). The verbs run in-process on real ActorSystems, real sockets, real wallet and localnet files;
/// the downing is the cluster's own (<c>Cluster.Down</c> from the test's front node, as its split-brain resolver does).
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class ClusterNodeEndTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-cluster-end-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Code, string Out, string Err)> Btcli(params string[] args) => CliHarness.RunAsync(args);

    private static void Ran((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, $"exit {r.Code}: {r.Err}{r.Out}");

    // A loopback port nobody listens on (bound, then released).
    private static string DeadSeed()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"127.0.0.1:{port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
    }

    private static void AssertFails(string line, (int Code, string Out, string Err) r)
    {
        Assert.True(r.Code == 1, $"exit {r.Code}: {r.Err}{r.Out}");
        // The verb's one error line (the actor system's own shutdown may still log a line or two after it).
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Count(l => l.StartsWith("error: ", StringComparison.Ordinal)) == 1 && lines.Any(l => l.StartsWith(line, StringComparison.Ordinal)),
            $"one line starting with '{line}' expected: {r.Err}");
        Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Axon_worker_whose_only_seed_is_dead_exits_1_after_the_join_timeout()
    {
        var seed = DeadSeed();
        AssertFails($"error: node 1 of this worker could not join the cluster through {seed} within 3 s (bittensor.cluster.join_timeout)",
            await Btcli("axon", "worker", "--model", "echo", "--cluster.port", "0", "--cluster.seed_nodes", seed, "--cluster.join_timeout", "3s"));
    }

    [Fact]
    public async Task Run_server_worker_whose_only_seed_is_dead_exits_1_after_the_join_timeout()
    {
        var seed = DeadSeed();
        var config = Path.Combine(_dir, "run.conf");
        await File.WriteAllTextAsync(config, "bittensor.model.threads = 1\n");
        AssertFails($"error: node 1 of this worker could not join the cluster through {seed} within 3 s (bittensor.cluster.join_timeout)",
            await Btcli("run", "server", "--netuid", "1", "--cluster.role", "worker", "--cluster.port", "0", "--cluster.seed_nodes", seed,
                "--cluster.join_timeout", "3s", "--config", config));
    }

    [Fact]
    public async Task Axon_serve_front_whose_only_seed_is_dead_exits_1_after_the_join_timeout()
    {
        var seed = DeadSeed();
        AssertFails($"error: this front node could not join the cluster through {seed} within 3 s (bittensor.cluster.join_timeout)",
            await Btcli("axon", "serve", "--uri", "//Ferdie", "--axon.port", "0", "--axon.state_path", Path.Combine(_dir, "front"),
                "--cluster.role", "front", "--cluster.port", "0", "--cluster.seed_nodes", seed, "--cluster.join_timeout", "3s"));
    }

    /// <summary>
    /// The test's own front-capable node (the oldest: it seeds the cluster): downs the next front node that comes Up.
    /// </summary>
    private static (ActorSystem Seed, Task<Address> Downed) SeedThatDownsTheNextFront()
    {
        var settings = ClusterSettings.Default with { Hostname = "127.0.0.1", Port = 0, SeedNodes = [] };
        var seed = BittensorCluster.CreateSystem(settings, ClusterSettings.FrontRole,
            overrides: ConfigurationFactory.ParseString("akka.loglevel = WARNING\nakka.coordinated-shutdown.run-by-clr-shutdown-hook = off"));
        var downed = new TaskCompletionSource<Address>(TaskCreationOptions.RunContinuationsAsynchronously);
        var downer = seed.ActorOf(Props.Create(() => new DownNextFront(downed)));
        Akka.Cluster.Cluster.Get(seed).Subscribe(downer, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(Akka.Cluster.ClusterEvent.MemberUp));
        return (seed, downed.Task);
    }

    private sealed class DownNextFront : ReceiveActor
    {
        public DownNextFront(TaskCompletionSource<Address> downed)
        {
            var cluster = Akka.Cluster.Cluster.Get(Context.System);
            Receive<Akka.Cluster.ClusterEvent.MemberUp>(m =>
            {
                if (m.Member.Address == cluster.SelfAddress || !m.Member.HasRole(ClusterSettings.FrontRole) || downed.Task.IsCompleted) return;
                cluster.Down(m.Member.Address);
                downed.TrySetResult(m.Member.Address);
            });
            ReceiveAny(_ => { });
        }
    }

    [Fact]
    public async Task Axon_serve_front_downed_while_alive_exits_1_saying_it_does_not_rejoin_by_itself()
    {
        var (seed, downed) = SeedThatDownsTheNextFront();
        try
        {
            var address = Akka.Cluster.Cluster.Get(seed).SelfAddress.ToString();
            var run = await Btcli("axon", "serve", "--uri", "//Ferdie", "--axon.port", "0", "--axon.state_path", Path.Combine(_dir, "front"),
                "--cluster.role", "front", "--cluster.port", "0", "--cluster.seed_nodes", address);
            Assert.True(downed.IsCompleted, $"the front node ended before it was downed: {run.Err}");
            AssertFails("error: this front node was downed by the cluster while alive", run);
            Assert.Contains("does not rejoin by itself", run.Err, StringComparison.Ordinal);
        }
        finally
        {
            await seed.Terminate();
        }
    }

    [Fact]
    public async Task Run_server_front_downed_while_alive_exits_1_saying_it_does_not_rejoin_by_itself()
    {
        string[] wallet = ["--wallet.path", Path.Combine(_dir, "wallets")];
        string[] net = ["--localnet.path", Path.Combine(_dir, "localnet")];
        var config = Path.Combine(_dir, "run.conf");
        await File.WriteAllTextAsync(config, $"bittensor.model.threads = 1\nbittensor.metagraph.path = \"{Path.Combine(_dir, "metagraphs")}\"\n");
        Ran(await Btcli(["wallet", "new_coldkey", "--n_words", "12", "--no_password", .. wallet]));
        Ran(await Btcli(["wallet", "new_hotkey", "--n_words", "12", "--no_password", .. wallet]));
        Ran(await Btcli(["localnet", "faucet", "--amount", "5000", "--json", .. wallet, .. net]));
        Ran(await Btcli(["subnets", "create", "--json", .. wallet, .. net]));
        var (seed, downed) = SeedThatDownsTheNextFront();
        try
        {
            var address = Akka.Cluster.Cluster.Get(seed).SelfAddress.ToString();
            var run = await Btcli(["run", "server", "--netuid", "1", "--axon.port", "0", "--cluster.role", "front", "--cluster.port", "0",
                "--cluster.seed_nodes", address, "--neuron.full_path", Path.Combine(_dir, "front"), "--config", config, .. wallet, .. net]);
            Assert.True(downed.IsCompleted, $"the front node ended before it was downed: {run.Err}{run.Out}");
            AssertFails("error: this front node was downed by the cluster while alive", run);
            Assert.Contains("does not rejoin by itself", run.Err, StringComparison.Ordinal);
        }
        finally
        {
            await seed.Terminate();
        }
    }
}
