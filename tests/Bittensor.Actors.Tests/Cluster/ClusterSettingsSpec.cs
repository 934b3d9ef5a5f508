using Akka.Configuration;
using Bittensor.Actors.Cluster;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary><c>bittensor.cluster</c>: the reference values, the two example files, seed forms, and bad values naming their key.</summary>
public sealed class ClusterSettingsSpec
{
    private static string Hocon(string name)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "hocon", name))) return Path.Combine(d.FullName, "hocon", name);
        throw new InvalidOperationException($"hocon/{name} not found above {AppContext.BaseDirectory}");
    }

    private static ClusterSettings Load(string text) =>
        ClusterSettings.Create(BittensorRuntime.Section(ConfigurationFactory.ParseString(text).WithFallback(BittensorRuntime.ReferenceConfig), ClusterSettings.SectionPath));

    [Fact]
    public void The_example_files_are_complete_valid_settings_for_their_role()
    {
        var front = Load(File.ReadAllText(Hocon("cluster-front.conf")));
        Assert.Equal((ClusterSettings.FrontRole, 4053, 0), (front.Role, front.Port, front.SeedNodes.Count));
        var worker = Load(File.ReadAllText(Hocon("cluster-worker.conf")));
        Assert.Equal((ClusterSettings.WorkerRole, 0), (worker.Role, worker.Port));
        Assert.Equal("akka.tcp://bittensor@127.0.0.1:4053", ClusterSettings.SeedAddress(Assert.Single(worker.SeedNodes), worker.SystemName));
        Assert.Equal("", ClusterSettings.Default.Role);
        Assert.Equal((ClusterSettings.KeepOldest, ""), (front.SbrStrategy, front.SbrRole));
        Assert.Equal((ClusterSettings.KeepOldest, "", TimeSpan.FromSeconds(60)), (ClusterSettings.Default.SbrStrategy, ClusterSettings.Default.SbrRole, ClusterSettings.Default.AveragingInterval));
    }

    [Theory]
    [InlineData("10.0.0.7:4053", "akka.tcp://miner@10.0.0.7:4053")]
    [InlineData(" host.lan:1 ", "akka.tcp://miner@host.lan:1")]
    [InlineData("akka.tcp://miner@10.0.0.7:4053", "akka.tcp://miner@10.0.0.7:4053")]
    public void Seeds_are_host_port_or_full_addresses(string seed, string address) => Assert.Equal(address, ClusterSettings.SeedAddress(seed, "miner"));

    [Theory]
    [InlineData("bittensor.cluster.role = boss", "bittensor.cluster.role")]
    [InlineData("bittensor.cluster.port = 70000", "bittensor.cluster.port")]
    [InlineData("bittensor.cluster.hostname = \"0.0.0.0\"", "bittensor.cluster.hostname")]
    [InlineData("bittensor.cluster.seed_nodes = [\"nohost\"]", "bittensor.cluster.seed_nodes")]
    [InlineData("bittensor.cluster.seed_nodes = [\"h:0\"]", "bittensor.cluster.seed_nodes")]
    [InlineData("bittensor.cluster.worker.capacity = -1", "bittensor.cluster.worker.capacity")]
    [InlineData("bittensor.cluster.system_name = \"a b\"", "bittensor.cluster.system_name")]
    [InlineData("bittensor.cluster.sbr_strategy = keep-referee", "bittensor.cluster.sbr_strategy")]
    [InlineData("bittensor.cluster.sbr_role = boss", "bittensor.cluster.sbr_role")]
    [InlineData("bittensor.cluster.averaging.interval = -1s", "bittensor.cluster.averaging.interval")]
    [InlineData("bittensor.cluster.averaging.timeout = 0s", "bittensor.cluster.averaging.timeout")]
    [InlineData("bittensor.cluster.averaging.chunks_in_flight = 0", "bittensor.cluster.averaging.chunks_in_flight")]
    [InlineData("bittensor.cluster.acceptable_heartbeat_pause = 500ms", "bittensor.cluster.acceptable_heartbeat_pause")]
    [InlineData("bittensor.cluster.front.scheduler_tick = 5ms", "bittensor.cluster.front.scheduler_tick")]
    [InlineData("bittensor.cluster.front.scheduler_tick = 1s", "bittensor.cluster.front.scheduler_tick")]
    [InlineData("bittensor.cluster.sbr_down_all_when_unstable = maybe", "bittensor.cluster.sbr_down_all_when_unstable")]
    [InlineData("bittensor.cluster.sbr_down_all_when_unstable = -1s", "bittensor.cluster.sbr_down_all_when_unstable")]
    [InlineData("bittensor.cluster.sbr_down_all_when_unstable = 0s", "bittensor.cluster.sbr_down_all_when_unstable")]
    [InlineData("bittensor.cluster.join_timeout = soon", "bittensor.cluster.join_timeout")]
    [InlineData("bittensor.cluster.join_timeout = 0s", "bittensor.cluster.join_timeout")]
    public void A_bad_value_fails_with_its_key(string text, string key) =>
        Assert.StartsWith(key, Assert.Throws<ConfigurationException>(() => Load(text)).Message, StringComparison.Ordinal);

    [Fact]
    public void A_downed_worker_rejoins_unless_rejoin_is_off()
    {
        Assert.True(ClusterSettings.Default.Rejoin);
        Assert.True(Load(File.ReadAllText(Hocon("cluster-worker.conf"))).Rejoin);
        Assert.False(Load("bittensor.cluster.worker.rejoin = off").Rejoin);
        Assert.StartsWith("bittensor.cluster.worker.rejoin", Assert.Throws<ConfigurationException>(() => Load("bittensor.cluster.worker.rejoin = maybe")).Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public void The_acceptable_heartbeat_pause_is_the_failure_detectors()
    {
        Assert.Equal(TimeSpan.FromSeconds(3), ClusterSettings.Default.AcceptableHeartbeatPause);
        var settings = Load("bittensor.cluster.acceptable_heartbeat_pause = 15s");
        var config = BittensorCluster.NodeConfig(settings, ClusterSettings.WorkerRole);
        Assert.Equal(TimeSpan.FromSeconds(15), config.GetTimeSpan("akka.cluster.failure-detector.acceptable-heartbeat-pause"));
        Assert.Equal(2, ClusterSettings.Default.ChunksInFlight);
    }

    [Fact]
    public void A_front_node_ticks_its_scheduler_at_the_front_scheduler_tick_and_a_worker_at_Akkas()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(100), ClusterSettings.Default.FrontSchedulerTick);
        var settings = Load("bittensor.cluster.front.scheduler_tick = 50ms");
        var front = BittensorCluster.NodeConfig(settings, ClusterSettings.FrontRole);
        Assert.Equal(TimeSpan.FromMilliseconds(50), front.GetTimeSpan("akka.scheduler.tick-duration"));
        // The cluster's periodic tasks on the same scheduler (a shorter cluster tick would start a second one).
        Assert.Equal(TimeSpan.FromMilliseconds(50), front.GetTimeSpan("akka.cluster.scheduler.tick-duration"));
        var worker = BittensorCluster.NodeConfig(settings, ClusterSettings.WorkerRole);
        Assert.False(worker.HasPath("akka.scheduler.tick-duration"));
        Assert.False(worker.HasPath("akka.cluster.scheduler.tick-duration"));
    }

    // What Akka's own split-brain resolver reads from a node's configuration (its settings class, as the resolver builds it).
    private static TimeSpan AkkasDownAllWhenUnstable(ClusterSettings settings) =>
        new Akka.Cluster.SBR.SplitBrainResolverSettings(BittensorCluster.NodeConfig(settings, ClusterSettings.WorkerRole)).DownAllWhenUnstable;

    [Fact]
    public void Down_all_when_unstable_is_off_by_default_and_on_or_a_duration_reach_Akkas_resolver()
    {
        // Off: Akka's resolver reads zero, which disables its instability downing on every node.
        Assert.Null(ClusterSettings.Default.SbrDownAllWhenUnstable);
        Assert.Null(Load(File.ReadAllText(Hocon("cluster-front.conf"))).SbrDownAllWhenUnstable);
        Assert.Null(Load(File.ReadAllText(Hocon("cluster-worker.conf"))).SbrDownAllWhenUnstable);
        Assert.Equal(TimeSpan.Zero, AkkasDownAllWhenUnstable(ClusterSettings.Default));
        // on: Akka's derived value, 3/4 of stable-after but at least 4 s (7 s -> 5.25 s; 4 s -> 4 s).
        var on = Load("bittensor.cluster.sbr_down_all_when_unstable = on");
        Assert.Equal(TimeSpan.FromSeconds(5.25), on.SbrDownAllWhenUnstable);
        Assert.Equal(TimeSpan.FromSeconds(5.25), AkkasDownAllWhenUnstable(on));
        Assert.Equal(TimeSpan.FromSeconds(4), Load("bittensor.cluster { sbr_down_all_when_unstable = on, sbr_stable_after = 4s }").SbrDownAllWhenUnstable);
        var fixedValue = Load("bittensor.cluster.sbr_down_all_when_unstable = 20s");
        Assert.Equal(TimeSpan.FromSeconds(20), AkkasDownAllWhenUnstable(fixedValue));
        Assert.Equal(TimeSpan.Zero, AkkasDownAllWhenUnstable(Load("bittensor.cluster.sbr_down_all_when_unstable = off")));
    }

    [Fact]
    public void Joining_the_seed_nodes_gives_up_after_the_join_timeout_unless_it_is_off()
    {
        Assert.Equal(TimeSpan.FromSeconds(60), ClusterSettings.Default.JoinTimeout);
        var config = BittensorCluster.NodeConfig(Load("bittensor.cluster.join_timeout = 2500ms"), ClusterSettings.WorkerRole);
        Assert.Equal(TimeSpan.FromMilliseconds(2500), config.GetTimeSpan("akka.cluster.shutdown-after-unsuccessful-join-seed-nodes"));
        var off = Load("bittensor.cluster.join_timeout = off");
        Assert.Null(off.JoinTimeout);
        Assert.Equal("off", BittensorCluster.NodeConfig(off, ClusterSettings.FrontRole).GetString("akka.cluster.shutdown-after-unsuccessful-join-seed-nodes"));
    }
}
