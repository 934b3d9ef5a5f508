using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Hosting;
using Bittensor.Actors.Wallet;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Wallet;

namespace Bittensor.Hosting.Tests;

/// <summary>
/// <c>services.AddAkka(..., b => b.WithBittensor(...))</c> in a real generic host: the actors land under
/// <c>/user/bittensor</c>, the registry resolves each by its key, and they work (a real localnet folder, a real wallet
/// file, a real Kestrel port).
/// </summary>
public sealed class WithBittensorSpec : Akka.Hosting.TestKit.TestKit, IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _dir;
    private readonly string _hotkey;

    public WithBittensorSpec(ITestOutputHelper output) : base(nameof(WithBittensorSpec), output)
    {
        _dir = Directory.CreateTempSubdirectory("bt-hosting-").FullName;
        using var key = WalletKey.Generate();
        new LocalWallet("hosting", "hot", Path.Combine(_dir, "wallets")).CreateHotkey(key, password: null, overwrite: false);
        _hotkey = key.Ss58Address;
    }

    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider)
    {
        var hocon = $$"""
            akka.loglevel = WARNING
            bittensor.wallet { name = hosting, hotkey = hot, path = "{{Path.Combine(_dir, "wallets")}}" }
            bittensor.localnet.path = "{{Path.Combine(_dir, "localnet")}}"
            bittensor.axon { ip = "127.0.0.1", port = 0 }
            bittensor.metagraph { path = "{{Path.Combine(_dir, "metagraphs")}}", save = off }
            """;
        builder.AddHocon(ConfigurationFactory.ParseString(hocon), HoconAddMode.Prepend);
        builder.WithBittensor(new BittensorHostingOptions
        {
            // The chain actor owns what this opens (and disposes it on reconnect or stop): the localnet folder of the HOCON above.
            ChainBackend = _ =>
            {
                var folder = Path.Combine(_dir, "localnet");
                return Task.FromResult<IChainBackend>(Localnet.Open(new LocalnetOptions { Name = "hosting", Path = folder }));
            },
            Netuid = 1,
            Axon = new AxonHandlers((_, _) => Task.FromResult(new ModelResponse(null, Bittensor.Protocol.Wire.ReturnCode.NotImplemented))),
        });
    }

    [Fact]
    public async Task The_registry_resolves_every_runtime_actor_under_the_bittensor_guardian()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Timeout);
        var keys = new[] { typeof(WalletSignerKey), typeof(ChainActorKey), typeof(MetagraphActorKey), typeof(AxonActorKey), typeof(DendriteActorKey) };
        var names = new[] { "wallet", "chain", "metagraph", "axon", "dendrite" };
        for (var i = 0; i < keys.Length; i++)
        {
            var actor = await ActorRegistry.GetAsync(keys[i], cts.Token);
            Assert.Equal($"/user/bittensor/{names[i]}", actor.Path.ToStringWithoutAddress());
        }
    }

    [Fact]
    public async Task The_registered_actors_do_real_work_on_the_configured_wallet_localnet_and_port()
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Timeout * 2);
        var ct = cts.Token;
        var chain = await ActorRegistry.GetAsync<ChainActorKey>(ct);
        // The chain actor connects asynchronously; a read before that is refused fast, so ask until it answers.
        BlockInfo? block = null;
        await AwaitAssertAsync(async () =>
            block = await chain.Ask<BlockInfo>(new ChainRead<BlockInfo>((b, t) => b.GetCurrentBlockAsync(t).AsTask()), Timeout, ct),
            Timeout, cancellationToken: ct);
        Assert.Equal(0UL, block!.Number);
        // The chain opened the localnet folder named in HOCON (not the default under ~/.bittensor).
        Assert.NotEmpty(Directory.EnumerateFileSystemEntries(Path.Combine(_dir, "localnet")));

        var axon = await ActorRegistry.GetAsync<AxonActorKey>(ct);
        var bound = await axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, Timeout, ct);
        Assert.NotEqual(0, bound.Endpoint.Port);
        Assert.Equal("127.0.0.1", bound.Endpoint.Address.ToString());

        var wallet = await ActorRegistry.GetAsync<WalletSignerKey>(ct);
        var keys = await wallet.Ask<PublicKeys>(GetPublicKeys.Instance, Timeout, ct);
        Assert.Equal(_hotkey, keys.HotkeySs58);
        // The dendrite signs through the wallet signer: starting it unlocked the configured hotkey.
        Assert.True(keys.HotkeyUnlocked);

        var dendrite = await ActorRegistry.GetAsync<DendriteActorKey>(ct);
        Assert.Equal(0, await dendrite.Ask<int>(DendriteActor.GetEndpointCount.Instance, Timeout, ct));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
