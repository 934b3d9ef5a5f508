using Akka.Actor;
using Bittensor.Actors;
using Bittensor.Actors.Axon;
using Bittensor.Models;
using Bittensor.Models.Actors;

namespace Bittensor.Neurons.Roles;

/// <summary>How a <see cref="ServerNeuron"/> serves.</summary>
public sealed record ServerOptions
{
    /// <summary>Address the axon binds to and announces (never 127.0.0.1: subtensor refuses it; use 127.0.0.2… locally).</summary>
    public string AxonIp { get; init; } = "127.0.0.2";

    /// <summary>Port; 0 lets the OS choose and the chosen port is announced.</summary>
    public int AxonPort { get; init; }

    /// <summary>The hosted model's settings (sizes, optimizer, batching, checkpoints).</summary>
    public ModelSettings Model { get; init; } = ModelSettings.Default;

    /// <summary>Serve these handlers instead of a model actor (e.g. <see cref="DemoModels.Random"/> for a useless server).</summary>
    public AxonHandlers? Handlers { get; init; }

    /// <summary>Deadline for one model call.</summary>
    public TimeSpan ModelTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Axon settings; null takes the reference configuration with <see cref="AxonIp"/>/<see cref="AxonPort"/>.</summary>
    public AxonSettings? Axon { get; init; }

    /// <summary>
    /// This neuron's state folder; the axon's nonce store is <c>nonces</c> in it (unless <see cref="Axon"/> names a
    /// <see cref="AxonSettings.NonceStorePath"/>), so a restart never accepts a request accepted before it. Null:
    /// <see cref="NeuronPaths.Default(string, string, ushort, string)"/> with the hotkey's SS58 as wallet and hotkey
    /// name (<c>btcli run</c> passes the wallet's names, or <c>--neuron.full_path</c>).
    /// </summary>
    public string? StatePath { get; init; }
}

/// <summary>
/// The 2021 template server: hosts its model in a supervised model actor, serves it through an axon (forward answers
/// representations, backward applies the caller's gradient with an optimizer step — it trains on what validators send
/// back), registers its hotkey on the subnet and announces the axon on chain.
/// </summary>
public sealed class ServerNeuron : IAsyncDisposable
{
    private readonly ActorSystem _system;

    private ServerNeuron(ActorSystem system, IActorRef axon, IActorRef? model, ushort uid, string ip, int port, string hotkey)
    {
        _system = system;
        Axon = axon;
        Model = model;
        Uid = uid;
        Ip = ip;
        Port = port;
        Hotkey = hotkey;
    }

    /// <summary>The axon actor.</summary>
    public IActorRef Axon { get; }

    /// <summary>The model supervisor (null when custom handlers are served).</summary>
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
        StartAsync(system, chain, netuid, keys, options, "server", cancellationToken);

    internal static async Task<ServerNeuron> StartAsync(ActorSystem system, IActorRef chain, ushort netuid, NeuronKeys keys, ServerOptions options,
        string role, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(options);
        IActorRef? model = null;
        var handlers = options.Handlers;
        if (handlers is null)
        {
            model = system.ActorOf(ModelSupervisor.Props(options.Model), $"model-{Guid.NewGuid():N}");
            handlers = ModelAxonHandlers.Create(new ModelSupervisorEndpoint(model, options.ModelTimeout));
        }
        var settings = options.Axon ?? AxonSettings.Create(BittensorReferenceConfig.Default) with
        {
            Ip = options.AxonIp,
            Port = options.AxonPort,
            MaxMessageSize = 16 * 1024 * 1024,
        };
        if (settings.NonceStorePath.Length == 0)
        {
            var folder = options.StatePath ?? NeuronPaths.Default(keys.HotkeySs58, keys.HotkeySs58, netuid, role);
            settings = settings with { NonceStorePath = Path.Combine(Path.GetFullPath(folder), "nonces") };
        }
        var axon = system.ActorOf(AxonActor.Props(settings, handlers, new AxonOptions { Hotkey = keys.HotkeySs58 }), $"axon-{Guid.NewGuid():N}");
        var bound = await axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, TimeSpan.FromSeconds(20), cancellationToken);
        var uid = await ChainOps.EnsureRegisteredAsync(chain, netuid, keys, cancellationToken);
        await ChainOps.ServeAxonAsync(chain, netuid, keys, options.AxonIp, bound.Endpoint.Port, cancellationToken);
        return new ServerNeuron(system, axon, model, uid, options.AxonIp, bound.Endpoint.Port, keys.HotkeySs58);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            await Axon.GracefulStop(TimeSpan.FromSeconds(5));
        }
        catch (TaskCanceledException)
        {
        }
        if (Model is not null) _system.Stop(Model);
    }
}
