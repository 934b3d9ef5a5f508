using System.Collections.Immutable;

namespace Bittensor.Chain.Substrate;

/// <summary>
/// Builds a <see cref="PortableRegistry"/> in code: for layouts a runtime does not describe in its metadata (the
/// <c>Vec&lt;u8&gt;</c>-wrapped runtime API structs of runtimes before ~Feb 2025), and for a node that describes
/// itself. Primitive, compact, sequence and array types are shared (added once).
/// </summary>
public sealed class RegistryBuilder
{
    private readonly List<PortableType> _types = [];
    private readonly Dictionary<string, uint> _shared = new(StringComparer.Ordinal);

    /// <summary>A primitive type.</summary>
    public uint Primitive(PrimitiveKind kind) => Shared($"p:{kind}", () => new PrimitiveDef(kind));

    /// <summary><c>Compact&lt;inner&gt;</c>.</summary>
    public uint Compact(uint inner) => Shared($"c:{inner}", () => new CompactDef(inner));

    /// <summary><c>Vec&lt;element&gt;</c>.</summary>
    public uint Sequence(uint element) => Shared($"s:{element}", () => new SequenceDef(element));

    /// <summary><c>[element; length]</c>.</summary>
    public uint Array(uint element, uint length) => Shared($"a:{element}:{length}", () => new ArrayDef(length, element));

    /// <summary>A tuple.</summary>
    public uint Tuple(params uint[] elements) => Shared("t:" + string.Join(",", elements), () => new TupleDef([.. elements]));

    /// <summary>A struct with named fields.</summary>
    public uint Composite(string path, params (string Name, uint Type)[] fields) =>
        Add(path, new CompositeDef([.. fields.Select(f => new TypeField(f.Name, f.Type, null))]));

    /// <summary>An enum; variant indices are given explicitly.</summary>
    public uint Variant(string path, params (string Name, byte Index, (string? Name, uint Type)[] Fields)[] variants) =>
        Add(path, new VariantDef([.. variants.Select(v => new TypeVariant(v.Name, v.Index, [.. v.Fields.Select(f => new TypeField(f.Name, f.Type, null))], []))]));

    /// <summary><c>Option&lt;inner&gt;</c> (None = 0, Some = 1).</summary>
    public uint Option(uint inner)
    {
        if (_shared.TryGetValue($"o:{inner}", out var id)) return id;
        id = Define("Option", new VariantDef([new TypeVariant("None", 0, [], []), new TypeVariant("Some", 1, [new TypeField(null, inner, null)], [])]),
            new TypeParameter("T", inner));
        _shared[$"o:{inner}"] = id;
        return id;
    }

    /// <summary><c>AccountId32</c> (a 32-byte array wrapper).</summary>
    public uint AccountId32() => Shared("AccountId32", () => new CompositeDef([new TypeField(null, Array(Primitive(PrimitiveKind.U8), 32), "[u8; 32]")]), "sp_core::crypto::AccountId32");

    /// <summary>A type with any definition, a Rust path (segments joined with <c>::</c>) and generic parameters.</summary>
    public uint Define(string path, TypeDef def, params TypeParameter[] typeParams)
    {
        var id = Add(path, def);
        if (typeParams.Length > 0) _types[(int)id] = _types[(int)id] with { Params = [.. typeParams] };
        return id;
    }

    /// <summary>A struct whose fields carry their Rust type names (as real metadata does).</summary>
    public uint Struct(string path, params (string? Name, uint Type, string? TypeName)[] fields) =>
        Add(path, new CompositeDef([.. fields.Select(f => new TypeField(f.Name, f.Type, f.TypeName))]));

    /// <summary>An enum of unit variants numbered from 0 in order.</summary>
    public uint UnitEnum(string path, params string[] names) =>
        Add(path, new VariantDef([.. names.Select((n, i) => new TypeVariant(n, (byte)i, [], []))]));

    /// <summary>The registry built so far.</summary>
    public PortableRegistry Build(ScaleLimits? limits = null) => new([.. _types], limits);

    private uint Add(string path, TypeDef def)
    {
        var id = (uint)_types.Count;
        var segments = string.IsNullOrEmpty(path) ? ImmutableArray<string>.Empty : [.. path.Split("::")];
        _types.Add(new PortableType(id, segments, [], def));
        return id;
    }

    private uint Shared(string key, Func<TypeDef> def, string path = "")
    {
        if (_shared.TryGetValue(key, out var id)) return id;
        id = Add(path, def());
        _shared[key] = id;
        return id;
    }
}
