using System.Net;
using System.Threading.Channels;
using Akka.Actor;
using Akka.Event;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Cluster;
using Bittensor.Actors.Metagraph;

namespace Bittensor.Neurons.Roles;

/// <summary>An announcement of the cluster front's axon on chain: its address, or why serving it failed.</summary>
/// <param name="Ip">The announced address.</param>
/// <param name="Port">The announced port.</param>
/// <param name="Error">Null when the chain accepted <c>serve_axon</c>; else why it did not (after the retries).</param>
public sealed record FrontAnnouncement(string Ip, int Port, string? Error);

/// <summary>
/// A front-capable node of a clustered server (<c>btcli run server --cluster.role front</c>, docs/cluster.md): the
/// hotkey's registration and a MetagraphActor on this node (a child <c>metagraph</c> of the server's
/// <see cref="NeuronActor"/>), and the front singleton manager. When this node's front becomes active (it is the
/// oldest front-capable node, or the previous front died or left), its axon — fed by this node's metagraph for stakes
/// and the blacklist — binds <see cref="ServerOptions.AxonIp"/>:<see cref="ServerOptions.AxonPort"/> and the node
/// announces that address on chain (<c>serve_axon</c>), so validators find the new front. The model runs on the
/// workers (<c>btcli run server --cluster.role worker</c>).
/// </summary>
public sealed class ClusterServerFront : IAsyncDisposable
{
    /// <summary>Blocks between tries when the chain refuses a serve for its serving rate limit.</summary>
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(12);

    private const int MaxTries = 50;

    private readonly CancellationTokenSource _stop = new();
    private readonly Channel<FrontAnnouncement> _announcements = Channel.CreateBounded<FrontAnnouncement>(
        new BoundedChannelOptions(16) { FullMode = BoundedChannelFullMode.DropOldest });
    private Task _serving = Task.CompletedTask;

    private ClusterServerFront(IActorRef neuron, IActorRef metagraph, ushort uid, string hotkey)
    {
        Neuron = neuron;
        Metagraph = metagraph;
        Uid = uid;
        Hotkey = hotkey;
    }

    /// <summary>The server's neuron actor on this node (its child <c>metagraph</c>).</summary>
    public IActorRef Neuron { get; }

    /// <summary>This node's MetagraphActor (the axon's stakes when this node is the front).</summary>
    public IActorRef Metagraph { get; }

    /// <summary>Uid on the subnet.</summary>
    public ushort Uid { get; }

    /// <summary>Hotkey SS58.</summary>
    public string Hotkey { get; }

    /// <summary>The front singleton manager on this node.</summary>
    public IActorRef Manager { get; private set; } = ActorRefs.Nobody;

    /// <summary>Each time this node's front became active and announced its address on chain (bounded: the 16 latest).</summary>
    public ChannelReader<FrontAnnouncement> Announcements => _announcements.Reader;

    /// <summary>
    /// Registers the hotkey (with the coldkey when needed), starts this node's metagraph and the front singleton
    /// manager on <paramref name="system"/> (a cluster node of role front: <see cref="BittensorCluster.CreateSystem"/>).
    /// </summary>
    public static async Task<ClusterServerFront> StartAsync(ActorSystem system, IActorRef chain, ushort netuid, NeuronKeys keys, ServerOptions options,
        ClusterSettings cluster, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(cluster);
        var runtime = BittensorRuntime.Get(system);
        var neuron = await NeuronActors.CreateAsync(system, "server", keys.HotkeySs58, cancellationToken);
        try
        {
            var metagraph = await NeuronActors.StartChildAsync(neuron, "metagraph",
                MetagraphActor.Props(chain, netuid, runtime.Subtensor.Network, options.Metagraph ?? runtime.Metagraph), critical: true, cancellationToken);
            var uid = await ChainOps.EnsureRegisteredAsync(chain, netuid, keys, cancellationToken);
            var settings = options.Axon ?? runtime.Axon with { Ip = options.AxonIp, Port = options.AxonPort };
            if (settings.NonceStorePath.Length == 0)
            {
                var folder = options.StatePath ?? NeuronPaths.Default(keys.HotkeySs58, keys.HotkeySs58, netuid, "server");
                settings = settings with { NonceStorePath = Path.Combine(Path.GetFullPath(folder), "nonces") };
            }
            await metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromSeconds(30), cancellationToken);
            var front = new ClusterServerFront(neuron, metagraph, uid, keys.HotkeySs58);
            var events = BittensorCluster.FrontEvents(system);
            var axonOptions = new AxonOptions { Hotkey = keys.HotkeySs58, Metagraph = metagraph };
            front.Manager = BittensorCluster.StartFront(system, cluster, router => AxonActor.Props(settings, router, axonOptions));
            front._serving = Task.Run(() => front.AnnounceAsync(events, chain, netuid, keys, options.AxonIp, system.Log));
            return front;
        }
        catch
        {
            await NeuronActors.StopAsync(neuron, TimeSpan.FromSeconds(10));
            throw;
        }
    }

    // Each activation: serve_axon with this node's address, retried while the chain's serving rate limit refuses it.
    private async Task AnnounceAsync(ChannelReader<object> events, IActorRef chain, ushort netuid, NeuronKeys keys, string ip, ILoggingAdapter log)
    {
        try
        {
            await foreach (var e in events.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                if (e is not ClusterFrontActivated active) continue;
                var port = active.Endpoint.Port;
                string? error = null;
                for (var attempt = 1; ; attempt++)
                {
                    try
                    {
                        await ChainOps.ServeAxonAsync(chain, netuid, keys, ip, port, _stop.Token).ConfigureAwait(false);
                        log.Info("cluster front: axon {0}:{1} served on chain for {2}", ip, port, keys.HotkeySs58);
                        error = null;
                        break;
                    }
                    catch (NeuronException x) when (x.Message.Contains("ServingRateLimitExceeded", StringComparison.Ordinal) && attempt < MaxTries)
                    {
                        log.Warning("cluster front: the chain's serving rate limit refuses serve_axon for now; retrying in {0} (try {1} of {2})", RetryAfter, attempt, MaxTries);
                        await Task.Delay(RetryAfter, _stop.Token).ConfigureAwait(false);
                    }
                    catch (Exception x) when (x is NeuronException or AskTimeoutException)
                    {
                        error = x.Message;
                        log.Error("cluster front: could not serve axon {0}:{1} on chain: {2}", ip, port, x.Message);
                        break;
                    }
                }
                _announcements.Writer.TryWrite(new FrontAnnouncement(ip, port, error));
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        finally
        {
            _announcements.Writer.TryComplete();
        }
    }

    /// <summary>Stops announcing and the neuron's actors on this node (the front singleton stops with the node's cluster membership).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _serving;
        }
        catch (OperationCanceledException)
        {
        }
        await NeuronActors.StopAsync(Neuron, TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }
}
