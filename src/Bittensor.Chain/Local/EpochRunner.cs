using System.Collections.Immutable;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Local;

/// <summary>
/// Runs one Yuma epoch for a subnet as a pure function. The localnet calls it when a subnet's epoch is due;
/// the production implementation adapts <c>YumaEpoch.Run</c>.
/// </summary>
public interface IEpochRunner
{
    /// <summary>Computes the epoch outputs for <paramref name="request"/>; must not mutate it.</summary>
    EpochResult Run(EpochRequest request);
}

/// <summary>One neuron's inputs to an epoch.</summary>
/// <param name="Uid">Neuron uid (index).</param>
/// <param name="StakeRao">Total stake on the neuron's hotkey.</param>
/// <param name="LastUpdate">Block of its last weight update (registration block until it sets weights).</param>
/// <param name="BlockAtRegistration">Block it registered at.</param>
/// <param name="Weights">Sparse weight row as stored (max-upscaled u16).</param>
/// <param name="Bonds">Sparse bond row as stored (u16).</param>
/// <param name="ValidatorPermit">Permit from the previous epoch.</param>
public sealed record EpochNeuronInput(
    ushort Uid,
    ulong StakeRao,
    ulong LastUpdate,
    ulong BlockAtRegistration,
    ImmutableArray<UidWeight> Weights,
    ImmutableArray<UidWeight> Bonds,
    bool ValidatorPermit);

/// <summary>Inputs to one epoch of one subnet.</summary>
/// <param name="Netuid">Subnet.</param>
/// <param name="Block">Current block.</param>
/// <param name="EmissionRao">Emission to distribute this epoch.</param>
/// <param name="Hyperparameters">Subnet parameters (kappa, bonds moving average, activity cutoff, …).</param>
/// <param name="Neurons">Neurons ordered by uid (index = uid).</param>
public sealed record EpochRequest(
    ushort Netuid,
    ulong Block,
    ulong EmissionRao,
    SubnetHyperparameters Hyperparameters,
    IReadOnlyList<EpochNeuronInput> Neurons);

/// <summary>
/// Outputs of one epoch, arrays indexed by uid; fractions are u16 (65535 = 1.0) as the chain stores them.
/// <see cref="PruningScores"/> is optional; when absent the localnet max-upscales the emission itself.
/// </summary>
public sealed record EpochResult(
    ushort[] Rank,
    ushort[] Trust,
    ushort[] Consensus,
    ushort[] Incentive,
    ushort[] Dividends,
    ushort[] ValidatorTrust,
    bool[] ValidatorPermit,
    ulong[] EmissionRao,
    ImmutableArray<UidWeight>[] Bonds,
    ushort[]? PruningScores = null)
{
    /// <summary>Throws <see cref="InvalidOperationException"/> unless every array has <paramref name="n"/> entries.</summary>
    public void Validate(int n)
    {
        if (Rank.Length != n || Trust.Length != n || Consensus.Length != n || Incentive.Length != n || Dividends.Length != n
            || ValidatorTrust.Length != n || ValidatorPermit.Length != n || EmissionRao.Length != n || Bonds.Length != n
            || (PruningScores is not null && PruningScores.Length != n))
            throw new InvalidOperationException($"epoch result does not have {n} entries per output");
    }
}
