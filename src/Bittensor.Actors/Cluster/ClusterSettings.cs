using System.Globalization;
using Akka.Configuration;

namespace Bittensor.Actors.Cluster;

/// <summary>
/// Settings of one node of a clustered miner, read from HOCON <c>bittensor.cluster</c> (hocon/bittensor.conf says what
/// each key means; docs/cluster.md the topology).
/// </summary>
public sealed record ClusterSettings
{
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.cluster";

    /// <summary>Cluster role of the node that serves the axon.</summary>
    public const string FrontRole = "front";

    /// <summary>Cluster role of the nodes that host model replicas.</summary>
    public const string WorkerRole = "worker";

    /// <summary>
    /// Name of the front's singleton manager: <c>/user/cluster-front</c> on every front-capable node; the active front
    /// (the singleton) is <c>/user/cluster-front/front</c> on the oldest of them, its router
    /// <c>/user/cluster-front/front/router</c>.
    /// </summary>
    public const string FrontName = "cluster-front";

    /// <summary>Name of the singleton under the manager <see cref="FrontName"/>.</summary>
    public const string FrontSingletonName = "front";

    /// <summary>Split-brain resolver strategy <c>keep-oldest</c> (down-if-alone on): the side with the oldest node survives; an oldest node that is alone is downed.</summary>
    public const string KeepOldest = "keep-oldest";

    /// <summary>Split-brain resolver strategy <c>keep-majority</c>: the side with more nodes (of <see cref="SbrRole"/>) survives; a tie keeps the lowest address.</summary>
    public const string KeepMajority = "keep-majority";

    /// <summary>Name of a worker node's actor: <c>/user/cluster-worker</c>.</summary>
    public const string WorkerName = "cluster-worker";

    /// <summary>This node's role: <see cref="FrontRole"/>, <see cref="WorkerRole"/>, or empty (not clustered).</summary>
    public required string Role { get; init; }

    /// <summary>Actor system name shared by every node.</summary>
    public required string SystemName { get; init; }

    /// <summary>Address this node binds and announces.</summary>
    public required string Hostname { get; init; }

    /// <summary>Port of this node's cluster transport (0 = any free port).</summary>
    public required int Port { get; init; }

    /// <summary>Seed nodes as given (<c>host:port</c> or full Akka addresses).</summary>
    public required IReadOnlyList<string> SeedNodes { get; init; }

    /// <summary>Split-brain resolver strategy: <see cref="KeepOldest"/> (with down-if-alone) or <see cref="KeepMajority"/>.</summary>
    public required string SbrStrategy { get; init; }

    /// <summary>Role the split-brain resolver counts (empty: every node).</summary>
    public required string SbrRole { get; init; }

    /// <summary>Stable time before the resolver decides.</summary>
    public required TimeSpan SbrStableAfter { get; init; }

    /// <summary>
    /// The split-brain resolver's "down all when unstable" deadline
    /// (<c>akka.cluster.split-brain-resolver.down-all-when-unstable</c>), or null: off (the shipped default). When on, <b>every
    /// node</b>, from its own view, downs every member it knows (itself included) once an unreachability it saw has not
    /// been resolved within <see cref="SbrStableAfter"/> + this; a node whose gossip is late on a slow machine thus downs
    /// itself — and its Down of the others can reach them (docs/cluster.md "Split brain"). <c>on</c> in HOCON is Akka's
    /// derived value: ¾ of stable-after, at least 4 s.
    /// </summary>
    public TimeSpan? SbrDownAllWhenUnstable { get; init; }

    /// <summary>
    /// Longest a node tries to join its <see cref="SeedNodes"/> before it gives up
    /// (<c>akka.cluster.shutdown-after-unsuccessful-join-seed-nodes</c>: the node's CoordinatedShutdown runs with
    /// <c>ClusterJoinUnsuccessfulReason</c> and the verbs exit 1 saying so), or null: try for ever. Also bounds a
    /// downed worker's new node (<see cref="ClusterWorkerNode"/>). Not used by a node without seeds (it joins itself).
    /// </summary>
    public TimeSpan? JoinTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Heartbeat silence the cluster's failure detector accepts before it marks a node unreachable
    /// (<c>akka.cluster.failure-detector.acceptable-heartbeat-pause</c>): longer tolerates a busy machine (GC, a loaded
    /// host) at the price of a later detection of a node that really died.
    /// </summary>
    public required TimeSpan AcceptableHeartbeatPause { get; init; }

    /// <summary>Requests a worker takes at once (0 = its model host's bound).</summary>
    public required int WorkerCapacity { get; init; }

    /// <summary>How often a worker repeats an unacknowledged registration.</summary>
    public required TimeSpan RegisterInterval { get; init; }

    /// <summary>Longest a leaving worker waits for its in-flight requests.</summary>
    public required TimeSpan DrainTimeout { get; init; }

    /// <summary>
    /// A worker node that the cluster downs while its process is alive (the split-brain resolver took it for dead, or
    /// an operator downed it) starts a new cluster node in the same process and joins again through
    /// <see cref="SeedNodes"/> (<see cref="ClusterWorkerNode"/>); off: it leaves and <c>btcli axon worker</c> exits 1.
    /// </summary>
    public bool Rejoin { get; init; } = true;

    /// <summary>Forwards remembered for backward affinity.</summary>
    public required int AffinityCapacity { get; init; }

    /// <summary>
    /// Tick of a front node's Akka scheduler (<c>akka.scheduler.tick-duration</c> and
    /// <c>akka.cluster.scheduler.tick-duration</c>, so the cluster uses the same scheduler). Akka's 10 ms tick wakes the
    /// process 100 times a second even when idle, the front's whole idle cost (docs/cluster.md "Idle cost"); the
    /// front's timers (call deadlines, heartbeats, gossip, re-connects) need no finer grain. Workers keep Akka's 10 ms:
    /// their model host's batching wait (<c>bittensor.model.max_delay</c>, 5 ms) runs on it.
    /// </summary>
    public TimeSpan FrontSchedulerTick { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Shortest <see cref="FrontSchedulerTick"/> (Akka refuses a shorter tick).</summary>
    public static readonly TimeSpan MinSchedulerTick = TimeSpan.FromMilliseconds(10);

    /// <summary>Longest <see cref="FrontSchedulerTick"/>: a quarter of the 1 s heartbeat interval, so heartbeats stay regular.</summary>
    public static readonly TimeSpan MaxSchedulerTick = TimeSpan.FromMilliseconds(250);

    /// <summary>How often the front averages the workers' replica parameters (zero = never by time; <see cref="AverageNow"/> still runs a round).</summary>
    public required TimeSpan AveragingInterval { get; init; }

    /// <summary>Longest an averaging round waits for the workers' parameters before it averages those that answered.</summary>
    public required TimeSpan AveragingTimeout { get; init; }

    /// <summary>
    /// Parameter chunks a node sends to one other node before that node acknowledged them (<see cref="ParameterChunkAck"/>):
    /// the pacing of averaging, so a call on the same connection waits behind at most this many 4 MiB chunks.
    /// </summary>
    public required int ChunksInFlight { get; init; }

    /// <summary>
    /// Calls and replies between the front and each worker go over the worker's own data connection (a TCP stream the
    /// worker listens on, docs/cluster.md "Data plane") instead of Akka.Remote; off: over Akka.Remote, as before.
    /// </summary>
    public bool DataPlane { get; init; } = true;

    /// <summary>TCP port a worker's data plane listens on (on <see cref="Hostname"/>; 0 = any free port).</summary>
    public int DataPort { get; init; }

    /// <summary>The reference configuration's values.</summary>
    public static ClusterSettings Default { get; } = Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>Reads <c>bittensor.cluster</c> (every key required) and validates it.</summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static ClusterSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        IReadOnlyList<string> seeds;
        try
        {
            seeds = section.HasPath("seed_nodes") ? [.. section.GetStringList("seed_nodes")] : throw new ConfigurationException($"{c.Key("seed_nodes")}: missing");
        }
        catch (Exception e) when (e is not ConfigurationException)
        {
            throw new ConfigurationException($"{c.Key("seed_nodes")}: {e.Message}");
        }
        return new ClusterSettings
        {
            Role = c.OneOf("role", "", FrontRole, WorkerRole),
            SystemName = c.String("system_name"),
            Hostname = c.String("hostname"),
            Port = c.Int("port"),
            SeedNodes = seeds,
            SbrStrategy = c.OneOf("sbr_strategy", KeepOldest, KeepMajority),
            SbrRole = c.String("sbr_role"),
            SbrStableAfter = c.Duration("sbr_stable_after"),
            SbrDownAllWhenUnstable = DownAllWhenUnstable(c),
            JoinTimeout = OffOrDuration(c, "join_timeout"),
            AcceptableHeartbeatPause = c.Duration("acceptable_heartbeat_pause"),
            WorkerCapacity = c.Int("worker.capacity"),
            RegisterInterval = c.Duration("worker.register_interval"),
            DrainTimeout = c.Duration("worker.drain_timeout"),
            Rejoin = c.Bool("worker.rejoin"),
            AffinityCapacity = c.Int("front.affinity_capacity"),
            FrontSchedulerTick = c.Duration("front.scheduler_tick"),
            AveragingInterval = c.Duration("averaging.interval"),
            AveragingTimeout = c.Duration("averaging.timeout"),
            ChunksInFlight = c.Int("averaging.chunks_in_flight"),
            DataPlane = c.Bool("data_plane"),
            DataPort = c.Int("worker.data_port"),
        }.Validate();
    }

    /// <summary>Checks every value; throws <see cref="ConfigurationException"/> naming the key that is wrong.</summary>
    public ClusterSettings Validate()
    {
        static void Require(bool ok, string key, object value, string rule) => HoconSection.Require(ok, $"{SectionPath}.{key}", value, rule);
        Require(Role is "" or FrontRole or WorkerRole, "role", Role, $"must be \"\", {FrontRole} or {WorkerRole}");
        Require(IsName(SystemName), "system_name", SystemName, "must be letters, digits, '-' or '_', starting with a letter or digit");
        Require(!string.IsNullOrWhiteSpace(Hostname) && Uri.CheckHostName(Hostname) != UriHostNameType.Unknown && Hostname != "0.0.0.0",
            "hostname", Hostname, "must be an address the other nodes can reach (not 0.0.0.0)");
        Require(Port is >= 0 and <= 65535, "port", Port, "must be 0..65535");
        foreach (var seed in SeedNodes) _ = SeedAddress(seed, SystemName);
        Require(SbrStrategy is KeepOldest or KeepMajority, "sbr_strategy", SbrStrategy, $"must be {KeepOldest} or {KeepMajority}");
        Require(SbrRole is "" or FrontRole or WorkerRole, "sbr_role", SbrRole, $"must be \"\", {FrontRole} or {WorkerRole}");
        Require(SbrStableAfter > TimeSpan.Zero, "sbr_stable_after", SbrStableAfter, "must be positive");
        Require(SbrDownAllWhenUnstable is null || SbrDownAllWhenUnstable > TimeSpan.Zero, "sbr_down_all_when_unstable", SbrDownAllWhenUnstable!,
            "must be off, on or a positive duration");
        Require(JoinTimeout is null || JoinTimeout > TimeSpan.Zero, "join_timeout", JoinTimeout!, "must be off or a positive duration");
        Require(AcceptableHeartbeatPause >= TimeSpan.FromSeconds(1), "acceptable_heartbeat_pause", AcceptableHeartbeatPause,
            "must be at least 1s (the heartbeat interval)");
        Require(WorkerCapacity >= 0, "worker.capacity", WorkerCapacity, "must be 0 (the model host's bound) or positive");
        Require(RegisterInterval > TimeSpan.Zero, "worker.register_interval", RegisterInterval, "must be positive");
        Require(DrainTimeout > TimeSpan.Zero, "worker.drain_timeout", DrainTimeout, "must be positive");
        Require(AffinityCapacity >= 0, "front.affinity_capacity", AffinityCapacity, "must be 0 or positive");
        Require(FrontSchedulerTick >= MinSchedulerTick && FrontSchedulerTick <= MaxSchedulerTick, "front.scheduler_tick", FrontSchedulerTick,
            $"must be {MinSchedulerTick.TotalMilliseconds}ms..{MaxSchedulerTick.TotalMilliseconds}ms");
        Require(AveragingInterval >= TimeSpan.Zero, "averaging.interval", AveragingInterval, "must be 0 (off) or positive");
        Require(AveragingTimeout > TimeSpan.Zero, "averaging.timeout", AveragingTimeout, "must be positive");
        Require(ChunksInFlight >= 1, "averaging.chunks_in_flight", ChunksInFlight, "must be 1 or more");
        Require(DataPort is >= 0 and <= 65535, "worker.data_port", DataPort, "must be 0..65535");
        return this;
    }

    /// <summary>
    /// A seed node as an Akka address: <c>host:port</c> becomes <c>akka.tcp://{system}@host:port</c>; a full address
    /// is checked and kept.
    /// </summary>
    /// <exception cref="ConfigurationException">Neither form.</exception>
    public static string SeedAddress(string seed, string systemName)
    {
        ArgumentNullException.ThrowIfNull(seed);
        var s = seed.Trim();
        if (s.StartsWith("akka.tcp://", StringComparison.Ordinal) || s.StartsWith("akka://", StringComparison.Ordinal))
        {
            try
            {
                var address = Akka.Actor.Address.Parse(s);
                if (address.Host is null || address.Port is null or < 1 or > 65535) throw new FormatException("no host or port");
                return address.ToString();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new ConfigurationException($"{SectionPath}.seed_nodes: '{seed}' is not an Akka address ({e.Message})");
            }
        }
        var colon = s.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(s.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            throw new ConfigurationException($"{SectionPath}.seed_nodes: '{seed}' is not host:port or akka.tcp://{systemName}@host:port");
        var host = s[..colon].Trim('[', ']');
        if (host.Length == 0 || Uri.CheckHostName(host) == UriHostNameType.Unknown)
            throw new ConfigurationException($"{SectionPath}.seed_nodes: '{seed}' has an invalid host");
        return $"akka.tcp://{systemName}@{host}:{port.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>Akka's value of "on" for down-all-when-unstable: ¾ of <paramref name="stableAfter"/>, at least 4 s.</summary>
    public static TimeSpan DerivedDownAllWhenUnstable(TimeSpan stableAfter) =>
        TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(4).Ticks, stableAfter.Ticks * 3 / 4));

    // "off" (null), "on" (Akka's derived value from sbr_stable_after) or a duration.
    private static TimeSpan? DownAllWhenUnstable(HoconSection c)
    {
        var text = c.String("sbr_down_all_when_unstable").Trim();
        return text.ToLowerInvariant() switch
        {
            "on" or "true" or "yes" => DerivedDownAllWhenUnstable(c.Duration("sbr_stable_after")),
            _ => OffOrDuration(c, "sbr_down_all_when_unstable"),
        };
    }

    // "off" (null) or a duration; the message names the key.
    private static TimeSpan? OffOrDuration(HoconSection c, string key)
    {
        var text = c.String(key).Trim();
        if (text.ToLowerInvariant() is "off" or "false" or "no") return null;
        TimeSpan value;
        try
        {
            value = c.Duration(key);
        }
        catch (ConfigurationException e)
        {
            throw new ConfigurationException($"{c.Key(key)} = '{text}': must be off or a duration ({e.Message})");
        }
        if (value <= TimeSpan.Zero) throw new ConfigurationException($"{c.Key(key)} = '{text}': must be off or a positive duration");
        return value;
    }

    private static bool IsName(string name) =>
        name.Length > 0 && char.IsAsciiLetterOrDigit(name[0]) && name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_');
}
