using Akka.Actor;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Metagraph;
using Bittensor.Chain.Local;
using Bittensor.Models.Tokenization;
using Bittensor.Protocol.Wire;
using Bittensor.Core.Domain;

namespace Bittensor.Samples.Client;

/// <summary>
/// The seed's client snippet (§3.1) in C#:
/// <code>
/// wallet = bittensor.wallet().create()
/// graph = bittensor.metagraph().sync()
/// representations, _ = bittensor.dendrite(wallet=wallet).forward_text(endpoints=graph.endpoints, inputs="The quick brown fox jumped over the lazy dog")
/// </code>
/// </summary>
public static class ClientSample
{
    /// <summary>Command-line entry: <c>--wallet.path --wallet.name --localnet.path</c>.</summary>
    public static Task<int> Main(string[] args) => RunAsync(args, null, CancellationToken.None);

    /// <summary>Queries every serving endpoint once; returns 0 when at least one answered, 1 otherwise.</summary>
    public static async Task<int> RunAsync(string[] args, Localnet? shared, CancellationToken cancellationToken)
    {
        var options = SampleOptions.Parse(args, "sample-client") with { Shared = shared };
        using var system = SampleHost.CreateSystem("client");
        await using var chain = SampleHost.Chain(system, options);
        var wallet = await SampleHost.WalletAsync(options, chain, cancellationToken);
        var netuid = await chain.EnsureSubnetAsync(wallet, cancellationToken);

        var metagraph = system.ActorOf(MetagraphActor.Props(chain.Chain, netuid, "local", MetagraphSettings.Default with { Save = false }));
        var graph = (await metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromSeconds(30), cancellationToken)).Snapshot;
        var endpoints = graph.Endpoints.Where(e => e.IsServing).Select(e => e.ToEndpointInfo()).ToArray();

        var dendrite = new Dendrite(system, wallet.Requests, tokenizer: text => BittensorTokenizer.Instance.Encode(text).Select(t => (long)t).ToArray());
        var results = endpoints.Length == 0 ? [] : await dendrite.ForwardText(endpoints, ["The quick brown fox jumped over the lazy dog"]);
        foreach (var r in results)
            Console.WriteLine($"{r.Endpoint.Hotkey} {r.Code} [{string.Join(", ", r.Tensor.Shape)}] in {r.Latency.TotalMilliseconds:F0} ms");
        Console.WriteLine($"{results.Count(r => r.Code == ReturnCode.Success)} of {endpoints.Length} endpoints answered");
        return results.Any(r => r.Code == ReturnCode.Success) ? 0 : 1;
    }
}
