using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Metagraph;
using Bittensor.Actors.Wallet;

namespace Bittensor.Actors;

/// <summary>
/// The Bittensor runtime of one <see cref="ActorSystem"/>, an Akka extension (<c>BittensorRuntime.Get(system)</c>):
/// it injects the embedded reference configuration (hocon/bittensor.conf) once as the system's top-level fallback,
/// reads each settings record from the system's configuration once, and owns the <c>/user/bittensor</c> guardian
/// under which the runtime's long-lived actors (wallet signer, chain, metagraph, axon, dendrite) are started.
/// </summary>
public sealed class BittensorRuntime : IExtension
{
    /// <summary>Name of the embedded reference configuration resource.</summary>
    public const string ReferenceResource = "Bittensor.Actors.bittensor.conf";

    /// <summary>Name of the guardian actor (<c>/user/bittensor</c>).</summary>
    public const string GuardianName = "bittensor";

    private static readonly Lazy<Config> Reference = new(() => ConfigurationFactory.FromResource<BittensorRuntime>(ReferenceResource));

    private readonly ConcurrentDictionary<string, object> _settings = new(StringComparer.Ordinal);

    /// <summary>Creates the runtime of <paramref name="system"/>; use <see cref="Get"/>.</summary>
    public BittensorRuntime(ExtendedActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        System = system;
        system.Settings.InjectTopLevelFallback(ReferenceConfig);
        Guardian = system.ActorOf(BittensorGuardian.Props(), GuardianName);
    }

    /// <summary>
    /// The embedded reference configuration (hocon/bittensor.conf, rooted at <c>bittensor</c>): the one place every
    /// default lives. Parsed once per process.
    /// </summary>
    public static Config ReferenceConfig => Reference.Value;

    /// <summary>The runtime of <paramref name="system"/> (created on first use).</summary>
    public static BittensorRuntime Get(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        return system.WithExtension<BittensorRuntime, BittensorRuntimeProvider>();
    }

    /// <summary>The system this runtime belongs to.</summary>
    public ActorSystem System { get; }

    /// <summary>The system's configuration with the reference configuration as fallback.</summary>
    public Config Config => System.Settings.Config;

    /// <summary>The <c>/user/bittensor</c> guardian; start children with <see cref="StartAsync"/>.</summary>
    public IActorRef Guardian { get; }

    /// <summary><c>bittensor.axon</c>.</summary>
    public AxonSettings Axon => Settings(AxonSettings.SectionPath, AxonSettings.Create);

    /// <summary><c>bittensor.dendrite</c>.</summary>
    public DendriteSettings Dendrite => Settings(DendriteSettings.SectionPath, DendriteSettings.Create);

    /// <summary><c>bittensor.subtensor</c>.</summary>
    public SubtensorSettings Subtensor => Settings(SubtensorSettings.SectionPath, SubtensorSettings.Create);

    /// <summary><c>bittensor.localnet</c>.</summary>
    public LocalnetSettings Localnet => Settings(LocalnetSettings.SectionPath, LocalnetSettings.Create);

    /// <summary><c>bittensor.metagraph</c>.</summary>
    public MetagraphSettings Metagraph => Settings(MetagraphSettings.SectionPath, MetagraphSettings.Create);

    /// <summary><c>bittensor.wallet</c> (the btcli environment variables applied, as btcli does).</summary>
    public WalletSettings Wallet => Settings(WalletSettings.SectionPath, WalletSettings.Create);

    /// <summary>
    /// The settings record at <paramref name="path"/>, built once by <paramref name="create"/> from that section of
    /// <see cref="Config"/> and cached (so hot paths never read HOCON). Roles outside this assembly use this for
    /// their own sections.
    /// </summary>
    /// <exception cref="ConfigurationException">The section is missing or a key is invalid; the message names it.</exception>
    public T Settings<T>(string path, Func<Config, T> create) where T : class
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(create);
        if (_settings.TryGetValue(path, out var cached)) return (T)cached;
        var created = create(Section(Config, path));
        return (T)_settings.GetOrAdd(path, created);
    }

    /// <summary>
    /// The section of <paramref name="config"/> at <paramref name="path"/>, over the reference configuration (so a
    /// config without the reference still yields every key).
    /// </summary>
    /// <exception cref="ConfigurationException">Neither config has the section.</exception>
    public static Config Section(Config config, string path)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var merged = ReferenceEquals(config, ReferenceConfig) ? config : WithReference(config);
        if (!merged.HasPath(path)) throw new ConfigurationException($"{path}: missing HOCON section");
        return HoconSection.SectionAt(merged, path);
    }

    private static Config WithReference(Config config)
    {
        try
        {
            return config.WithFallback(ReferenceConfig);
        }
        catch (ArgumentException)
        {
            // Akka refuses a fallback the config already has: then it has every reference key already.
            return config;
        }
    }

    /// <summary>
    /// Starts <paramref name="props"/> as the guardian's child <paramref name="name"/> (<c>/user/bittensor/name</c>);
    /// fails when that name is taken.
    /// </summary>
    public Task<IActorRef> StartAsync(Props props, string name, CancellationToken cancellationToken = default) =>
        StartChildAsync(props, name, unique: false, cancellationToken);

    /// <summary>
    /// Starts <paramref name="props"/> under the guardian as <paramref name="name"/>, or when that name is taken as
    /// <c>name-2</c>, <c>name-3</c>… (the guardian picks the first free one, so two callers never race for a name).
    /// </summary>
    public Task<IActorRef> StartUniqueAsync(Props props, string name, CancellationToken cancellationToken = default) =>
        StartChildAsync(props, name, unique: true, cancellationToken);

    private async Task<IActorRef> StartChildAsync(Props props, string name, bool unique, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(props);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var reply = await Guardian.Ask<object>(new BittensorGuardian.StartChild(props, name, unique), TimeSpan.FromSeconds(30), cancellationToken)
            .ConfigureAwait(false);
        return reply switch
        {
            BittensorGuardian.ChildStarted started => started.Child,
            Status.Failure failure => throw new InvalidOperationException($"cannot start /user/{GuardianName}/{name}: {failure.Cause.Message}", failure.Cause),
            _ => throw new InvalidOperationException($"unexpected reply {reply}"),
        };
    }
}

/// <summary>Extension id of <see cref="BittensorRuntime"/>.</summary>
public sealed class BittensorRuntimeProvider : ExtensionIdProvider<BittensorRuntime>
{
    /// <inheritdoc />
    public override BittensorRuntime CreateExtension(ExtendedActorSystem system) => new(system);
}

/// <summary>
/// <c>/user/bittensor</c>: parent of the runtime's long-lived actors. A child that throws is restarted (Akka's default
/// decider); a stopped child's name becomes free again.
/// </summary>
internal sealed class BittensorGuardian : UntypedActor
{
    /// <summary>
    /// Start a named child and answer <see cref="ChildStarted"/> (or <see cref="Status.Failure"/>); with
    /// <paramref name="Unique"/>, a taken name gets the first free suffix <c>-2</c>, <c>-3</c>… instead of failing.
    /// </summary>
    public sealed record StartChild(Props Props, string Name, bool Unique = false);

    /// <summary>The child started by <see cref="StartChild"/>.</summary>
    public sealed record ChildStarted(IActorRef Child);

    public static Props Props() => Akka.Actor.Props.Create(() => new BittensorGuardian());

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case StartChild start:
                if (!start.Unique && !Context.Child(start.Name).IsNobody())
                {
                    Sender.Tell(new Status.Failure(new InvalidActorNameException($"a child named '{start.Name}' is already running")));
                    return;
                }
                // A unique start takes the first free suffix; a name still held by a stopping child is skipped too
                // (ActorOf refuses it until the child's termination is processed).
                for (var n = 1; ; n++)
                {
                    var name = n == 1 ? start.Name : $"{start.Name}-{n}";
                    if (start.Unique && !Context.Child(name).IsNobody()) continue;
                    try
                    {
                        Sender.Tell(new ChildStarted(Context.ActorOf(start.Props, name)));
                        break;
                    }
                    catch (InvalidActorNameException) when (start.Unique && n < 1000)
                    {
                    }
                    catch (Exception e) when (e is InvalidActorNameException or ConfigurationException or ArgumentException)
                    {
                        Sender.Tell(new Status.Failure(e));
                        break;
                    }
                }
                break;
            default:
                Unhandled(message);
                break;
        }
    }
}
