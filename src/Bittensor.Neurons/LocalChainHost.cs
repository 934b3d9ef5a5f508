using Akka.Actor;
using Bittensor.Actors;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Roles;

namespace Bittensor.Neurons;

/// <summary>
/// A ChainActor over an embedded localnet, for hosts (samples, <c>btcli run</c>) that act on a local chain in their own
/// process. It either owns the localnet (opened from a folder, blocks produced on a timer) or borrows one that another
/// part of the process drives (several samples in one test process share one chain).
/// </summary>
public sealed class LocalChainHost : IAsyncDisposable
{
    private readonly bool _owns;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _producing;

    private LocalChainHost(ActorSystem system, Localnet localnet, bool owns, TimeSpan? blockTime)
    {
        System = system;
        Localnet = localnet;
        _owns = owns;
        Chain = system.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(new NonOwningChainBackend(localnet)), BittensorRuntime.Get(system).Subtensor,
            Random.Shared.NextDouble), $"chain-{Guid.NewGuid():N}");
        _producing = blockTime is { } t ? new LocalnetBlockProducer(localnet, t).RunAsync(null, _stop.Token) : Task.CompletedTask;
    }

    /// <summary>The actor system the chain actor lives in.</summary>
    public ActorSystem System { get; }

    /// <summary>The localnet.</summary>
    public Localnet Localnet { get; }

    /// <summary>The ChainActor to hand to roles.</summary>
    public IActorRef Chain { get; }

    /// <summary>Opens (or creates) the localnet in <paramref name="folder"/> and produces a block every <paramref name="blockTime"/>.</summary>
    /// <exception cref="LocalnetException">The folder is in use by another process or unreadable.</exception>
    public static LocalChainHost Open(ActorSystem system, string folder, TimeSpan blockTime)
    {
        ArgumentNullException.ThrowIfNull(system);
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));
        var localnet = Localnet.Open(new LocalnetOptions { Name = string.IsNullOrEmpty(name) ? "default" : name, Path = folder });
        return new LocalChainHost(system, localnet, owns: true, blockTime);
    }

    /// <summary>Uses a localnet someone else owns; <paramref name="blockTime"/> null leaves block production to them.</summary>
    public static LocalChainHost Borrow(ActorSystem system, Localnet localnet, TimeSpan? blockTime = null) => new(system, localnet, owns: false, blockTime);

    /// <summary>
    /// A backend factory for a ChainActor (or <c>WithBittensor</c>) over <paramref name="localnet"/> that never closes it:
    /// the caller owns the localnet.
    /// </summary>
    public static Func<CancellationToken, Task<IChainBackend>> BorrowedBackend(Localnet localnet)
    {
        ArgumentNullException.ThrowIfNull(localnet);
        return _ => Task.FromResult<IChainBackend>(new NonOwningChainBackend(localnet));
    }

    /// <summary>The lowest non-root subnet; creates one owned by <paramref name="owner"/>'s coldkey when there is none.</summary>
    public async Task<ushort> EnsureSubnetAsync(NeuronKeys owner, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(owner);
        var subnets = await Localnet.GetSubnetsAsync(cancellationToken);
        if (subnets.FirstOrDefault(s => s.Netuid != 0) is { } existing) return existing.Netuid;
        var coldkey = owner.Coldkey ?? throw new NeuronException("creating a subnet needs an unlocked coldkey");
        await ChainOps.SubmitOrThrowAsync(Chain, new RegisterNetwork(), coldkey, cancellationToken);
        return (await Localnet.GetSubnetsAsync(cancellationToken)).First(s => s.Netuid != 0).Netuid;
    }

    /// <summary>Gives <paramref name="account"/> TAO on the local chain if it has less than <paramref name="atLeast"/> (local testing only).</summary>
    public async Task FaucetAsync(AccountId account, Balance atLeast, CancellationToken cancellationToken)
    {
        var balance = await Localnet.GetBalanceAsync(account, cancellationToken);
        if (balance < atLeast) Localnet.Fund(account, atLeast - balance);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _producing;
        }
        catch (OperationCanceledException)
        {
        }
        System.Stop(Chain);
        if (_owns) await Localnet.DisposeAsync();
        _stop.Dispose();
    }
}
