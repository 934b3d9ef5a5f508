using System.Collections.Immutable;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Substrate;

/// <summary>SCALE primitive kinds as <c>scale-info</c> numbers them (bool 0 … i256 14).</summary>
public enum PrimitiveKind : byte
{
    /// <summary>bool (one byte 0/1).</summary>
    Bool = 0,

    /// <summary>char (a Unicode scalar as u32).</summary>
    Char = 1,

    /// <summary>str (compact length + UTF-8).</summary>
    Str = 2,

    /// <summary>u8.</summary>
    U8 = 3,

    /// <summary>u16.</summary>
    U16 = 4,

    /// <summary>u32.</summary>
    U32 = 5,

    /// <summary>u64.</summary>
    U64 = 6,

    /// <summary>u128.</summary>
    U128 = 7,

    /// <summary>u256.</summary>
    U256 = 8,

    /// <summary>i8.</summary>
    I8 = 9,

    /// <summary>i16.</summary>
    I16 = 10,

    /// <summary>i32.</summary>
    I32 = 11,

    /// <summary>i64.</summary>
    I64 = 12,

    /// <summary>i128.</summary>
    I128 = 13,

    /// <summary>i256.</summary>
    I256 = 14,
}

/// <summary>A field of a composite or of an enum variant.</summary>
/// <param name="Name">Field name; null for tuple-like structs.</param>
/// <param name="Type">Type id in the registry.</param>
/// <param name="TypeName">The Rust type name as written in the source (informational).</param>
public sealed record TypeField(string? Name, uint Type, string? TypeName);

/// <summary>One variant of an enum type.</summary>
/// <param name="Name">Variant name (e.g. <c>set_weights</c>, <c>Some</c>, <c>Module</c>).</param>
/// <param name="Index">The byte that selects it on the wire (not its declaration position).</param>
/// <param name="Fields">Its fields.</param>
/// <param name="Docs">Documentation lines.</param>
public sealed record TypeVariant(string Name, byte Index, ImmutableArray<TypeField> Fields, ImmutableArray<string> Docs);

/// <summary>A generic parameter of a type (e.g. <c>T</c> of <c>Option&lt;T&gt;</c>).</summary>
public sealed record TypeParameter(string Name, uint? Type);

/// <summary>The shape of a type in the portable registry.</summary>
public abstract record TypeDef;

/// <summary>A struct: fields concatenated.</summary>
public sealed record CompositeDef(ImmutableArray<TypeField> Fields) : TypeDef;

/// <summary>An enum: an index byte then the chosen variant's fields.</summary>
public sealed record VariantDef(ImmutableArray<TypeVariant> Variants) : TypeDef
{
    /// <summary>The variant whose wire index is <paramref name="index"/>, or null.</summary>
    public TypeVariant? ByIndex(byte index)
    {
        foreach (var v in Variants) if (v.Index == index) return v;
        return null;
    }

    /// <summary>The variant named <paramref name="name"/>, or null.</summary>
    public TypeVariant? ByName(string name)
    {
        foreach (var v in Variants) if (string.Equals(v.Name, name, StringComparison.Ordinal)) return v;
        return null;
    }
}

/// <summary>A vector: compact length then the elements.</summary>
public sealed record SequenceDef(uint Element) : TypeDef;

/// <summary>A fixed-length array: the elements, no length prefix.</summary>
public sealed record ArrayDef(uint Length, uint Element) : TypeDef;

/// <summary>A tuple: elements concatenated.</summary>
public sealed record TupleDef(ImmutableArray<uint> Elements) : TypeDef;

/// <summary>A primitive.</summary>
public sealed record PrimitiveDef(PrimitiveKind Kind) : TypeDef;

/// <summary>A compact-encoded integer (or a one-field wrapper of one).</summary>
public sealed record CompactDef(uint Inner) : TypeDef;

/// <summary>A bitvec: compact bit count then the bits packed into store words in the given order.</summary>
public sealed record BitSequenceDef(uint StoreType, uint OrderType) : TypeDef;

/// <summary>One type of the registry.</summary>
/// <param name="Id">Its id (its position in the registry).</param>
/// <param name="Path">Rust path segments, e.g. <c>frame_system</c>, <c>AccountInfo</c>; empty for built-ins.</param>
/// <param name="Params">Generic parameters.</param>
/// <param name="Def">Its shape.</param>
public sealed record PortableType(uint Id, ImmutableArray<string> Path, ImmutableArray<TypeParameter> Params, TypeDef Def)
{
    /// <summary>The path joined with <c>::</c>.</summary>
    public string PathText => string.Join("::", Path);
}

/// <summary>Malformed metadata, or a lookup (pallet, call, storage item, type) the metadata does not have.</summary>
public sealed class MetadataException : Exception
{
    /// <summary>Creates the exception.</summary>
    public MetadataException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}

/// <summary>
/// The portable type registry of a runtime's metadata (V14/V15 share it): every type the runtime exposes, by id.
/// Decoding checks every reference, so once built every type id reached from a valid id is valid too.
/// </summary>
public sealed partial class PortableRegistry
{
    /// <summary>Upper bound on types accepted from metadata (real runtimes have ~1 000).</summary>
    public const int MaxTypes = 1 << 20;

    private readonly ImmutableArray<PortableType> _types;
    private readonly int[] _minSize;

    /// <summary>Builds a registry from types whose ids are their positions; throws <see cref="MetadataException"/> on a bad reference.</summary>
    public PortableRegistry(ImmutableArray<PortableType> types, ScaleLimits? limits = null)
    {
        _types = types;
        Limits = limits ?? ScaleLimits.Default;
        for (var i = 0; i < types.Length; i++)
        {
            if (types[i].Id != (uint)i) throw new MetadataException($"type ids must be sequential: position {i} holds id {types[i].Id}");
            foreach (var r in References(types[i].Def))
                if (r >= (uint)types.Length) throw new MetadataException($"type {i} refers to type {r}, but the registry has {types.Length} types");
            foreach (var p in types[i].Params)
                if (p.Type is { } t && t >= (uint)types.Length) throw new MetadataException($"type {i} parameter {p.Name} refers to type {t}, but the registry has {types.Length} types");
            if (types[i].Def is BitSequenceDef bits) ValidateBitSequence((uint)i, bits);
        }
        _minSize = new int[types.Length];
        Array.Fill(_minSize, -1);
    }

    /// <summary>Limits applied by <see cref="Decode(uint, ReadOnlySpan{byte})"/>.</summary>
    public ScaleLimits Limits { get; }

    /// <summary>Number of types.</summary>
    public int Count => _types.Length;

    /// <summary>All types, by id.</summary>
    public ImmutableArray<PortableType> Types => _types;

    /// <summary>The type with id <paramref name="id"/>; throws <see cref="MetadataException"/> if there is none.</summary>
    public PortableType this[uint id] =>
        id < (uint)_types.Length ? _types[(int)id] : throw new MetadataException($"no type {id} in the registry ({_types.Length} types)");

    /// <summary>The first type whose path ends with <paramref name="pathSuffix"/> (e.g. <c>AccountInfo</c> or <c>frame_system::AccountInfo</c>), or null.</summary>
    public PortableType? FindByPath(string pathSuffix)
    {
        ArgumentNullException.ThrowIfNull(pathSuffix);
        foreach (var t in _types)
        {
            if (t.Path.IsEmpty) continue;
            var p = t.PathText;
            if (string.Equals(p, pathSuffix, StringComparison.Ordinal) || p.EndsWith("::" + pathSuffix, StringComparison.Ordinal)) return t;
        }
        return null;
    }

    /// <summary>The variants of an enum type; throws when the type is not an enum.</summary>
    public VariantDef Variants(uint id) =>
        this[id].Def as VariantDef ?? throw new MetadataException($"type {id} ({this[id].PathText}) is not an enum");

    /// <summary>Decodes the registry (<c>Vec&lt;PortableType&gt;</c>) from metadata.</summary>
    public static PortableRegistry Decode(ref ScaleReader r, ScaleLimits? limits = null)
    {
        var n = r.Length(4);
        if (n > MaxTypes) throw new ScaleException($"{n} types exceed the limit {MaxTypes}", r.Position);
        var types = ImmutableArray.CreateBuilder<PortableType>(n);
        for (var i = 0; i < n; i++)
        {
            var id = r.CompactU32();
            var path = ReadStrings(ref r);
            var pn = r.Length(2);
            var ps = ImmutableArray.CreateBuilder<TypeParameter>(pn);
            for (var k = 0; k < pn; k++)
            {
                var name = r.String(MetadataReader.MaxName);
                uint? t = r.OptionTag() ? r.CompactU32() : null;
                ps.Add(new TypeParameter(name, t));
            }
            var def = ReadDef(ref r);
            _ = ReadStrings(ref r); // docs
            types.Add(new PortableType(id, path, ps.MoveToImmutable(), def));
        }
        return new PortableRegistry(types.MoveToImmutable(), limits);
    }

    private static TypeDef ReadDef(ref ScaleReader r)
    {
        var at = r.Position;
        switch (r.U8())
        {
            case 0:
                return new CompositeDef(ReadFields(ref r));
            case 1:
            {
                var n = r.Length(3);
                var vs = ImmutableArray.CreateBuilder<TypeVariant>(n);
                for (var i = 0; i < n; i++)
                {
                    var name = r.String(MetadataReader.MaxName);
                    var fields = ReadFields(ref r);
                    var index = r.U8();
                    var docs = ReadStrings(ref r);
                    vs.Add(new TypeVariant(name, index, fields, docs));
                }
                return new VariantDef(vs.MoveToImmutable());
            }
            case 2:
                return new SequenceDef(r.CompactU32());
            case 3:
                return new ArrayDef(r.U32(), r.CompactU32());
            case 4:
            {
                var n = r.Length(1);
                var es = ImmutableArray.CreateBuilder<uint>(n);
                for (var i = 0; i < n; i++) es.Add(r.CompactU32());
                return new TupleDef(es.MoveToImmutable());
            }
            case 5:
            {
                var pat = r.Position;
                var k = r.U8();
                if (k > (byte)PrimitiveKind.I256) throw new ScaleException($"unknown primitive {k}", pat);
                return new PrimitiveDef((PrimitiveKind)k);
            }
            case 6:
                return new CompactDef(r.CompactU32());
            case 7:
                return new BitSequenceDef(r.CompactU32(), r.CompactU32());
            default:
                throw new ScaleException("unknown type definition tag", at);
        }
    }

    private static ImmutableArray<TypeField> ReadFields(ref ScaleReader r)
    {
        var n = r.Length(3);
        var fs = ImmutableArray.CreateBuilder<TypeField>(n);
        for (var i = 0; i < n; i++)
        {
            var name = r.OptionTag() ? r.String(MetadataReader.MaxName) : null;
            var type = r.CompactU32();
            var typeName = r.OptionTag() ? r.String(MetadataReader.MaxName) : null;
            _ = ReadStrings(ref r);
            fs.Add(new TypeField(name, type, typeName));
        }
        return fs.MoveToImmutable();
    }

    internal static ImmutableArray<string> ReadStrings(ref ScaleReader r)
    {
        var n = r.Length(1);
        if (n == 0) return ImmutableArray<string>.Empty;
        var b = ImmutableArray.CreateBuilder<string>(n);
        for (var i = 0; i < n; i++) b.Add(r.String());
        return b.MoveToImmutable();
    }

    private static IEnumerable<uint> References(TypeDef def) => def switch
    {
        CompositeDef c => c.Fields.Select(f => f.Type),
        VariantDef v => v.Variants.SelectMany(x => x.Fields).Select(f => f.Type),
        SequenceDef s => [s.Element],
        ArrayDef a => [a.Element],
        TupleDef t => t.Elements,
        CompactDef c => [c.Inner],
        BitSequenceDef b => [b.StoreType, b.OrderType],
        _ => [],
    };

    private void ValidateBitSequence(uint id, BitSequenceDef bits)
    {
        if (_types[(int)bits.StoreType].Def is not PrimitiveDef { Kind: PrimitiveKind.U8 or PrimitiveKind.U16 or PrimitiveKind.U32 or PrimitiveKind.U64 })
            throw new MetadataException($"bit sequence {id}: store type {bits.StoreType} is not u8/u16/u32/u64");
        var order = _types[(int)bits.OrderType].Path;
        if (order.IsEmpty || order[^1] is not ("Lsb0" or "Msb0"))
            throw new MetadataException($"bit sequence {id}: order type {bits.OrderType} is neither Lsb0 nor Msb0");
    }
}
