using Akka.Actor;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Metagraph;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Neurons.Roles;

/// <summary>How a <see cref="ServerNeuron"/> serves.</summary>
public sealed record ServerOptions
{
    /// <summary>Address the axon binds to and announces (never 127.0.0.1: subtensor refuses it; use 127.0.0.2… locally).</summary>
    public string AxonIp { get; init; } = "127.0.0.2";

    /// <summary>Port; 0 lets the OS choose and the chosen port is announced.</summary>
    public int AxonPort { get; init; }

    /// <summary>The hosted model's settings (sizes, optimizer, batching, checkpoints); null takes the system's <c>bittensor.model</c>.</summary>
    public ModelSettings? Model { get; init; }

    /// <summary>Serve these handlers instead of a model actor (e.g. <see cref="DemoModels.Random"/> for a useless server).</summary>
    public AxonHandlers? Handlers { get; init; }

    /// <summary>Deadline of the miner's own (distillation) model calls; served calls carry the axon caller's deadline.</summary>
    public TimeSpan ModelTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Axon settings; null takes the system's <c>bittensor.axon</c> with <see cref="AxonIp"/>/<see cref="AxonPort"/>.</summary>
    public AxonSettings? Axon { get; init; }

    /// <summary>
    /// This neuron's state folder; the axon's nonce store is <c>nonces</c> in it (unless <see cref="Axon"/> names a
    /// <see cref="AxonSettings.NonceStorePath"/>), so a restart never accepts a request accepted before it. Null:
    /// <see cref="NeuronPaths.Default(string, string, ushort, string)"/> with the hotkey's SS58 as wallet and hotkey
    /// name (<c>btcli run</c> passes the wallet's names, or <c>--neuron.full_path</c>).
    /// </summary>
    public string? StatePath { get; init; }

    /// <summary>
    /// Settings of the server's own MetagraphActor, whose snapshots give the axon its callers' stakes (priority,
    /// <c>blacklist.min_stake</c>) and registrations (<c>blacklist.registered_only</c>); null takes the system's <c>bittensor.metagraph</c>.
    /// </summary>
    public MetagraphSettings? Metagraph { get; init; }
}

/// <summary>
/// The 2021 template server: hosts its model in a supervised model actor, serves it through an axon (forward answers
/// representations, backward applies the caller's gradient with an optimizer step — it trains on what validators send
/// back), registers its hotkey on the subnet and announces the axon on chain. Its actors are the named children
/// <c>model</c>, <c>axon</c> and <c>metagraph</c> of one <see cref="NeuronActor"/> (<c>/user/bittensor/server-&lt;hotkey&gt;</c>; inside a
/// miner, of the miner's), supervised as that class describes. Its axon is subscribed to the server's own MetagraphActor:
/// callers are served by their stake in the latest snapshot, and the blacklist rules
/// (<c>bittensor.axon.blacklist.min_stake</c>, <c>registered_only</c>) are checked against it.
/// </summary>
public sealed class ServerNeuron : IAsyncDisposable
{
    private ServerNeuron(IActorRef neuron, IActorRef axon, IActorRef metagraph, IActorRef? model, ushort uid, string ip, int port, string hotkey)
    {
        Neuron = neuron;
        Axon = axon;
        Metagraph = metagraph;
        Model = model;
        Uid = uid;
        Ip = ip;
        Port = port;
        Hotkey = hotkey;
    }

    /// <summary>The neuron's parent actor (<see cref="NeuronActor"/>); it stops when the axon or the model stops.</summary>
    public IActorRef Neuron { get; }

    /// <summary>The axon actor (child <c>axon</c> of <see cref="Neuron"/>).</summary>
    public IActorRef Axon { get; }

    /// <summary>The server's MetagraphActor, child <c>metagraph</c> of <see cref="Neuron"/> (its snapshots feed the axon's stakes).</summary>
    public IActorRef Metagraph { get; }

    /// <summary>The model supervisor, child <c>model</c> of <see cref="Neuron"/> (null when custom handlers are served).</summary>
    public IActorRef? Model { get; }

    /// <summary>Uid on the subnet.</summary>
    public ushort Uid { get; }

    /// <summary>Announced address.</summary>
    public string Ip { get; }

    /// <summary>Bound port.</summary>
    public int Port { get; }

    /// <summary>Hotkey SS58.</summary>
    public string Hotkey { get; }

    /// <summary>
    /// Starts the model and the axon in <paramref name="system"/>, registers (when needed, with the coldkey) and serves
    /// on <paramref name="netuid"/> through <paramref name="chain"/> (a ChainActor).
    /// </summary>
    public static Task<ServerNeuron> StartAsync(ActorSystem system, IActorRef chain, ushort netuid, NeuronKeys keys, ServerOptions options,
        CancellationToken cancellationToken) =>
        StartAsync(system, chain, netuid, keys, options, "server", null, cancellationToken);

    internal static async Task<ServerNeuron> StartAsync(ActorSystem system, IActorRef chain, ushort netuid, NeuronKeys keys, ServerOptions options,
        string role, IActorRef? neuron, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(options);
        var owns = neuron is null;
        neuron ??= await NeuronActors.CreateAsync(system, role, keys.HotkeySs58, cancellationToken);
        try
        {
            return await StartInAsync(system, neuron, chain, netuid, keys, options, role, cancellationToken);
        }
        catch
        {
            if (owns) await NeuronActors.StopAsync(neuron, TimeSpan.FromSeconds(10));
            throw;
        }
    }

    private static async Task<ServerNeuron> StartInAsync(ActorSystem neuronSystem, IActorRef neuron, IActorRef chain, ushort netuid, NeuronKeys keys, ServerOptions options,
        string role, CancellationToken cancellationToken)
    {
        IActorRef? model = null;
        var handlers = options.Handlers;
        if (handlers is null)
            model = await NeuronActors.StartChildAsync(neuron, "model", ServerModelHost.Props(options.Model ?? BittensorRuntime.Get(neuronSystem).Settings(ModelSettings.SectionPath, ModelSettings.Create)), critical: true, cancellationToken);
        // The system's bittensor.axon (hocon/bittensor.conf under the host's config), with this role's address.
        var settings = options.Axon ?? BittensorRuntime.Get(neuronSystem).Axon with { Ip = options.AxonIp, Port = options.AxonPort };
        if (settings.NonceStorePath.Length == 0)
        {
            var folder = options.StatePath ?? NeuronPaths.Default(keys.HotkeySs58, keys.HotkeySs58, netuid, role);
            settings = settings with { NonceStorePath = Path.Combine(Path.GetFullPath(folder), "nonces") };
        }
        // Inside a miner this is the neuron's one metagraph: the miner's pipeline reads its peers from it too.
        var metagraph = await NeuronActors.StartChildAsync(neuron, "metagraph", MetagraphActor.Props(chain, netuid, BittensorRuntime.Get(neuronSystem).Subtensor.Network,
                // The system's bittensor.metagraph (the host's HOCON), not the reference defaults.
                options.Metagraph ?? BittensorRuntime.Get(neuronSystem).Metagraph),
            critical: true, cancellationToken);
        var axon = await NeuronActors.StartChildAsync(neuron, "axon",
            model is not null
                // The axon Tells each call straight to the model host: its queue is the one stake-ordered queue.
                ? AxonActor.Props(settings, model, new AxonOptions { Hotkey = keys.HotkeySs58, Metagraph = metagraph })
                : AxonActor.Props(settings, handlers!, new AxonOptions { Hotkey = keys.HotkeySs58, Metagraph = metagraph }), critical: true, cancellationToken);
        // A guard, not an expectation: a cold process on a busy machine (btcli demo --processes starts several at once)
        // spends many seconds compiling Kestrel and gRPC before the axon answers (20 s was exceeded at load 50 on 2 cores).
        var bound = await axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, TimeSpan.FromMinutes(2), cancellationToken);
        var uid = await ChainOps.EnsureRegisteredAsync(chain, netuid, keys, cancellationToken);
        await ChainOps.ServeAxonAsync(chain, netuid, keys, options.AxonIp, bound.Endpoint.Port, cancellationToken);
        // One sync now, so the axon knows the subnet's stakes before the first block after start.
        await metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromSeconds(30), cancellationToken);
        return new ServerNeuron(neuron, axon, metagraph, model, uid, options.AxonIp, bound.Endpoint.Port, keys.HotkeySs58);
    }

    /// <summary>Stops the neuron with its children (the axon writes its nonce store as it stops); inside a miner, the miner's whole neuron.</summary>
    public async ValueTask DisposeAsync() => await NeuronActors.StopAsync(Neuron, TimeSpan.FromSeconds(10));
}
