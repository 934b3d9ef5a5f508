using System.Collections.Immutable;
using System.Numerics;
using Bittensor.Chain.Substrate;
using Bittensor.Core.Scale;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Bittensor.Chain.Tests.Substrate;

/// <summary>Round trips of generated values, and truncated / corrupted / hostile input that must fail cleanly.</summary>
public sealed class HostileScaleTests
{
    /// <summary>A random value of a registry type, or null when the type has no finite value at this depth.</summary>
    private static ScaleValue? Generate(PortableRegistry types, uint id, Random rng, int depth)
    {
        if (depth > 12) return null;
        switch (types[id].Def)
        {
            case CompositeDef c:
            {
                var values = new List<ScaleValue>();
                foreach (var f in c.Fields)
                {
                    var v = Generate(types, f.Type, rng, depth + 1);
                    if (v is null) return null;
                    values.Add(v);
                }
                return new CompositeValue([.. c.Fields.Select(f => f.Name)], [.. values]);
            }
            case VariantDef vd:
            {
                foreach (var variant in vd.Variants.OrderBy(_ => rng.Next()))
                {
                    var values = new List<ScaleValue>();
                    foreach (var f in variant.Fields)
                    {
                        var v = Generate(types, f.Type, rng, depth + 1);
                        if (v is null) break;
                        values.Add(v);
                    }
                    if (values.Count == variant.Fields.Length)
                        return new VariantValue(variant.Name, variant.Index, new CompositeValue([.. variant.Fields.Select(f => f.Name)], [.. values]));
                }
                return null;
            }
            case SequenceDef s:
            {
                if (types[s.Element].Def is PrimitiveDef { Kind: PrimitiveKind.U8 })
                {
                    var b = new byte[rng.Next(0, 70)];
                    rng.NextBytes(b);
                    return ScaleValue.Bytes(b);
                }
                var n = depth > 6 ? 0 : rng.Next(0, 4);
                var items = new List<ScaleValue>();
                for (var i = 0; i < n; i++)
                {
                    var v = Generate(types, s.Element, rng, depth + 1);
                    if (v is null) break;
                    items.Add(v);
                }
                return new SequenceValue([.. items]);
            }
            case ArrayDef a:
            {
                if (types[a.Element].Def is PrimitiveDef { Kind: PrimitiveKind.U8 })
                {
                    var b = new byte[a.Length];
                    rng.NextBytes(b);
                    return ScaleValue.Bytes(b);
                }
                if (a.Length > 64) return null;
                var items = new List<ScaleValue>();
                for (var i = 0; i < a.Length; i++)
                {
                    var v = Generate(types, a.Element, rng, depth + 1);
                    if (v is null) return null;
                    items.Add(v);
                }
                return new SequenceValue([.. items]);
            }
            case TupleDef t:
            {
                var values = new List<ScaleValue>();
                foreach (var e in t.Elements)
                {
                    var v = Generate(types, e, rng, depth + 1);
                    if (v is null) return null;
                    values.Add(v);
                }
                return new CompositeValue([.. t.Elements.Select(_ => (string?)null)], [.. values]);
            }
            case PrimitiveDef p:
                return p.Kind switch
                {
                    PrimitiveKind.Bool => ScaleValue.Bool(rng.Next(2) == 1),
                    PrimitiveKind.Char => ScaleValue.Char((uint)rng.Next(0x20, 0xd7ff)),
                    PrimitiveKind.Str => ScaleValue.Text(new string('x', rng.Next(0, 10)) + "é"),
                    _ => ScaleValue.Int(RandomInt(p.Kind, rng)),
                };
            case CompactDef c:
            {
                var inner = c.Inner;
                while (types[inner].Def is CompositeDef { Fields.Length: 1 } w) inner = w.Fields[0].Type;
                if (types[inner].Def is not PrimitiveDef p) return ScaleValue.Unit;
                var max = p.Kind switch { PrimitiveKind.U8 => 8, PrimitiveKind.U16 => 16, PrimitiveKind.U32 => 32, PrimitiveKind.U64 => 64, _ => 128 };
                return ScaleValue.Int(RandomUnsigned(Math.Min(max, rng.Next(0, 5) switch { 0 => 6, 1 => 14, 2 => 30, 3 => 64, _ => 128 }), rng));
            }
            case BitSequenceDef:
                return ScaleValue.BitSequence(Enumerable.Range(0, rng.Next(0, 40)).Select(_ => rng.Next(2) == 1));
            default:
                return null;
        }
    }

    private static BigInteger RandomUnsigned(int bits, Random rng)
    {
        var b = new byte[(bits + 7) / 8 + 1];
        rng.NextBytes(b);
        b[^1] = 0;
        return new BigInteger(b) % (BigInteger.One << bits);
    }

    private static BigInteger RandomInt(PrimitiveKind kind, Random rng)
    {
        var bits = kind switch
        {
            PrimitiveKind.U8 or PrimitiveKind.I8 => 8,
            PrimitiveKind.U16 or PrimitiveKind.I16 => 16,
            PrimitiveKind.U32 or PrimitiveKind.I32 => 32,
            PrimitiveKind.U64 or PrimitiveKind.I64 => 64,
            PrimitiveKind.U128 or PrimitiveKind.I128 => 128,
            _ => 256,
        };
        var v = RandomUnsigned(bits, rng);
        return kind >= PrimitiveKind.I8 ? v - (BigInteger.One << (bits - 1)) : v;
    }

    [Property(MaxTest = 300)]
    public void Decode_of_encode_is_the_identity_for_generated_values_of_registry_types(int seed)
    {
        var types = (seed & 1) == 0 ? Fixtures.V14.Types : Fixtures.V15.Types;
        var rng = new Random(seed);
        for (var k = 0; k < 10; k++)
        {
            var id = (uint)rng.Next(types.Count);
            var value = Generate(types, id, rng, 0);
            if (value is null) continue;
            var bytes = types.Encode(id, value);
            var back = types.Decode(id, bytes);
            Assert.Equal(value, back);
            Assert.Equal(bytes, types.Encode(id, back));
            Assert.True(bytes.Length >= types.MinEncodedSize(id), $"type {id}: {bytes.Length} < min {types.MinEncodedSize(id)}");
            if (bytes.Length > 0)
            {
                // Every strict prefix is a clean error (or, rarely, a shorter valid value that leaves nothing over).
                var cut = rng.Next(bytes.Length);
                try
                {
                    types.Decode(id, bytes.AsSpan(0, cut));
                }
                catch (ScaleException)
                {
                }
            }
        }
    }

    [Property(MaxTest = 200)]
    public void Random_bytes_decode_as_any_type_or_fail_with_a_scale_error(int seed)
    {
        var types = Fixtures.V14.Types;
        var rng = new Random(seed);
        for (var k = 0; k < 20; k++)
        {
            var id = (uint)rng.Next(types.Count);
            var bytes = new byte[rng.Next(0, 300)];
            rng.NextBytes(bytes);
            try
            {
                var r = new ScaleReader(bytes);
                types.Decode(id, ref r);
            }
            catch (ScaleException)
            {
            }
        }
    }

    [Property(MaxTest = 40)]
    public void Corrupted_or_truncated_metadata_is_refused_with_a_clear_error(int seed)
    {
        var rng = new Random(seed);
        var bytes = (byte[])Fixtures.MetadataV14Bytes.Clone();
        if ((seed & 1) == 0)
        {
            bytes = bytes[..rng.Next(bytes.Length)];
        }
        else
        {
            for (var i = 0; i < 1 + rng.Next(8); i++) bytes[5 + rng.Next(bytes.Length - 5)] = (byte)rng.Next(256);
        }
        try
        {
            RuntimeMetadata.Decode(bytes);
        }
        catch (Exception e) when (e is ScaleException or MetadataException)
        {
        }
    }

    [Fact]
    public void Every_truncation_point_of_a_type_table_fails_cleanly()
    {
        var bytes = Fixtures.MetadataV14Bytes;
        for (var cut = 0; cut < bytes.Length; cut += 997)
        {
            var e = Record.Exception(() => RuntimeMetadata.Decode(bytes.AsSpan(0, cut)));
            Assert.True(e is ScaleException or MetadataException, $"cut {cut}: {e?.GetType().Name ?? "no error"}");
        }
    }

    private static PortableRegistry Hostile(out uint unitVec, out uint selfRef, out uint bigArray, out uint compactU16, out uint option)
    {
        var b = new RegistryBuilder();
        var unit = b.Tuple();
        unitVec = b.Sequence(unit);
        var u64 = b.Primitive(PrimitiveKind.U64);
        bigArray = b.Array(u64, uint.MaxValue);
        compactU16 = b.Compact(b.Primitive(PrimitiveKind.U16));
        option = b.Option(b.Primitive(PrimitiveKind.Bool));
        // A linked list: enum { Nil, Cons(Box<Self>) } — its id is the next one.
        var next = (uint)b.Build().Count;
        selfRef = b.Variant("List", ("Nil", 0, []), ("Cons", 1, [(null, next)]));
        return b.Build(new ScaleLimits(MaxDepth: 50, MaxValues: 10_000));
    }

    [Fact]
    public void Hostile_lengths_depths_and_indices_give_clear_errors_without_large_allocations()
    {
        var types = Hostile(out var unitVec, out var list, out var bigArray, out var compactU16, out var option);
        // Vec<()> claiming 2^30 elements in 5 bytes: zero-sized elements are bounded by the value budget.
        var huge = new ScaleWriter().Compact(1UL << 30).ToArray();
        Assert.Contains("limit", Assert.Throws<ScaleException>(() => types.Decode(unitVec, huge)).Message, StringComparison.Ordinal);
        Assert.Equal(3, types.Decode(unitVec, new ScaleWriter().Compact(3UL).ToArray()).AsItems().Length);
        // A recursive type nested deeper than the limit.
        var deep = Enumerable.Repeat((byte)1, 10_000).Append((byte)0).ToArray();
        Assert.Contains("deeper", Assert.Throws<ScaleException>(() => types.Decode(list, deep)).Message, StringComparison.Ordinal);
        Assert.NotNull(types.Decode(list, [1, 1, 0]));
        // [u64; 2^32-1] with 8 bytes of input: refused before allocating.
        Assert.Throws<ScaleException>(() => types.Decode(bigArray, new byte[8]));
        // Compact<u16> holding 70000.
        Assert.Contains("u16", Assert.Throws<ScaleException>(() => types.Decode(compactU16, new ScaleWriter().Compact(70_000UL).ToArray())).Message, StringComparison.OrdinalIgnoreCase);
        // An undefined variant index, a bad bool, trailing bytes.
        Assert.Contains("variant index 2", Assert.Throws<ScaleException>(() => types.Decode(option, [2])).Message, StringComparison.Ordinal);
        Assert.Throws<ScaleException>(() => types.Decode(option, [1, 7]));
        Assert.Throws<ScaleException>(() => types.Decode(option, [0, 0]));
        Assert.Null(types.Decode(option, [0]).AsOption());
        Assert.True(types.Decode(option, [1, 1]).AsOption()!.AsBool());
        // Sequence length beyond the remaining bytes for sized elements.
        var v14 = Fixtures.V14.Types;
        var accounts = Fixtures.V14.Pallet("SubtensorModule").FindStorage("StakingHotkeys")!.ValueType;
        Assert.Contains("exceeds", Assert.Throws<ScaleException>(() => v14.Decode(accounts, new ScaleWriter().Compact(1_000_000UL).Raw(new byte[64]).ToArray())).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_registry_with_dangling_or_out_of_order_ids_is_refused()
    {
        Assert.Throws<MetadataException>(() => new PortableRegistry([new PortableType(0, [], [], new SequenceDef(5))]));
        Assert.Throws<MetadataException>(() => new PortableRegistry([new PortableType(1, [], [], new PrimitiveDef(PrimitiveKind.U8))]));
        Assert.Throws<MetadataException>(() => new PortableRegistry(
            [new PortableType(0, [], [], new PrimitiveDef(PrimitiveKind.Str)), new PortableType(1, [], [], new BitSequenceDef(0, 0))]));
    }

    [Fact]
    public void Bit_sequences_pack_in_the_declared_store_and_order()
    {
        var types = new PortableRegistry(
        [
            new PortableType(0, [], [], new PrimitiveDef(PrimitiveKind.U8)),
            new PortableType(1, ["bitvec", "order", "Lsb0"], [], new CompositeDef([])),
            new PortableType(2, ["bitvec", "order", "Msb0"], [], new CompositeDef([])),
            new PortableType(3, [], [], new BitSequenceDef(0, 1)),
            new PortableType(4, [], [], new BitSequenceDef(0, 2)),
        ]);
        var bits = ScaleValue.BitSequence([true, false, true, true, false, false, false, false, true]);
        Assert.Equal([9 << 2, 0b0000_1101, 0b0000_0001], types.Encode(3, bits));
        Assert.Equal([9 << 2, 0b1011_0000, 0b1000_0000], types.Encode(4, bits));
        Assert.Equal(bits, types.Decode(3, types.Encode(3, bits)));
        Assert.Equal(bits, types.Decode(4, types.Encode(4, bits)));
        Assert.Throws<ScaleException>(() => types.Decode(3, [0x91, 0x01, 0]));
    }
}
