using Akka.Actor;
using Akka.Configuration;
using Akka.Hosting;
using Bittensor.Chain.Local;
using Bittensor.Models;
using Bittensor.Neurons.Roles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Samples.EmbeddedHost;

/// <summary>
/// The runtime inside a generic host: Akka.Hosting creates the ActorSystem from HOCON (this sample's embedded.conf over
/// Bittensor's reference configuration), and a hosted service starts a <see cref="ServerNeuron"/> in it when the host
/// starts and stops it with the host.
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
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddSingleton(new SampleServerSettings(hocon, args, shared));
        builder.Services.AddAkka("embedded", (akka, _) =>
        {
            akka.AddHocon(hocon.WithFallback(ModelSettings.ReferenceConfig), HoconAddMode.Prepend);
        });
        builder.Services.AddHostedService<ServerService>();
        return builder.Build();
    }

    private static Config LoadHocon()
    {
        using var stream = typeof(EmbeddedHostSample).Assembly.GetManifestResourceStream("embedded.conf")
            ?? throw new InvalidOperationException("embedded.conf is missing from the sample");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }
}

/// <summary>What the hosted service needs besides the ActorSystem.</summary>
public sealed record SampleServerSettings(Config Hocon, string[] Args, Localnet? Shared);

/// <summary>Starts a server neuron in the host's ActorSystem and stops it with the host.</summary>
public sealed class ServerService(ActorRegistry registry, ActorSystem system, SampleServerSettings settings) : IHostedService
{
    private Bittensor.Neurons.LocalChainHost? _chain;
    private ServerNeuron? _server;

    /// <summary>The running server (null before start).</summary>
    public ServerNeuron? Server => _server;

    /// <inheritdoc />
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _ = registry;
        var sample = settings.Hocon.GetConfig("bittensor.sample");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var localnet = sample.GetString("localnet_path").Replace("~", home, StringComparison.Ordinal);
        var options = SampleOptions.Parse(settings.Args, sample.GetString("wallet_name")) with
        {
            Shared = settings.Shared,
            LocalnetPath = Array.IndexOf(settings.Args, "--localnet.path") >= 0 ? SampleOptions.Parse(settings.Args, "").LocalnetPath : localnet,
        };
        _chain = SampleHost.Chain(system, options);
        var wallet = await SampleHost.WalletAsync(options, _chain, cancellationToken);
        var netuid = await _chain.EnsureSubnetAsync(wallet, cancellationToken);
        _server = await ServerNeuron.StartAsync(system, _chain.Chain, netuid, wallet, new ServerOptions
        {
            AxonIp = sample.GetString("axon_ip"),
            Model = ModelSettings.Create(system.Settings.Config),
            StatePath = options.StateFolder(netuid, "server"),
        }, cancellationToken);
        Console.WriteLine($"embedded server uid {_server.Uid} on subnet {netuid} at {_server.Ip}:{_server.Port}");
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is not null) await _server.DisposeAsync();
        if (_chain is not null) await _chain.DisposeAsync();
    }
}
