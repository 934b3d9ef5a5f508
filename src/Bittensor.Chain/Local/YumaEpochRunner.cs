using System.Collections.Immutable;
using Bittensor.Chain.Yuma;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Local;

/// <summary>Runs the localnet's epochs with <see cref="YumaEpoch.Run"/> (subtensor's May-2024 epoch, spec 148).</summary>
public sealed class YumaEpochRunner : IEpochRunner
{
    /// <summary>The shared instance (the runner is stateless).</summary>
    public static YumaEpochRunner Instance { get; } = new();

    /// <inheritdoc />
    public EpochResult Run(EpochRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var h = request.Hyperparameters;
        var neurons = request.Neurons.Select(n => new EpochNeuron(n.Uid, n.StakeRao, n.LastUpdate, n.BlockAtRegistration,
            n.Weights.Select(w => new UidValue(w.Uid, w.Value)).ToArray(),
            n.Bonds.Select(b => new UidValue(b.Uid, b.Value)).ToArray())).ToList();
        var input = new EpochInput(request.Block, h.Tempo, request.EmissionRao,
            new YumaHyperparams(h.Kappa, h.BondsMovingAverage, h.ActivityCutoff, h.MaxAllowedValidators, h.ImmunityPeriod,
                h.MinAllowedWeights, h.MaxWeightsLimit),
            neurons, request.Neurons.Select(n => n.ValidatorPermit).ToList());
        var o = YumaEpoch.Run(input);
        return new EpochResult(o.Rank, o.Trust, o.Consensus, o.Incentive, o.Dividends, o.ValidatorTrust, o.ValidatorPermit,
            o.EmissionRao, o.Bonds.Select(row => row.Select(v => new UidWeight(v.Uid, v.Value)).ToImmutableArray()).ToArray(),
            o.PruningScores);
    }
}
