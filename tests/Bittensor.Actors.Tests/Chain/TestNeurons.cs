using System.Collections.Immutable;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Tests.Chain;

/// <summary>Hand-made neurons for metagraph tests.</summary>
internal static class TestNeurons
{
    public static AccountId Key(byte b) => new(Enumerable.Repeat(b, 32).ToArray());

    public static NeuronInfo Make(ushort uid, ulong stakeRao = 0, ushort incentive = 0, ushort dividends = 0,
        ImmutableArray<UidWeight> weights = default) => new(
        Key((byte)(uid + 1)), Key((byte)(uid + 101)), uid, 1, new Balance(stakeRao),
        Rank: (ushort)(uid * 3), Trust: (ushort)(uid * 5), Consensus: (ushort)(uid * 7), Incentive: incentive, Dividends: dividends,
        Emission: new Balance(uid * 1000UL), ValidatorTrust: (ushort)(uid * 11), ValidatorPermit: uid % 2 == 0, Active: uid % 3 != 0,
        LastUpdate: 100UL + uid, BlockAtRegistration: uid, PruningScore: 0,
        Axon: uid == 0 ? AxonInfo.Empty : new AxonInfo(50, 1_002_003, 0x0A000000u + uid, (ushort)(8090 + uid), 4, 4),
        Weights: weights.IsDefault ? [] : weights, Bonds: [new UidWeight(0, (ushort)(uid + 1))]);

    public static IReadOnlyList<NeuronInfo> Many(int n) => Enumerable.Range(0, n).Select(i => Make((ushort)i, stakeRao: (ulong)i * 1_000_000_000,
        incentive: (ushort)(i * 13), weights: [new UidWeight(0, 65535), new UidWeight((ushort)i, 100)])).ToArray();
}
