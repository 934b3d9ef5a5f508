using System.Collections.Immutable;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Substrate;

/// <summary>
/// Everything a runtime's metadata says, in the records <see cref="RuntimeMetadata"/> decodes into, plus the few ids
/// only V15 carries. <see cref="MetadataEncoder"/> turns it into V14 or V15 bytes.
/// </summary>
/// <param name="Types">The type registry.</param>
/// <param name="Pallets">Pallets in metadata order.</param>
/// <param name="Extrinsic">The extrinsic: V14 needs <see cref="ExtrinsicMetadata.Type"/> (the UncheckedExtrinsic type), V15 the address, call and signature types.</param>
/// <param name="ExtraType">The tuple of the extensions' explicit data (V15).</param>
/// <param name="RuntimeType">The <c>Runtime</c> type.</param>
/// <param name="Apis">Runtime APIs (V15).</param>
/// <param name="OuterEventType">The <c>RuntimeEvent</c> enum (V15).</param>
/// <param name="OuterErrorType">The <c>RuntimeError</c> enum (V15).</param>
public sealed record MetadataDescription(
    PortableRegistry Types,
    ImmutableArray<PalletMetadata> Pallets,
    ExtrinsicMetadata Extrinsic,
    uint ExtraType,
    uint RuntimeType,
    ImmutableArray<RuntimeApiMetadata> Apis,
    uint OuterEventType,
    uint OuterErrorType);

/// <summary>
/// Encodes metadata V14 and V15 (<c>meta</c> + version byte + body), the inverse of <see cref="RuntimeMetadata.Decode"/>:
/// a node that describes itself serves these bytes from <c>state_getMetadata</c> and
/// <c>Metadata_metadata_at_version</c>. Docs are written as the records carry them (variant docs; none elsewhere).
/// </summary>
public static class MetadataEncoder
{
    /// <summary>V14 bytes (what <c>state_getMetadata</c> returns).</summary>
    public static byte[] EncodeV14(MetadataDescription d)
    {
        ArgumentNullException.ThrowIfNull(d);
        var ty = d.Extrinsic.Type ?? throw new MetadataException("V14 needs the UncheckedExtrinsic type (ExtrinsicMetadata.Type)");
        var w = Header(d, 14);
        foreach (var p in d.Pallets) WritePallet(w, p, v15: false);
        w.Compact(ty).U8(d.Extrinsic.Version);
        WriteExtensions(w, d.Extrinsic.SignedExtensions);
        w.Compact(d.RuntimeType);
        return w.ToArray();
    }

    /// <summary>V15 bytes (what <c>Metadata_metadata_at_version(15)</c> wraps in an <c>Option&lt;Vec&lt;u8&gt;&gt;</c>).</summary>
    public static byte[] EncodeV15(MetadataDescription d)
    {
        ArgumentNullException.ThrowIfNull(d);
        var x = d.Extrinsic;
        uint Need(uint? id, string what) => id ?? throw new MetadataException($"V15 needs the extrinsic {what} type");
        var w = Header(d, 15);
        foreach (var p in d.Pallets) WritePallet(w, p, v15: true);
        w.U8(x.Version).Compact(Need(x.AddressType, "address")).Compact(Need(x.CallType, "call"))
            .Compact(Need(x.SignatureType, "signature")).Compact(d.ExtraType);
        WriteExtensions(w, x.SignedExtensions);
        w.Compact(d.RuntimeType);
        w.Compact((ulong)d.Apis.Length);
        foreach (var api in d.Apis)
        {
            w.String(api.Name).Compact((ulong)api.Methods.Length);
            foreach (var m in api.Methods)
            {
                w.String(m.Name).Compact((ulong)m.Inputs.Length);
                foreach (var i in m.Inputs) w.String(i.Name).Compact(i.Type);
                w.Compact(m.Output).Compact(0UL); // docs
            }
            w.Compact(0UL); // docs
        }
        w.Compact(Need(x.CallType, "call")).Compact(d.OuterEventType).Compact(d.OuterErrorType);
        w.Compact(0UL); // custom map
        return w.ToArray();
    }

    /// <summary>Wraps metadata bytes as <c>Option&lt;OpaqueMetadata&gt;</c> (<c>Metadata_metadata_at_version</c>'s output).</summary>
    public static byte[] WrapOption(ReadOnlySpan<byte> metadata)
    {
        var w = new ScaleWriter(metadata.Length + 6);
        w.U8(1).Bytes(metadata);
        return w.ToArray();
    }

    /// <summary>Encodes a type registry (<c>Vec&lt;PortableType&gt;</c>).</summary>
    public static void WriteRegistry(ScaleWriter w, PortableRegistry types)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(types);
        w.Compact((ulong)types.Count);
        foreach (var t in types.Types)
        {
            w.Compact(t.Id);
            WriteStrings(w, t.Path);
            w.Compact((ulong)t.Params.Length);
            foreach (var p in t.Params)
            {
                w.String(p.Name);
                if (p.Type is { } pt) w.U8(1).Compact(pt);
                else w.U8(0);
            }
            WriteDef(w, t.Def);
            w.Compact(0UL); // docs
        }
    }

    private static ScaleWriter Header(MetadataDescription d, byte version)
    {
        var w = new ScaleWriter(64 * 1024);
        w.U32(RuntimeMetadata.Magic).U8(version);
        WriteRegistry(w, d.Types);
        w.Compact((ulong)d.Pallets.Length);
        return w;
    }

    private static void WriteDef(ScaleWriter w, TypeDef def)
    {
        switch (def)
        {
            case CompositeDef c:
                w.U8(0);
                WriteFields(w, c.Fields);
                break;
            case VariantDef v:
                w.U8(1).Compact((ulong)v.Variants.Length);
                foreach (var x in v.Variants)
                {
                    w.String(x.Name);
                    WriteFields(w, x.Fields);
                    w.U8(x.Index);
                    WriteStrings(w, x.Docs);
                }
                break;
            case SequenceDef s:
                w.U8(2).Compact(s.Element);
                break;
            case ArrayDef a:
                w.U8(3).U32(a.Length).Compact(a.Element);
                break;
            case TupleDef t:
                w.U8(4).Compact((ulong)t.Elements.Length);
                foreach (var e in t.Elements) w.Compact(e);
                break;
            case PrimitiveDef p:
                w.U8(5).U8((byte)p.Kind);
                break;
            case CompactDef c:
                w.U8(6).Compact(c.Inner);
                break;
            case BitSequenceDef b:
                w.U8(7).Compact(b.StoreType).Compact(b.OrderType);
                break;
            default:
                throw new MetadataException($"cannot encode type definition {def.GetType().Name}");
        }
    }

    private static void WriteFields(ScaleWriter w, ImmutableArray<TypeField> fields)
    {
        w.Compact((ulong)fields.Length);
        foreach (var f in fields)
        {
            if (f.Name is { } n) w.U8(1).String(n);
            else w.U8(0);
            w.Compact(f.Type);
            if (f.TypeName is { } tn) w.U8(1).String(tn);
            else w.U8(0);
            w.Compact(0UL); // docs
        }
    }

    private static void WriteStrings(ScaleWriter w, ImmutableArray<string> strings)
    {
        w.Compact((ulong)(strings.IsDefault ? 0 : strings.Length));
        if (strings.IsDefault) return;
        foreach (var s in strings) w.String(s);
    }

    private static void WritePallet(ScaleWriter w, PalletMetadata p, bool v15)
    {
        w.String(p.Name);
        if (p.StoragePrefix is { } prefix)
        {
            w.U8(1).String(prefix).Compact((ulong)p.Storage.Length);
            foreach (var s in p.Storage)
            {
                w.String(s.Name).U8((byte)s.Modifier);
                if (s.Hashers.IsDefaultOrEmpty)
                {
                    w.U8(0).Compact(s.ValueType);
                }
                else
                {
                    w.U8(1).Compact((ulong)s.Hashers.Length);
                    foreach (var h in s.Hashers) w.U8((byte)h);
                    w.Compact(s.KeyType ?? throw new MetadataException($"{p.Name}.{s.Name}: a map needs a key type")).Compact(s.ValueType);
                }
                w.Bytes(s.Default.AsSpan()).Compact(0UL); // docs
            }
        }
        else
        {
            w.U8(0);
        }
        Optional(w, p.CallType);
        Optional(w, p.EventType);
        w.Compact((ulong)p.Constants.Length);
        foreach (var k in p.Constants) w.String(k.Name).Compact(k.Type).Bytes(k.Value.AsSpan()).Compact(0UL);
        Optional(w, p.ErrorType);
        w.U8(p.Index);
        if (v15) w.Compact(0UL); // docs
    }

    private static void Optional(ScaleWriter w, uint? id)
    {
        if (id is { } t) w.U8(1).Compact(t);
        else w.U8(0);
    }

    private static void WriteExtensions(ScaleWriter w, ImmutableArray<SignedExtensionMetadata> extensions)
    {
        w.Compact((ulong)extensions.Length);
        foreach (var x in extensions) w.String(x.Identifier).Compact(x.Type).Compact(x.AdditionalSigned);
    }
}
