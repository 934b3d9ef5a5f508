using Akka.Actor;
using Akka.Hosting;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Metagraph;
using Bittensor.Actors.Wallet;
using Bittensor.Chain;
using Bittensor.Protocol;
using Bittensor.Wallet;

namespace Bittensor.Actors.Hosting;

/// <summary><see cref="ActorRegistry"/> key of the <see cref="WalletSignerActor"/> (<c>/user/bittensor/wallet</c>).</summary>
public sealed class WalletSignerKey;

/// <summary><see cref="ActorRegistry"/> key of the <see cref="ChainActor"/> (<c>/user/bittensor/chain</c>).</summary>
public sealed class ChainActorKey;

/// <summary><see cref="ActorRegistry"/> key of the <see cref="MetagraphActor"/> (<c>/user/bittensor/metagraph</c>).</summary>
public sealed class MetagraphActorKey;

/// <summary><see cref="ActorRegistry"/> key of the <see cref="AxonActor"/> (<c>/user/bittensor/axon</c>).</summary>
public sealed class AxonActorKey;

/// <summary><see cref="ActorRegistry"/> key of the <see cref="DendriteActor"/> (<c>/user/bittensor/dendrite</c>).</summary>
public sealed class DendriteActorKey;

/// <summary>
/// What <see cref="BittensorHostingExtensions.WithBittensor"/> starts. Settings (axon port, dendrite limits, chain
/// network, metagraph folder, wallet) come from the host's HOCON (<c>bittensor { }</c> over hocon/bittensor.conf);
/// these options carry only what HOCON cannot express.
/// </summary>
public sealed record BittensorHostingOptions
{
    /// <summary>Opens the chain backend on every (re)connect of the chain actor (e.g. an embedded localnet). Required.</summary>
    public required Func<CancellationToken, Task<IChainBackend>> ChainBackend { get; init; }

    /// <summary>Subnet whose metagraph is synced; null starts no metagraph actor.</summary>
    public ushort? Netuid { get; init; }

    /// <summary>What the axon serves; null starts no axon.</summary>
    public AxonHandlers? Axon { get; init; }

    /// <summary>Code-level axon options (call log, stakes); the hotkey is filled in from the wallet when empty.</summary>
    public AxonOptions AxonOptions { get; init; } = AxonOptions.Default;

    /// <summary>
    /// Signs the dendrite's requests; null signs with the wallet's hotkey through the wallet signer actor (unlocked with
    /// <see cref="HotkeyPassword"/>).
    /// </summary>
    public IRequestSigner? RequestSigner { get; init; }

    /// <summary>Where the hotkey's password comes from when it is encrypted (btcli's hotkeys are not, by default).</summary>
    public PasswordSource? HotkeyPassword { get; init; }

    /// <summary>Longest wait for the hotkey to unlock at start.</summary>
    public TimeSpan UnlockTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>Akka.Hosting support: one builder method starts the Bittensor runtime's actors and registers them.</summary>
public static class BittensorHostingExtensions
{
    /// <summary>
    /// Adds the reference configuration as fallback, starts the wallet signer, chain, metagraph (when
    /// <see cref="BittensorHostingOptions.Netuid"/> is set), axon (when <see cref="BittensorHostingOptions.Axon"/> is set)
    /// and dendrite under <c>/user/bittensor</c>, and registers each in the <see cref="ActorRegistry"/> under its key
    /// (<see cref="WalletSignerKey"/>, <see cref="ChainActorKey"/>, <see cref="MetagraphActorKey"/>,
    /// <see cref="AxonActorKey"/>, <see cref="DendriteActorKey"/>).
    /// </summary>
    public static AkkaConfigurationBuilder WithBittensor(this AkkaConfigurationBuilder builder, BittensorHostingOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.ChainBackend);
        builder.AddHocon(BittensorRuntime.ReferenceConfig, HoconAddMode.Append);
        // A Task-returning method group: Akka.Hosting awaits it before the host counts as started.
        Task Start(ActorSystem system, IActorRegistry registry) => StartAsync(system, registry, options);
        builder.WithActors(Start);
        return builder;
    }

    private static async Task StartAsync(ActorSystem system, IActorRegistry registry, BittensorHostingOptions options)
    {
        var runtime = BittensorRuntime.Get(system);
        var walletSettings = runtime.Wallet;
        var wallet = await runtime.StartAsync(WalletSignerActor.Props(walletSettings), "wallet").ConfigureAwait(false);
        registry.Register<WalletSignerKey>(wallet);

        var chain = await runtime.StartAsync(ChainActor.Props(options.ChainBackend, runtime.Subtensor), "chain").ConfigureAwait(false);
        registry.Register<ChainActorKey>(chain);

        if (options.Netuid is { } netuid)
        {
            var metagraph = await runtime.StartAsync(MetagraphActor.Props(chain, netuid, runtime.Subtensor.Network, runtime.Metagraph), "metagraph")
                .ConfigureAwait(false);
            registry.Register<MetagraphActorKey>(metagraph);
        }

        if (options.Axon is { } handlers)
        {
            var axonOptions = options.AxonOptions.Hotkey.Length > 0 ? options.AxonOptions : options.AxonOptions with { Hotkey = HotkeyAddress(walletSettings) };
            var axon = await runtime.StartAsync(AxonActor.Props(runtime.Axon, handlers, axonOptions), "axon").ConfigureAwait(false);
            registry.Register<AxonActorKey>(axon);
        }

        var signer = options.RequestSigner
            ?? await WalletRequestSigner.CreateAsync(wallet, options.UnlockTimeout, options.HotkeyPassword).ConfigureAwait(false);
        var dendrite = await runtime.StartAsync(DendriteActor.Props(runtime.Dendrite, signer), "dendrite").ConfigureAwait(false);
        registry.Register<DendriteActorKey>(dendrite);
    }

    private static string HotkeyAddress(WalletSettings settings)
    {
        using var pub = settings.ToWallet().LoadHotkeyPub();
        return pub.Ss58Address;
    }
}
