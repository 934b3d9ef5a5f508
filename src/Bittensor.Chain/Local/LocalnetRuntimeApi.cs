using System.Buffers.Binary;
using Bittensor.Core.Crypto;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Local;

/// <summary>
/// subtensor's runtime APIs for metagraph and subnet reads, answered from a <see cref="LocalnetStorage"/> (the state
/// at one block) the way the runtime answers them from its storage. Results are laid out as spec 148 and spec 218 do:
/// SCALE <c>Vec&lt;u8&gt;</c> holding the encoded struct (empty = none), the layouts of
/// <see cref="Substrate.LegacySubtensorTypes"/>; so a client reads our node and a real runtime of that era with one
/// code path. Values the localnet does not model are reported as the runtime reports an unset item: prometheus info
/// zero, <c>rho</c> 0, <c>difficulty</c> 0 (no PoW registration), <c>scaling_law_power</c> 0, no network connections.
/// </summary>
public static class LocalnetRuntimeApi
{
    /// <summary>The methods answered, as <c>state_call</c> names them.</summary>
    public static readonly IReadOnlyList<string> Methods =
    [
        "NeuronInfoRuntimeApi_get_neurons", "NeuronInfoRuntimeApi_get_neuron", "NeuronInfoRuntimeApi_get_neurons_lite",
        "NeuronInfoRuntimeApi_get_neuron_lite", "SubnetInfoRuntimeApi_get_subnet_info", "SubnetInfoRuntimeApi_get_subnets_info",
    ];

    private const string M = "SubtensorModule";

    /// <summary>Answers <paramref name="method"/> with SCALE <paramref name="args"/>; null when the method is not one of <see cref="Methods"/>. Throws <see cref="ScaleException"/> for bad arguments.</summary>
    public static byte[]? Call(LocalnetStorage state, string method, ReadOnlySpan<byte> args)
    {
        ArgumentNullException.ThrowIfNull(state);
        var r = new ScaleReader(args);
        byte[] inner;
        switch (method)
        {
            case "NeuronInfoRuntimeApi_get_neurons":
            case "NeuronInfoRuntimeApi_get_neurons_lite":
            {
                var netuid = r.U16();
                r.EnsureEnd();
                var full = method.EndsWith("_neurons", StringComparison.Ordinal);
                var n = SubnetN(state, netuid);
                var w = new ScaleWriter(64 + n * 200);
                if (n == 0 && !Exists(state, netuid))
                {
                    w.Compact(0UL);
                }
                else
                {
                    w.Compact((ulong)n);
                    for (ushort uid = 0; uid < n; uid++) WriteNeuron(w, state, netuid, uid, full);
                }
                inner = w.ToArray();
                break;
            }
            case "NeuronInfoRuntimeApi_get_neuron":
            case "NeuronInfoRuntimeApi_get_neuron_lite":
            {
                var netuid = r.U16();
                var uid = r.U16();
                r.EnsureEnd();
                if (!Exists(state, netuid) || uid >= SubnetN(state, netuid))
                {
                    inner = [];
                    break;
                }
                var w = new ScaleWriter(256);
                WriteNeuron(w, state, netuid, uid, method.EndsWith("_neuron", StringComparison.Ordinal));
                inner = w.ToArray();
                break;
            }
            case "SubnetInfoRuntimeApi_get_subnet_info":
            {
                var netuid = r.U16();
                r.EnsureEnd();
                if (!Exists(state, netuid))
                {
                    inner = [];
                    break;
                }
                var w = new ScaleWriter(160);
                WriteSubnet(w, state, netuid);
                inner = w.ToArray();
                break;
            }
            case "SubnetInfoRuntimeApi_get_subnets_info":
            {
                r.EnsureEnd();
                var netuids = Netuids(state);
                var w = new ScaleWriter(64 + netuids.Count * 160);
                w.Compact((ulong)netuids.Count);
                foreach (var netuid in netuids)
                {
                    w.U8(1); // Some
                    WriteSubnet(w, state, netuid);
                }
                inner = w.ToArray();
                break;
            }
            default:
                return null;
        }
        return new ScaleWriter(inner.Length + 5).Bytes(inner).ToArray();
    }

    private static byte[] Key(string item, params byte[][] parts)
    {
        var key = new List<byte>(LocalnetStorage.Prefix(M, item));
        foreach (var p in parts) key.AddRange(p);
        return [.. key];
    }

    private static byte[] U16(ushort v) => BitConverter.GetBytes(v);

    private static byte[] Blake2Concat(byte[] encoded) => [.. Blake2b.Hash128(encoded), .. encoded];

    private static bool Exists(LocalnetStorage s, ushort netuid) => s.Get(Key("NetworksAdded", U16(netuid))) is [1];

    private static ushort SubnetN(LocalnetStorage s, ushort netuid) =>
        s.Get(Key("SubnetworkN", U16(netuid))) is { Length: 2 } b ? BinaryPrimitives.ReadUInt16LittleEndian(b) : (ushort)0;

    private static List<ushort> Netuids(LocalnetStorage s)
    {
        var prefix = LocalnetStorage.Prefix(M, "NetworksAdded");
        return s.KeysPaged(prefix, ushort.MaxValue + 1, []).Where(k => s.Get(k) is [1]).Select(k => BinaryPrimitives.ReadUInt16LittleEndian(k.AsSpan(32))).Order().ToList();
    }

    private static ulong U64Of(LocalnetStorage s, string item, params byte[][] parts) =>
        s.Get(Key(item, parts)) is { Length: 8 } b ? BinaryPrimitives.ReadUInt64LittleEndian(b) : 0;

    private static ushort U16Of(LocalnetStorage s, string item, params byte[][] parts) =>
        s.Get(Key(item, parts)) is { Length: 2 } b ? BinaryPrimitives.ReadUInt16LittleEndian(b) : (ushort)0;

    /// <summary>Element <paramref name="index"/> of a per-uid vector item (<c>Vec&lt;u16|u64|bool&gt;</c>), or 0.</summary>
    private static ulong VecAt(LocalnetStorage s, string item, ushort netuid, int index, int width)
    {
        if (s.Get(Key(item, U16(netuid))) is not { } raw) return 0;
        var r = new ScaleReader(raw);
        var n = r.Length(width);
        if (index >= n) return 0;
        var at = raw.AsSpan(r.Position + index * width, width);
        return width switch { 1 => at[0], 2 => BinaryPrimitives.ReadUInt16LittleEndian(at), _ => BinaryPrimitives.ReadUInt64LittleEndian(at) };
    }

    private static void WriteNeuron(ScaleWriter w, LocalnetStorage s, ushort netuid, ushort uid, bool full)
    {
        var hotkey = s.Get(Key("Keys", U16(netuid), U16(uid))) ?? new byte[32];
        var coldkey = s.Get(Key("Owner", Blake2Concat(hotkey))) ?? new byte[32];
        w.Raw(hotkey).Raw(coldkey).Compact(uid).Compact(netuid);
        w.Bool(VecAt(s, "Active", netuid, uid, 1) != 0);
        w.Raw(s.Get(Key("Axons", U16(netuid), Blake2Concat(hotkey))) ?? new byte[Bittensor.Core.Domain.AxonInfo.EncodedSize]);
        w.Raw(new byte[8 + 4 + 16 + 2 + 1]); // prometheus_info: never served on the localnet
        // stake: every (coldkey, amount) staked on this hotkey (Stake = Blake2_128Concat(hot), Identity(cold)).
        var stakePrefix = Key("Stake", Blake2Concat(hotkey));
        var stakes = s.KeysPaged(stakePrefix, int.MaxValue, []);
        w.Compact((ulong)stakes.Count);
        foreach (var k in stakes)
        {
            w.Raw(k.AsSpan(k.Length - 32));
            w.Compact(BinaryPrimitives.ReadUInt64LittleEndian(s.Get(k)!));
        }
        w.Compact(VecAt(s, "Rank", netuid, uid, 2));
        w.Compact(VecAt(s, "Emission", netuid, uid, 8));
        w.Compact(VecAt(s, "Incentive", netuid, uid, 2));
        w.Compact(VecAt(s, "Consensus", netuid, uid, 2));
        w.Compact(VecAt(s, "Trust", netuid, uid, 2));
        w.Compact(VecAt(s, "ValidatorTrust", netuid, uid, 2));
        w.Compact(VecAt(s, "Dividends", netuid, uid, 2));
        w.Compact(VecAt(s, "LastUpdate", netuid, uid, 8));
        w.Bool(VecAt(s, "ValidatorPermit", netuid, uid, 1) != 0);
        if (full)
        {
            foreach (var item in new[] { "Weights", "Bonds" })
            {
                var raw = s.Get(Key(item, U16(netuid), U16(uid)));
                if (raw is null)
                {
                    w.Compact(0UL);
                    continue;
                }
                var r = new ScaleReader(raw);
                var n = r.Length(4);
                w.Compact((ulong)n);
                for (var i = 0; i < n; i++) w.Compact(r.U16()).Compact(r.U16());
            }
        }
        w.Compact(VecAt(s, "PruningScores", netuid, uid, 2));
    }

    private static void WriteSubnet(ScaleWriter w, LocalnetStorage s, ushort netuid)
    {
        var nid = U16(netuid);
        var tempo = U16Of(s, "Tempo", nid);
        var number = s.Number;
        w.Compact(netuid).Compact(0UL) // rho: not modelled
            .Compact(U16Of(s, "Kappa", nid)).Compact(0UL) // difficulty: no PoW registration
            .Compact(U16Of(s, "ImmunityPeriod", nid)).Compact(U16Of(s, "MaxAllowedValidators", nid))
            .Compact(U16Of(s, "MinAllowedWeights", nid)).Compact(U16Of(s, "MaxWeightsLimit", nid))
            .Compact(0UL) // scaling_law_power: not modelled
            .Compact(SubnetN(s, netuid)).Compact(U16Of(s, "MaxAllowedUids", nid))
            .Compact(tempo == 0 ? 0 : (number + netuid + 1) % ((ulong)tempo + 1)) // blocks since the last epoch (block_step.rs rule)
            .Compact(tempo).Compact(0UL) // network_modality
            .Compact(0UL) // network_connect: none
            .Compact(U64Of(s, "EmissionValues", nid)).Compact(U64Of(s, "Burn", nid));
        w.Raw(s.Get(Key("SubnetOwner", nid)) ?? new byte[32]);
    }
}
