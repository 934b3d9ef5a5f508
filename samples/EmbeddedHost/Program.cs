using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Hosting;
using Bittensor.Actors.Metagraph;
using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using Bittensor.Neurons;
using Bittensor.Neurons.Roles;
using Bittensor.Wallet;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Samples.EmbeddedHost;

/// <summary>
/// The runtime inside a generic host: <c>AddAkka(..., b => b.WithBittensor(...))</c> creates the ActorSystem from HOCON
/// (this sample's embedded.conf over Bittensor's reference configuration) and starts the wallet signer, chain,
/// metagraph and dendrite actors under <c>/user/bittensor</c>, registered in the <see cref="ActorRegistry"/>. A hosted
/// service takes the chain and metagraph actors from the registry and runs a <see cref="ServerNeuron"/> on them.
/// </summary>
public static class EmbeddedHostSample
{
    /// <summary>Runs the host until Ctrl-C.</summary>
    public static async Task Main(string[] args)
    {
        using var host = Build(args, null);
        await host.RunAsync();
    }

    /// <summary>Builds the host; <paramref name="shared"/> is a localnet owned by the caller (tests), else one is opened from HOCON.</summary>
    public static IHost Build(string[] args, Localnet? shared)
    {
        var hocon = LoadHocon();
        var sample = hocon.GetConfig("bittensor.sample");
        var parsed = SampleOptions.Parse(args, sample.GetString("wallet_name"));
        var options = parsed with
        {
            Shared = shared,
            LocalnetPath = Array.IndexOf(args, "--localnet.path") >= 0 ? parsed.LocalnetPath : LocalWallet.ExpandHome(sample.GetString("localnet_path")),
        };
        // The wallet's files must exist before the host starts: WithBittensor's wallet signer opens them.
        var wallet = new LocalWallet(options.WalletName, "default", options.WalletPath);
        if (!File.Exists(wallet.ColdkeyPath))
        {
            using var cold = WalletKey.Generate();
            using var hot = WalletKey.Generate();
            wallet.CreateColdkey(cold, password: null, overwrite: false);
            wallet.CreateHotkey(hot, password: null, overwrite: false);
        }
        var chain = new SampleChain(shared ?? Localnet.Open(new LocalnetOptions { Name = "samples", Path = options.LocalnetPath }), Owns: shared is null);

        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddSingleton(new SampleServerSettings(hocon, wallet, chain, options.StateFolder(SampleNetuid, "server")));
        builder.Services.AddAkka("embedded", (akka, _) =>
        {
            // The wallet this process signs with, as HOCON (flags of a real app would be layered the same way).
            var walletHocon = ConfigurationFactory.ParseString(
                $"bittensor.wallet {{ name = \"{wallet.Name}\", hotkey = \"{wallet.Hotkey}\", path = {System.Text.Json.JsonSerializer.Serialize(options.WalletPath)} }}");
            akka.AddHocon(walletHocon.WithFallback(hocon), HoconAddMode.Prepend);
            akka.WithBittensor(new BittensorHostingOptions
            {
                ChainBackend = LocalChainHost.BorrowedBackend(chain.Localnet),
                Netuid = SampleNetuid,
            });
        });
        builder.Services.AddHostedService<ServerService>();
        return builder.Build();
    }

    /// <summary>The subnet the sample serves on: the first one created on a fresh localnet.</summary>
    internal const ushort SampleNetuid = 1;

    private static Config LoadHocon()
    {
        using var stream = typeof(EmbeddedHostSample).Assembly.GetManifestResourceStream("embedded.conf")
            ?? throw new InvalidOperationException("embedded.conf is missing from the sample");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }
}

/// <summary>The localnet the sample acts on, and whether it owns it (then it also produces its blocks).</summary>
public sealed record SampleChain(Localnet Localnet, bool Owns);

/// <summary>What the hosted service needs besides the ActorSystem.</summary>
public sealed record SampleServerSettings(Config Hocon, LocalWallet Wallet, SampleChain Chain, string StatePath);

/// <summary>Starts a server neuron on the registry's chain actor when the host starts and stops it with the host.</summary>
public sealed class ServerService(ActorRegistry registry, ActorSystem system, SampleServerSettings settings) : IHostedService
{
    private readonly CancellationTokenSource _stop = new();
    private Task _blocks = Task.CompletedTask;
    private ServerNeuron? _server;

    /// <summary>The running server (null before start).</summary>
    public ServerNeuron? Server => _server;

    /// <summary>How many neurons the registry's metagraph actor saw after the server registered.</summary>
    public int MetagraphNeurons { get; private set; }

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var localnet = settings.Chain.Localnet;
        if (settings.Chain.Owns) _blocks = new LocalnetBlockProducer(localnet, TimeSpan.FromMilliseconds(250)).RunAsync(null, _stop.Token);
        // The actors WithBittensor started, by their typed keys: no refs passed around.
        var chain = await registry.GetAsync<ChainActorKey>(cancellationToken);
        var metagraph = await registry.GetAsync<MetagraphActorKey>(cancellationToken);

        var coldkey = settings.Wallet.LoadColdkey(null);
        var hotkey = settings.Wallet.LoadHotkey(null);
        var keys = NeuronKeys.FromWallet(hotkey, coldkey);
        var balance = await localnet.GetBalanceAsync(new AccountId(coldkey.PublicKey.Span), cancellationToken);
        if (balance < Balance.FromTao(10_000m)) localnet.Fund(new AccountId(coldkey.PublicKey.Span), Balance.FromTao(10_000m) - balance);
        var subnets = await localnet.GetSubnetsAsync(cancellationToken);
        if (!subnets.Any(s => s.Netuid == EmbeddedHostSample.SampleNetuid))
            await ChainOps.SubmitOrThrowAsync(chain, new RegisterNetwork(), keys.Coldkey!, cancellationToken);

        var sample = settings.Hocon.GetConfig("bittensor.sample");
        _server = await ServerNeuron.StartAsync(system, chain, EmbeddedHostSample.SampleNetuid, keys, new ServerOptions { AxonIp = sample.GetString("axon_ip"), StatePath = settings.StatePath },
            cancellationToken);
        var synced = await metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromSeconds(30), cancellationToken);
        MetagraphNeurons = synced.Snapshot.N;
        Console.WriteLine($"embedded server uid {_server.Uid} on subnet {EmbeddedHostSample.SampleNetuid} at {_server.Ip}:{_server.Port}; metagraph n = {MetagraphNeurons}");
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null) await _server.DisposeAsync();
        await _stop.CancelAsync();
        try
        {
            await _blocks;
        }
        catch (OperationCanceledException)
        {
        }
        if (settings.Chain.Owns) await settings.Chain.Localnet.DisposeAsync();
    }
}
