using Bittensor.Chain.Local;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Tests.Localnet;

/// <summary>A localnet driven block by block, with real sr25519 dev keys.</summary>
internal sealed class TestChain : IAsyncDisposable
{
    private static readonly Dictionary<string, Sr25519KeyPair> KeyCache = [];

    public TestChain(Bittensor.Chain.Local.Localnet chain) => Chain = chain;

    public Bittensor.Chain.Local.Localnet Chain { get; }

    /// <summary>Relaxed rate limits so a test reaches the rule it checks in a few blocks; each test re-tightens what it checks.</summary>
    public static readonly SubnetHyperparameters Relaxed = SubnetHyperparameters.Default with
    {
        WeightsRateLimit = 0,
        ServingRateLimit = 0,
        TargetRegistrationsPerInterval = 100,
        MaxRegistrationsPerBlock = 100,
        Tempo = 9,
    };

    public static TestChain Create(LocalnetOptions? options = null, IEpochRunner? runner = null) =>
        new(Bittensor.Chain.Local.Localnet.Open(options ?? new LocalnetOptions { SubnetDefaults = Relaxed, TargetStakesPerInterval = 100 },
            runner ?? TestEpochRunners.Default));

    /// <summary>A dev-phrase key, e.g. "//Alice" or "//hot1".</summary>
    public static Sr25519KeyPair Key(string suri)
    {
        lock (KeyCache)
        {
            if (!KeyCache.TryGetValue(suri, out var key)) KeyCache[suri] = key = SecretUri.ToSr25519(suri);
            return key;
        }
    }

    public static AccountId Id(string suri) => new(Key(suri).PublicKey.Span);

    public async Task<SignedCall> Sign(string suri, ChainCall call)
    {
        var key = Key(suri);
        var nonce = await Chain.GetNonceAsync(new AccountId(key.PublicKey.Span));
        return CallSigner.Sign(call, key, nonce, Chain.Identity);
    }

    /// <summary>Signs with the next nonce, submits, produces one block and returns the result.</summary>
    public async Task<CallResult> Submit(string suri, ChainCall call)
    {
        var pending = Chain.SubmitAsync(await Sign(suri, call));
        await Chain.ProduceBlockAsync();
        return await pending;
    }

    /// <summary>Submits several calls into the same block, in order.</summary>
    public async Task<CallResult[]> SubmitTogether(params (string Suri, ChainCall Call)[] calls)
    {
        var tasks = new List<Task<CallResult>>();
        foreach (var (suri, call) in calls) tasks.Add(Chain.SubmitAsync(await Sign(suri, call)));
        await Chain.ProduceBlockAsync();
        return await Task.WhenAll(tasks);
    }

    public async Task Blocks(int n)
    {
        for (var i = 0; i < n; i++) await Chain.ProduceBlockAsync();
    }

    /// <summary>Creates a subnet; the default owner is Ferdie so the owner cut does not move the balances tests check.</summary>
    public async Task<ushort> CreateSubnet(string owner = "//Ferdie")
    {
        var before = (await Chain.GetSubnetsAsync()).Select(s => s.Netuid).ToHashSet();
        AssertOk(await Submit(owner, new RegisterNetwork()));
        return (await Chain.GetSubnetsAsync()).Select(s => s.Netuid).Single(n => !before.Contains(n));
    }

    public async Task<ushort> Register(ushort netuid, string hotkey, string coldkey = "//Alice")
    {
        AssertOk(await Submit(coldkey, new BurnedRegister(netuid, Id(hotkey))));
        var neurons = await Chain.GetNeuronsAsync(netuid);
        return neurons.Single(n => n.Hotkey == Id(hotkey)).Uid;
    }

    public static void AssertOk(CallResult result) =>
        Assert.True(result.IsSuccess, $"expected success, got {result}");

    public static void AssertFails(string error, CallResult result)
    {
        var failed = Assert.IsType<CallResult.Failed>(result);
        Assert.True(error == failed.Error, $"expected {error}, got {failed}");
    }

    public ValueTask DisposeAsync() => Chain.DisposeAsync();
}
