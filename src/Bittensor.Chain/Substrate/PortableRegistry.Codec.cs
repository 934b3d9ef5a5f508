using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Numerics;
using System.Text;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Substrate;

/// <summary>Generic SCALE decoding and encoding of any registry type.</summary>
public sealed partial class PortableRegistry
{
    private const int SizeCap = 1 << 30;

    /// <summary>
    /// Decodes a value of type <paramref name="typeId"/> that must fill <paramref name="data"/> exactly.
    /// Hostile or truncated input throws <see cref="ScaleException"/>; nothing is allocated for elements that
    /// cannot be in the input, nesting is bounded by <see cref="ScaleLimits.MaxDepth"/> and the number of values by
    /// <see cref="ScaleLimits.MaxValues"/>.
    /// </summary>
    public ScaleValue Decode(uint typeId, ReadOnlySpan<byte> data)
    {
        var r = new ScaleReader(data);
        var v = Decode(typeId, ref r);
        r.EnsureEnd();
        return v;
    }

    /// <summary>Decodes one value of type <paramref name="typeId"/> from the reader's position.</summary>
    public ScaleValue Decode(uint typeId, ref ScaleReader reader)
    {
        _ = this[typeId];
        var budget = Limits.MaxValues;
        return DecodeCore(typeId, ref reader, 0, ref budget);
    }

    /// <summary>Encodes <paramref name="value"/> as type <paramref name="typeId"/>.</summary>
    /// <exception cref="ArgumentException">The value does not fit the type (the message names the type and what was expected).</exception>
    public byte[] Encode(uint typeId, ScaleValue value)
    {
        var w = new ScaleWriter(64);
        Encode(typeId, value, w);
        return w.ToArray();
    }

    /// <summary>Writes <paramref name="value"/> as type <paramref name="typeId"/>.</summary>
    public void Encode(uint typeId, ScaleValue value, ScaleWriter writer)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(writer);
        EncodeCore(typeId, value, writer, 0);
    }

    /// <summary>
    /// A lower bound on the encoded size of any value of the type (0 for recursive cycles not yet resolved).
    /// Used to refuse lengths that cannot fit in the remaining bytes before allocating.
    /// </summary>
    public int MinEncodedSize(uint typeId)
    {
        _ = this[typeId];
        if (_minSize[0] < 0) ComputeMinSizes();
        return _minSize[(int)typeId];
    }

    /// <summary>True when every value of the type encodes to zero bytes (unit, empty struct, tuple of those).</summary>
    public bool IsZeroSized(uint typeId) => IsZeroSized(typeId, 0);

    private bool IsZeroSized(uint id, int depth)
    {
        if (depth > Limits.MaxDepth) return false;
        return this[id].Def switch
        {
            CompositeDef c => c.Fields.All(f => IsZeroSized(f.Type, depth + 1)),
            TupleDef t => t.Elements.All(e => IsZeroSized(e, depth + 1)),
            ArrayDef a => a.Length == 0 || IsZeroSized(a.Element, depth + 1),
            _ => false,
        };
    }

    private void ComputeMinSizes()
    {
        lock (_minSize)
        {
            if (_minSize[0] >= 0) return;
            // Least fixed point from below: every iterate is a valid lower bound, so a bounded number of passes
            // is safe even for hostile metadata with long reference chains.
            var cur = new int[_types.Length];
            for (var pass = 0; pass < 64; pass++)
            {
                var changed = false;
                for (var k = 0; k < cur.Length; k++)
                {
                    var i = pass % 2 == 0 ? cur.Length - 1 - k : k;
                    var v = MinOf(_types[i].Def, cur);
                    if (v > cur[i])
                    {
                        cur[i] = v;
                        changed = true;
                    }
                }
                if (!changed) break;
            }
            Array.Copy(cur, 1, _minSize, 1, cur.Length - 1);
            Volatile.Write(ref _minSize[0], cur[0]);
        }
    }

    private int MinOf(TypeDef def, int[] cur)
    {
        long Sum(IEnumerable<uint> ids)
        {
            long s = 0;
            foreach (var id in ids) s = Math.Min(SizeCap, s + cur[id]);
            return s;
        }

        long v = def switch
        {
            CompositeDef c => Sum(c.Fields.Select(f => f.Type)),
            VariantDef vd => 1 + (vd.Variants.IsEmpty ? 0 : vd.Variants.Min(x => Sum(x.Fields.Select(f => f.Type)))),
            SequenceDef => 1,
            ArrayDef a => Math.Min(SizeCap, a.Length * (long)cur[a.Element]),
            TupleDef t => Sum(t.Elements),
            PrimitiveDef p => PrimitiveSize(p.Kind),
            CompactDef c => IsUnitCompact(c) ? 0 : 1,
            BitSequenceDef => 1,
            _ => 0,
        };
        return (int)Math.Min(SizeCap, v);
    }

    private bool IsUnitCompact(CompactDef c)
    {
        var id = c.Inner;
        for (var guard = 0; guard < 16; guard++)
        {
            switch (_types[(int)id].Def)
            {
                case CompositeDef { Fields.Length: 0 } or TupleDef { Elements.Length: 0 }:
                    return true;
                case CompositeDef { Fields.Length: 1 } w:
                    id = w.Fields[0].Type;
                    continue;
                case TupleDef { Elements.Length: 1 } t:
                    id = t.Elements[0];
                    continue;
            }
            return false;
        }
        return false;
    }

    private static int PrimitiveSize(PrimitiveKind k) => k switch
    {
        PrimitiveKind.Bool or PrimitiveKind.U8 or PrimitiveKind.I8 or PrimitiveKind.Str => 1,
        PrimitiveKind.U16 or PrimitiveKind.I16 => 2,
        PrimitiveKind.Char or PrimitiveKind.U32 or PrimitiveKind.I32 => 4,
        PrimitiveKind.U64 or PrimitiveKind.I64 => 8,
        PrimitiveKind.U128 or PrimitiveKind.I128 => 16,
        _ => 32,
    };

    private bool IsU8(uint id) => _types[(int)id].Def is PrimitiveDef { Kind: PrimitiveKind.U8 };

    private ScaleValue DecodeCore(uint id, ref ScaleReader r, int depth, ref int budget)
    {
        if (depth > Limits.MaxDepth)
            throw new ScaleException($"values nest deeper than {Limits.MaxDepth} (type {id} {_types[(int)id].PathText})", r.Position);
        if (--budget < 0) throw new ScaleException($"more than {Limits.MaxValues} values in one decode", r.Position);
        switch (_types[(int)id].Def)
        {
            case CompositeDef c:
                return DecodeFields(c.Fields, ref r, depth, ref budget);
            case VariantDef v:
            {
                var at = r.Position;
                var index = r.U8();
                var variant = v.ByIndex(index)
                    ?? throw new ScaleException($"variant index {index} is not defined for type {id} {_types[(int)id].PathText}", at);
                return new VariantValue(variant.Name, index, DecodeFields(variant.Fields, ref r, depth, ref budget));
            }
            case SequenceDef s:
            {
                if (IsU8(s.Element)) return new BytesValue(ImmutableArray.Create(r.Bytes()));
                var at = r.Position;
                var n = r.Length(Math.Max(0, MinEncodedSize(s.Element)));
                return DecodeItems(s.Element, n, at, ref r, depth, ref budget);
            }
            case ArrayDef a:
            {
                var at = r.Position;
                if (a.Length > int.MaxValue || (long)a.Length * MinEncodedSize(a.Element) > r.Remaining)
                    throw new ScaleException($"array of {a.Length} elements cannot fit in the {r.Remaining} byte(s) left", at);
                if (IsU8(a.Element)) return new BytesValue(ImmutableArray.Create(r.Raw((int)a.Length).ToArray()));
                return DecodeItems(a.Element, (int)a.Length, at, ref r, depth, ref budget);
            }
            case TupleDef t:
            {
                var values = ImmutableArray.CreateBuilder<ScaleValue>(t.Elements.Length);
                foreach (var e in t.Elements) values.Add(DecodeCore(e, ref r, depth + 1, ref budget));
                return new CompositeValue(ImmutableArray.Create(new string?[t.Elements.Length]), values.MoveToImmutable());
            }
            case PrimitiveDef p:
                return DecodePrimitive(p.Kind, ref r);
            case CompactDef c:
                return DecodeCompact(id, c, ref r);
            case BitSequenceDef b:
                return DecodeBits(b, ref r);
            default:
                throw new ScaleException($"type {id} has an unknown definition", r.Position);
        }
    }

    private CompositeValue DecodeFields(ImmutableArray<TypeField> fields, ref ScaleReader r, int depth, ref int budget)
    {
        if (fields.IsEmpty) return (CompositeValue)ScaleValue.Unit;
        var names = ImmutableArray.CreateBuilder<string?>(fields.Length);
        var values = ImmutableArray.CreateBuilder<ScaleValue>(fields.Length);
        foreach (var f in fields)
        {
            names.Add(f.Name);
            values.Add(DecodeCore(f.Type, ref r, depth + 1, ref budget));
        }
        return new CompositeValue(names.MoveToImmutable(), values.MoveToImmutable());
    }

    private SequenceValue DecodeItems(uint element, int n, int at, ref ScaleReader r, int depth, ref int budget)
    {
        if (n > budget) throw new ScaleException($"{n} elements exceed the limit of {Limits.MaxValues} values", at);
        var items = ImmutableArray.CreateBuilder<ScaleValue>(n);
        for (var i = 0; i < n; i++) items.Add(DecodeCore(element, ref r, depth + 1, ref budget));
        return new SequenceValue(items.MoveToImmutable());
    }

    private static ScaleValue DecodePrimitive(PrimitiveKind kind, ref ScaleReader r)
    {
        switch (kind)
        {
            case PrimitiveKind.Bool: return ScaleValue.Bool(r.Bool());
            case PrimitiveKind.Char:
            {
                var at = r.Position;
                var c = r.U32();
                return Rune.IsValid(c) ? ScaleValue.Char(c) : throw new ScaleException($"0x{c:x} is not a Unicode scalar value", at);
            }
            case PrimitiveKind.Str: return ScaleValue.Text(r.String());
            case PrimitiveKind.U8: return ScaleValue.Int(r.U8());
            case PrimitiveKind.U16: return ScaleValue.Int(r.U16());
            case PrimitiveKind.U32: return ScaleValue.Int(r.U32());
            case PrimitiveKind.U64: return ScaleValue.Int(r.U64());
            case PrimitiveKind.U128: return ScaleValue.Int(r.U128());
            case PrimitiveKind.U256: return ScaleValue.Int(new BigInteger(r.Raw(32), isUnsigned: true, isBigEndian: false));
            default:
            {
                var size = PrimitiveSize(kind);
                return ScaleValue.Int(new BigInteger(r.Raw(size), isUnsigned: false, isBigEndian: false));
            }
        }
    }

    /// <summary>The primitive a compact encodes, following one-field wrappers; null for a unit.</summary>
    private PrimitiveKind? CompactTarget(uint compactId, uint inner)
    {
        var id = inner;
        for (var guard = 0; guard < 16; guard++)
        {
            switch (_types[(int)id].Def)
            {
                case PrimitiveDef { Kind: PrimitiveKind.U8 or PrimitiveKind.U16 or PrimitiveKind.U32 or PrimitiveKind.U64 or PrimitiveKind.U128 or PrimitiveKind.U256 } p:
                    return p.Kind;
                case CompositeDef { Fields.Length: 1 } c:
                    id = c.Fields[0].Type;
                    continue;
                case CompositeDef { Fields.Length: 0 }:
                case TupleDef { Elements.Length: 0 }:
                    return null;
                case TupleDef { Elements.Length: 1 } t:
                    id = t.Elements[0];
                    continue;
            }
            break;
        }
        throw new MetadataException($"compact type {compactId} wraps type {inner} ({_types[(int)inner].PathText}), which is not an unsigned integer");
    }

    private static BigInteger MaxOf(PrimitiveKind k) => k switch
    {
        PrimitiveKind.U8 => byte.MaxValue,
        PrimitiveKind.U16 => ushort.MaxValue,
        PrimitiveKind.U32 => uint.MaxValue,
        PrimitiveKind.U64 => ulong.MaxValue,
        PrimitiveKind.U128 => (BigInteger)UInt128.MaxValue,
        _ => (BigInteger.One << 256) - 1,
    };

    private ScaleValue DecodeCompact(uint id, CompactDef c, ref ScaleReader r)
    {
        ScaleValue result;
        try
        {
            if (CompactTarget(id, c.Inner) is not { } kind) return ScaleValue.Unit;
            var at = r.Position;
            var v = r.CompactBig();
            if (v > MaxOf(kind)) throw new ScaleException($"compact value does not fit in {kind}", at);
            result = ScaleValue.Int(v);
        }
        catch (MetadataException e)
        {
            throw new ScaleException(e.Message, r.Position);
        }
        return result;
    }

    private ScaleValue DecodeBits(BitSequenceDef b, ref ScaleReader r)
    {
        var storeBytes = PrimitiveSize(((PrimitiveDef)_types[(int)b.StoreType].Def).Kind);
        var msb = _types[(int)b.OrderType].Path[^1] == "Msb0";
        var at = r.Position;
        var bits = r.CompactU64();
        var storeBits = 8 * storeBytes;
        var words = (bits + (ulong)storeBits - 1) / (ulong)storeBits;
        if (words > (ulong)(r.Remaining / storeBytes))
            throw new ScaleException($"bit sequence of {bits} bits exceeds the {r.Remaining} byte(s) left", at);
        var raw = r.Raw((int)words * storeBytes);
        var result = ImmutableArray.CreateBuilder<bool>((int)bits);
        for (var i = 0; i < (int)bits; i++)
        {
            var word = ReadWord(raw.Slice(i / storeBits * storeBytes, storeBytes));
            var bit = i % storeBits;
            var shift = msb ? storeBits - 1 - bit : bit;
            result.Add(((word >> shift) & 1) != 0);
        }
        return new BitsValue(result.MoveToImmutable());
    }

    private static ulong ReadWord(ReadOnlySpan<byte> s) => s.Length switch
    {
        1 => s[0],
        2 => BinaryPrimitives.ReadUInt16LittleEndian(s),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(s),
        _ => BinaryPrimitives.ReadUInt64LittleEndian(s),
    };

    private ArgumentException Bad(uint id, string expected, ScaleValue got) =>
        new($"type {id} ({Describe(id)}): expected {expected}, got {got.Describe()}");

    /// <summary>A short description of a type for messages: its path or its shape.</summary>
    public string Describe(uint id)
    {
        var t = this[id];
        if (!t.Path.IsEmpty) return t.PathText;
        return t.Def switch
        {
            PrimitiveDef p => p.Kind.ToString().ToLowerInvariant(),
            SequenceDef s => $"Vec<{Describe(s.Element)}>",
            ArrayDef a => $"[{Describe(a.Element)}; {a.Length}]",
            CompactDef c => $"Compact<{Describe(c.Inner)}>",
            TupleDef tu => "(" + string.Join(", ", tu.Elements.Select(Describe)) + ")",
            BitSequenceDef => "BitVec",
            _ => "composite",
        };
    }

    private void EncodeCore(uint id, ScaleValue value, ScaleWriter w, int depth)
    {
        if (depth > Limits.MaxDepth) throw new ArgumentException($"value nests deeper than {Limits.MaxDepth}", nameof(value));
        switch (this[id].Def)
        {
            case CompositeDef c:
                EncodeFields(id, c.Fields, value, w, depth);
                return;
            case VariantDef v:
            {
                if (value is not VariantValue vv) throw Bad(id, "an enum variant", value);
                var variant = v.ByName(vv.Name)
                    ?? throw new ArgumentException($"type {id} ({Describe(id)}) has no variant '{vv.Name}'; it has {string.Join(", ", v.Variants.Select(x => x.Name))}", nameof(value));
                w.U8(variant.Index);
                EncodeFields(id, variant.Fields, vv.Fields, w, depth);
                return;
            }
            case SequenceDef s:
            {
                if (IsU8(s.Element) && value.Unwrapped() is BytesValue b)
                {
                    w.Bytes(b.Value.AsSpan());
                    return;
                }
                var items = Items(id, value);
                w.Compact((ulong)items.Length);
                foreach (var item in items) EncodeCore(s.Element, item, w, depth + 1);
                return;
            }
            case ArrayDef a:
            {
                if (IsU8(a.Element) && value.Unwrapped() is BytesValue b)
                {
                    if ((uint)b.Value.Length != a.Length) throw Bad(id, $"{a.Length} bytes", value);
                    w.Raw(b.Value.AsSpan());
                    return;
                }
                var items = Items(id, value);
                if ((uint)items.Length != a.Length) throw Bad(id, $"{a.Length} items", value);
                foreach (var item in items) EncodeCore(a.Element, item, w, depth + 1);
                return;
            }
            case TupleDef t:
            {
                if (t.Elements.Length == 1 && value is not CompositeValue { Values.Length: 1 })
                {
                    EncodeCore(t.Elements[0], value, w, depth + 1);
                    return;
                }
                var items = value switch
                {
                    CompositeValue cv => cv.Values,
                    SequenceValue sv => sv.Items,
                    _ => throw Bad(id, $"a tuple of {t.Elements.Length}", value),
                };
                if (items.Length != t.Elements.Length) throw Bad(id, $"a tuple of {t.Elements.Length}", value);
                for (var i = 0; i < items.Length; i++) EncodeCore(t.Elements[i], items[i], w, depth + 1);
                return;
            }
            case PrimitiveDef p:
                EncodePrimitive(id, p.Kind, value.Unwrapped(), w);
                return;
            case CompactDef c:
            {
                if (CompactTarget(id, c.Inner) is not { } kind) return;
                if (value.Unwrapped() is not IntValue i || i.Value.Sign < 0 || i.Value > MaxOf(kind))
                    throw Bad(id, $"an unsigned integer that fits {kind}", value);
                w.Compact(i.Value);
                return;
            }
            case BitSequenceDef b:
                EncodeBits(id, b, value, w);
                return;
        }
    }

    private ImmutableArray<ScaleValue> Items(uint id, ScaleValue value) => value.Unwrapped() switch
    {
        SequenceValue s => s.Items,
        CompositeValue c when c.Names.All(n => n is null) => c.Values,
        BytesValue b => [.. b.Value.Select(x => ScaleValue.Int(x))],
        _ => throw Bad(id, "a sequence", value),
    };

    private void EncodeFields(uint id, ImmutableArray<TypeField> fields, ScaleValue value, ScaleWriter w, int depth)
    {
        if (value is CompositeValue cv && cv.Values.Length == fields.Length && (fields.Length != 1 || NamesAgree(fields[0], cv.Names[0])))
        {
            var byName = fields.All(f => f.Name is not null) && cv.Names.All(n => n is not null);
            for (var i = 0; i < fields.Length; i++)
            {
                ScaleValue item;
                if (byName)
                {
                    var k = cv.Names.IndexOf(fields[i].Name, StringComparer.Ordinal);
                    if (k < 0) throw new ArgumentException($"type {id} ({Describe(id)}): field '{fields[i].Name}' is missing (given: {string.Join(", ", cv.Names)})", nameof(value));
                    item = cv.Values[k];
                }
                else
                {
                    item = cv.Values[i];
                }
                EncodeCore(fields[i].Type, item, w, depth + 1);
            }
            return;
        }
        if (fields.Length == 1)
        {
            // A newtype (AccountId32([u8; 32]), NetUid(u16), MultiAddress::Id(AccountId32)): accept the inner value.
            EncodeCore(fields[0].Type, value, w, depth + 1);
            return;
        }
        throw Bad(id, fields.IsEmpty ? "no fields" : $"{fields.Length} fields ({string.Join(", ", fields.Select(f => f.Name ?? "_"))})", value);
    }

    private static bool NamesAgree(TypeField field, string? given) =>
        field.Name is null || given is null || string.Equals(field.Name, given, StringComparison.Ordinal);

    private void EncodePrimitive(uint id, PrimitiveKind kind, ScaleValue value, ScaleWriter w)
    {
        switch (kind)
        {
            case PrimitiveKind.Bool:
                w.Bool(value is BoolValue b ? b.Value : throw Bad(id, "a bool", value));
                return;
            case PrimitiveKind.Char:
                w.U32(value is CharValue c && Rune.IsValid(c.Scalar) ? c.Scalar : throw Bad(id, "a char", value));
                return;
            case PrimitiveKind.Str:
                w.String(value is TextValue t ? t.Value : throw Bad(id, "a string", value));
                return;
        }
        if (value is not IntValue iv) throw Bad(id, kind.ToString().ToLowerInvariant(), value);
        var size = PrimitiveSize(kind);
        var signed = kind >= PrimitiveKind.I8;
        var v = iv.Value;
        var min = signed ? -(BigInteger.One << (8 * size - 1)) : BigInteger.Zero;
        var max = signed ? (BigInteger.One << (8 * size - 1)) - 1 : (BigInteger.One << (8 * size)) - 1;
        if (v < min || v > max) throw Bad(id, $"a {kind.ToString().ToLowerInvariant()} in range", value);
        Span<byte> buf = stackalloc byte[32];
        buf.Fill(v.Sign < 0 ? (byte)0xff : (byte)0);
        if (!v.TryWriteBytes(buf, out _, isUnsigned: !signed, isBigEndian: false))
            throw Bad(id, kind.ToString().ToLowerInvariant(), value);
        w.Raw(buf[..size]);
    }

    private void EncodeBits(uint id, BitSequenceDef b, ScaleValue value, ScaleWriter w)
    {
        if (value.Unwrapped() is not BitsValue bits) throw Bad(id, "a bit sequence", value);
        var storeBytes = PrimitiveSize(((PrimitiveDef)_types[(int)b.StoreType].Def).Kind);
        var storeBits = 8 * storeBytes;
        var msb = _types[(int)b.OrderType].Path[^1] == "Msb0";
        w.Compact((ulong)bits.Bits.Length);
        var words = (bits.Bits.Length + storeBits - 1) / storeBits;
        Span<byte> word = stackalloc byte[8];
        for (var k = 0; k < words; k++)
        {
            ulong x = 0;
            for (var bit = 0; bit < storeBits; bit++)
            {
                var i = k * storeBits + bit;
                if (i >= bits.Bits.Length || !bits.Bits[i]) continue;
                x |= 1UL << (msb ? storeBits - 1 - bit : bit);
            }
            BinaryPrimitives.WriteUInt64LittleEndian(word, x);
            w.Raw(word[..storeBytes]);
        }
    }
}
