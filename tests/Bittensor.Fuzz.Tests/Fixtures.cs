using System.CommandLine;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Axon;
using Bittensor.Chain.Local;
using Bittensor.Chain.Node;
using Bittensor.Cli;
using Bittensor.Cli.Commands;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Fuzz.Tests;

/// <summary>
/// One axon per process behind the in-memory transport (the same <c>AxonService</c> the Kestrel server runs, with the
/// same message limits): signature checks off so that every parsed request reaches the body decoder, an inline model
/// answering zeros. The oracle: every call ends in a response or a gRPC status the axon means to send; a status
/// <c>Unknown</c> (its handler threw) is a finding.
/// </summary>
internal sealed class AxonFixture
{
    private readonly IPeerConnection _connection;
    private readonly Metadata _headers;

    public AxonFixture()
    {
        var system = ActorSystem.Create("fuzz-axon", ConfigurationFactory.ParseString("akka.loglevel = ERROR\nakka.stdout-loglevel = ERROR"));
        var transport = new InMemoryTransport();
        var settings = AxonSettings.Default with { Ip = "127.0.0.1", Port = 0, DisableSignatureVerification = true, NonceStorePath = "" };
        var dim = settings.NetworkDim;
        var handlers = new AxonHandlers(
            (f, _) => Task.FromResult(Answer(f.Inputs, dim)),
            (b, _) => Task.FromResult(Answer(b.Inputs, dim))) { Inline = true };
        using var bob = SecretUri.ToSr25519("//Bob");
        var axon = system.ActorOf(AxonActor.Props(settings, handlers, new AxonOptions { Hotkey = bob.ToSs58(), Transport = transport }), "axon");
        var bound = axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, TimeSpan.FromMinutes(2)).GetAwaiter().GetResult();
        _connection = transport.Connect("127.0.0.1", bound.Endpoint.Port, new BittensorChannelOptions());
        using var alice = SecretUri.ToSr25519("//Alice");
        _headers = new Metadata
        {
            { "bittensor-signature", $"{DateTime.UtcNow:MMddyyyyHHmmssffffff}bitxx{alice.ToSs58()}bitxx00" },
            { "bittensor-version", ProtocolVersion.Current.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        };
    }

    private static ModelResponse Answer(DenseTensor inputs, int dim)
    {
        if (inputs.Rank != 2 || inputs.Shape[0] * inputs.Shape[1] > 4096) return new ModelResponse(null, ReturnCode.RequestShapeException, "too big for the fuzz model");
        return ModelResponse.Ok(DenseTensor.Zeros(inputs.Shape[0], inputs.Shape[1], dim));
    }

    public void Call(BittensorMethod method, TensorMessage request)
    {
        try
        {
            _ = _connection.CallAsync(method, request, _headers, DateTime.UtcNow.AddMinutes(2), CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (Grpc.Core.RpcException e) when (e.StatusCode is not (StatusCode.Unknown or StatusCode.Internal))
        {
        }
    }
}

/// <summary>Our node's JSON-RPC methods over a throwaway localnet (requests handled as the HTTP POST path handles them).</summary>
internal sealed class NodeFixture
{
    private readonly LocalnetNode _node;

    public NodeFixture()
    {
        var folder = TempFolder.Create("bt-fuzz-node-");
        var chain = Localnet.Open(new LocalnetOptions { Path = folder });
        _node = LocalnetNode.StartAsync(chain, new LocalnetNodeOptions { Port = 0, MaxRequestBytes = 64 * 1024, MaxBatch = 8, MaxNewBlocks = 4 }).GetAwaiter().GetResult();
    }

    public byte[]? Handle(byte[] request) => _node.Methods.HandleMessageAsync(null, request).GetAwaiter().GetResult();
}

/// <summary>btcli's command tree, as Program.cs builds it.</summary>
internal static class CliFixture
{
    public static RootCommand Root()
    {
        var root = new RootCommand("btcli (fuzz)");
        CliApp.AddCommonOptions(root);
        AxonCommands.Register(root);
        ChainCommands.Register(root);
        DemoCommands.Register(root);
        LocalnetCommands.Register(root);
        LocalnetFaucetCommands.Register(root);
        RunCommands.Register(root);
        SubstrateCommands.Register(root);
        WalletCommands.Register(root);
        return root;
    }
}
