using System.Buffers.Binary;
using System.Collections.Immutable;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Substrate;

/// <summary>How a storage item answers for a key that was never written.</summary>
public enum StorageModifier : byte
{
    /// <summary>No value (the RPC returns null).</summary>
    Optional = 0,

    /// <summary>The entry's default bytes.</summary>
    Default = 1,
}

/// <summary>Storage key hashers, numbered as in metadata.</summary>
public enum StorageHasher : byte
{
    /// <summary>BLAKE2b-128 of the key.</summary>
    Blake2_128 = 0,

    /// <summary>BLAKE2b-256 of the key.</summary>
    Blake2_256 = 1,

    /// <summary>BLAKE2b-128 of the key, then the key.</summary>
    Blake2_128Concat = 2,

    /// <summary>twox128 of the key.</summary>
    Twox128 = 3,

    /// <summary>twox256 of the key.</summary>
    Twox256 = 4,

    /// <summary>twox64 of the key, then the key.</summary>
    Twox64Concat = 5,

    /// <summary>The key itself.</summary>
    Identity = 6,
}

/// <summary>A storage item of a pallet.</summary>
/// <param name="Name">Item name (e.g. <c>Account</c>).</param>
/// <param name="Modifier">Optional or default.</param>
/// <param name="Hashers">One hasher per key part; empty for a plain value.</param>
/// <param name="KeyType">Key type (a tuple when there are several hashers); null for a plain value.</param>
/// <param name="ValueType">Value type.</param>
/// <param name="Default">Default value bytes.</param>
public sealed record StorageEntryMetadata(
    string Name,
    StorageModifier Modifier,
    ImmutableArray<StorageHasher> Hashers,
    uint? KeyType,
    uint ValueType,
    ImmutableArray<byte> Default);

/// <summary>A pallet constant.</summary>
public sealed record ConstantMetadata(string Name, uint Type, ImmutableArray<byte> Value);

/// <summary>A pallet: its wire index and the types of its calls, events and errors.</summary>
public sealed record PalletMetadata(
    string Name,
    byte Index,
    string? StoragePrefix,
    ImmutableArray<StorageEntryMetadata> Storage,
    uint? CallType,
    uint? EventType,
    uint? ErrorType,
    ImmutableArray<ConstantMetadata> Constants)
{
    /// <summary>The storage item named <paramref name="name"/>, or null.</summary>
    public StorageEntryMetadata? FindStorage(string name) => Storage.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.Ordinal));

    /// <summary>The constant named <paramref name="name"/>, or null.</summary>
    public ConstantMetadata? FindConstant(string name) => Constants.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.Ordinal));
}

/// <summary>A signed (transaction) extension as metadata lists it.</summary>
/// <param name="Identifier">Its name, e.g. <c>CheckMortality</c>.</param>
/// <param name="Type">Type of the explicit data carried in the extrinsic.</param>
/// <param name="AdditionalSigned">Type of the implicit data that is only signed.</param>
public sealed record SignedExtensionMetadata(string Identifier, uint Type, uint AdditionalSigned);

/// <summary>The extrinsic format.</summary>
/// <param name="Version">Extrinsic version (4).</param>
/// <param name="Type">V14: the UncheckedExtrinsic type (its params name Address, Call, Signature, Extra); null in V15.</param>
/// <param name="AddressType">Address type (V15, or V14 from the extrinsic type's parameters).</param>
/// <param name="CallType">The runtime call enum.</param>
/// <param name="SignatureType">Signature type.</param>
/// <param name="SignedExtensions">Extensions in the order their data is laid out.</param>
public sealed record ExtrinsicMetadata(
    byte Version,
    uint? Type,
    uint? AddressType,
    uint? CallType,
    uint? SignatureType,
    ImmutableArray<SignedExtensionMetadata> SignedExtensions);

/// <summary>One input of a runtime API method.</summary>
public sealed record RuntimeApiParam(string Name, uint Type);

/// <summary>A runtime API method (called as <c>state_call("{Api}_{Method}", SCALE(inputs))</c>).</summary>
public sealed record RuntimeApiMethod(string Name, ImmutableArray<RuntimeApiParam> Inputs, uint Output);

/// <summary>A runtime API (V15 only).</summary>
public sealed record RuntimeApiMetadata(string Name, ImmutableArray<RuntimeApiMethod> Methods)
{
    /// <summary>The method named <paramref name="name"/>, or null.</summary>
    public RuntimeApiMethod? FindMethod(string name) => Methods.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.Ordinal));
}

/// <summary>
/// A runtime's metadata, V14 or V15, decoded from <c>state_getMetadata</c> (prefixed with <c>meta</c> and a version
/// byte) or from <c>Metadata_metadata_at_version</c> (the same bytes wrapped in <c>Option&lt;OpaqueMetadata&gt;</c>,
/// i.e. an option tag and a compact length). Pure data: no I/O.
/// </summary>
public sealed class RuntimeMetadata
{
    /// <summary>Largest metadata blob accepted (real runtimes: 0.3–1 MB).</summary>
    public const int MaxBytes = 32 << 20;

    /// <summary>The magic number <c>meta</c> as a little-endian u32.</summary>
    public const uint Magic = 0x6174656d;

    private readonly Dictionary<string, PalletMetadata> _byName;
    private readonly Dictionary<byte, PalletMetadata> _byIndex;

    private RuntimeMetadata(
        byte version,
        PortableRegistry types,
        ImmutableArray<PalletMetadata> pallets,
        ExtrinsicMetadata extrinsic,
        uint runtimeType,
        ImmutableArray<RuntimeApiMetadata> apis,
        uint? outerEventType,
        uint? outerErrorType)
    {
        Version = version;
        Types = types;
        Pallets = pallets;
        Extrinsic = extrinsic;
        RuntimeType = runtimeType;
        Apis = apis;
        OuterEventType = outerEventType;
        OuterErrorType = outerErrorType;
        _byName = new Dictionary<string, PalletMetadata>(StringComparer.Ordinal);
        _byIndex = [];
        foreach (var p in pallets)
        {
            if (!_byName.TryAdd(p.Name, p)) throw new MetadataException($"pallet name {p.Name} appears twice");
            if (!_byIndex.TryAdd(p.Index, p)) throw new MetadataException($"pallet index {p.Index} appears twice ({p.Name})");
        }
    }

    /// <summary>14 or 15.</summary>
    public byte Version { get; }

    /// <summary>The type registry.</summary>
    public PortableRegistry Types { get; }

    /// <summary>Pallets in metadata order.</summary>
    public ImmutableArray<PalletMetadata> Pallets { get; }

    /// <summary>Extrinsic format and signed extensions.</summary>
    public ExtrinsicMetadata Extrinsic { get; }

    /// <summary>The <c>Runtime</c> type id.</summary>
    public uint RuntimeType { get; }

    /// <summary>Runtime APIs (V15; empty for V14).</summary>
    public ImmutableArray<RuntimeApiMetadata> Apis { get; }

    /// <summary>The <c>RuntimeEvent</c> enum (V15 outer enums; for V14 found from <c>System.Events</c>).</summary>
    public uint? OuterEventType { get; }

    /// <summary>The <c>RuntimeError</c> enum (V15 only).</summary>
    public uint? OuterErrorType { get; }

    /// <summary>The pallet named <paramref name="name"/>; throws <see cref="MetadataException"/> if absent.</summary>
    public PalletMetadata Pallet(string name) =>
        _byName.TryGetValue(name, out var p) ? p : throw new MetadataException($"the runtime has no pallet '{name}'");

    /// <summary>The pallet named <paramref name="name"/>, or null.</summary>
    public PalletMetadata? FindPallet(string name) => _byName.GetValueOrDefault(name);

    /// <summary>The pallet with wire index <paramref name="index"/>, or null.</summary>
    public PalletMetadata? FindPallet(byte index) => _byIndex.GetValueOrDefault(index);

    /// <summary>The runtime API named <paramref name="name"/>, or null (always null for V14).</summary>
    public RuntimeApiMetadata? FindApi(string name) => Apis.FirstOrDefault(a => string.Equals(a.Name, name, StringComparison.Ordinal));

    /// <summary>Calls of a pallet (variants of its call enum); empty when it has none.</summary>
    public ImmutableArray<TypeVariant> Calls(PalletMetadata pallet) => VariantsOf(pallet?.CallType);

    /// <summary>Events of a pallet.</summary>
    public ImmutableArray<TypeVariant> Events(PalletMetadata pallet) => VariantsOf(pallet?.EventType);

    /// <summary>Errors of a pallet.</summary>
    public ImmutableArray<TypeVariant> Errors(PalletMetadata pallet) => VariantsOf(pallet?.ErrorType);

    private ImmutableArray<TypeVariant> VariantsOf(uint? id) => id is { } t ? Types.Variants(t).Variants : ImmutableArray<TypeVariant>.Empty;

    /// <summary>
    /// Decodes metadata bytes: prefixed (<c>meta</c> + version) as <c>state_getMetadata</c> returns them, or wrapped as
    /// <c>Metadata_metadata_at_version</c> / <c>Metadata_metadata</c> return them (<c>Option</c> tag and/or compact
    /// length before the prefix). Throws <see cref="ScaleException"/> or <see cref="MetadataException"/> on bad input.
    /// </summary>
    public static RuntimeMetadata Decode(ReadOnlySpan<byte> bytes, ScaleLimits? limits = null)
    {
        if (bytes.Length > MaxBytes) throw new MetadataException($"metadata of {bytes.Length} bytes exceeds the limit {MaxBytes}");
        var r = new ScaleReader(Unwrap(bytes));
        if (r.U32() != Magic) throw new ScaleException("metadata does not start with the magic 'meta'", 0);
        var version = r.U8();
        if (version is not (14 or 15)) throw new MetadataException($"metadata version {version} is not supported (14 and 15 are)");
        var types = PortableRegistry.Decode(ref r, limits);
        var v15 = version == 15;
        var np = r.Length(6);
        var pallets = ImmutableArray.CreateBuilder<PalletMetadata>(np);
        for (var i = 0; i < np; i++) pallets.Add(ReadPallet(ref r, v15));
        ExtrinsicMetadata extrinsic;
        if (v15)
        {
            var ver = r.U8();
            var address = r.CompactU32();
            var call = r.CompactU32();
            var signature = r.CompactU32();
            _ = r.CompactU32(); // extra: the tuple of explicit extension data
            extrinsic = new ExtrinsicMetadata(ver, null, address, call, signature, ReadExtensions(ref r));
        }
        else
        {
            var ty = r.CompactU32();
            var ver = r.U8();
            var exts = ReadExtensions(ref r);
            var p = types[ty].Params;
            uint? Param(string n) => p.FirstOrDefault(x => string.Equals(x.Name, n, StringComparison.Ordinal))?.Type;
            extrinsic = new ExtrinsicMetadata(ver, ty, Param("Address"), Param("Call"), Param("Signature"), exts);
        }
        var runtime = r.CompactU32();
        var apis = ImmutableArray<RuntimeApiMetadata>.Empty;
        uint? outerEvent = null, outerError = null;
        if (v15)
        {
            apis = ReadApis(ref r);
            _ = r.CompactU32(); // outer call enum (same as extrinsic call type)
            outerEvent = r.CompactU32();
            outerError = r.CompactU32();
            var nc = r.Length(3);
            for (var i = 0; i < nc; i++)
            {
                _ = r.String(MetadataReader.MaxName);
                _ = r.CompactU32();
                _ = r.Bytes();
            }
        }
        r.EnsureEnd();
        var md = new RuntimeMetadata(version, types, pallets.MoveToImmutable(), extrinsic, runtime, apis, outerEvent, outerError);
        md.Validate();
        return md;
    }

    /// <summary>Strips an <c>Option</c> tag and/or a compact length in front of the <c>meta</c> magic.</summary>
    private static ReadOnlySpan<byte> Unwrap(ReadOnlySpan<byte> bytes)
    {
        if (StartsWithMagic(bytes)) return bytes;
        if (bytes.Length == 1 && bytes[0] == 0)
            throw new MetadataException("the runtime has no metadata at the requested version (None)");
        if (bytes.Length > 0 && bytes[0] == 1 && LengthThenMagic(bytes[1..]) is { } inner) return bytes.Slice(1 + inner);
        if (LengthThenMagic(bytes) is { } offset) return bytes[offset..];
        throw new ScaleException("metadata does not start with the magic 'meta' (nor with an Option tag or length before it)", 0);
    }

    private static bool StartsWithMagic(ReadOnlySpan<byte> bytes) =>
        bytes.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(bytes) == Magic;

    /// <summary>The offset of the body when <paramref name="bytes"/> is a compact length followed by exactly that many bytes starting with the magic.</summary>
    private static int? LengthThenMagic(ReadOnlySpan<byte> bytes)
    {
        try
        {
            var r = new ScaleReader(bytes);
            var len = r.Length(1);
            return len == r.Remaining && StartsWithMagic(bytes[r.Position..]) ? r.Position : null;
        }
        catch (ScaleException)
        {
            return null;
        }
    }

    private void Validate()
    {
        void Check(uint? id, string what)
        {
            if (id is { } t && t >= (uint)Types.Count) throw new MetadataException($"{what} refers to type {t}, but the registry has {Types.Count} types");
        }

        foreach (var p in Pallets)
        {
            Check(p.CallType, $"{p.Name} calls");
            Check(p.EventType, $"{p.Name} events");
            Check(p.ErrorType, $"{p.Name} errors");
            if (p.CallType is { } c) _ = Types.Variants(c);
            if (p.EventType is { } e) _ = Types.Variants(e);
            if (p.ErrorType is { } er) _ = Types.Variants(er);
            foreach (var s in p.Storage)
            {
                Check(s.KeyType, $"{p.Name}.{s.Name} key");
                Check(s.ValueType, $"{p.Name}.{s.Name} value");
            }
            foreach (var k in p.Constants) Check(k.Type, $"{p.Name}.{k.Name}");
        }
        Check(Extrinsic.Type, "extrinsic");
        Check(Extrinsic.AddressType, "extrinsic address");
        Check(Extrinsic.CallType, "extrinsic call");
        Check(Extrinsic.SignatureType, "extrinsic signature");
        foreach (var x in Extrinsic.SignedExtensions)
        {
            Check(x.Type, x.Identifier);
            Check(x.AdditionalSigned, x.Identifier);
        }
        Check(RuntimeType, "runtime");
        Check(OuterEventType, "outer event enum");
        Check(OuterErrorType, "outer error enum");
        foreach (var a in Apis)
        foreach (var m in a.Methods)
        {
            Check(m.Output, $"{a.Name}_{m.Name} output");
            foreach (var i in m.Inputs) Check(i.Type, $"{a.Name}_{m.Name} input {i.Name}");
        }
    }

    private static PalletMetadata ReadPallet(ref ScaleReader r, bool v15)
    {
        var name = r.String(MetadataReader.MaxName);
        string? prefix = null;
        var storage = ImmutableArray<StorageEntryMetadata>.Empty;
        if (r.OptionTag())
        {
            prefix = r.String(MetadataReader.MaxName);
            var n = r.Length(5);
            var b = ImmutableArray.CreateBuilder<StorageEntryMetadata>(n);
            for (var i = 0; i < n; i++) b.Add(ReadStorageEntry(ref r));
            storage = b.MoveToImmutable();
        }
        uint? calls = r.OptionTag() ? r.CompactU32() : null;
        uint? events = r.OptionTag() ? r.CompactU32() : null;
        var nk = r.Length(4);
        var ks = ImmutableArray.CreateBuilder<ConstantMetadata>(nk);
        for (var i = 0; i < nk; i++)
        {
            var kn = r.String(MetadataReader.MaxName);
            var kt = r.CompactU32();
            var kv = r.Bytes();
            _ = PortableRegistry.ReadStrings(ref r);
            ks.Add(new ConstantMetadata(kn, kt, ImmutableArray.Create(kv)));
        }
        uint? errors = r.OptionTag() ? r.CompactU32() : null;
        var index = r.U8();
        if (v15) _ = PortableRegistry.ReadStrings(ref r);
        return new PalletMetadata(name, index, prefix, storage, calls, events, errors, ks.MoveToImmutable());
    }

    private static StorageEntryMetadata ReadStorageEntry(ref ScaleReader r)
    {
        var name = r.String(MetadataReader.MaxName);
        var at = r.Position;
        var modifier = r.U8();
        if (modifier > 1) throw new ScaleException($"unknown storage modifier {modifier}", at);
        at = r.Position;
        var kind = r.U8();
        StorageEntryMetadata entry;
        switch (kind)
        {
            case 0:
                entry = new StorageEntryMetadata(name, (StorageModifier)modifier, [], null, r.CompactU32(), []);
                break;
            case 1:
            {
                var n = r.Length(1);
                var hs = ImmutableArray.CreateBuilder<StorageHasher>(n);
                for (var i = 0; i < n; i++)
                {
                    var hat = r.Position;
                    var h = r.U8();
                    if (h > (byte)StorageHasher.Identity) throw new ScaleException($"unknown storage hasher {h}", hat);
                    hs.Add((StorageHasher)h);
                }
                var key = r.CompactU32();
                var value = r.CompactU32();
                entry = new StorageEntryMetadata(name, (StorageModifier)modifier, hs.MoveToImmutable(), key, value, []);
                break;
            }
            default:
                throw new ScaleException($"unknown storage entry kind {kind}", at);
        }
        var def = r.Bytes();
        _ = PortableRegistry.ReadStrings(ref r);
        return entry with { Default = ImmutableArray.Create(def) };
    }

    private static ImmutableArray<SignedExtensionMetadata> ReadExtensions(ref ScaleReader r)
    {
        var n = r.Length(3);
        var b = ImmutableArray.CreateBuilder<SignedExtensionMetadata>(n);
        for (var i = 0; i < n; i++) b.Add(new SignedExtensionMetadata(r.String(MetadataReader.MaxName), r.CompactU32(), r.CompactU32()));
        return b.MoveToImmutable();
    }

    private static ImmutableArray<RuntimeApiMetadata> ReadApis(ref ScaleReader r)
    {
        var n = r.Length(3);
        var b = ImmutableArray.CreateBuilder<RuntimeApiMetadata>(n);
        for (var i = 0; i < n; i++)
        {
            var name = r.String(MetadataReader.MaxName);
            var nm = r.Length(4);
            var ms = ImmutableArray.CreateBuilder<RuntimeApiMethod>(nm);
            for (var k = 0; k < nm; k++)
            {
                var mn = r.String(MetadataReader.MaxName);
                var ni = r.Length(2);
                var ins = ImmutableArray.CreateBuilder<RuntimeApiParam>(ni);
                for (var j = 0; j < ni; j++) ins.Add(new RuntimeApiParam(r.String(MetadataReader.MaxName), r.CompactU32()));
                var output = r.CompactU32();
                _ = PortableRegistry.ReadStrings(ref r);
                ms.Add(new RuntimeApiMethod(mn, ins.MoveToImmutable(), output));
            }
            _ = PortableRegistry.ReadStrings(ref r);
            b.Add(new RuntimeApiMetadata(name, ms.MoveToImmutable()));
        }
        return b.MoveToImmutable();
    }
}

internal static class MetadataReader
{
    /// <summary>Longest identifier (name, path segment) accepted from metadata.</summary>
    public const int MaxName = 4096;
}
