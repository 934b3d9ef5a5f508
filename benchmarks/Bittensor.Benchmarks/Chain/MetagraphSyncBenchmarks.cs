using Akka.Actor;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Metagraph;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;

namespace Bittensor.Benchmarks.Chain;

/// <summary>
/// Metagraph sync of a subnet with n = 4096 neurons on an in-memory localnet. Setup registers n hotkeys, stakes
/// <see cref="Validators"/> of them, runs an epoch (permits), has each validator set dense weights over all n uids,
/// and runs another epoch, so neurons carry ranks, bonds and weights rows. Measured: the read plus snapshot build
/// (<see cref="ReadAndBuild"/>), a full <see cref="MetagraphActor"/> sync through the <see cref="ChainActor"/>
/// (<see cref="ActorSync"/>), and the atomic snapshot save (<see cref="Save"/>).
/// </summary>
/// <remarks>
/// Short run, in process: the setup builds a 4096-neuron chain, and a separate benchmark process would rebuild the
/// solution on a shared 2-core machine (BenchmarkDotNet's 2-minute build timeout is not enough there).
/// </remarks>
[Config(typeof(ShortInProcess))]
[MemoryDiagnoser]
public class MetagraphSyncBenchmarks
{
    /// <summary>ShortRun (3 warm-ups, 3 iterations) with the in-process toolchain.</summary>
    public sealed class ShortInProcess : ManualConfig
    {
        /// <summary>Creates the config.</summary>
        public ShortInProcess() => AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance));
    }

    private Localnet _localnet = null!;
    private ActorSystem _system = null!;
    private IActorRef _metagraph = null!;
    private ushort _netuid;
    private MetagraphSnapshot _snapshot = null!;
    private string _dir = null!;

    /// <summary>Subnet size.</summary>
    [Params(4096)]
    public int N { get; set; }

    /// <summary>Validators that set a dense weights row over all n uids (0 = nobody set weights).</summary>
    [Params(0, 64)]
    public int Validators { get; set; }

    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    private async Task SetupAsync()
    {
        var hyper = SubnetHyperparameters.Default with
        {
            MaxAllowedUids = (ushort)N,
            MaxRegistrationsPerBlock = (ushort)N,
            TargetRegistrationsPerInterval = (ushort)N,
            MaxAllowedValidators = 64,
            Tempo = 9,
            WeightsRateLimit = 0,
        };
        _localnet = Localnet.Open(new LocalnetOptions { SubnetDefaults = hyper, MaxPendingCalls = N + 16 }, YumaEpochRunner.Instance);
        var alice = SecretUri.ToSr25519("//Alice");
        var aliceId = new AccountId(alice.PublicKey.Span);
        await Submit([(new RegisterNetwork(), alice)]);
        _netuid = (await _localnet.GetSubnetsAsync()).Single().Netuid;

        var validators = Enumerable.Range(0, Validators).Select(i => SecretUri.ToSr25519($"//validator{i}")).ToArray();
        var rng = new Random(7);
        var hotkeys = new AccountId[N];
        for (var i = 0; i < N; i++)
        {
            if (i < validators.Length) hotkeys[i] = new AccountId(validators[i].PublicKey.Span);
            else
            {
                var b = new byte[32];
                rng.NextBytes(b);
                hotkeys[i] = new AccountId(b);
            }
        }
        await Submit([.. hotkeys.Select(h => ((ChainCall)new BurnedRegister(_netuid, h), alice))]);
        if (validators.Length > 0)
        {
            await Submit([.. validators.Select(v => ((ChainCall)new AddStake(new AccountId(v.PublicKey.Span), Balance.FromTao(1000)), alice))]);
            for (var i = 0; i <= hyper.Tempo; i++) await _localnet.ProduceBlockAsync();
            var dests = Enumerable.Range(0, N).Select(u => (ushort)u).ToArray();
            await Submit([.. validators.Select(v => ((ChainCall)new SetWeights(_netuid, [.. dests],
                [.. dests.Select(_ => (ushort)rng.Next(1, 65536))], 0), v))]);
        }
        for (var i = 0; i <= hyper.Tempo; i++) await _localnet.ProduceBlockAsync();
        var neurons = await _localnet.GetNeuronsAsync(_netuid);
        if (neurons.Count != N) throw new InvalidOperationException($"expected {N} neurons, got {neurons.Count}");
        if (neurons.Count(x => x.Weights.Length > 0) != Validators) throw new InvalidOperationException("weights were not set");
        _ = aliceId;

        _dir = Path.Combine(Path.GetTempPath(), "bt-mgbench-" + Guid.NewGuid().ToString("N"));
        _system = ActorSystem.Create("bench", "akka.loglevel = WARNING");
        var chain = _system.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(_localnet)));
        _metagraph = _system.ActorOf(MetagraphActor.Props(chain, _netuid, "local",
            MetagraphSettings.Default with { Path = _dir, Save = false, SyncEveryBlocks = 1_000_000 }));
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                _snapshot = (await _metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromMinutes(2))).Snapshot;
                break;
            }
            catch (ChainUnavailableException) when (attempt < 100)
            {
                await Task.Delay(100); // the chain actor is still connecting
            }
        }
        if (_snapshot.N != N) throw new InvalidOperationException("the actor synced the wrong subnet");
    }

    private async Task Submit((ChainCall Call, Sr25519KeyPair Key)[] calls)
    {
        var nonces = new Dictionary<AccountId, uint>();
        var pending = new List<Task<CallResult>>(calls.Length);
        foreach (var (call, key) in calls)
        {
            var id = new AccountId(key.PublicKey.Span);
            if (!nonces.TryGetValue(id, out var nonce)) nonce = await _localnet.GetNonceAsync(id);
            nonces[id] = nonce + 1;
            pending.Add(_localnet.SubmitAsync(CallSigner.Sign(call, key, nonce, _localnet.Identity)));
        }
        await _localnet.ProduceBlockAsync();
        foreach (var r in await Task.WhenAll(pending))
            if (!r.IsSuccess) throw new InvalidOperationException($"setup call failed: {r}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _system.Terminate().Wait();
        _localnet.DisposeAsync().AsTask().Wait();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Read every neuron from the backend and build the immutable snapshot (the work inside one sync).</summary>
    [Benchmark]
    public async Task<MetagraphSnapshot> ReadAndBuild()
    {
        var block = await _localnet.GetCurrentBlockAsync();
        return MetagraphSnapshot.FromNeurons("local", _netuid, block.Number, await _localnet.GetNeuronsAsync(_netuid));
    }

    /// <summary>A whole MetagraphActor sync: ask, ChainActor read, build, publish, answer.</summary>
    [Benchmark]
    public async Task<MetagraphSnapshot> ActorSync() =>
        (await _metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromMinutes(1))).Snapshot;

    /// <summary>Atomic save of the snapshot (encode, temp file, fsync, rename).</summary>
    [Benchmark]
    public void Save() => MetagraphStore.Save(_snapshot, Path.Combine(_dir, "bench.bin"));
}
