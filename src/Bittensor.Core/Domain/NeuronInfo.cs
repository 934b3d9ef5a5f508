using System.Collections.Immutable;

namespace Bittensor.Core.Domain;

/// <summary>One sparse matrix entry as the chain stores weights and bonds: a target uid and a u16 value.</summary>
public readonly record struct UidWeight(ushort Uid, ushort Value);

/// <summary>
/// A neuron (uid) of one subnet as the chain reports it (subtensor <c>NeuronInfo</c>). Fractions (rank, trust,
/// consensus, incentive, dividends, validator trust, pruning score) are u16 values where 65535 = 1.0, as stored
/// on chain; use <see cref="Fraction"/> to convert. Weights and bonds are sparse rows.
/// </summary>
public sealed record NeuronInfo(
    AccountId Hotkey,
    AccountId Coldkey,
    ushort Uid,
    ushort Netuid,
    Balance Stake,
    ushort Rank,
    ushort Trust,
    ushort Consensus,
    ushort Incentive,
    ushort Dividends,
    Balance Emission,
    ushort ValidatorTrust,
    bool ValidatorPermit,
    bool Active,
    ulong LastUpdate,
    ulong BlockAtRegistration,
    ushort PruningScore,
    AxonInfo Axon,
    ImmutableArray<UidWeight> Weights,
    ImmutableArray<UidWeight> Bonds)
{
    /// <summary>A chain u16 fraction as a double in [0, 1].</summary>
    public static double Fraction(ushort value) => value / 65535.0;
}
