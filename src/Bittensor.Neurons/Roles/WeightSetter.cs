using Akka.Actor;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Metagraph;
using Bittensor.Core.Domain;
using Bittensor.Core.Weights;
using Bittensor.Neurons.Pipelines;

namespace Bittensor.Neurons.Roles;

/// <summary>Published on the EventStream each time the validator tried to set weights.</summary>
/// <param name="Netuid">Subnet.</param>
/// <param name="Block">Block at which the attempt started.</param>
/// <param name="Uids">Uids sent.</param>
/// <param name="Weights">u16 weights sent (max-upscaled as the chain stores them).</param>
/// <param name="Success">True when the chain applied them.</param>
/// <param name="Outcome">The chain's answer, or why nothing was sent.</param>
public sealed record WeightsAttempt(ushort Netuid, ulong Block, IReadOnlyList<ushort> Uids, IReadOnlyList<ushort> Weights, bool Success, string Outcome);

/// <summary>
/// Sets the validator's weights once per tempo, <c>lead</c> blocks before the subnet's epoch, from the pipeline's scores
/// (scores at or below <see cref="MinScore"/> are left out: a dead or useless peer earns nothing), then the subnet's limits are
/// applied as the SDK does (<see cref="WeightUtils.ProcessWeightsForNetuid"/>: min allowed weights, max weight limit)
/// and the result is max-upscaled to u16 (<see cref="WeightUtils.ConvertWeightsAndUidsForEmit"/>). With no positive
/// score yet nothing is sent: uniform weights would pay a useless peer as much as a useful one.
/// </summary>
internal sealed class WeightSetter : ReceiveActor
{
    private readonly IActorRef _chain;
    private readonly IActorRef _metagraph;
    private readonly ushort _netuid;
    private readonly NeuronKeys _keys;
    private readonly ScoreBoard _scores;
    private readonly SubnetHyperparameters _hyper;
    private readonly int _lead;
    private readonly double _exponent;
    private bool _busy;

    public WeightSetter(IActorRef chain, IActorRef metagraph, ushort netuid, NeuronKeys keys, ScoreBoard scores, SubnetHyperparameters hyper, int lead, double exponent)
    {
        _chain = chain;
        _exponent = exponent;
        _metagraph = metagraph;
        _netuid = netuid;
        _keys = keys;
        _scores = scores;
        _hyper = hyper;
        _lead = Math.Clamp(lead, 0, hyper.Tempo);
        Receive<NewBlock>(OnBlock);
        Receive<WeightsAttempt>(a =>
        {
            _busy = false;
            Context.System.EventStream.Publish(a);
        });
    }

    public static Props Props(IActorRef chain, IActorRef metagraph, ushort netuid, NeuronKeys keys, ScoreBoard scores, SubnetHyperparameters hyper, int lead,
        double exponent) =>
        Akka.Actor.Props.Create(() => new WeightSetter(chain, metagraph, netuid, keys, scores, hyper, lead, exponent));

    /// <summary>
    /// The weight of each score before the subnet's limits: 0 at or below <see cref="MinScore"/>, else
    /// <c>score^exponent</c> (<c>bittensor.validator.weight_exponent</c>). An exponent below 1 keeps the order and
    /// compresses the spread between useful peers, so a redundant useful peer is not crowded out.
    /// </summary>
    public static double Weigh(double score, double exponent) => score > MinScore && double.IsFinite(score) ? Math.Pow(score, exponent) : 0;

    /// <summary>Blocks until the subnet's next epoch, subtensor's <c>blocks_until_next_epoch</c>.</summary>
    public static ulong BlocksUntilEpoch(ushort netuid, ushort tempo, ulong block) =>
        tempo == 0 ? ulong.MaxValue : tempo - ((block + netuid + 1) % ((ulong)tempo + 1));

    protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(NewBlock));

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);

    private void OnBlock(NewBlock block)
    {
        if (_busy || BlocksUntilEpoch(_netuid, _hyper.Tempo, block.Number) != (ulong)_lead) return;
        _busy = true;
        SetAsync(block.Number).PipeTo(Self, failure: e => new WeightsAttempt(_netuid, block.Number, [], [], false, $"{e.GetType().Name}: {e.Message}"));
    }

    /// <summary>
    /// Least score (held-out gain, nats per token) a peer needs to be weighted. A useless peer's gain is ≤ 0 in expectation
    /// but its moving average wanders around 0 by about 1e-4 at the demo's batch sizes; a useful one gains 1e-2 and more
    /// (docs/validator.md). Below this a peer is not distinguishable from one that says nothing.
    /// </summary>
    public const double MinScore = 1e-3;

    private async Task<WeightsAttempt> SetAsync(ulong block)
    {
        var snapshot = await _metagraph.Ask<MetagraphSnapshot>(GetMetagraph.Instance, TimeSpan.FromSeconds(10));
        var n = snapshot.N;
        var scored = _scores.Snapshot()
            .Where(s => s.Uid < n && string.Equals(snapshot.Hotkeys[s.Uid], s.Hotkey, StringComparison.Ordinal) && s.Score > MinScore)
            .ToArray();
        if (scored.Length == 0) return new WeightsAttempt(_netuid, block, [], [], false, $"no peer has a score above {MinScore} yet");
        var (uids, weights) = WeightUtils.ProcessWeightsForNetuid(
            scored.Select(s => (long)s.Uid).ToArray(), scored.Select(s => Weigh(s.Score, _exponent)).ToArray(), n, _hyper.MinAllowedWeights, _hyper.MaxWeightsLimit);
        var (u16Uids, u16Weights) = WeightUtils.ConvertWeightsAndUidsForEmit(uids, weights);
        var call = new SetWeights(_netuid, [.. u16Uids], [.. u16Weights], _hyper.WeightsVersionKey);
        var result = await ChainOps.SubmitAsync(_chain, call, _keys.Hotkey, CancellationToken.None);
        return new WeightsAttempt(_netuid, block, u16Uids, u16Weights, result.IsSuccess, result.Result.ToString() ?? "");
    }
}
