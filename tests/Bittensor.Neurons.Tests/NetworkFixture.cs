using Akka.Actor;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Models;
using Bittensor.Neurons.Demo;
using Bittensor.Neurons.Pipelines;
using Bittensor.Neurons.Roles;
using Bittensor.Models.Validation;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// An in-memory localnet with a ChainActor and an event-driven block driver (a block whenever a call is submitted or
/// the validator finishes a batch): tests never sleep and never depend on a clock.
/// </summary>
internal sealed class LocalSubnet : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _blocks;
    private readonly List<Sr25519KeyPair> _pairs = [];
    private readonly Random _random;
    private readonly string _state = Directory.CreateTempSubdirectory("bt-subnet-state-").FullName;

    private LocalSubnet(ActorSystem system, Localnet localnet, BlockDriver driver, IActorRef chain, int seed)
    {
        System = system;
        Localnet = localnet;
        Driver = driver;
        Chain = chain;
        _random = new Random(seed);
        _blocks = Task.Run(() => driver.RunAsync(_ => Task.FromResult(true), _stop.Token));
    }

    public ActorSystem System { get; }
    public Localnet Localnet { get; }
    public BlockDriver Driver { get; }
    public IActorRef Chain { get; }
    public ushort Netuid { get; private set; }

    /// <summary>A neuron's own state folder (its nonce store) inside this subnet's temp folder.</summary>
    public string State(string neuron) => Path.Combine(_state, neuron);

    /// <summary>Relaxed limits as in the demo (registrations, serving and weights not rate limited).</summary>
    public static SubnetHyperparameters Hyper(ushort tempo) => SubnetHyperparameters.Default with
    {
        Tempo = tempo,
        MaxRegistrationsPerBlock = 64,
        TargetRegistrationsPerInterval = 64,
        ServingRateLimit = 0,
        WeightsRateLimit = 0,
        MaxAllowedValidators = 1,
    };

    public static readonly ModelSettings TinyModel = ModelSettings.Default with
    {
        DModel = 32, Layers = 1, Heads = 2, FeedForward = 64, MaxSequence = 32, Dropout = 0, Threads = 1, CheckpointEverySteps = 0,
        MaxDelay = TimeSpan.FromMilliseconds(2),
    };

    public static async Task<LocalSubnet> StartAsync(ActorSystem system, ushort tempo, int seed, CancellationToken cancellationToken)
    {
        var localnet = Localnet.Open(new LocalnetOptions { Name = "test", SubnetDefaults = Hyper(tempo) });
        var driver = BlockDriver.Of(localnet, TimeSpan.Zero, 1, TimeSpan.FromSeconds(30));
        var chain = system.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(new NonOwningChainBackend(localnet, _ => driver.Submitted())),
            SubtensorSettings.Default, () => 0.5));
        var subnet = new LocalSubnet(system, localnet, driver, chain, seed);
        var owner = subnet.NewKeys();
        await ChainOps.SubmitOrThrowAsync(chain, new RegisterNetwork(), owner.Coldkey!, cancellationToken);
        subnet.Netuid = (await localnet.GetSubnetsAsync(cancellationToken)).Max(s => s.Netuid);
        return subnet;
    }

    /// <summary>A funded coldkey and a fresh hotkey.</summary>
    public NeuronKeys NewKeys()
    {
        var mini = new byte[32];
        _random.NextBytes(mini);
        var cold = Sr25519KeyPair.FromMiniSecret(mini);
        _random.NextBytes(mini);
        var hot = Sr25519KeyPair.FromMiniSecret(mini);
        _pairs.Add(cold);
        _pairs.Add(hot);
        Localnet.Fund(new AccountId(cold.PublicKey.Span), Balance.FromTao(10_000m));
        return NeuronKeys.FromPairs(hot, cold);
    }

    public static ValidatorOptions SmallValidator(int seed) => ValidatorOptions.Default with
    {
        Pipeline = PipelineSettings.Default with { BatchSize = 2, SequenceLength = 12, Seed = seed },
        Nucleus = NucleusSettingsHocon.Default with { Hidden = 64, Seed = seed, Threads = 1 },
        CorpusTokens = 20_000,
        Stake = Balance.FromTao(100m),
    };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _blocks;
        }
        catch (OperationCanceledException)
        {
        }
        System.Stop(Chain);
        await Localnet.DisposeAsync();
        foreach (var p in _pairs) p.Dispose();
        _stop.Dispose();
        Directory.Delete(_state, recursive: true);
    }
}
