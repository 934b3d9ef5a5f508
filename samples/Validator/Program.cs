using System.Collections.Immutable;
using Akka.Actor;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Metagraph;
using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using Bittensor.Core.Weights;
using Bittensor.Models.Tokenization;
using Bittensor.Neurons.Roles;
using Bittensor.Protocol.Wire;

namespace Bittensor.Samples.Validator;

/// <summary>
/// The seed's validator snippet (§3.3) in C#: sync the metagraph, query every endpoint, score the answers and set the
/// weights on chain:
/// <code>
/// graph = bittensor.metagraph().sync()
/// responses, codes = dendrite.forward_text(endpoints=graph.endpoints, inputs=text)
/// subtensor.set_weights(uids=graph.uids, weights=scores, wallet=wallet)
/// </code>
/// The score here is simply "answered": the full validator (router, loss, gradients) is <see cref="ValidatorNeuron"/>.
/// </summary>
public static class ValidatorSample
{
    /// <summary>Command-line entry: <c>--wallet.path --wallet.name --localnet.path</c>.</summary>
    public static Task<int> Main(string[] args) => RunAsync(args, null, CancellationToken.None);

    /// <summary>Registers, stakes, queries and sets weights once; returns 0 when the chain accepted the weights.</summary>
    public static async Task<int> RunAsync(string[] args, Localnet? shared, CancellationToken cancellationToken)
    {
        var options = SampleOptions.Parse(args, "sample-validator") with { Shared = shared };
        using var system = SampleHost.CreateSystem("validator");
        await using var chain = SampleHost.Chain(system, options);
        var wallet = await SampleHost.WalletAsync(options, chain, cancellationToken);
        var netuid = await chain.EnsureSubnetAsync(wallet, cancellationToken);
        var uid = await ChainOps.EnsureRegisteredAsync(chain.Chain, netuid, wallet, cancellationToken);

        var metagraph = system.ActorOf(MetagraphActor.Props(chain.Chain, netuid, "local", MetagraphSettings.Default with { Save = false }));
        var graph = (await metagraph.Ask<MetagraphUpdated>(SyncMetagraph.Instance, TimeSpan.FromSeconds(30), cancellationToken)).Snapshot;
        var peers = graph.Endpoints.Where(e => e.IsServing && e.Uid != uid).ToArray();
        var dendrite = new Dendrite(system, wallet.Requests, tokenizer: text => BittensorTokenizer.Instance.Encode(text).Select(t => (long)t).ToArray());
        var results = peers.Length == 0 ? [] : await dendrite.ForwardText(
            peers.Select(e => e.ToEndpointInfo()).ToArray(), ["The quick brown fox jumped over the lazy dog"]);

        // Score: 1 for an answer, 0 otherwise; then the subnet's limits and the u16 form the chain stores.
        var uids = peers.Select(p => (long)p.Uid).ToArray();
        var scores = results.Select(r => r.Code == ReturnCode.Success ? 1.0 : 0.0).ToArray();
        if (scores.All(s => s == 0))
        {
            Console.WriteLine("no peer answered; no weights set");
            return 1;
        }
        var hyper = await ChainOps.HyperparametersAsync(chain.Chain, netuid, cancellationToken);
        var (kept, weights) = WeightUtils.ProcessWeightsForNetuid(uids, scores, graph.N, hyper.MinAllowedWeights, hyper.MaxWeightsLimit);
        var (u16Uids, u16Weights) = WeightUtils.ConvertWeightsAndUidsForEmit(kept, weights);
        // A validator needs a permit (granted at an epoch) before it may weight others; self-weight is always allowed.
        // Weights are rate limited per neuron from its registration on: wait out the limit (blocks, not wall time).
        var me = await chain.Localnet.GetNeuronAsync(netuid, uid, cancellationToken);
        var allowedAt = (me?.LastUpdate ?? 0) + hyper.WeightsRateLimit;
        if (chain.Localnet.BlockNumber < allowedAt)
        {
            Console.WriteLine($"waiting for block {allowedAt} (weights rate limit)");
            await foreach (var block in chain.Localnet.SubscribeBlocksAsync(cancellationToken))
                if (block.Number >= allowedAt) break;
        }
        var call = new SetWeights(netuid, [.. u16Uids], [.. u16Weights], hyper.WeightsVersionKey);
        var result = await ChainOps.SubmitAsync(chain.Chain, call, wallet.Hotkey, cancellationToken);
        Console.WriteLine($"set_weights on {u16Uids.Length} uid(s): {result.Result}");
        if (!result.IsSuccess)
        {
            var self = await ChainOps.SubmitAsync(chain.Chain, new SetWeights(netuid, [uid], [ushort.MaxValue], hyper.WeightsVersionKey), wallet.Hotkey, cancellationToken);
            Console.WriteLine($"without a permit yet, set a self-weight instead: {self.Result}");
            return self.IsSuccess ? 0 : 1;
        }
        return 0;
    }
}
