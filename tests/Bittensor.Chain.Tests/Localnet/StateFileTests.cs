using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Bittensor.Chain.Tests.Localnet;

public sealed class StateFileTests
{
    private static AccountId Acct(byte b)
    {
        var bytes = new byte[32];
        bytes[0] = b;
        bytes[31] = (byte)(b * 7);
        return new AccountId(bytes);
    }

    /// <summary>A state touching every field the snapshot holds.</summary>
    internal static LocalnetState Sample()
    {
        var s = new LocalnetState
        {
            Name = "sample",
            GenesisHash = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(),
            Block = 1234,
            BlockHash = Enumerable.Range(0, 32).Select(i => (byte)(255 - i)).ToArray(),
            TimestampUnixMs = 1_700_000_000_000,
            TotalIssuance = 42_000_000_000,
            NetworkLastLockCost = 1_000_000_000_000,
            NetworkLastLockBlock = 17,
        };
        s.Free[Acct(1)] = 5;
        s.Free[Acct(2)] = 600;
        s.Nonces[Acct(1)] = 3;
        s.Owner[Acct(10)] = Acct(1);
        s.Stake[(Acct(10), Acct(1))] = 777;
        s.StakesThisInterval[(Acct(1), Acct(10))] = (1, 1200);
        var net = new SubnetState
        {
            Netuid = 1, Owner = Acct(2), RegisteredAt = 17, LockedRao = 1_000_000_000_000, PendingEmission = 99,
            LastAdjustmentBlock = 1080, RegistrationsThisBlock = 1, RegistrationsThisInterval = 2,
            Hyper = SubnetHyperparameters.Default with { Tempo = 9, WeightsVersionKey = 3 },
        };
        net.Neurons.Add(new NeuronSlot
        {
            Hotkey = Acct(10), Rank = 1, Trust = 2, Consensus = 3, Incentive = 4, Dividends = 5, ValidatorTrust = 6, PruningScore = 7,
            Emission = 8, LastUpdate = 9, BlockAtRegistration = 10, ValidatorPermit = true, Active = false,
            Weights = [new UidWeight(0, 65535)], Bonds = [new UidWeight(0, 12)],
        });
        net.Neurons.Add(new NeuronSlot { Hotkey = Acct(11) });
        net.Uids[Acct(10)] = 0;
        net.Uids[Acct(11)] = 1;
        net.Axons[Acct(10)] = new AxonInfo(5, 1, 0x0a000001, 8091, 4, 4);
        net.LoadedEmission.Add((Acct(10), 55));
        s.Subnets[1] = net;
        return s;
    }

    [Fact]
    public void A_snapshot_round_trips_byte_for_byte()
    {
        var bytes = LocalnetStore.Encode(Sample());
        var back = LocalnetStore.Decode(bytes);
        Assert.Equal(bytes, LocalnetStore.Encode(back));
        Assert.Equal(1234UL, back.Block);
        Assert.Equal([new UidWeight(0, 65535)], back.Subnets[1].Neurons[0].Weights.ToArray());
        Assert.Equal((ushort)1, back.Subnets[1].Uids[Acct(11)]);
    }

    [Property(MaxTest = 200)]
    public Property Every_truncation_of_a_snapshot_is_a_LocalnetException()
    {
        var bytes = LocalnetStore.Encode(Sample());
        return Prop.ForAll(Gen.Choose(0, bytes.Length - 1).ToArbitrary(), cut =>
        {
            try
            {
                LocalnetStore.Decode(bytes.AsSpan(0, cut));
                return false;
            }
            catch (LocalnetException)
            {
                return true;
            }
        });
    }

    [Property(MaxTest = 200)]
    public Property Any_flipped_byte_is_detected()
    {
        var bytes = LocalnetStore.Encode(Sample());
        return Prop.ForAll(Gen.Choose(0, bytes.Length - 1).ToArbitrary(), Gen.Choose(1, 255).ToArbitrary(), (at, mask) =>
        {
            var copy = bytes.ToArray();
            copy[at] ^= (byte)mask;
            try
            {
                LocalnetStore.Decode(copy);
                return false;
            }
            catch (LocalnetException)
            {
                return true;
            }
        });
    }

    [Fact]
    public void A_payload_with_a_valid_checksum_but_hostile_lengths_is_rejected_without_allocating()
    {
        // Re-checksum a payload whose account count claims 2^30 entries.
        var payload = new Bittensor.Core.Scale.ScaleWriter();
        payload.String("x").Raw(new byte[32]).U64(1).Raw(new byte[32]).U64(0).U64(0).U64(0).U64(0).Compact(1UL << 30);
        var body = payload.ToArray();
        var file = new byte[16 + body.Length + 32];
        "BTLN"u8.CopyTo(file);
        BitConverter.TryWriteBytes(file.AsSpan(4), 1u);
        BitConverter.TryWriteBytes(file.AsSpan(8), (ulong)body.Length);
        body.CopyTo(file.AsSpan(16));
        Bittensor.Core.Crypto.Blake2b.Hash(file.AsSpan(0, 16 + body.Length), file.AsSpan(16 + body.Length));
        var e = Assert.Throws<LocalnetException>(() => LocalnetStore.Decode(file));
        Assert.Contains("exceeds", e.Message, StringComparison.Ordinal);
    }
}
