using System.Collections.Immutable;
using Akka.Actor;
using Akka.TestKit;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Metagraph;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Tests.Chain;

/// <summary>The chain and metagraph actors on a real (in-memory) localnet with real sr25519 keys and Yuma epochs.</summary>
public sealed class LocalnetMetagraphTests : Akka.TestKit.Xunit2.TestKit, IAsyncLifetime
{
    private static readonly SubnetHyperparameters Fast = SubnetHyperparameters.Default with
    {
        Tempo = 9,
        WeightsRateLimit = 0,
        ServingRateLimit = 0,
        TargetRegistrationsPerInterval = 100,
        MaxRegistrationsPerBlock = 100,
    };

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bt-lnmg-" + Guid.NewGuid().ToString("N"));
    private readonly Localnet _localnet = Localnet.Open(new LocalnetOptions { SubnetDefaults = Fast, TargetStakesPerInterval = 100 },
        YumaEpochRunner.Instance);
    private readonly ObservedBackend _backend;
    private readonly IActorRef _chain;
    private readonly TestProbe _results;

    private static readonly Dictionary<string, Sr25519KeyPair> Keys = [];

    public LocalnetMetagraphTests()
        : base(TestKitWaits.Hocon)
    {
        _backend = new ObservedBackend(_localnet);
        var connected = CreateTestProbe();
        Sys.EventStream.Subscribe(connected.Ref, typeof(ChainConnected));
        _chain = Sys.ActorOf(ChainActor.Props(_ => Task.FromResult<IChainBackend>(_backend), SubtensorSettings.Default, () => 0.5));
        connected.ExpectMsg<ChainConnected>();
        _results = CreateTestProbe();
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _localnet.DisposeAsync();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static KeyPairSigner Signer(string suri)
    {
        lock (Keys)
        {
            if (!Keys.TryGetValue(suri, out var key)) Keys[suri] = key = SecretUri.ToSr25519(suri);
            return new KeyPairSigner(key);
        }
    }

    /// <summary>Sends the calls through the ChainActor, waits until all entered the pool, produces one block, returns results.</summary>
    private Task<SubmitResult[]> InOneBlock(params (ChainCall Call, string Suri)[] calls) =>
        InOneBlock(calls.Select(c => (c.Call, (ICallSigner)Signer(c.Suri))).ToArray());

    private async Task<SubmitResult[]> InOneBlock(params (ChainCall Call, ICallSigner Signer)[] calls)
    {
        foreach (var (call, signer) in calls) _chain.Tell(new Submit(call, signer), _results.Ref);
        for (var i = 0; i < calls.Length; i++) await _backend.NextAcceptedAsync();
        await _localnet.ProduceBlockAsync();
        var results = new SubmitResult[calls.Length];
        for (var i = 0; i < calls.Length; i++) results[i] = await _results.ExpectMsgAsync<SubmitResult>();
        foreach (var r in results) Assert.True(r.IsSuccess, $"{r.CallName} failed: {r.Result}");
        return results;
    }

    private async Task Blocks(int n)
    {
        for (var i = 0; i < n; i++) await _localnet.ProduceBlockAsync();
    }

    [Fact]
    public async Task The_metagraph_shows_incentive_and_dividends_after_register_serve_stake_weights_and_an_epoch()
    {
        var hot1 = Signer("//hot1").Account;
        var hot2 = Signer("//hot2").Account;

        await InOneBlock((new RegisterNetwork(), "//Alice"));
        var netuid = (await _localnet.GetSubnetsAsync()).Single().Netuid;
        var updates = CreateTestProbe();
        Sys.EventStream.Subscribe(updates.Ref, typeof(MetagraphUpdated));
        var metagraph = Sys.ActorOf(MetagraphActor.Props(_chain, netuid, "local",
            MetagraphSettings.Default with { Path = _dir, Save = true, SyncEveryBlocks = 1 }));

        // Two registrations from one coldkey: the ChainActor sends them one after the other with nonces n and n+1.
        await InOneBlock((new BurnedRegister(netuid, hot1), "//Alice"));
        await InOneBlock((new BurnedRegister(netuid, hot2), "//Alice"));
        var (ip1, _) = AxonInfo.ParseIp("10.0.0.1");
        var (ip2, _) = AxonInfo.ParseIp("10.0.0.2");
        await InOneBlock(
            (new ServeAxon(netuid, 1_000_000, ip1, 8091, 4, 4), "//hot1"),
            (new ServeAxon(netuid, 1_000_000, ip2, 8092, 4, 4), "//hot2"));
        await InOneBlock((new AddStake(hot1, Balance.FromTao(100)), "//Alice"));

        await Blocks(Fast.Tempo + 1); // an epoch hands out validator permits by stake
        await InOneBlock((new SetWeights(netuid, [0, 1], [65535, 65535], 0), "//hot1"));
        await Blocks(Fast.Tempo + 1); // the next epoch scores the weights

        var synced = await metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromSeconds(20));
        var s = synced.Snapshot;
        Assert.Equal(2, s.N);
        Assert.Equal(_localnet.BlockNumber, s.Block);
        Assert.Equal(hot1, s.HotkeyIds[0]);
        Assert.Equal(hot2, s.HotkeyIds[1]);
        Assert.True(s.S[0] >= 100.0, $"stake of uid 0 is {s.S[0]}"); // 100 staked plus the emission it earned
        Assert.True(s.ValidatorPermit[0]);
        Assert.Equal("10.0.0.1:8091", s.Endpoints[0].ToString());
        Assert.Equal("10.0.0.2:8092", s.Endpoints[1].ToString());
        Assert.True(s.I[1] > 0, $"incentive of uid 1 is {s.I[1]}");
        Assert.True(s.D[0] > 0, $"dividends of uid 0 is {s.D[0]}");
        Assert.True(s.E.Sum() > 0);
        Assert.NotEmpty(s.W[0]);

        // The actor followed the blocks on its own too, and its saved file holds the same snapshot.
        updates.FishForMessage<MetagraphUpdated>(u => u.Snapshot.Block == s.Block, TimeSpan.FromSeconds(20));
        var saved = MetagraphStore.Load(MetagraphStore.DefaultPath(_dir, "local", netuid));
        Assert.Equal(s.IncentiveU16.ToArray(), saved.IncentiveU16.ToArray());
    }

    [Fact]
    public async Task Two_calls_from_one_key_through_the_actor_land_with_consecutive_nonces()
    {
        var alice = Signer("//Alice");
        var before = await _localnet.GetNonceAsync(alice.Account);
        _chain.Tell(new Submit(new Transfer(Signer("//Bob").Account, Balance.FromTao(1)), alice), _results.Ref);
        _chain.Tell(new Submit(new Transfer(Signer("//Bob").Account, Balance.FromTao(2)), alice), _results.Ref);

        var first = await _backend.NextAcceptedAsync();
        await _localnet.ProduceBlockAsync();
        var r1 = await _results.ExpectMsgAsync<SubmitResult>();
        var second = await _backend.NextAcceptedAsync();
        await _localnet.ProduceBlockAsync();
        var r2 = await _results.ExpectMsgAsync<SubmitResult>();

        Assert.Equal((before, before + 1), (first.Nonce, second.Nonce));
        Assert.True(r1.IsSuccess && r2.IsSuccess);
        Assert.Equal(before + 2, await _localnet.GetNonceAsync(alice.Account));
    }

    [Fact]
    public async Task A_chain_refusal_comes_back_with_the_runtime_error_name()
    {
        _chain.Tell(new Submit(new SetWeights(7, [0], [65535], 0), Signer("//nobody")), _results.Ref);
        await _backend.NextAcceptedAsync();
        await _localnet.ProduceBlockAsync();
        var r = await _results.ExpectMsgAsync<SubmitResult>();
        var failed = Assert.IsType<CallResult.Failed>(r.Result);
        Assert.False(string.IsNullOrEmpty(failed.Error));
        Assert.NotNull(failed.Block);
    }

    [Fact]
    public async Task Calls_signed_through_the_WalletSignerActor_are_accepted_and_a_locked_key_fails_cleanly()
    {
        var walletDir = Path.Combine(_dir, "wallets");
        var wallet = new Bittensor.Wallet.LocalWallet("w", "hot", walletDir);
        using (var cold = Bittensor.Wallet.WalletKey.FromUri("//Charlie")) wallet.CreateColdkey(cold, password: null, overwrite: false);
        using (var hot = Bittensor.Wallet.WalletKey.Generate()) wallet.CreateHotkey(hot, password: null, overwrite: false);
        var signerActor = Sys.ActorOf(Bittensor.Actors.Wallet.WalletSignerActor.Props(wallet));
        var coldSigner = await WalletCallSigner.CreateAsync(signerActor, Bittensor.Actors.Wallet.KeyRole.Coldkey);
        Assert.Equal(Signer("//Charlie").Account, coldSigner.Account);

        // Locked: the submission fails with SignerFailed and nothing reaches the chain.
        _chain.Tell(new Submit(new Transfer(Signer("//Bob").Account, Balance.FromTao(1)), coldSigner), _results.Ref);
        var locked = await _results.ExpectMsgAsync<SubmitResult>();
        Assert.Equal("SignerFailed", Assert.IsType<CallResult.Failed>(locked.Result).Error);

        await signerActor.Ask<Bittensor.Actors.Wallet.Unlocked>(new Bittensor.Actors.Wallet.Unlock(Bittensor.Actors.Wallet.KeyRole.Coldkey),
            TimeSpan.FromSeconds(20));
        var results = await InOneBlock(((ChainCall)new Transfer(Signer("//Bob").Account, Balance.FromTao(1)), (ICallSigner)coldSigner));
        Assert.True(results[0].IsSuccess);
    }
}
